"""The notification object: what `replay --json` prints and what every notifier receives.

Field names follow docs/cli.md (the public contract); extra fields may be added, never renamed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

import msgspec

from daemon.staffing.settings import canonical_target, strictest_target

NotificationType = Literal["incident.opened", "incident.updated", "incident.resolved"]
Severity = Literal["sev1", "sev2", "sev3"]


class VolumeFigures(msgspec.Struct, frozen=True):
    observed_per_hour: float
    expected_per_hour: float
    ratio: float


class NegativityFigures(msgspec.Struct, frozen=True):
    share: float
    baseline_share: float


class SampleMention(msgspec.Struct, frozen=True):
    id: str
    text: str
    url: str | None = None
    lang: str | None = None
    platform: str | None = None


class StaffingFigures(msgspec.Struct, frozen=True, omit_defaults=True):
    agents_needed: int
    to_schedule: int
    on_shift: int
    call_in: int
    by_language: dict[str, int] = {}
    # The response-time target as `PERCENT/DURATION` (`80/15m`, as `crisisd staffing --target`):
    # each platform is staffed to its own target (`sla_targets`; pooled, on the one queue's wait),
    # and this headline is the strictest of them (the shortest time, then the highest share): the
    # tightest target any part of the suggestion is held to, whatever the platform mix. "" when the
    # suggestion covers no platform.
    sla_target: str = ""
    by_skill: dict[str, int] = {}
    range: tuple[int, int] | None = None
    volunteers_signed_up: int = 0
    ask_first: list[str] = []
    advice: str = ""
    service_level: float | None = None
    occupancy: float | None = None
    # Added by the staffing stage (issue 6); all optional.
    arrivals_per_hour: float | None = None  # mentions needing a reply per hour (volume x actionable share)
    actionable_share: float | None = None
    backlog: int = 0  # unanswered mentions waiting beyond the everyday backlog (the surge's to clear)
    usual_backlog: int = 0  # waiting as the incident opened: the everyday backlog, left out of `backlog`
    backlog_agents: int = 0  # part of agents_needed that clears the backlog within the target
    by_platform: dict[str, int] = {}  # agents by platform (pooled: each platform's share of the team's work)
    forecast: list[int] = []  # agents needed 1, 2, ... hours ahead
    # people who can go home now (on shift or called in beyond the need, those called in first), only
    # while the load falls
    stand_down: int = 0
    called_in: int = 0  # people the incident already called in, counted beside those on shift
    abandonment: float | None = None  # expected share of customers giving up (Erlang A)
    above_normal: int = 0  # people on the schedule the load above the expected one adds (new mentions only)
    # platform -> its target `PERCENT/DURATION`, for every platform in the suggestion (empty in
    # records written before the field existed). Last, so positional pickles of older versions still load.
    sla_targets: dict[str, str] = {}


class ResponseFigures(msgspec.Struct, frozen=True, omit_defaults=True):
    """First-response figures from brand replies in the stream, when there are any."""

    response_rate: float | None = None
    median_first_response_minutes: float | None = None
    p90_first_response_minutes: float | None = None
    backlog: int = 0
    breach_forecast: str = ""
    # Added by the staffing stage (issue 6); all optional.
    target_attainment: float | None = None  # share answered within the platform target (decided ones)
    mentions: int = 0  # mentions needing a reply in the window
    answered: int = 0
    replies_per_hour: float | None = None  # brand replies per hour (all, tracked or not), last half hour
    window_minutes: int | None = None  # the stretch of event time the rate and the counts cover
    # Unanswered mentions that left the backlog in the last 24 h without a reply: older than
    # max_age_minutes, or past the memory bound (`responses.max_tracked`).
    dropped_old: int = 0
    dropped_untracked: int = 0
    max_age_minutes: int | None = None
    # `backlog` by the platform its mentions came in on (the staffing's backlog mix); last, so
    # positional pickles of older versions still load
    backlog_by_platform: dict[str, int] = {}


class Timeline(msgspec.Struct, frozen=True):
    """Recent buckets of the incident's brand, for charts: one value per bucket from `start`."""

    start: str
    bucket_seconds: int
    observed_per_hour: list[float]
    expected_per_hour: list[float]
    upper_per_hour: list[float]
    negativity_share: list[float]
    baseline_negativity_share: list[float]


