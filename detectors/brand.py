"""Per-brand composite: volume + negativity + topic, the distractor flags and a severity.

`BrandDetector(settings, seed).update(bucket) -> Assessment` once per closed bucket of the brand, in
event-time order. Severity rules (see `detectors.settings.SeveritySettings` for their meaning):

- volume with negativity (or with an emerging topic while the negative share is up): sev1 when the
  volume ratio reaches `sev1_ratio`, else sev2;
- volume alone: sev2 when the ratio reaches `sev2_volume_ratio` and the negative share is not
  below baseline, else sev3;
- negativity alone (flat volume): sev2 when the share rose by `sev2_negativity_delta`, else sev3;
- topic alone: sev3;
- flagged distractors are capped at `flags.flag_max_severity`: a positive spike (negative share
  well below baseline: a campaign), a coordinated campaign (near-identical texts from many
  accounts), a viral post (one mention with huge reach in the last hour) unless negativity follows.

>>> from daemon.windows import Bucket
>>> det = BrandDetector(DetectionSettings(), seed=1)
>>> a = det.update(Bucket("klm", 0.0, 60, mentions=10, negative=2))
>>> a.severity is None, a.signals, a.warm
(True, (), False)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from daemon.windows import Bucket, Sample
from detectors.negativity import NegativityDetector, NegativityReading
from detectors.settings import DetectionSettings, Severity
from detectors.topic import TopicDetector, TopicReading
from detectors.volume import VolumeDetector, VolumeReading

SIGNALS = ("volume", "negativity", "topic")
_SEV_RANK = {"sev3": 1, "sev2": 2, "sev1": 3}


def severity_rank(sev: Severity | None) -> int:
    """0 for none, 1 for sev3 ... 3 for sev1 (higher = more severe)."""
    return _SEV_RANK.get(sev, 0) if sev else 0


@dataclass(slots=True, frozen=True)
class Assessment:
    """What the brand's detectors concluded about one closed bucket."""

    brand: str
    start: float  # bucket start, epoch seconds (event time)
    end: float  # bucket end = when the assessment was possible
    seconds: int
    volume: VolumeReading
    negativity: NegativityReading
    topic: TopicReading
    signals: tuple[str, ...]  # firing signals, in SIGNALS order
    severity: Severity | None  # None when no signal fires
    flags: tuple[str, ...]  # "positive", "coordinated", "viral", "troll"
    score: float  # the strongest signal's score in [0, 1] (0.5 = firing)
    quiet: bool  # every signal below its hysteresis level (close_fraction x threshold)
    elevated_since: float | None  # start of the run of elevated buckets this one belongs to
    mentions: int
    negative: int
    replies: int
    observed_per_hour: float = 0.0  # current load: mentions per hour, smoothed over a few buckets
    by_lang: dict[str, int] = field(default_factory=dict)
    samples: tuple[Sample, ...] = ()

    @property
    def warm(self) -> bool:
        return self.volume.warm

    @property
    def expected_per_hour(self) -> float:
        """This bucket's expectation, per hour."""
        return self.volume.expected / self.seconds * 3600

    @property
    def upper_per_hour(self) -> float:
        return self.volume.upper / self.seconds * 3600

    @property
    def ratio(self) -> float:
        """Current load over expectation."""
        return self.observed_per_hour / self.expected_per_hour if self.expected_per_hour > 0 else 0.0

    @property
    def top_terms(self) -> tuple[str, ...]:
        return self.topic.top_terms


