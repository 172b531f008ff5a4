"""Negativity detector: the share of negative customer mentions against its baseline.

The baseline share is a decayed beta estimate (negatives and mentions, exponentially weighted,
plus a prior). Each bucket pools the last few spans of negatives and mentions and asks how likely
that many negatives are under a beta-binomial whose concentration is capped (`baseline_strength`):
with 10 mentions, 6 negatives is no news; with 200 it is. A rise with flat volume still fires.

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
from collections import deque
from dataclasses import dataclass

from daemon.windows import Bucket
from detectors.base import Detector, score_from_surprise
from detectors.settings import NegativitySettings
from detectors.stats import betabinom_surprise


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

    def __init__(self, settings: NegativitySettings | None = None, sensitivity: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        self.settings = settings or NegativitySettings()
        self.threshold = self.settings.threshold / sensitivity
        self.bucket_seconds = 0
        self.neg = 0.0  # decayed negatives
        self.total = 0.0  # decayed mentions
        self.seen = 0  # mentions ever learned
        self._recent: deque[tuple[int, int]] = deque()
        self._spans: list[int] = []
        self._decay = 1.0

    def _configure(self, seconds: int) -> None:
        s = self.settings
        self.bucket_seconds = seconds
        self._spans = sorted({max(1, round(m * 60 / seconds)) for m in s.windows_minutes})
        self._recent = deque(maxlen=max(self._spans))
        self._decay = 0.5 ** (seconds / (s.baseline_half_life_hours * 3600))
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
        m = min(self.total + 10.0, s.baseline_strength)
        a, b = max(p0 * m, 1e-3), max((1 - p0) * m, 1e-3)
        recent = list(self._recent)
        correction = math.log10(len(self._spans))
        best = (0.0, 1, bucket.negative, bucket.mentions)
        for span in self._spans:
            k, n = bucket.negative, bucket.mentions
            for kk, nn in recent[len(recent) - (span - 1) :] if span > 1 else ():
                k += kk
                n += nn
            if n == 0 or k < s.min_negative or k / n < p0 + s.min_delta:
                continue
            sur = betabinom_surprise(k, n, a, b) - correction
            if sur > best[0]:
                best = (sur, span, k, n)
        sur, span, k, n = best
        share = k / n if n else 0.0
        return NegativityReading(
            score_from_surprise(sur, self.threshold), sur, sur >= self.threshold, share, p0, span, k, n, True
        )

    def score_one(self, bucket: Bucket) -> float:
        return self.read(bucket).score

    def observe(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        self._recent.append((bucket.negative, bucket.mentions))

    def learn_one(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        self.neg = self.neg * self._decay + bucket.negative
        self.total = self.total * self._decay + bucket.mentions
        self.seen += bucket.mentions
