"""The `staffing:` section of the configuration: targets, handle times, roster and volunteers.

Every field has a default, so an empty section works. Durations are strings with a unit (`30s`,
`15m`, `1h`); a target is `PERCENT/DURATION` (`80/15m` = 80 % answered within 15 minutes).

>>> s = msgspec.convert({"shrinkage": 0.25, "platforms": {"twitter": {"target": "90/10m"}}}, StaffingSettings)
>>> s.platform("twitter").target, s.platform("instagram").target
('90/10m', '80/15m')
>>> parse_target("80/20s")
(0.8, 20.0)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import tzinfo
from functools import lru_cache
from typing import Annotated, Literal

import msgspec

Skill = Literal["community_responder", "technical_specialist"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0}


@lru_cache(maxsize=256)  # called per tracked mention: the same few strings, parsed once
def parse_duration(text: str) -> float:
    """Seconds in a DURATION (`30s`, `15m`, `1.5h`).

    >>> parse_duration("15m")
    900.0
    """
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m or 1h")
    return float(m.group(1)) * _UNIT[m.group(2)]


@lru_cache(maxsize=256)
def parse_target(text: str) -> tuple[float, float]:
    """(share, seconds) from `PERCENT/DURATION`; the percent is in (0, 100).

    >>> parse_target("80/15m")
    (0.8, 900.0)
    """
    pct, sep, dur = text.partition("/")
    if not sep:
        raise ValueError(f"{text!r} is not a target like 80/15m")
    try:
        p = float(pct)
    except ValueError:
        raise ValueError(f"{text!r}: {pct!r} is not a percentage") from None
    if not 0 < p < 100:
        raise ValueError(f"{text!r}: the percentage must be above 0 and below 100")
    seconds = parse_duration(dur)
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be above 0")
    return p / 100.0, seconds


def format_duration(seconds: float) -> str:
    """The shortest exact DURATION for whole seconds, minutes or hours.

    >>> format_duration(900), format_duration(20), format_duration(3600), format_duration(90)
    ('15m', '20s', '1h', '90s')
    """
    s = round(seconds)
    if s and s % 3600 == 0:
        return f"{s // 3600}h"
    if s and s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def format_target(share: float, seconds: float) -> str:
    """`PERCENT/DURATION` as `crisisd staffing` prints its `--target` and every notification's
    `staffing.sla_target` carries it (docs/cli.md).

    >>> format_target(0.8, 900), format_target(0.9, 30), format_target(0.8, 3600), format_target(0.955, 1200)
    ('80/15m', '90/30s', '80/1h', '95.5/20m')
    """
    return f"{share * 100:g}/{format_duration(seconds)}"


def canonical_target(text: str) -> str:
    """A configured target in the form `crisisd staffing --json` prints it (`80/60m` -> `80/1h`).

    >>> canonical_target("80/60m"), canonical_target(" 90 / 30s"), canonical_target("80.0/900s")
    ('80/1h', '90/30s', '80/15m')
    """
    return format_target(*parse_target(text))


def strictest_target(targets: Iterable[str]) -> str:
    """The tightest of some targets, canonical: the shortest time, then the highest share ("" for none).

    >>> strictest_target(["80/25m", "80/15m", "90/15m"]), strictest_target(["95/1h", "80/30m"]), strictest_target([])
    ('90/15m', '80/30m', '')
    """
    parsed = {canonical_target(t) for t in targets}
    return min(parsed, key=lambda t: (parse_target(t)[1], -parse_target(t)[0], t), default="")


def zone(name: str) -> tzinfo:
    """A time zone by IANA name (`Europe/Amsterdam`) or fixed offset (`UTC+02:00`, `UTC-5`).

    >>> zone("UTC+02:00").utcoffset(None)
    datetime.timedelta(seconds=7200)
    """
    from datetime import UTC, timedelta, timezone

    m = re.fullmatch(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", name.strip())
    if name.strip().upper() in ("UTC", "GMT", "Z"):
        return UTC
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r}") from exc


_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> tuple[float, float]:
    """(start, end) hours of the day from `HH:MM-HH:MM`; an end before the start wraps midnight.

    >>> parse_hours("22:00-06:30")
    (22.0, 6.5)
    """
    m = _HOURS.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a span like 08:00-17:00")
    a = int(m.group(1)) + int(m.group(2)) / 60.0
    b = int(m.group(3)) + int(m.group(4)) / 60.0
    if not (0 <= a <= 24 and 0 <= b <= 24):
        raise ValueError(f"{text!r}: hours must be within 00:00-24:00")
    return a, b


def in_hours(hour: float, span: tuple[float, float]) -> bool:
    """Whether a local hour of the day falls inside a span (wrapping midnight when end < start).

    >>> in_hours(23.5, (22.0, 6.0)), in_hours(12.0, (22.0, 6.0))
    (True, False)
    """
    a, b = span
    return a <= hour < b if a <= b else (hour >= a or hour < b)


class PlatformSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Handle time and target for one platform."""

    aht_minutes: Annotated[float, msgspec.Meta(gt=0, le=600)] = 4.0
    """Average handle time of one reply, minutes (reading, looking up, writing)."""
    target: str = "80/15m"
    """Service-level target `PERCENT/DURATION`: share of mentions answered within the duration."""
    patience_minutes: Annotated[float, msgspec.Meta(gt=0)] | None = None
    """Mean time before a customer gives up waiting; set it to staff with Erlang A (abandonment),
    leave it empty for Erlang C (everyone waits). Erlang A is solved in closed form: a staffing
    answer takes about 0.1 ms at 50 Erlangs (1,000 mentions an hour at 3 minutes each), 0.3 ms at
    1,000 and 10-15 ms at 5,000 (`bench/bench_erlang.py`). Pooled with other platforms, the queue
    moves at the arrival-weighted mean abandonment rate and each platform's customers give up at
    their own: in simulation, each customer with their own platform's patience, every platform meets
    its target with the suggested team (`bench/staffing_pooling.py`, 7 mixes at 20-1,000/h)."""

    def __post_init__(self) -> None:
        try:
            parse_target(self.target)
        except ValueError as exc:
            raise ValueError(f"target: {exc}") from None

    @property
    def target_share(self) -> float:
        return parse_target(self.target)[0]

    @property
    def target_seconds(self) -> float:
        return parse_target(self.target)[1]


