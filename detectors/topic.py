"""Emerging-topic detector: terms (and bigrams, if the tokenizer emits them) whose rate jumps.

Bounded memory per brand, whatever the vocabulary:

- a count-min sketch (`sketch_depth` x `sketch_width` floats) of each term's exponentially decayed
  author count: its usual rate (decay is lazy: counts are stored scaled by exp(t / tau), rescaled
  rarely);
- a heavy-hitter table of at most `candidates` terms with their recent (decayed over
  `window_minutes`) author counts, pruned to the strongest (space-saving style).

A term's surprise is the Poisson upper tail of its recent author count against its usual *share*
of authors (at least `floor_share`) times the recent authors, corrected for the number of terms
tested; the topic signal is the strongest term's. A volume spike with the usual words is not a
topic; a new word is, however the volume moves. `Bucket.terms` counts each term once per author,
so one author repeating a word is not a topic.

>>> from daemon.windows import Bucket
>>> det = TopicDetector(TopicSettings(grace_hours=1))
>>> for i in range(180):
...     _ = det.update(Bucket("b", i * 60.0, 60, mentions=10, terms={"flight": 3, "bag": 1}))
>>> det.read(Bucket("b", 180 * 60.0, 60, mentions=40, terms={"flight": 12, "bag": 4})).firing
False
>>> for i in range(181, 186):  # same volume, new words
...     b = Bucket("b", i * 60.0, 60, mentions=10, terms={"flight": 3, "ash": 6, "volcano": 4})
...     r = det.read(b)
...     det.after_score(b, r.score)
>>> r.firing, r.top_terms[:2]
(True, ('ash', 'volcano'))
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from daemon.windows import Bucket
from detectors.base import Detector, score_from_surprise
from detectors.settings import TopicSettings
from detectors.stats import poisson_surprise

_RESCALE_EXP = 40.0
_MIN_RECENT = 0.05  # recent counts below this are forgotten


@dataclass(slots=True, frozen=True)
class TopicReading:
    score: float
    surprise: float
    firing: bool
    top_terms: tuple[str, ...]  # strongest emerging terms first
    warm: bool


class TopicDetector(Detector):
    """Count-min sketch of usual term rates + heavy hitters of recent ones."""

    def __init__(self, settings: TopicSettings | None = None, sensitivity: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        s = self.settings = settings or TopicSettings()
        self.threshold = s.threshold / sensitivity
        self._key = seed.to_bytes(8, "little", signed=True)
        self._sketch = np.zeros((s.sketch_depth, s.sketch_width), dtype=np.float64)
        self._tau = s.baseline_half_life_hours * 3600 / math.log(2)
        self._t_ref: float | None = None  # sketch values are scaled by exp((t - t_ref) / tau)
        self._first: float | None = None
        self._last: float | None = None
        self._total = 0.0  # decayed authors, scaled like the sketch
        # term -> recent author count decayed over the window, stored scaled by
        # exp((t - _r_ref) / window) so that time passing costs nothing
        self._recent: dict[str, float] = {}
        self._r_ref: float | None = None
        self._recent_total = 0.0  # decayed recent authors (stored scaled the same way)
        self.bucket_seconds = 0
        self.max_protect_buckets = 360

    # -- sketch ---------------------------------------------------------------------------------

    def _cells(self, term: str) -> list[int]:
        d = hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=8, key=self._key).digest()
        x = int.from_bytes(d, "little")
        h1, h2 = x & 0xFFFFFFFF, (x >> 32) | 1
        w = self.settings.sketch_width
        return [(h1 + i * h2) % w for i in range(self.settings.sketch_depth)]

    def _usual_share(self, term: str) -> float:
        """The share of authors who usually use the term (decayed; the sketch's scale cancels)."""
        floor = self.settings.floor_share
        if self._total <= 0:
            return floor
        est = min(self._sketch[i, c] for i, c in enumerate(self._cells(term)))
        return max(floor, est / self._total)

    # -- river interface ------------------------------------------------------------------------

    @property
    def warm(self) -> bool:
        if self._first is None or self._last is None:
            return False
        return self._last - self._first >= self.settings.grace_hours * 3600

    def _window(self) -> float:
        return self.settings.window_minutes * 60.0

    def _decay(self, t: float) -> float:
        """Factor from stored (scaled) recent counts to their value at `t`."""
        if self._r_ref is None:
            return 0.0
        return math.exp(-(t - self._r_ref) / self._window())

    def read(self, bucket: Bucket) -> TopicReading:
        s = self.settings
        if not self.warm or not (self._recent or bucket.terms):
            return TopicReading(0.0, 0.0, False, (), self.warm)
        f = self._decay(bucket.start)
        stored, terms = self._recent, bucket.terms
        need = s.min_authors
        counts: dict[str, float] = {}
        for term, v in stored.items():
            c = v * f + terms.get(term, 0)
            if c >= need:
                counts[term] = c
        for term, n in terms.items():
            if n >= need and term not in stored:
                counts[term] = n
        authors = self._recent_total * f + _authors(bucket)
        correction = math.log10(max(len(stored) + len(terms), 1))
        scored = []
        for term, count in counts.items():
            lam = self._usual_share(term) * authors
            sur = poisson_surprise(count, lam) - correction
            if sur > 0:
                scored.append((sur, count / max(lam, 1e-9), term))
        best = max((x[0] for x in scored), default=0.0)
        # report the significant terms by lift (how many times their usual rate): "ash" before
        # "because", which is merely frequent in the new mentions
        floor = self.threshold * 0.5
        lifted = sorted((x for x in scored if x[0] >= floor), key=lambda x: (-x[1], -x[0], x[2]))
        top = tuple(term for _, _, term in lifted[: s.top_terms])
        return TopicReading(score_from_surprise(best, self.threshold), best, best >= self.threshold, top, True)

    def score_one(self, bucket: Bucket) -> float:
        return self.read(bucket).score

    def observe(self, bucket: Bucket) -> None:
        t = bucket.start
        if self._first is None:
            self._first = t
        self._last = t
        if self._r_ref is None:
            self._r_ref = t
        exponent = (t - self._r_ref) / self._window()
        if exponent > _RESCALE_EXP:  # renormalise the stored values (rare)
            g = math.exp(-exponent)
            self._recent = {k: v * g for k, v in self._recent.items() if v * g >= _MIN_RECENT}
            self._recent_total *= g
            self._r_ref, exponent = t, 0.0
        scale = math.exp(exponent)
        recent = self._recent
        for term, n in bucket.terms.items():
            recent[term] = recent.get(term, 0.0) + n * scale
        self._recent_total += _authors(bucket) * scale
        limit = self.settings.candidates
        if len(recent) > 2 * limit:  # keep the heaviest (bounded memory, amortised cost)
            floor = _MIN_RECENT * scale
            keep = sorted(((v, k) for k, v in recent.items() if v >= floor), reverse=True)[:limit]
            self._recent = {k: v for v, k in keep}

    def learn_one(self, bucket: Bucket) -> None:
        t = bucket.start
        if self._first is None:
            self._first = t
        if self._t_ref is None:
            self._t_ref = t
        exponent = (t - self._t_ref) / self._tau
        if exponent > _RESCALE_EXP:
            self._sketch *= math.exp(-exponent)
            self._total *= math.exp(-exponent)
            self._t_ref = t
            exponent = 0.0
        scale = math.exp(exponent)
        self._total += _authors(bucket) * scale
        if not bucket.terms:
            return
        depth = self.settings.sketch_depth
        cols: list[int] = []
        vals: list[float] = []
        for term, n in bucket.terms.items():
            cols.extend(self._cells(term))
            vals.extend([n * scale] * depth)
        rows = np.tile(np.arange(depth), len(bucket.terms))
        np.add.at(self._sketch, (rows, np.asarray(cols)), np.asarray(vals))


def _authors(bucket: Bucket) -> int:
    """Authors in the bucket (each counts a term once), or mentions when not tracked."""
    return max(bucket.authors, bucket.mentions)
