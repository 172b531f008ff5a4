"""Emerging-topic detector: terms (and bigrams, if the tokenizer emits them) whose rate jumps.

Bounded memory per brand, whatever the vocabulary, and little for a quiet brand:

- a count-min sketch (`sketch_depth` x at most `sketch_width` cells, conservative update) of each
  term's exponentially decayed author count: its usual rate (decay is lazy: counts are stored
  scaled by exp(t / tau), rescaled rarely). It is allocated with the brand's first terms, 64
  wide, and doubles (each new half a copy of the old cells, so no estimate ever drops below the
  true count) whenever half of a row is in use, up to `sketch_width`: a brand with a small
  vocabulary keeps a small sketch. A cell is a 16-bit count of steps of a per-brand `unit` (half
  the bytes of float32 cells: 4 KB a brand at full width); the unit grows with the counts (cells
  halved, rounding up, when one would pass 65,535), so a step is at most 1/32,768 of the largest
  count, and the lazy decay's rescale only changes the unit. Updates round to a whole step at
  random, up with the probability of the fraction (the coin: the term's hash and the bucket's
  start, so a replay draws the same): unbiased, where always rounding up would add up to a step
  per update, which lifts the estimates of a big brand's unseen terms above `floor_share`
  (bench/bench_sketch.py: float32 and 16-bit cells give the same accuracy);
- a heavy-hitter table of at most `candidates` terms with their recent (decayed over
  `window_minutes`) author counts, pruned to the strongest (space-saving style) and, once per
  window, of the terms that have decayed to nothing: a list of the (interned) terms and an array
  of their doubles (no float object per term). The term -> position dict it needs is built once
  for the bucket at hand (by `read`, reused by `observe`) and dropped: kept, it took 1.6 KB at 83
  terms and 3.3 KB from 86 to 170, where the list takes 8 bytes a term (1.2 KB less per brand:
  bench/bench_memory.py).

A term's sketch cells come from a keyed blake2b hash (the same in every process, unlike `hash()`),
computed once per term and kept in a bounded process-wide cache.

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
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
from scipy import special

from daemon.windows import Bucket
from detectors.base import Detector, score_from_surprise
from detectors.settings import TopicSettings
from detectors.stats import MAX_SURPRISE

_RESCALE_EXP = 40.0
# recent counts below this are forgotten: a quarter of an author is noise, and a quiet brand keeps
# ~40 % fewer terms than at 0.05 (bench/bench_memory.py)
_MIN_RECENT = 0.25
_CELL_MAX = np.iinfo(np.uint16).max
_FIRST_UNIT = 1.0 / 64  # a new sketch's step: 1/64 of an author, up to 1,024 authors a cell before it grows
_MIN_WIDTH = 64  # a new sketch's width (it doubles with the vocabulary up to `sketch_width`)
_HASH_CACHE_SIZE = 1 << 16  # terms whose hash is remembered, process-wide (cleared when full)
_HASHES: dict[bytes, dict[str, int]] = {}  # hash key -> term -> 64-bit keyed blake2b


def _term_hash(key: bytes, term: str) -> int:
    """The term's 64-bit keyed hash, computed once (a pure function, so caching changes nothing)."""
    cache = _HASHES.get(key)
    if cache is None:
        cache = _HASHES[key] = {}
    x = cache.get(term)
    if x is None:
        d = hashlib.blake2b(term.encode("utf-8", "surrogatepass"), digest_size=8, key=key).digest()
        x = int.from_bytes(d, "little")
        if len(cache) >= _HASH_CACHE_SIZE:
            cache.clear()
        cache[term] = x
    return x


