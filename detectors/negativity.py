"""Negativity detector: the share of negative customer mentions against its baseline.

The baseline share is a decayed beta estimate (negatives and mentions, exponentially weighted,
plus a prior). Each bucket pools the last few spans of negatives and mentions and asks how likely
that many negatives are under a beta-binomial: with 10 mentions, 6 negatives is no news; with 200
it is. The beta's concentration is learned per span from how far past spans strayed from the
baseline (the share's overdispersion: topics of the day, scorer drift), capped by
`baseline_strength`. A rise with flat volume still fires.

>>> from daemon.windows import Bucket
>>> det = NegativityDetector(NegativitySettings(grace_mentions=50))
>>> for i in range(300):
...     _ = det.update(Bucket("b", i * 60.0, 60, mentions=20, negative=5))
>>> round(det.baseline_share, 2)
0.25
>>> det.read(Bucket("b", 300 * 60.0, 60, mentions=20, negative=6)).firing
False
>>> for i in range(300, 305):  # negativity to 70 %, volume flat
...     r = det.read(Bucket("b", i * 60.0, 60, mentions=20, negative=14))
...     _ = det.update(Bucket("b", i * 60.0, 60, mentions=20, negative=14))
>>> r.firing, r.span_buckets, r.share
(True, 5, 0.7)
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

from daemon.windows import Bucket
from detectors.base import Detector, score_from_surprise, span_buckets
from detectors.settings import NegativitySettings
from detectors.stats import betabinom_surprise

_VAR_HALF_LIFE_HOURS = 48.0
_VAR_MIN_BUCKETS = 120
_MIN_STRENGTH = 20.0  # never more tolerant than a baseline known from 20 mentions
# the rings hold the running totals modulo 2^32 (unsigned C ints): a difference modulo 2^32 is the
# exact sum of a span while the span holds fewer than 4 billion mentions
_RING_TYPE = "I"
_RING_MOD = 1 << (8 * array(_RING_TYPE).itemsize)


@dataclass(slots=True, frozen=True)
class NegativityReading:
    score: float
    surprise: float
    firing: bool
    share: float  # negative share over the most surprising span
    baseline: float  # baseline share
    span_buckets: int
    span_negative: int
    span_mentions: int
    warm: bool


class NegativityDetector(Detector):
    """Beta-binomial test of the negative share over several spans, against a decayed baseline."""

    # one detector per brand: slots, not a per-instance dict
    __slots__ = (
        *Detector.BASE_SLOTS,
        "settings",
        "threshold",
        "bucket_seconds",
        "neg",
        "total",
        "seen",
        "_cum_k",
        "_cum_n",
        "_ring_k",
        "_ring_n",
        "_head",
        "_stored",
        "_spans",
        "_decay",
        "_v1",
        "_v2",
        "_n_var",
        "_a_var",
    )

    def __init__(self, settings: NegativitySettings | None = None, sensitivity: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        self.max_protect_buckets = Detector.max_protect_buckets  # set by `_configure`
        self.settings = settings or NegativitySettings()
        self.threshold = self.settings.threshold / sensitivity
        self.bucket_seconds = 0
        self.neg = 0.0  # decayed negatives
        self.total = 0.0  # decayed mentions
        self.seen = 0  # mentions ever learned
        # the last buckets' (negative, mentions) as running totals in two rings of 32-bit ints: the
        # sum over any span is one subtraction, and a brand holds 8 bytes per bucket, not two objects
        self._cum_k = 0
        self._cum_n = 0
        self._ring_k = array(_RING_TYPE, [0])
        self._ring_n = array(_RING_TYPE, [0])
        self._head = 0  # ring position of the latest running totals
        self._stored = 0  # buckets held (at most the longest span)
        self._spans: tuple[int, ...] = ()
        self._decay = 1.0
        # per span: EWMAs of (k - n p)^2 - n p (1 - p) and n (n - 1) p (1 - p): the intra-span
        # correlation rho of negatives (scorer drift, topics of the day), so strength = 1/rho - 1
        self._v1 = array("d")
        self._v2 = array("d")
        self._n_var = 0

    def _configure(self, seconds: int) -> None:
        s = self.settings
        self.bucket_seconds = seconds
        self._spans = span_buckets(s.windows_minutes, seconds)
        self._empty_rings(max(self._spans))
        self._decay = 0.5 ** (seconds / (s.baseline_half_life_hours * 3600))
        self._v1 = array("d", [0.0]) * len(self._spans)
        self._v2 = array("d", [0.0]) * len(self._spans)
        self._a_var = 1.0 - 0.5 ** (seconds / (_VAR_HALF_LIFE_HOURS * 3600))
        self.max_protect_buckets = max(1, int(6 * 3600 / seconds))

    @property
    def baseline_share(self) -> float:
        k = 10.0  # prior pseudo-count
        return (self.neg + self.settings.prior_share * k) / (self.total + k)

    @property
    def warm(self) -> bool:
        return self.seen >= self.settings.grace_mentions

    def read(self, bucket: Bucket) -> NegativityReading:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        s = self.settings
        p0 = self.baseline_share
        if not self.warm:
            share = bucket.negative / bucket.mentions if bucket.mentions else 0.0
            return NegativityReading(0.0, 0.0, False, share, p0, 1, bucket.negative, bucket.mentions, False)
        correction = math.log10(len(self._spans))
        best = (0.0, 1, bucket.negative, bucket.mentions)
        for span in self._spans:
            k, n = self._last(span - 1)
            k += bucket.negative
            n += bucket.mentions
            if n == 0 or k < s.min_negative or k / n < p0 + s.min_delta:
                continue
            m = self.strength(self._spans.index(span))
            sur = betabinom_surprise(k, n, max(p0 * m, 1e-3), max((1 - p0) * m, 1e-3)) - correction
            if sur > best[0]:
                best = (sur, span, k, n)
        sur, span, k, n = best
        share = k / n if n else 0.0
        return NegativityReading(
            score_from_surprise(sur, self.threshold), sur, sur >= self.threshold, share, p0, span, k, n, True
        )

    def strength(self, j: int) -> float:
        """Concentration (a + b) of the baseline share for span `j`: how far spans stray from it."""
        cap = min(self.total + 10.0, self.settings.baseline_strength)
        if self._n_var < _VAR_MIN_BUCKETS or self._v2[j] <= 0:
            return cap
        rho = self._v1[j] / self._v2[j]
        if rho <= 1.0 / (cap + 1.0):
            return cap
        return max(_MIN_STRENGTH, 1.0 / rho - 1.0)

    def score_one(self, bucket: Bucket) -> float:
        return self.read(bucket).score

    def observe(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        self._push(bucket.negative, bucket.mentions)

    def _empty_rings(self, buckets: int) -> None:
        """Rings for the running totals of the last `buckets` buckets, none stored yet."""
        self._cum_k = self._cum_n = self._head = self._stored = 0
        self._ring_k = array(_RING_TYPE, [0]) * (buckets + 1)
        self._ring_n = array(_RING_TYPE, [0]) * (buckets + 1)

    def _push(self, negative: int, mentions: int) -> None:
        self._cum_k += negative
        self._cum_n += mentions
        size = len(self._ring_k)
        self._head = (self._head + 1) % size
        self._ring_k[self._head] = self._cum_k % _RING_MOD
        self._ring_n[self._head] = self._cum_n % _RING_MOD
        self._stored = min(self._stored + 1, size - 1)

    def _last(self, m: int) -> tuple[int, int]:
        """(negatives, mentions) over the last `m` stored buckets (fewer if fewer are held)."""
        m = min(m, self._stored)
        if m <= 0:
            return 0, 0
        i = (self._head - m) % len(self._ring_k)
        return (self._cum_k - self._ring_k[i]) % _RING_MOD, (self._cum_n - self._ring_n[i]) % _RING_MOD

    def learn_one(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        if self.warm:  # learn how much spans stray from the baseline share (overdispersion)
            p0 = self.baseline_share
            q = p0 * (1.0 - p0)
            a = max(self._a_var, 1.0 / (self._n_var + 1))
            for j, span in enumerate(self._spans):
                k, n = self._last(span)  # `observe` already stored this bucket
                self._v1[j] += a * ((k - n * p0) ** 2 - n * q - self._v1[j])
                self._v2[j] += a * (n * (n - 1) * q - self._v2[j])
            self._n_var += 1
        self.neg = self.neg * self._decay + bucket.negative
        self.total = self.total * self._decay + bucket.mentions
        self.seen += bucket.mentions

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints of the older layouts restore: an instance dict with the running totals in
        rings of int64 and the per-span figures as lists of floats, or, older, the recent buckets as
        a deque of (negative, mentions) pairs."""
        state = dict(state)
        recent = state.pop("_recent", None)
        for name in ("_ring_k", "_ring_n"):
            ring = state.get(name)
            if ring is not None and ring.typecode != _RING_TYPE:
                state[name] = array(_RING_TYPE, [v % _RING_MOD for v in ring])
        for name in ("_v1", "_v2"):
            v = state.get(name)
            if isinstance(v, list):
                state[name] = array("d", v)
        super().__setstate__(state)
        if recent is not None:
            self._empty_rings(recent.maxlen or len(recent))
            for k, n in recent:
                self._push(k, n)