class Person(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An agent of the roster or a volunteer."""

    name: Annotated[str, msgspec.Meta(min_length=1, pattern=r"\S")]
    """How the suggestion names them (a Slack handle such as `@marleen` works well)."""
    languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    """Languages they answer in (ISO 639-1 codes as in the mention events: en, nl, sr, hr, bs, mk, ru)."""
    skills: list[Skill] = msgspec.field(default_factory=lambda: ["community_responder"])
    """`community_responder` and/or `technical_specialist`."""
    timezone: str = "UTC"
    """Their time zone: an IANA name (`Europe/Amsterdam`) or a fixed offset (`UTC+02:00`)."""
    shift: str = ""
    """Roster agents only: working hours `HH:MM-HH:MM` in their time zone; empty = always on shift."""
    slack_user: str = ""
    """Their Slack member id (`U0123ABCD`): an "I can help" click from it counts their languages."""

    def __post_init__(self) -> None:
        try:
            zone(self.timezone)
        except ValueError as exc:
            raise ValueError(f"timezone: {exc}") from None
        if self.shift:
            try:
                parse_hours(self.shift)
            except ValueError as exc:
                raise ValueError(f"shift: {exc}") from None


class Roster(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who works social care and who volunteers to help in a surge."""

    on_shift: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Head count on shift when `agents` is empty (a plain number instead of names)."""
    agents: list[Person] = []
    """The care team with their shifts; those whose shift covers the moment count as on shift."""
    volunteers: list[Person] = []
    """People outside the team who can be asked to help in a surge."""
    awake_hours: str = "07:00-23:00"
    """Local hours in which a volunteer may be asked (their own time zone)."""

    def __post_init__(self) -> None:
        try:
            parse_hours(self.awake_hours)
        except ValueError as exc:
            raise ValueError(f"awake_hours: {exc}") from None


class ResponseSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How first-response figures are measured from brand replies."""

    window: str = "2h"
    """Mentions of this recent stretch of event time make the figures."""
    max_tracked: Annotated[int, msgspec.Meta(ge=100)] = 100_000
    """Most mentions remembered at once (per brand); the oldest are forgotten first."""
    max_age: str = "6h"
    """Unanswered mentions older than this leave the backlog (they will not be answered any more)."""
    breach_after: str = "30m"
    """The breach forecast says when the median first reply passes this."""

    def __post_init__(self) -> None:
        for name in ("window", "max_age", "breach_after"):
            try:
                seconds = parse_duration(getattr(self, name))
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            if seconds <= 0:
                raise ValueError(f"{name}: must be above 0")


def _default_platforms() -> dict[str, PlatformSettings]:
    return {
        "twitter": PlatformSettings(aht_minutes=3.0, target="80/25m"),
        "facebook": PlatformSettings(aht_minutes=4.0, target="80/15m"),
    }


def _default_skills() -> dict[Skill, float]:
    return {"community_responder": 0.85, "technical_specialist": 0.15}


class StaffingSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `staffing:` section: how the surge-staffing suggestion is computed."""

    platforms: dict[str, PlatformSettings] = msgspec.field(default_factory=_default_platforms)
    """Handle time and target per platform (the platform names of the mention events)."""
    default_platform: PlatformSettings = msgspec.field(default_factory=PlatformSettings)
    """Handle time and target of platforms not listed in `platforms`."""
    pooled: bool = True
    """All platforms are one queue answered by one team, as in a unified inbox (social care tools
    put every platform's mentions in one): the arrivals summed, their handle time the
    arrival-weighted mean (the wait solved at the work-weighted one: mixed handle times wait
    longer), each platform's target met on the one FCFS wait, the patience the arrival-weighted
    abandonment rate, the backlog cleared by the one team; never more people than separate queues
    would need (a team can split itself by platform). False: each platform is its own queue with
    its own team (dedicated per-channel teams) and the suggestion is their sum; small loads spread
    over many platforms then need more (30 mentions an hour on each of five platforms: 15
    answering at once, against 12 pooled)."""
    shrinkage: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.3
    """Share of scheduled time not spent on the queue (breaks, meetings, training, coaching);
    to schedule = agents needed / (1 - shrinkage)."""
    max_occupancy: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.85
    """Highest busy share planned for agents working the queue; above it people burn out."""
    actionable_floor: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3
    """Lowest share of mentions assumed to need a reply, whatever the intent scores say."""
    actionable_share: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.6
    """Share of mentions needing a reply when the surge carries no intent mix."""
    actionable_intents: list[str] = msgspec.field(default_factory=lambda: ["complaint", "question"])
    """Intents that need a reply; their share of the surge is the actionable share."""
    backlog_within: str = "1h"
    """Time in which the backlog of unanswered mentions must be cleared (e.g. `2h`); empty: each
    platform's target time. In a crisis the backlog runs into tens of thousands within hours, and
    clearing it within a 15-minute target asks for thousands of people no brand can call in; an
    hour keeps the suggestion actionable (`crisisd staffing` clears within the target unless
    `--backlog-within` is given)."""
    backlog_confidence: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.95
    """Probability with which the extra backlog agents answer the whole backlog within the target."""
    forecast_hours: Annotated[int, msgspec.Meta(ge=0, le=48)] = 3
    """Hours ahead of the short forecast (one point per hour)."""
    decay_half_life_hours: Annotated[float, msgspec.Meta(gt=0)] = 4.0
    """Half-life of the excess over the baseline in the forecast when the last hour shows no clear trend."""
    forecast_peak_multiple: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    """Ceiling of a growing forecast: its excess over the baseline is at most this multiple of the
    largest excess the incident has shown (at 2, that excess may at most double). A surge's ramp
    ends within the hour or so; a straight line through its first minutes, carried hours ahead,
    asked for tens of times the load ever seen."""
    range_spread: Annotated[float, msgspec.Meta(ge=0, lt=1)] = 0.2
    """Relative uncertainty of the arrival rate; the range covers rate x (1 -/+ spread) over the forecast."""
    min_language_share: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.02
    """Languages below this share of the surge are answered by the fallback language's agents."""
    fallback_language: str = "en"
    """Language that absorbs the small shares and mentions without a language."""
    skill_mix: dict[Skill, float] = msgspec.field(default_factory=_default_skills)
    """Share of the work per skill (`community_responder`, `technical_specialist`)."""
    ask_first_limit: Annotated[int, msgspec.Meta(ge=0)] = 10
    """At most this many volunteers are named in `ask_first`."""
    roster: Roster = msgspec.field(default_factory=Roster)
    """Agents on shift and the volunteer pool."""
    responses: ResponseSettings = msgspec.field(default_factory=ResponseSettings)
    """First-response figures from brand replies in the stream."""

    def platform(self, name: str) -> PlatformSettings:
        return self.platforms.get(name, self.default_platform)

    def __post_init__(self) -> None:
        if self.backlog_within:
            try:
                if parse_duration(self.backlog_within) <= 0:
                    raise ValueError("must be above 0")
            except ValueError as exc:
                raise ValueError(f"backlog_within: {exc}") from None
        if any(v < 0 for v in self.skill_mix.values()) or (self.skill_mix and sum(self.skill_mix.values()) <= 0):
            raise ValueError("skill_mix: shares must be >= 0 and not all zero")
