"""Volume detector: customer mention counts against a seasonal, overdispersed baseline.

The expected count of a bucket is ``level x hour_of_day[h] x day_of_week[d]``, all learned online
(exponentially weighted, with fast 1/n rates during warm-up). Counts are negative binomial around it:
variance = mu + dispersion x mu^2, the dispersion learned from the residuals (moment estimator),
so the same threshold is sound for one mention an hour (Poisson-like) and thousands a minute
(dominated by the relative error). Each bucket tests several spans (the last 1, 5, 15 minutes by
default): the sum of observed counts against the sum of expectations, the upper tail probability as
a surprise, Bonferroni-corrected for the number of spans, gated by an effect size (ratio and
minimum mentions) so tiny but "significant" wiggles of huge brands never fire.

Learning is robust: a bucket teaches at most `clip_sigmas` standard deviations from its expectation,
and not at all while the detector fires (for at most 6 hours in a row: then a level shift is the new
normal). Constant time per bucket; pickles.

>>> from daemon.windows import Bucket
>>> det = VolumeDetector(VolumeSettings(grace_hours=1, grace_buckets=10, seasonality=False))
>>> for i in range(120):
...     _ = det.update(Bucket("b", i * 60.0, 60, mentions=10 + i % 3))
>>> det.read(Bucket("b", 120 * 60.0, 60, mentions=11)).firing
False
>>> r = det.read(Bucket("b", 120 * 60.0, 60, mentions=60))
>>> r.firing, r.score > 0.5, round(r.expected)
(True, True, 11)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from daemon.windows import Bucket
from detectors.base import Detector, score_from_surprise
from detectors.settings import VolumeSettings
from detectors.stats import nb_surprise

_PRIOR_DISPERSION = 0.1
_DISPERSION_HALF_LIFE_HOURS = 24.0


@dataclass(slots=True, frozen=True)
class VolumeReading:
    """What the volume detector saw in one bucket."""

    score: float  # [0, 1], 0.5 = firing threshold
    surprise: float  # corrected -log10 p of the most surprising span
    firing: bool
    observed: int  # this bucket
    expected: float  # this bucket
    upper: float  # this bucket's count at the firing threshold (for charts)
    span_buckets: int  # the most surprising span
    span_observed: float
    span_expected: float
    warm: bool

    @property
    def ratio(self) -> float:
        return self.span_observed / self.span_expected if self.span_expected > 0 else 0.0


def hour_of_day(t: float) -> int:
    return int(t % 86400 // 3600)


def day_of_week(t: float) -> int:
    """Monday = 0 (the epoch was a Thursday)."""
    return int((t // 86400 + 3) % 7)


def _alpha(half_life_updates: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(half_life_updates, 1.0))


class VolumeDetector(Detector):
    """Seasonal negative-binomial detector for one brand's mention counts."""

    def __init__(self, settings: VolumeSettings | None = None, sensitivity: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        self.settings = settings or VolumeSettings()
        self.threshold = self.settings.threshold / sensitivity
        self.bucket_seconds = 0
        self.first_t: float | None = None
        self.n = 0
        self.level = 0.0
        self.hod = [1.0] * 24
        self.dow = [1.0] * 7
        self.n_hod = [0] * 24
        self.n_dow = [0] * 7
        self._e2 = 0.0  # EWMA of (x - mu)^2 - mu
        self._m2 = 0.0  # EWMA of mu^2
        self._recent: deque[tuple[float, float]] = deque()  # (observed, expected) of previous buckets
        self._spans: list[int] = []

    # -- derived --------------------------------------------------------------------------------

    def _configure(self, seconds: int) -> None:
        s = self.settings
        self.bucket_seconds = seconds
        spans = sorted({max(1, round(m * 60 / seconds)) for m in s.windows_minutes})
        self._spans = spans
        self._recent = deque(maxlen=max(spans))
        per_hour = 3600 / seconds
        self._a_level = _alpha(s.level_half_life_hours * per_hour)
        self._a_hod = _alpha(s.seasonal_half_life_days * per_hour)  # a slot sees per_hour updates a day
        self._a_dow = _alpha(3 * 24 * per_hour)  # three weeks of that weekday
        self._a_disp = _alpha(_DISPERSION_HALF_LIFE_HOURS * per_hour)
        self.max_protect_buckets = max(1, int(6 * per_hour))

    def expected(self, t: float) -> float:
        if not self.settings.seasonality:
            return self.level
        return self.level * self.hod[hour_of_day(t)] * self.dow[day_of_week(t)]

    @property
    def dispersion(self) -> float:
        s = self.settings
        if self._m2 <= 0:
            d = _PRIOR_DISPERSION
        else:  # shrink towards the prior while few residuals were seen
            w = min(1.0, self.n / 50)
            d = w * self._e2 / self._m2 + (1 - w) * _PRIOR_DISPERSION
        return min(s.max_dispersion, max(s.min_dispersion, d))

    @property
    def warm(self) -> bool:
        s = self.settings
        if self.first_t is None or self.n < s.grace_buckets:
            return False
        return (self.n * self.bucket_seconds) >= s.grace_hours * 3600

    def _sd(self, mu: float) -> float:
        return math.sqrt(mu + self.dispersion * mu * mu)

    # -- river interface ------------------------------------------------------------------------

    def read(self, bucket: Bucket) -> VolumeReading:
        """Everything about this bucket; no side effect."""
        if self.bucket_seconds != bucket.seconds:
            if self.bucket_seconds:
                raise ValueError(f"bucket width changed from {self.bucket_seconds} to {bucket.seconds}")
            self._configure(bucket.seconds)
        x = bucket.mentions
        mu = max(self.expected(bucket.start), 1e-6)
        warm = self.warm
        disp = self.dispersion
        upper = mu + self.threshold * 0.8 * self._sd(mu)
        if not warm:
            return VolumeReading(0.0, 0.0, False, x, mu, upper, 1, float(x), mu, False)
        s = self.settings
        best = (0.0, 1, float(x), mu)
        recent = list(self._recent)
        correction = math.log10(len(self._spans))
        for span in self._spans:
            obs = float(x)
            exp = mu
            for o, e in recent[len(recent) - (span - 1) :] if span > 1 else ():
                obs += o
                exp += e
            if obs < s.min_mentions or obs < s.min_ratio * exp:
                continue
            sur = nb_surprise(obs, exp, disp) - correction
            if sur > best[0]:
                best = (sur, span, obs, exp)
        sur, span, obs, exp = best
        firing = sur >= self.threshold
        return VolumeReading(score_from_surprise(sur, self.threshold), sur, firing, x, mu, upper, span, obs, exp, True)

    def score_one(self, bucket: Bucket) -> float:
        return self.read(bucket).score

    def observe(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        self._recent.append((float(bucket.mentions), max(self.expected(bucket.start), 1e-6)))

    def learn_one(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        s = self.settings
        t = bucket.start
        if self.first_t is None:
            self.first_t = t
        self.n += 1
        x = float(bucket.mentions)
        h, d = hour_of_day(t), day_of_week(t)
        if self.n == 1:
            self.level = x
            return
        mu = max(self.expected(t), 1e-6)
        sd = self._sd(mu)
        xc = min(max(x, mu - s.clip_sigmas * sd), mu + s.clip_sigmas * sd)
        # dispersion from the residual against the expectation the bucket was scored with
        a = max(self._a_disp, 1.0 / (self.n + 1))
        self._e2 += a * ((xc - mu) ** 2 - mu - self._e2)
        self._m2 += a * (mu * mu - self._m2)
        if s.seasonality:
            season = self.hod[h] * self.dow[d]
            a = max(self._a_level, 1.0 / self.n)
            self.level += a * (xc / season - self.level)
            if self.level > 0:
                self.n_hod[h] += 1
                a = max(self._a_hod, 1.0 / (self.n_hod[h] + 1)) * 0.5
                self.hod[h] += a * (xc / (self.level * self.dow[d]) - self.hod[h])
                self.n_dow[d] += 1
                a = max(self._a_dow, 1.0 / (self.n_dow[d] + 1)) * 0.5
                self.dow[d] += a * (xc / (self.level * self.hod[h]) - self.dow[d])
                self.hod[h] = min(max(self.hod[h], 0.05), 20.0)
                self.dow[d] = min(max(self.dow[d], 0.2), 5.0)
        else:
            a = max(self._a_level, 1.0 / self.n)
            self.level += a * (xc - self.level)
