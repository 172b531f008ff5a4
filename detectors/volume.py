"""Volume detector: customer mention counts against a seasonal, overdispersed baseline.

The expected count of a bucket is ``level x hour_of_day[h] x day_of_week[d]``, all learned online
(exponentially weighted, with fast 1/n rates during warm-up). Counts are negative binomial around it:
variance = mu + dispersion x mu^2, the dispersion learned from the residuals (moment estimator),
so the same threshold is sound for one mention an hour (Poisson-like) and thousands a minute
(dominated by the relative error); the dispersion is a bounded-influence (winsorised) moment
estimate, so bursts do not inflate it. Each bucket tests several spans (the last 1, 5, 15 minutes by
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

import functools
import math
import struct
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from daemon.windows import Bucket
from detectors.base import Detector, score_from_surprise, span_buckets
from detectors.settings import VolumeSettings
from detectors.stats import nb_surprise

_PRIOR_DISPERSION = 0.1
# Huber's k: a span's squared residual teaches the dispersion at most k^2 x its current variance.
# Deliberately not rescaled to Gaussian consistency: the dispersion describes the bulk of the
# counts (what a normal hour looks like), the heavy tail of bursts is left to the adaptive firing
# level (peaks over threshold), instead of inflating the variance for every time scale. For a
# sparse brand (a few mentions a bucket) the Poisson part dominates the capped residual and the
# estimate tends to `min_dispersion`: Poisson in the bulk, the bursts again left to the firing level.
_WINSOR_K2 = 1.5**2
_DISPERSION_HALF_LIFE_HOURS = 24.0
_EP_PRIOR_RATE = 0.05  # episodes a day before any data
_EP_PRIOR_DAYS = 5.0  # the prior rate weighs a few days: a bursty brand's own episodes soon outweigh it
_EP_PRIOR_EXCESS = 5.0
_EP_MAX_EXCESS = 50.0  # one monster event must not deafen the brand
_EPISODE_GAP_SECONDS = 3600.0
# spans longer than this count only while their latest quarter is up (`VolumeDetector._recent_up`):
# at least this fraction of the firing level, the level below which incidents count a signal quiet
# (`incidents.close_fraction`'s default)
_HOLD_SECONDS = 3600.0
_RECENT_FRACTION = 0.5
# a seasonal factor is pulled to 1 by this many pseudo-counts until the data says otherwise
_HOD_PRIOR = 20.0
_DOW_PRIOR = 50.0
_DOW_PRIOR_HOURS = 6.0  # a new weekday's factor moves only once hours of it were seen
_Z_UPPER = 5.0  # `upper` = expected + this many standard deviations (charts)


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
    threshold: float = 0.0  # the firing level in force (adaptive, see `return_period_days`)

    @property
    def ratio(self) -> float:
        return self.span_observed / self.span_expected if self.span_expected > 0 else 0.0


def hour_of_day(t: float) -> int:
    return int(t % 86400 // 3600)


def day_of_week(t: float) -> int:
    """Monday = 0 (the epoch was a Thursday)."""
    return int((t // 86400 + 3) % 7)


def _hour_weights(t: float) -> tuple[tuple[int, float], tuple[int, float]]:
    """The two hour-of-day slots around `t` and their weights (linear between hour centres).

    >>> _hour_weights(3600 * 5.5), _hour_weights(3600 * 23.75)
    (((5, 1.0), (6, 0.0)), ((23, 0.75), (0, 0.25)))
    """
    x = (t % 86400) / 3600 - 0.5
    h0 = math.floor(x)
    w1 = x - h0
    return (h0 % 24, 1.0 - w1), ((h0 + 1) % 24, w1)


_FLOAT32 = struct.Struct("f")


def _float32(x: float) -> float:
    """`x` rounded to the nearest float32, as the ring stores it.

    >>> _float32(0.1) == 0.1, _float32(_float32(0.1)) == _float32(0.1), _float32(12.0)
    (False, True, 12.0)
    """
    return float(_FLOAT32.unpack(_FLOAT32.pack(x))[0])


@functools.cache  # one float object shared by the brands, not one each
def _alpha(half_life_updates: float) -> float:
    return 1.0 - 0.5 ** (1.0 / max(half_life_updates, 1.0))


class VolumeDetector(Detector):
    """Seasonal negative-binomial detector for one brand's mention counts."""

    # one detector per brand: slots, not a per-instance dict (over 30 attributes: not key-shared)
    __slots__ = (
        *Detector.BASE_SLOTS,
        "settings",
        "threshold",
        "bucket_seconds",
        "first_t",
        "n",
        "level",
        "dow",
        "_hod_num",
        "_hod_den",
        "_dow_num",
        "_dow_den",
        "_spans",
        "_n_disp",
        "_tz_cache",
        "_e2",
        "_m2",
        "_ring",
        "_head",
        "_filled",
        "_sum_o",
        "_sum_e",
        "_pushes",
        "_totals",
        "_ep_n",
        "_ep_days",
        "_ep_excess",
        "_ep_w",
        "_episode",
        "_a_level",
        "_a_hod",
        "_a_dow",
        "_a_disp",
    )

    def __init__(self, settings: VolumeSettings | None = None, sensitivity: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed)
        self.max_protect_buckets = Detector.max_protect_buckets  # set by `_configure`
        self.settings = settings or VolumeSettings()
        self.threshold = self.settings.threshold / sensitivity
        self.bucket_seconds = 0
        self.first_t: float | None = None
        self.n = 0
        self.level = 0.0
        # flat arrays of doubles, not lists of float objects (memory: one per brand)
        self.dow = array("d", [1.0] * 7)
        # ratio-of-sums estimates: factor = (observed + prior) / (expected without it + prior); the
        # hour-of-day factors are not stored, their prior being fixed (`_hour_factor`)
        self._hod_num = array("d", [0.0]) * 24
        self._hod_den = array("d", [0.0]) * 24
        self._dow_num = array("d", [0.0]) * 7
        self._dow_den = array("d", [0.0]) * 7
        self._spans: tuple[int, ...] = ()
        # per span: EWMAs of (S - E)^2 - E and E^2, S/E the span's observed/expected sums
        self._n_disp = 0
        self._tz_cache: list[float | None] = [None, 0.0]
        self._e2 = array("d")
        self._m2 = array("d")
        # ring of the previous buckets' (clipped observed, expected), interleaved in one flat array
        # of float32 (slot i at [2i], [2i + 1]: 8 bytes a slot, where a list of tuples took ~128),
        # and the running sums per span (float64, of exactly the float32 values stored)
        self._ring = array("f")
        self._head = 0
        self._filled = 0
        self._sum_o = array("d")
        self._sum_e = array("d")
        self._pushes = 0
        # the span sums the last observed bucket was scored with: [start, observed 0, expected 0,
        # observed 1, ...], written in place by `observe` for `learn_one` (start NaN: none)
        self._totals = array("d")
        # peaks over threshold: decayed episode count, exposure (days), excess sum and weight
        self._ep_n = _EP_PRIOR_RATE * _EP_PRIOR_DAYS
        self._ep_days = _EP_PRIOR_DAYS
        self._ep_excess = _EP_PRIOR_EXCESS
        self._ep_w = 1.0
        self._episode: tuple[float, float] | None = None  # (last time above threshold, peak)

    # -- derived --------------------------------------------------------------------------------

    def _configure(self, seconds: int) -> None:
        if self.bucket_seconds:
            raise ValueError(f"bucket width changed from {self.bucket_seconds} to {seconds}")
        s = self.settings
        self.bucket_seconds = seconds
        spans = self._spans = span_buckets(s.windows_minutes, seconds)
        k = len(spans)
        zeros = array("d", [0.0])
        self._e2, self._m2 = zeros * k, zeros * k
        self._sum_o, self._sum_e = zeros * k, zeros * k
        self._totals = array("d", [math.nan]) * (1 + 2 * k)
        self._ring = array("f", [0.0]) * (2 * max(1, max(spans) - 1))
        per_hour = 3600 / seconds
        self._a_level = _alpha(s.level_half_life_hours * per_hour)
        self._a_hod = _alpha(s.seasonal_half_life_days * per_hour)  # a slot sees per_hour updates a day
        self._a_dow = _alpha(3 * 24 * per_hour)  # three weeks of that weekday
        self._a_disp = _alpha(_DISPERSION_HALF_LIFE_HOURS * per_hour)
        self.max_protect_buckets = max(1, int(6 * per_hour))

    def expected(self, t: float) -> float:
        if not self.settings.seasonality:
            return self.level
        lt = self._local(t)
        (h0, w0), (h1, w1) = _hour_weights(lt)
        return self.level * (w0 * self._hour_factor(h0) + w1 * self._hour_factor(h1)) * self.dow[day_of_week(lt)]

    def _hour_factor(self, h: int) -> float:
        return min(max((self._hod_num[h] + _HOD_PRIOR) / (self._hod_den[h] + _HOD_PRIOR), 0.05), 20.0)

    def _local(self, t: float) -> float:
        """Local wall-clock seconds of `t` in the brand's time zone (DST moves the daily curve)."""
        tz = self.settings.timezone
        if tz == "UTC":
            return t
        hour = int(t // 3600)
        cache = self._tz_cache  # (hour, offset): one zoneinfo lookup per hour of event time
        if cache[0] != hour:
            off = datetime.fromtimestamp(hour * 3600, ZoneInfo(tz)).utcoffset()
            cache[0], cache[1] = hour, off.total_seconds() if off is not None else 0.0
        return t + (cache[1] or 0.0)

    def span_dispersion(self, j: int) -> float:
        """Learned dispersion of the sums over span `j` (shrunk to a prior while young)."""
        s = self.settings
        if self._m2[j] <= 0:
            d = _PRIOR_DISPERSION
        else:
            w = min(1.0, self._n_disp / 50)
            d = w * self._e2[j] / self._m2[j] + (1 - w) * _PRIOR_DISPERSION
        return min(s.max_dispersion, max(s.min_dispersion, d))

    @property
    def dispersion(self) -> float:
        """Dispersion of one bucket's count."""
        return self.span_dispersion(0) if self._spans and self._spans[0] == 1 else _PRIOR_DISPERSION

    @property
    def warm(self) -> bool:
        s = self.settings
        if self.first_t is None or self.n < s.grace_buckets:
            return False
        return (self.n * self.bucket_seconds) >= s.grace_hours * 3600

    @property
    def firing_level(self) -> float:
        """The surprise needed to fire now: `threshold`, raised for brands whose counts often spike."""
        s = self.settings
        if s.return_period_days <= 0:
            return self.threshold
        rate = self._ep_n / self._ep_days  # episodes a day
        beta = self._ep_excess / self._ep_w  # mean excess of an episode's peak
        return self.threshold + beta * max(0.0, math.log(rate * s.return_period_days))

    @property
    def protecting(self) -> bool:
        return self.n * self.bucket_seconds >= self.settings.burn_in_hours * 3600

    def _sd(self, mu: float) -> float:
        return math.sqrt(mu + self.dispersion * mu * mu)

    def _span_totals(self, x: float, mu: float) -> list[tuple[float, float]]:
        """(observed, expected) summed over each span, this bucket included."""
        return [
            (x + (self._sum_o[j] if span > 1 else 0.0), mu + (self._sum_e[j] if span > 1 else 0.0))
            for j, span in enumerate(self._spans)
        ]

    # -- river interface ------------------------------------------------------------------------

    def read(self, bucket: Bucket) -> VolumeReading:
        """Everything about this bucket; no side effect."""
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        x = bucket.mentions
        mu = max(self.expected(bucket.start), 1e-6)
        upper = mu + _Z_UPPER * self._sd(mu)
        if not self.warm:
            return VolumeReading(0.0, 0.0, False, x, mu, upper, 1, float(x), mu, False, self.threshold)
        s = self.settings
        best = (0.0, 1, float(x), mu)
        correction = math.log10(len(self._spans))
        totals = self._span_totals(float(x), mu)
        level = self.firing_level
        spans = self._spans
        surprises = [0.0] * len(spans)
        for j, (obs, exp) in enumerate(totals):
            if obs < s.min_mentions or obs < s.min_ratio * exp:
                continue
            if spans[j] * self.bucket_seconds > _HOLD_SECONDS and not self._recent_up(j, surprises, level):
                continue
            sur = surprises[j] = nb_surprise(obs, exp, self.span_dispersion(j)) - correction
            if sur > best[0]:
                best = (sur, spans[j], obs, exp)
        sur, span, obs, exp = best
        return VolumeReading(
            score_from_surprise(sur, level), sur, sur >= level, x, mu, upper, span, obs, exp, True, level
        )

    def _recent_up(self, j: int, surprises: list[float], level: float) -> bool:
        """Whether the latest quarter of span `j` (the longest span that fits in it four times) is
        still up: its own surprise at least `_RECENT_FRACTION` of the firing level. A span of hours
        holds a surge for hours after it ended; it speaks for the brand only while its recent part
        does too, or an incident would stay open (and the cool-down run on) for hours of a load back
        to normal. A ramp or a sustained shift is up in its latest hour as well."""
        spans = self._spans
        for k in range(j - 1, -1, -1):
            if spans[k] * 4 <= spans[j]:
                return surprises[k] >= _RECENT_FRACTION * level
        return True

    def score_one(self, bucket: Bucket) -> float:
        return self.read(bucket).score

    def _clip(self, x: float, mu: float) -> float:
        c = self.settings.clip_sigmas * self._sd(mu)
        return min(max(x, mu - c), mu + c + 1.0)  # + 1: a sparse brand's single mention is no outlier

    def after_score(self, bucket: Bucket, score: float, reading: VolumeReading | None = None) -> None:
        """Learn (protected), and count the bucket into the episode statistics."""
        r = reading if reading is not None else self.read(bucket)
        super().after_score(bucket, score)
        if r.warm:
            self._episodes(bucket, r.surprise)

    def _episodes(self, bucket: Bucket, surprise: float) -> None:
        s = self.settings
        days = bucket.seconds / 86400
        f = 0.5 ** (days / s.episode_half_life_days)
        self._ep_n *= f
        self._ep_excess *= f
        self._ep_w *= f
        self._ep_days = self._ep_days * f + days
        t = bucket.start
        if surprise >= self.threshold:
            peak = surprise if self._episode is None else max(self._episode[1], surprise)
            self._episode = (t, peak)
        elif self._episode is not None and t - self._episode[0] >= _EPISODE_GAP_SECONDS:
            self._ep_n += 1.0
            self._ep_excess += min(self._episode[1] - self.threshold, _EP_MAX_EXCESS)
            self._ep_w += 1.0
            self._episode = None

    def observe(self, bucket: Bucket) -> None:
        """Push the bucket (clipped: one spike must not dominate the long spans) into the spans."""
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        mu = max(self.expected(bucket.start), 1e-6)
        xc = self._clip(float(bucket.mentions), mu)
        totals = self._totals
        totals[0] = bucket.start
        for j, (obs, exp) in enumerate(self._span_totals(xc, mu)):
            totals[1 + 2 * j] = obs
            totals[2 + 2 * j] = exp
        # the sums add the values as the ring stores them (float32), and subtract them as stored
        # when they leave: no residue of the rounding stays in the sums
        xc, mu = _float32(xc), _float32(mu)
        ring = self._ring
        size = len(ring) // 2
        for j, span in enumerate(self._spans):
            if span <= 1:
                continue
            self._sum_o[j] += xc
            self._sum_e[j] += mu
            if self._filled >= span - 1:  # the bucket leaving this span's previous (span - 1)
                i = 2 * ((self._head - (span - 1)) % size)
                self._sum_o[j] -= ring[i]
                self._sum_e[j] -= ring[i + 1]
        i = 2 * self._head
        ring[i] = xc
        ring[i + 1] = mu
        self._head = (self._head + 1) % size
        self._filled = min(self._filled + 1, size)
        self._pushes += 1
        if self._pushes % 4096 == 0:  # wipe float drift of the running sums
            self._resum()

    def _resum(self) -> None:
        ring = self._ring
        size = len(ring) // 2
        for j, span in enumerate(self._spans):
            k = min(span - 1, self._filled)
            slots = [2 * ((self._head - 1 - i) % size) for i in range(k)]  # newest first, as summed before
            self._sum_o[j] = sum(ring[i] for i in slots)
            self._sum_e[j] = sum(ring[i + 1] for i in slots)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints of the older layouts restore: the ring of doubles (an array, or a list of
        (observed, expected) tuples) rounded to float32 and the running sums re-summed from it, the
        seasonal sums and the per-span figures (lists of floats) with the same doubles, and the
        scored sums as `(start, [(observed, expected), ...])` or None (`Detector.__setstate__`
        shares the spans and fills in `max_protect_buckets`)."""
        state = dict(state)
        ring = state.get("_ring")
        if isinstance(ring, list):
            ring = array("d", [v for pair in ring for v in pair])
        rounded = isinstance(ring, array) and ring.typecode != "f"
        if isinstance(ring, array) and rounded:
            state["_ring"] = array("f", ring)
        state.pop("hod", None)  # a function of `_hod_num` and `_hod_den` (as it was computed)
        for name in ("dow", "_hod_num", "_hod_den", "_dow_num", "_dow_den", "_e2", "_m2", "_sum_o", "_sum_e"):
            v = state.get(name)
            if isinstance(v, list):
                state[name] = array("d", v)
        totals = state.get("_totals")
        if not isinstance(totals, array):
            k = len(state.get("_spans", ()))
            state["_totals"] = array("d", [math.nan]) * (1 + 2 * k) if k else array("d")
            if totals is not None:
                start, sums = totals
                state["_totals"] = array("d", [start, *(v for pair in sums for v in pair)])
        super().__setstate__(state)
        if rounded and self._spans:
            self._resum()  # the sums of the stored values, not of the doubles before the rounding

    def learn_one(self, bucket: Bucket) -> None:
        if self.bucket_seconds != bucket.seconds:
            self._configure(bucket.seconds)
        s = self.settings
        t = bucket.start
        if self.first_t is None:
            self.first_t = t
        self.n += 1
        x = float(bucket.mentions)
        lt = self._local(t)
        d = day_of_week(lt)
        if self.n == 1:
            self.level = x
            return
        mu = max(self.expected(t), 1e-6)
        xc = self._clip(x, mu) if self.protecting else x  # burn-in: the model itself is still wrong
        # span dispersions, from the sums the bucket was scored with (`observe` ran first)
        cached = self._totals
        if cached[0] == t:
            totals = [(cached[1 + 2 * j], cached[2 + 2 * j]) for j in range(len(self._spans))]
        else:
            totals = self._span_totals(xc, mu)
        if self.warm:  # before, the expectation itself is still being learned
            self._n_disp += 1
            a = max(self._a_disp, 1.0 / (self._n_disp + 1))
            for j, (obs, exp) in enumerate(totals):
                # bounded influence (winsorised at k sigmas of the current variance): a burst
                # moves the dispersion by a bounded step, so a noisy hour does not deafen the
                # brand's long spans for a day; the bursts' tail is `firing_level`'s business
                r2 = min((obs - exp) ** 2, _WINSOR_K2 * (exp + self.span_dispersion(j) * exp * exp))
                self._e2[j] += a * (r2 - exp - self._e2[j])
                self._m2[j] += a * (exp * exp - self._m2[j])
        if s.seasonality:
            season = mu / max(self.level, 1e-9) if self.level > 0 else 1.0
            a = max(self._a_level, 1.0 / self.n)
            self.level += a * (xc / season - self.level)
            # seasonal factors as ratios of decayed sums: sound for sparse counts (no 1/0.01 ratios)
            # the daily curve is piecewise linear between hour centres: each bucket teaches the
            # two hours around it, in proportion to its weight in its expectation
            curve = 0.0
            for hh, w in _hour_weights(lt):
                f = 1.0 - self._a_hod * w
                self._hod_num[hh] = self._hod_num[hh] * f + w * xc / self.dow[d]
                self._hod_den[hh] = self._hod_den[hh] * f + w * self.level
                curve += w * self._hour_factor(hh)
            f = 1.0 - self._a_dow
            self._dow_num[d] = self._dow_num[d] * f + xc
            self._dow_den[d] = self._dow_den[d] * f + self.level * curve
            prior = _DOW_PRIOR + _DOW_PRIOR_HOURS * 3600 / self.bucket_seconds * self.level
            self.dow[d] = min(max((self._dow_num[d] + prior) / (self._dow_den[d] + prior), 0.2), 5.0)
        else:
            a = max(self._a_level, 1.0 / self.n)
            self.level += a * (xc - self.level)