class Notification(msgspec.Struct, frozen=True):
    """Every field is always present in the JSON (null or empty when unknown), so consumers see a stable shape."""

    type: NotificationType
    incident_id: str
    brand: str
    severity: Severity
    signals: list[str]
    started_at: str
    detected_at: str
    volume: VolumeFigures
    negativity: NegativityFigures
    top_terms: list[str] = []
    languages: dict[str, float] = {}
    sample_mentions: list[SampleMention] = []
    staffing: StaffingFigures | None = None
    # Position of this notification in its incident's life (1 = opened); notifiers use it for
    # ordering and idempotency (the pair incident_id, seq is unique).
    seq: int = 1
    summary: str = ""
    peak_per_hour: float | None = None
    mentions: int | None = None
    replies: int | None = None
    resolved_at: str | None = None
    # Event time of this notification (the watermark when it was raised): detected_at for the
    # opening one, later for updates; null in records written before the field existed.
    updated_at: str | None = None
    flags: list[str] = []
    responses: ResponseFigures | None = None
    timeline: Timeline | None = None
    # Why an incident.updated was raised: "severity", "signals", "load" or "staffing" ("" otherwise,
    # and in records written before the field existed).
    reason: str = ""
    # On an incident.resolved: how many the incident's last staffing suggestion asked to call in (0
    # for a watch), whom the resolution stands down; null on the other notifications, and when the
    # incident began before a restore from a checkpoint that did not keep it.
    called_in: int | None = None


_encoder = msgspec.json.Encoder(order="deterministic")


def to_json(n: Notification) -> bytes:
    return _encoder.encode(n)


def from_json(raw: bytes) -> Notification:
    """A notification as written by this or an older version (outbox rows, checkpoints' undelivered
    notifications, Slack message bodies), in this version's form.

    Before `sla_target` was `PERCENT/DURATION` it was text ("80% in 15m; twitter 80% in 25m"): read
    back as the strictest target it names; which platforms had the unnamed one it does not say, so
    `sla_targets` stays empty.
    """
    n = msgspec.json.decode(raw, type=Notification)
    s = n.staffing
    if s is not None and s.sla_target:
        upgraded = _legacy_target(s.sla_target)
        if upgraded != s.sla_target:
            n = msgspec.structs.replace(n, staffing=msgspec.structs.replace(s, sla_target=upgraded))
    return n


_LEGACY_TARGET = re.compile(r"(?:^|\s)(\d+(?:\.\d+)?)% in (\S+)$")


def _legacy_target(text: str) -> str:
    """`PERCENT/DURATION` from an `sla_target` of either form; text it cannot read is kept as it is.

    >>> _legacy_target("80% in 15m; twitter 80% in 25m"), _legacy_target("facebook 80% in 15m; twitter 90% in 25m")
    ('80/15m', '80/15m')
    >>> _legacy_target("80% in 1h"), _legacy_target("80/15m"), _legacy_target("soon")
    ('80/1h', '80/15m', 'soon')
    """
    try:
        return canonical_target(text)
    except ValueError:
        pass
    targets = []
    for part in text.split(";"):
        m = _LEGACY_TARGET.search(part.strip())
        if m is None:
            return text
        targets.append(f"{m.group(1)}/{m.group(2)}")
    try:
        return strictest_target(targets)
    except ValueError:
        return text


def largest_first(counts: Mapping[str, int], sep: str = ", ") -> str:
    """Counts the way a manager reads them: the largest first, ties by name (every message and
    the advice list languages and skills this way).

    >>> largest_first({"en": 96, "mk": 5, "nl": 76, "hr": 5}), largest_first({"a": 1, "b": 2}, " · ")
    ('en 96, nl 76, hr 5, mk 5', 'b 2 · a 1')
    """
    return sep.join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def per_hour_text(per_hour: float) -> str:
    """A rate as every message says it: of the figure the notification carries (one decimal), whole
    from 10 up, so the headline and the figures below it never differ by a rounding.

    >>> per_hour_text(340.54), per_hour_text(4.25)
    ('340', '4.2')
    """
    x = round(per_hour, 1)
    return f"{x:,.0f}" if abs(x) >= 10 else f"{x:,.1f}"


def share_text(share: float) -> str:
    """A share as every message says it: of the figure the notification carries (three decimals),
    as a whole percentage, and one that is not zero never shows as "0%" (nor one short of all as
    "100%"), so the headline and the figures below it never differ by a rounding.

    >>> share_text(0.364), share_text(0.004), share_text(0.0), share_text(0.998), share_text(0.48504)
    ('36%', '<1%', '0%', '>99%', '48%')
    """
    x = round(share, 3)
    if 0 < x < 0.005:
        return "<1%"
    if 0.995 <= x < 1:
        return ">99%"
    return f"{100 * x:.0f}%"


def human_duration(seconds: float) -> str:
    """A duration for people, as every message says it.

    >>> human_duration(34380), human_duration(2700), human_duration(-5)
    ('9h 33m', '45m', '0m')
    """
    minutes = max(0, int(seconds // 60))
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
