"""Detection settings: the `detection:` section of the configuration file.

Every threshold is a *surprise* in decimal digits, ``-log10(p)``, where ``p`` is the tail
probability of what was seen under the learned baseline: 6 means "one in a million buckets", so a
threshold means the same thing for a brand with one mention an hour and one with thousands a
minute. `sensitivity` scales all thresholds at once (2.0 halves them: earlier, noisier).

Per-brand overrides are partial: only the fields given change.

>>> s = DetectionSettings(brands={"klm": {"sensitivity": 2.0, "volume": {"min_mentions": 3}}})
>>> k = s.for_brand("klm")
>>> k.sensitivity, k.volume.min_mentions, k.volume.level_half_life_hours
(2.0, 3, 24.0)
>>> s.for_brand("other").sensitivity
1.0
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

Severity = Literal["sev1", "sev2", "sev3"]

_Pos = Annotated[float, msgspec.Meta(gt=0)]
_NonNeg = Annotated[float, msgspec.Meta(ge=0)]
_Share = Annotated[float, msgspec.Meta(ge=0, le=1)]


class VolumeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection.volume:` section: customer mention counts against a seasonal baseline."""

    def __post_init__(self) -> None:
        if self.timezone != "UTC":
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None

    threshold: _Pos = 6.0
    """Surprise (-log10 p, negative-binomial upper tail) at which the volume signal fires."""
    windows_minutes: tuple[Annotated[int, msgspec.Meta(ge=1)], ...] = (1, 5, 15, 60, 240)
    """Spans tested each bucket (rounded to whole buckets): short ones catch jumps, long ones ramps,
    sustained shifts and quiet brands. Each span learns its own dispersion; the test is corrected
    for the number of spans. A span longer than an hour counts only while its latest quarter is up
    too (half the firing level): it would otherwise hold an incident open for hours after the load
    is back to normal."""
    level_half_life_hours: _Pos = 24.0
    """How fast the deseasonalised level follows the data (trend)."""
    seasonal_half_life_days: _Pos = 7.0
    """How fast hour-of-day and day-of-week factors follow the data."""
    seasonality: bool = True
    """Learn hour-of-day and day-of-week factors (off: level only)."""
    timezone: str = "UTC"
    """IANA time zone of the brand's customers (e.g. `Europe/Amsterdam`): the daily and weekly
    curves follow local time, so a daylight-saving switch does not look like a spike."""
    clip_sigmas: _Pos = 3.0
    """A bucket teaches the baseline at most this many standard deviations above (or below) its
    expectation: a crisis is not learned as normal, a lasting level shift still is, slowly."""
    min_dispersion: _NonNeg = 0.01
    """Floor of the negative-binomial dispersion (variance = mu + dispersion * mu^2): at thousands a
    minute, a 10 % wiggle is not a crisis."""
    max_dispersion: _Pos = 4.0
    """Cap of the learned dispersion (so a noisy past cannot make the detector deaf)."""
    min_ratio: _Pos = 1.5
    """Observed over expected, over the firing span, below which the signal never fires."""
    min_mentions: Annotated[int, msgspec.Meta(ge=0)] = 8
    """Mentions in the firing span below which the signal never fires (quiet brands)."""
    return_period_days: _NonNeg = 3.0
    """Alert budget against heavy tails. Surprises above `threshold` are grouped into episodes
    (an hour apart); their rate and mean excess are learned (peaks over threshold, exponential
    tail, decayed over `episode_half_life_days`), and the firing level rises to the surprise that
    this brand exceeds less than once per `return_period_days`. Calm brands keep `threshold`;
    brands whose counts spike every day need more to page. 0 disables."""
    episode_half_life_days: _Pos = 14.0
    """Memory of past episodes for `return_period_days`."""
    grace_hours: _NonNeg = 24.0
    """Warm-up: no score until this much event time has been seen (replayed history counts)."""
    burn_in_hours: _NonNeg = 48.0
    """During the first hours every bucket is learned (clipped), anomalous or not, so the daily
    cycle is known before the anomaly filter starts keeping anomalies out of the baseline."""
    grace_buckets: Annotated[int, msgspec.Meta(ge=1)] = 30
    """...and at least this many buckets."""


class NegativitySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection.negativity:` section: share of negative customer mentions vs its baseline."""

    threshold: _Pos = 6.0
    """Surprise (-log10 p, beta-binomial upper tail) at which the negativity signal fires."""
    windows_minutes: tuple[Annotated[int, msgspec.Meta(ge=1)], ...] = (1, 5, 15, 60)
    """Spans over which negatives and mentions are pooled and tested."""
    min_delta: _Share = 0.1
    """Share above the baseline share below which the signal never fires (effect size)."""
    min_negative: Annotated[int, msgspec.Meta(ge=1)] = 8
    """Negative mentions in the span below which the signal never fires."""
    baseline_half_life_hours: _Pos = 24.0
    """How fast the baseline share follows the data."""
    baseline_strength: _Pos = 200.0
    """Cap of the baseline's pseudo-count (beta prior a + b): how sure we are of the baseline share;
    lower is more tolerant of day-to-day drift."""
    prior_share: _Share = 0.25
    """Baseline share before any data."""
    grace_mentions: Annotated[int, msgspec.Meta(ge=0)] = 100
    """Warm-up: no score until this many customer mentions were seen."""


class TopicSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection.topic:` section: terms and bigrams whose rate jumps (emerging topics)."""

    threshold: _Pos = 8.0
    """Surprise (-log10 p, Poisson upper tail, corrected for the terms tested) of the strongest term."""
    min_authors: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Distinct authors a term needs in the span to count."""
    window_minutes: Annotated[int, msgspec.Meta(ge=1)] = 10
    """Span over which recent term counts are pooled."""
    baseline_half_life_hours: _Pos = 72.0
    """Memory of a term's usual rate."""
    sketch_width: Annotated[int, msgspec.Meta(ge=64)] = 1024
    """Count-min sketch width (bounded memory: width x depth 16-bit cells per brand)."""
    sketch_depth: Annotated[int, msgspec.Meta(ge=1, le=8)] = 2
    """Count-min sketch depth (rows; conservative update makes 2 as accurate as 4 plain rows)."""
    candidates: Annotated[int, msgspec.Meta(ge=4)] = 256
    """Recent terms kept per brand for the span (heavy hitters)."""
    top_terms: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Terms reported in an incident."""
    grace_hours: _NonNeg = 6.0
    """Warm-up: no score until this much event time has been seen."""
    floor_share: _Pos = 0.005
    """Usual share of authors assumed for a term never (or rarely) seen before."""


class FlagSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection.flags:` section: distractors that are not customer crises."""

    coordinated_share: _Share = 0.6
    """Copies (the same words, hashtags and handles aside, from another author within the last 5-10
    minutes), beyond the brand's usual share of them, as a share of the excess mentions over the last
    5 buckets (at least 10) that mark a coordinated campaign: the spike *is* copies, and copies of one
    message (its most-copied text at least 0.4 of them); over the whole anomaly, copies at least 0.4
    of its excess. Customers in a real crisis write alike too, but over many texts."""
    viral_reach: Annotated[int, msgspec.Meta(ge=0)] = 200_000
    """Followers + shares of one mention that mark a viral post; without a negativity signal the
    incident stays at `flag_max_severity`."""
    positive_margin: _Share = 0.1
    """A volume spike whose negative share is this far *below* baseline is a positive spike
    (a campaign). The share is the whole anomaly's so far, and it must also fall short by two
    standard errors: one calm minute of a crisis is not a campaign."""
    flag_max_severity: Severity = "sev3"
    """Highest severity of an incident that is only a coordinated campaign (a `watch`)."""
    campaign_max_severity: Literal["none", "sev3", "sev2", "sev1"] = "none"
    """Highest severity of an incident that is only a positive spike (the brand's own campaign) or a
    viral post that no negativity followed; `none` (default) opens no incident for them: the brand
    knows its campaign, and a celebrity's post is not a customer crisis. `sev3` posts them as watch
    incidents."""


class SeveritySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection.severity:` section.

    - sev1: a customer crisis. Volume well above normal *and* customers are unhappier than usual
      (negativity or an emerging topic with negative mentions): surge staffing now.
    - sev2: a customer problem. Volume and negativity both up but less, negativity sharply up with
      flat volume, or a very large volume jump with a normal negative share.
    - sev3: watch. A single signal (volume, negativity or topic), or a flagged distractor
      (positive campaign, coordinated campaign, viral post).
    """

    sev1_ratio: _Pos = 3.0
    """Observed/expected volume at which volume + negativity becomes sev1."""
    sev2_volume_ratio: _Pos = 6.0
    """Observed/expected volume at which a volume-only spike with a normal negative share is sev2."""
    sev2_negativity_delta: _Share = 0.3
    """Rise of the negative share over baseline at which negativity alone is sev2."""


class IncidentSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection.incidents:` section: the incident state machine."""

    open_buckets: Annotated[int, msgspec.Meta(ge=1)] = 2
    """Consecutive firing buckets needed to open an incident: a burst that is gone by the next
    bucket (one viral repost, a bot's flush) is not a crisis; a crisis persists."""
    instant_factor: Annotated[float, msgspec.Meta(ge=1)] = 4.0
    """...except that a signal whose surprise reaches this multiple of its firing level opens the
    incident at once (an overwhelming jump needs no confirmation)."""
    confirm_minutes: _NonNeg = 15.0
    """A lone signal (volume alone, say) opens an incident only once this many minutes of event time
    have passed since the span it first fired on began, the brand elevated all along and the signal
    firing again; two signals firing together (volume with negativity or an emerging topic), one of
    them past its own threshold, corroborate each other and need only `open_buckets` (two made
    significant only by their combination must last like a lone one). Minutes, not buckets, so 1-minute and
    5-minute buckets confirm alike: a burst gone within a quarter of an hour is not a crisis."""
    close_fraction: _Share = 0.5
    """Hysteresis: a signal counts as quiet once its surprise is below this fraction of its
    threshold."""
    quiet_minutes: _Pos = 60.0
    """Minutes of quiet before an incident resolves."""
    cooldown_minutes: _NonNeg = 180.0
    """After a resolution, a relapse is the tail of the same trouble unless it is more severe than the
    incident resolved, as severe and lasting `confirm_minutes`, or lasting this long itself."""
    load_change: _Pos = 0.5
    """Relative change of the hourly load, or of the agents the staffing suggestion needs (a backlog
    that builds under a steady load), since the last notification that triggers an update."""
    min_update_minutes: _NonNeg = 10.0
    """Minimum minutes between load or staffing updates."""
    watch_update_minutes: _NonNeg = 60.0
    """Minimum minutes between load or staffing updates of a sev3 (watch) incident: a watch is posted, not
    escalated, and a thread that chatters every few minutes about one teaches people to mute the
    channel. Escalations and new signals are posted at once whatever the severity."""


class DetectionSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `detection:` section."""

    sensitivity: _Pos = 1.0
    """Divides every threshold: 2.0 fires on half the surprise (earlier, noisier)."""
    volume: VolumeSettings = VolumeSettings()
    negativity: NegativitySettings = NegativitySettings()
    topic: TopicSettings = TopicSettings()
    flags: FlagSettings = FlagSettings()
    severity: SeveritySettings = SeveritySettings()
    incidents: IncidentSettings = IncidentSettings()
    brands: dict[str, dict[str, Any]] = {}
    """Per-brand partial overrides, e.g. `{klm: {sensitivity: 1.5, volume: {min_mentions: 3}}}`
    (brand names compare case-insensitively, as in events)."""

    def __post_init__(self) -> None:
        from daemon.events import normalise_brand

        folded: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {}
        for name, override in self.brands.items():
            brand = normalise_brand(name)
            if brand in folded:
                raise ValueError(f"brands: {names[brand]!r} and {name!r} are the same brand")
            folded[brand], names[brand] = override, name
        msgspec.structs.force_setattr(self, "brands", folded)  # `KLM:` must reach the events of `klm`
        for brand in self.brands:
            try:
                self.for_brand(brand)
            except (msgspec.ValidationError, TypeError) as exc:
                # a ValueError, so that msgspec adds where `detection` is; the override's own path
                # goes inside, for the configuration's error message to join them
                message, _, inner = str(exc).partition(" - at `$")
                raise ValueError(f"{message} - at `$.brands.{brand}{inner.rstrip('`')}`") from None

    def for_brand(self, brand: str) -> DetectionSettings:
        """The effective settings of one brand (the defaults merged with its override)."""
        override = self.brands.get(brand)
        if not override:
            return self
        base = msgspec.to_builtins(self)
        base.pop("brands")
        merged = _merge(base, override)
        merged.pop("brands", None)
        return msgspec.convert(merged, DetectionSettings)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