class BrandDetector:
    """All detectors of one brand, their flags and severity. Pickles (checkpoints)."""

    def __init__(self, settings: DetectionSettings | None = None, seed: int = 0, brand: str | None = None) -> None:
        self.base_settings = settings or DetectionSettings()
        self.seed = seed
        self.brand = brand
        self.settings: DetectionSettings | None = None
        self.volume: VolumeDetector | None = None
        self.negativity: NegativityDetector | None = None
        self.topic: TopicDetector | None = None
        self._dups: deque[tuple[int, int]] = deque(maxlen=15)
        self._viral_until = float("-inf")
        self._elevated_since: float | None = None
        self._load: float | None = None
        if brand is not None:
            self._build(brand)

    def _build(self, brand: str) -> None:
        self.brand = brand
        s = self.settings = self.base_settings.for_brand(brand)
        self.volume = VolumeDetector(s.volume, s.sensitivity, self.seed)
        self.negativity = NegativityDetector(s.negativity, s.sensitivity, self.seed)
        self.topic = TopicDetector(s.topic, s.sensitivity, self.seed)

    def update(self, bucket: Bucket) -> Assessment:
        """Score the bucket, learn from it (anomalies kept out), and assess it."""
        if self.settings is None:
            self._build(bucket.brand)
        s, vol, neg, top = self.settings, self.volume, self.negativity, self.topic
        assert s is not None and vol is not None and neg is not None and top is not None
        v = vol.read(bucket)
        n = neg.read(bucket)
        t = top.read(bucket)
        vol.after_score(bucket, v.score, v)
        neg.after_score(bucket, n.score)
        top.after_score(bucket, t.score)
        return self._assess(bucket, v, n, t)

    def _assess(self, b: Bucket, v: VolumeReading, n: NegativityReading, t: TopicReading) -> Assessment:
        s = self.settings
        assert s is not None
        f = s.flags
        sev_s = s.severity
        signals = tuple(name for name, r in (("volume", v), ("negativity", n), ("topic", t)) if r.firing)
        # flags
        self._dups.append((b.near_duplicates, b.mentions))
        dup = sum(d for d, _ in self._dups)
        tot = sum(m for _, m in self._dups)
        if b.max_reach >= f.viral_reach:
            self._viral_until = b.start + 3600
        flags: list[str] = []
        share = b.negative_share if b.mentions else 0.0
        if v.firing and n.baseline - share >= f.positive_margin and b.mentions:
            flags.append("positive")
        if tot and dup / tot >= f.coordinated_share:
            flags.append("coordinated")
        if b.start <= self._viral_until and not n.firing:
            flags.append("viral")
        if b.capped and b.capped >= b.mentions:
            flags.append("troll")
        # severity
        sev: Severity | None = None
        neg_up = share >= n.baseline + s.negativity.min_delta / 2
        if v.firing and (n.firing or (t.firing and neg_up)):
            sev = "sev1" if v.ratio >= sev_s.sev1_ratio else "sev2"
        elif v.firing:
            positive = "positive" in flags
            sev = "sev2" if v.ratio >= sev_s.sev2_volume_ratio and not positive else "sev3"
        elif n.firing:
            sev = "sev2" if n.share - n.baseline >= sev_s.sev2_negativity_delta else "sev3"
        elif t.firing:
            sev = "sev3"
        capped_flags = {"positive", "coordinated", "viral"}
        if sev and capped_flags.intersection(flags) and severity_rank(sev) > severity_rank(f.flag_max_severity):
            sev = f.flag_max_severity
        score = max(v.score, n.score, t.score)
        close = s.incidents.close_fraction
        quiet = (
            v.surprise < close * vol_threshold(self)
            and n.surprise < close * self.negativity.threshold  # type: ignore[union-attr]
            and t.surprise < close * self.topic.threshold  # type: ignore[union-attr]
        )
        if quiet:
            self._elevated_since = None
        elif self._elevated_since is None:
            # the anomaly began where the firing span began
            span = max(v.span_buckets if v.surprise > 0 else 1, 1)
            self._elevated_since = b.start - (span - 1) * b.seconds
        per_hour = b.mentions / b.seconds * 3600
        # smoothed over ~3 buckets, but jumps up at once: staffing must see a surge immediately
        self._load = per_hour if self._load is None else max(per_hour, 0.6 * self._load + 0.4 * per_hour)
        return Assessment(
            brand=b.brand,
            start=b.start,
            end=b.end,
            seconds=b.seconds,
            volume=v,
            negativity=n,
            topic=t,
            signals=signals,
            severity=sev,
            flags=tuple(flags),
            score=score,
            quiet=quiet,
            elevated_since=self._elevated_since,
            mentions=b.mentions,
            negative=b.negative,
            replies=b.replies,
            observed_per_hour=self._load,
            by_lang=dict(b.by_lang),
            samples=tuple(b.samples),
        )


def vol_threshold(det: BrandDetector) -> float:
    assert det.volume is not None
    return det.volume.threshold