def _start_width(width: int) -> int:
    """The smallest width the sketch starts at: `width` halved while it stays >= 64 and whole."""
    w = width
    while w % 2 == 0 and w // 2 >= _MIN_WIDTH:
        w //= 2
    return w


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
        self._sketch: np.ndarray | None = None  # uint16, allocated with the first terms learned
        self._unit = _FIRST_UNIT  # what one step of a cell counts (scaled like `_total`)
        self._tau = s.baseline_half_life_hours * 3600 / math.log(2)
        self._t_ref: float | None = None  # sketch values are scaled by exp((t - t_ref) / tau)
        self._first: float | None = None
        self._last: float | None = None
        self._total = 0.0  # decayed authors, scaled like the sketch
        # recent author count of the term _terms[i], decayed over the window: _values[i], stored
        # scaled by exp((t - _r_ref) / window) so that time passing costs nothing; terms are in
        # the order of their first arrival since the table was last rebuilt
        self._terms: list[str] = []
        self._values = array("d")
        self._r_ref: float | None = None
        self._recent_total = 0.0  # decayed recent authors (stored scaled the same way)
        self._pruned_at: float | None = None  # when `_recent` was last cleared of faded terms
        self.bucket_seconds = 0
        self.max_protect_buckets = 360
        self._read_positions: dict[str, int] | None = None  # `_positions()` from `read` until `observe` (never saved)

    # -- sketch ---------------------------------------------------------------------------------

    def _hashes(self, terms: Iterable[str]) -> np.ndarray:
        """The terms' keyed 64-bit hashes (those in the cache looked up in C)."""
        key = self._key
        terms = list(terms)
        hashes = list(map(_HASHES.setdefault(key, {}).get, terms))
        if None in hashes:
            hashes = [_term_hash(key, t) if x is None else x for t, x in zip(terms, hashes, strict=True)]
        return np.fromiter(hashes, np.uint64, len(hashes))

    @staticmethod
    def _cells(x: np.ndarray, depth: int, width: int) -> np.ndarray:
        """Sketch columns of each term of `_hashes` x, shape (terms, depth): double hashing of the
        keyed hash (row i of a sketch is the same whatever its depth, so a deeper checkpoint's first
        rows stay valid)."""
        h1 = x & np.uint64(0xFFFFFFFF)
        h2 = (x >> np.uint64(32)) | np.uint64(1)
        i = np.arange(depth, dtype=np.uint64)
        return (h1[:, None] + i[None, :] * h2[:, None]) % np.uint64(width)  # < 2^36: no overflow

    def _estimates(self, terms: list[str]) -> np.ndarray:
        """Count-min estimates of the terms' decayed author counts (scaled like the sketch)."""
        sk = self._sketch
        if sk is None or not terms:
            return np.zeros(len(terms))
        cols = self._cells(self._hashes(terms), *sk.shape)
        rows = np.arange(sk.shape[0])[None, :]
        return sk[rows, cols].min(axis=1) * self._unit

    def _usual_share(self, term: str) -> float:
        """The share of authors who usually use the term (decayed; the sketch's scale cancels)."""
        floor = self.settings.floor_share
        if self._total <= 0:
            return floor
        return max(floor, float(self._estimates([term])[0]) / self._total)

    def _grow(self) -> None:
        """Double the sketch while over half of a row is in use (up to `sketch_width`).

        Column c of a width-w sketch is column c mod w of the doubled one, so each new half starts
        as a copy: estimates never drop below the true counts, and the new width separates terms
        learned from now on (old collisions fade with the baseline's decay).
        """
        sk = self._sketch
        assert sk is not None
        limit = self.settings.sketch_width
        while sk.shape[1] * 2 <= limit and 2 * np.count_nonzero(sk[0]) > sk.shape[1]:
            sk = np.concatenate((sk, sk), axis=1)
        self._sketch = sk

    def _coarsen(self, shift: int) -> None:
        """Make the unit 2**shift times larger: the cells divided, rounded up (upper bounds stay)."""
        sk = self._sketch
        assert sk is not None
        self._sketch = ((sk.astype(np.uint32) + ((1 << shift) - 1)) >> shift).astype(np.uint16)
        self._unit *= 1 << shift

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
        if not self.warm or not (self._terms or bucket.terms):
            return TopicReading(0.0, 0.0, False, (), self.warm)
        f = self._decay(bucket.start)
        table, values, terms = self._terms, self._values, bucket.terms
        stored = self._positions() if table and terms else {}
        self._read_positions = stored or None  # `observe` of this bucket looks up the same table
        need = s.min_authors
        counts: dict[str, float] = {}
        for term, n in terms.items():
            i = stored.get(term)
            c = (0.0 if i is None else values[i]) * f + n
            if c >= need:
                counts[term] = c
        if table and f > 0:
            # stored terms strong enough without this bucket: found with numpy, not a Python loop
            strong = np.flatnonzero(np.frombuffer(values, np.float64) * f >= need)
            if len(strong):
                for i in strong.tolist():
                    term = table[i]
                    if term not in terms:
                        counts[term] = values[i] * f
        authors = self._recent_total * f + _authors(bucket)
        correction = math.log10(max(len(table) + len(terms), 1))
        scored = []
        if counts:
            floor_share = s.floor_share
            names = list(counts)
            if self._total > 0:
                shares = np.maximum(floor_share, self._estimates(names) / self._total).tolist()
            else:
                shares = [floor_share] * len(names)
            xs = [counts[term] for term in names]
            lams = [share * authors for share in shares]
            for term, count, lam, sur in zip(names, xs, lams, _poisson_surprises(xs, lams), strict=True):
                sur -= correction
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
            self._keep([(k, v * g) for k, v in zip(self._terms, self._values, strict=True) if v * g >= _MIN_RECENT])
            self._recent_total *= g
            self._r_ref, exponent = t, 0.0
        scale = math.exp(exponent)
        table, values = self._terms, self._values
        index = self._read_positions
        if index is None:
            index = self._positions() if table and bucket.terms else {}
        self._read_positions = None  # the table changes from here on
        intern = sys.intern  # one string per term for all brands, not one per brand and bucket
        for term, n in bucket.terms.items():
            i = index.get(term)
            if i is None:
                table.append(intern(term))
                values.append(n * scale)
            else:
                values[i] = values[i] + n * scale
        self._recent_total += _authors(bucket) * scale
        limit = self.settings.candidates
        floor = _MIN_RECENT * scale
        if len(table) > 2 * limit:  # keep the heaviest (bounded memory, amortised cost)
            # (value, term) pairs sorted in C; those under the floor sort last, so are cut from the end
            keep = [x for x in sorted(zip(values, table, strict=True), reverse=True)[:limit] if x[0] >= floor]
            self._set_table([k for _, k in keep], [v for v, _ in keep])
            self._pruned_at = t
        elif self._pruned_at is None or t - self._pruned_at >= self._window():
            # once per window: forget the terms that have faded (a quiet brand keeps few)
            if values and bool((np.frombuffer(values, np.float64) < floor).any()):
                kept = list(map(floor.__le__, values))  # value >= floor, in C
                self._set_table(list(compress(table, kept)), compress(values, kept))
            self._pruned_at = t

    def _keep(self, items: list[tuple[str, float]]) -> None:
        """Rebuild the heavy-hitter table from (term, stored value) pairs, in that order."""
        self._set_table([k for k, _ in items], [v for _, v in items])

    def _set_table(self, terms: list[str], values: Iterable[float]) -> None:
        """The heavy-hitter table is now these terms with these stored values."""
        self._read_positions = None  # positions in the old table
        self._terms = terms
        self._values = array("d", values)

    def _positions(self) -> dict[str, int]:
        """Term -> position in the table, for one bucket (never kept: see the module docstring)."""
        return {term: i for i, term in enumerate(self._terms)}

    @property
    def _recent(self) -> dict[str, float]:
        """The heavy-hitter table as a dict, term -> stored value (tests, inspection)."""
        return dict(zip(self._terms, self._values, strict=True))

    def learn_one(self, bucket: Bucket) -> None:
        t = bucket.start
        if self._first is None:
            self._first = t
        if self._t_ref is None:
            self._t_ref = t
        exponent = (t - self._t_ref) / self._tau
        if exponent > _RESCALE_EXP:
            self._unit *= math.exp(-exponent)
            self._total *= math.exp(-exponent)
            self._t_ref = t
            exponent = 0.0
        scale = math.exp(exponent)
        self._total += _authors(bucket) * scale
        if not bucket.terms:
            return
        sk = self._sketch
        if sk is None:
            s = self.settings
            sk = self._sketch = np.zeros((s.sketch_depth, _start_width(s.sketch_width)), dtype=np.uint16)
        depth, width = sk.shape
        x = self._hashes(bucket.terms)  # once: for the cells and for the rounding's coin
        cols = self._cells(x, depth, width)
        flat = (cols + (np.arange(depth, dtype=np.uint64) * np.uint64(width))[None, :]).ravel().astype(np.intp)
        add = np.fromiter(bucket.terms.values(), dtype=np.float64, count=len(bucket.terms)) * scale
        # conservative update: a term's cells rise only to its estimate plus this count, never
        # by the count on top of other terms' mass, so estimates stay >= the true counts with far
        # less collision noise (half the rows give the accuracy of plain updates: bench/bench_sketch.py)
        est = sk.reshape(-1)[flat].reshape(-1, depth).min(axis=1)
        # in steps of the unit, rounded at random (see the module docstring)
        coin = ((x ^ np.uint64(int(t) & 0xFFFFFFFFFFFF)) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)
        exact = est + add / self._unit
        steps = np.floor(exact + coin.astype(np.float64) / 2.0**53)
        top = float(steps.max())
        if top > _CELL_MAX:
            shift = math.ceil(math.log2(top / _CELL_MAX))
            self._coarsen(shift)
            sk = self._sketch
            assert sk is not None
            steps = np.ceil(steps / (1 << shift))
        np.maximum.at(sk.reshape(-1), flat, np.repeat(steps.astype(np.uint16), depth))
        if width < self.settings.sketch_width:
            self._grow()

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_read_positions", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints written before the sketch was 16-bit steps, float32, lazy and adaptive, or before the
        heavy-hitter table was a list of terms and an array (a dict of floats, then a dict from
        term to position and the array), restore as they were."""
        state.setdefault("_pruned_at", None)
        sketch = state.get("_sketch")
        if sketch is not None and sketch.dtype != np.uint16:  # counts as floats: steps of a unit
            unit = max(_FIRST_UNIT, float(sketch.max()) / _CELL_MAX)
            state["_sketch"] = np.ceil(np.asarray(sketch, np.float64) / unit).astype(np.uint16)
            state["_unit"] = unit
        state.setdefault("_unit", _FIRST_UNIT)
        recent = state.pop("_recent", None)
        index = state.pop("_index", None)  # the term -> position dict of older checkpoints
        self._read_positions = None
        super().__setstate__(state)
        if recent is not None:
            self._keep(list(recent.items()))
        elif index is not None:
            self._terms = sorted(index, key=index.__getitem__)
        # unpickled strings are new objects: share them with the other brands again
        self._terms = [sys.intern(t) for t in self._terms]


def _poisson_surprises(xs: list[float], mus: list[float]) -> list[float]:
    """`poisson_surprise` of each pair (x >= 1), with one scipy call for all of them.

    >>> from detectors.stats import poisson_surprise
    >>> _poisson_surprises([10.0, 3.0, 5.0], [2.0, 0.0, 40.0]) == [
    ...     poisson_surprise(10.0, 2.0), poisson_surprise(3.0, 0.0), poisson_surprise(5.0, 40.0)]
    True
    """
    ps = special.gammainc(np.asarray(xs, dtype=np.float64), np.asarray(mus, dtype=np.float64)).tolist()
    out = []
    for x, mu, p in zip(xs, mus, ps, strict=True):
        if x <= 0:
            out.append(0.0)
        elif mu <= 0 or not p > 0.0:  # 0 or nan after underflow
            out.append(MAX_SURPRISE)
        else:
            out.append(min(MAX_SURPRISE, max(0.0, -math.log10(p))))
    return out


def _authors(bucket: Bucket) -> int:
    """Authors in the bucket (each counts a term once), or mentions when not tracked."""
    return max(bucket.authors, bucket.mentions)
