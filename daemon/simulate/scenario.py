"""The simulated world: brands, their seasonality, the scenarios and the ground truth they promise.

A scenario is turned into a `Plan` (when everything happens, drawn from the seed) before any event
is generated; the `Truth` written by `--truth` is the plan in contract form plus the counts of what
was actually emitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

SCENARIOS = ("ash-crisis", "normal", "coordinated")
HOME_TZ = "Europe/Amsterdam"  # calendar of `--days` and `--start`
DEFAULT_LAST_DAY = date(2010, 4, 15)  # the ash cloud closed Dutch airspace

# Mean volume by local hour (normalised to mean 1 below): office-hours brands and evening brands.
_DIURNAL = {
    "day": (0.30, 0.20, 0.14, 0.11, 0.12, 0.22, 0.50, 0.95, 1.30, 1.45, 1.50, 1.45,
            1.40, 1.40, 1.38, 1.35, 1.35, 1.40, 1.40, 1.35, 1.25, 1.05, 0.75, 0.50),
    "evening": (0.40, 0.25, 0.15, 0.11, 0.10, 0.14, 0.30, 0.55, 0.80, 0.95, 1.05, 1.20,
                1.35, 1.20, 1.10, 1.10, 1.20, 1.45, 1.70, 1.80, 1.70, 1.45, 1.05, 0.70),
}  # fmt: skip
DIURNAL = {k: np.asarray(v) / np.mean(v) for k, v in _DIURNAL.items()}


@dataclass(frozen=True)
class BrandSpec:
    """One monitored brand. `per_minute` is the mean customer mentions per minute over a week."""

    key: str
    handles: tuple[str, ...]
    tz: str
    domain: str
    per_minute: float
    langs: dict[str, float]
    platforms: dict[str, float]
    negative_share: float
    diurnal: str
    weekly: tuple[float, ...]  # Monday..Sunday
    followers: int
    flight_prefix: str = ""
    growth_per_day: float = 0.0  # linear growth of volume, share of the first day's level per day
    scaled: bool = True  # False: `--scale` leaves it alone (the sparse brand stays sparse)
    campaign_tag: str = ""


BRANDS: tuple[BrandSpec, ...] = (
    BrandSpec(
        "klm", ("@KLM", "@KLM", "@KLM", "@KLM", "KLM", "@klm", "#KLM"), "Europe/Amsterdam", "airline", 42.0,
        {"en": 0.50, "nl": 0.36, "ru": 0.03, "sr-Latn": 0.03, "sr-Cyrl": 0.02, "hr": 0.025, "bs": 0.015, "mk": 0.01},
        {"twitter": 0.62, "facebook": 0.25, "instagram": 0.07, "email": 0.03, "whatsapp": 0.03},
        0.24, "day", (1.0, 0.97, 0.97, 1.0, 1.08, 0.92, 0.95), 1_200_000, flight_prefix="KL",
    ),
    BrandSpec(
        "bol", ("@bol", "bol.com", "@bolcom"), "Europe/Amsterdam", "retail", 14.0,
        {"nl": 0.82, "en": 0.18},
        {"twitter": 0.5, "facebook": 0.35, "instagram": 0.1, "email": 0.05},
        0.27, "evening", (1.0, 1.0, 1.0, 1.0, 1.05, 1.0, 1.15), 150_000, campaign_tag="#boldeals",
    ),
    BrandSpec(
        "airserbia", ("@airserbia", "@AirSerbia", "Air Serbia"), "Europe/Belgrade", "airline", 12.0,
        {"sr-Latn": 0.36, "sr-Cyrl": 0.22, "en": 0.20, "hr": 0.06, "bs": 0.07, "mk": 0.05, "ru": 0.04},
        {"twitter": 0.45, "facebook": 0.4, "instagram": 0.15},
        0.26, "day", (1.0, 0.97, 0.97, 1.0, 1.08, 0.92, 0.95), 90_000, flight_prefix="JU",
    ),
    BrandSpec(
        "hrtelekom", ("@HrvatskiTelekom", "Hrvatski Telekom", "HT"), "Europe/Zagreb", "telecom", 10.0,
        {"hr": 0.82, "bs": 0.06, "sr-Latn": 0.04, "en": 0.08},
        {"twitter": 0.3, "facebook": 0.6, "instagram": 0.05, "email": 0.05},
        0.29, "evening", (1.0, 1.0, 1.0, 1.0, 0.95, 0.8, 0.8), 60_000,
    ),
    BrandSpec(
        "aeroflot", ("@aeroflot", "Aeroflot", "Аэрофлот"), "Europe/Moscow", "airline", 9.0,
        {"ru": 0.86, "en": 0.10, "sr-Cyrl": 0.02, "mk": 0.02},
        {"twitter": 0.5, "facebook": 0.2, "instagram": 0.1, "vk": 0.2},
        0.22, "day", (1.0, 0.97, 0.97, 1.0, 1.08, 0.92, 0.95), 400_000, flight_prefix="SU",
    ),
    BrandSpec(
        "wolt", ("@Wolt", "Wolt", "@wolt"), "Europe/Belgrade", "delivery", 6.0,
        {"sr-Latn": 0.35, "sr-Cyrl": 0.10, "hr": 0.20, "bs": 0.12, "mk": 0.08, "en": 0.15},
        {"instagram": 0.35, "twitter": 0.25, "facebook": 0.3, "email": 0.1},
        0.25, "evening", (0.9, 0.9, 0.95, 1.0, 1.15, 1.2, 1.1), 40_000, growth_per_day=0.12,
    ),
    BrandSpec(
        "makpetrol", ("@makpetrol", "Makpetrol"), "Europe/Skopje", "fuel", 0.3,
        {"mk": 0.8, "sr-Latn": 0.1, "en": 0.1},
        {"facebook": 0.6, "twitter": 0.3, "email": 0.1},
        0.25, "day", (1.0, 1.0, 1.0, 1.0, 1.1, 0.9, 0.8), 8_000, scaled=False,
    ),
)  # fmt: skip
BRAND_INDEX = {b.key: i for i, b in enumerate(BRANDS)}
CRISIS_BRAND = "klm"
CAMPAIGN_BRAND = "bol"
CELEBRITY_BRAND = "airserbia"
TROLL_BRAND = "hrtelekom"
GROWTH_BRAND = "wolt"
COORDINATED_BRAND = "klm"
SPARSE_BRAND = "makpetrol"


@dataclass(frozen=True)
class CrisisPlan:
    brand: str
    onset_ms: int
    ramp_ms: int
    peak_multiplier: float
    plateau_ms: int
    decay_ms: int  # e-folding time of the decay after the plateau

    @property
    def peak_ms(self) -> int:
        return self.onset_ms + self.ramp_ms

    @property
    def end_ms(self) -> int:
        """When the excess volume falls under half the baseline."""
        return self.peak_ms + self.plateau_ms + int(self.decay_ms * math.log((self.peak_multiplier - 1) / 0.5))

    def multiplier(self, t_ms: np.ndarray) -> np.ndarray:
        """Volume multiplier over the baseline (1 outside the crisis)."""
        x = (t_ms - self.onset_ms).astype(np.float64)
        ramp = np.clip(x / self.ramp_ms, 0.0, 1.0)
        after = np.maximum(x - self.ramp_ms - self.plateau_ms, 0.0)
        wobble = 1.0 + 0.08 * np.sin(x / 3.0e6)  # the plateau breathes a little
        excess = (self.peak_multiplier - 1) * ramp * np.exp(-after / self.decay_ms) * wobble
        return 1.0 + np.where(x >= 0, excess, 0.0)


@dataclass(frozen=True)
class Pulse:
    """A distractor at one brand: `troll` (one author's flood), `celebrity` (a viral post and its
    reactions), `campaign` (a positive volume spike), `coordinated` (near-identical negative posts
    from hundreds of new accounts: astroturfing, not a customer crisis)."""

    kind: str
    brand: str
    start_ms: int
    end_ms: int
    size: float  # troll: posts; celebrity: reactions; campaign: peak volume multiplier


@dataclass(frozen=True)
class Plan:
    scenario: str
    seed: int
    days: int
    scale: float
    start_ms: int
    end_ms: int
    crisis: CrisisPlan | None
    pulses: tuple[Pulse, ...] = field(default=())


def _local_midnight_ms(day: date, tz: str) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def parse_start(text: str) -> date:
    """`--start`: a calendar date (YYYY-MM-DD) in the home time zone.

    >>> parse_start("2010-04-09")
    datetime.date(2010, 4, 9)
    """
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError as exc:
        raise ValueError(f"--start {text!r} is not a date (YYYY-MM-DD)") from exc


def make_plan(scenario: str, days: int, seed: int, start: date | None = None, scale: float = 1.0) -> Plan:
    """Draw the timeline of a scenario: the crisis on the last day, distractors in every week.

    >>> p = make_plan("ash-crisis", 7, 1)
    >>> p.crisis.brand, sorted({x.kind for x in p.pulses})
    ('klm', ['campaign', 'celebrity', 'troll'])
    >>> p.start_ms < p.crisis.onset_ms < p.crisis.peak_ms < p.end_ms
    True
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (known: {', '.join(SCENARIOS)})")
    if days < 1:
        raise ValueError("days must be at least 1")
    if not scale > 0:
        raise ValueError("scale must be positive")
    first = start if start is not None else DEFAULT_LAST_DAY - timedelta(days=days - 1)
    start_ms = _local_midnight_ms(first, HOME_TZ)
    end_ms = _local_midnight_ms(first + timedelta(days=days), HOME_TZ)
    rng = np.random.default_rng([seed, 7])  # the plan has its own stream: volume changes do not move it
    minute = 60_000

    def at(day_from_end: int, brand: str, hour: float, jitter_h: float) -> int:
        if (
            days < 5 and day_from_end > 0
        ):  # short streams: every distractor on the day before the crisis, after some history
            day_from_end = 7 * (day_from_end // 7) + min(1, days - 1)
        day = first + timedelta(days=max(0, days - 1 - day_from_end))
        h = hour + float(rng.uniform(0.0, jitter_h))
        return _local_midnight_ms(day, BRANDS[BRAND_INDEX[brand]].tz) + int(h * 3_600_000)

    crisis = None
    if scenario == "ash-crisis":
        onset = at(0, CRISIS_BRAND, 7.5, 2.0)
        crisis = CrisisPlan(
            brand=CRISIS_BRAND,
            onset_ms=onset - onset % 1000,
            ramp_ms=int(rng.uniform(30, 40)) * minute,
            peak_multiplier=round(float(rng.uniform(12.0, 18.0)), 2),
            plateau_ms=int(rng.uniform(180, 300)) * minute,
            decay_ms=int(rng.uniform(45, 75)) * minute,
        )
    pulses: list[Pulse] = []
    for week in range(0, max(1, (days + 6) // 7)):
        back = 7 * week  # distractors sit at the same places in every week, counted from the end
        if back > days - 1 and week > 0:
            break
        t = at(back + 4, TROLL_BRAND, 20.0, 2.0)
        pulses.append(Pulse("troll", TROLL_BRAND, t, t + 60 * minute, float(140 + rng.integers(0, 21))))
        t = at(back + 2, CELEBRITY_BRAND, 13.0, 4.0)
        pulses.append(Pulse("celebrity", CELEBRITY_BRAND, t, t + 90 * minute, 1200.0 * scale))
        t = at(back + 3, CAMPAIGN_BRAND, 10.0, 3.0)
        pulses.append(Pulse("campaign", CAMPAIGN_BRAND, t, t + 210 * minute, round(float(rng.uniform(4.0, 6.0)), 2)))
    if scenario == "coordinated":  # the normal world plus an inauthentic campaign against the crisis brand
        t = at(0, COORDINATED_BRAND, 10.0, 4.0)
        pulses.append(
            Pulse(
                "coordinated", COORDINATED_BRAND, t, t + 30 * minute, max(50.0, float(rng.integers(600, 900)) * scale)
            )
        )
    pulses = [p for p in pulses if start_ms <= p.start_ms < end_ms]
    pulses.sort(key=lambda p: p.start_ms)
    return Plan(scenario, seed, days, scale, start_ms, end_ms, crisis, tuple(pulses))


# ---- ground truth (the `--truth` file) -------------------------------------------------------------


def rfc3339(ms: int) -> str:
    """UTC RFC 3339 with seconds.

    >>> rfc3339(1271311800000)
    '2010-04-15T06:10:00Z'
    """
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CrisisTruth(msgspec.Struct, frozen=True):
    brand: str
    onset: str  # the ramp starts
    peak: str  # the ramp reaches the plateau
    end: str  # excess volume under half the baseline (or the stream's end)
    peak_multiplier: float
    ramp_minutes: int
    negative_share_at_peak: float  # expected share of negative customer mentions on the plateau
    terms: dict[str, list[str]]  # new terms per language variant


class DistractorTruth(msgspec.Struct, frozen=True):
    kind: str  # troll, celebrity, campaign, coordinated, growth, sparse
    brand: str
    start: str
    end: str
    detail: str
    author_id: str | None = None  # troll, celebrity
    post_id: str | None = None  # celebrity
    size: float | None = None


class BrandTruth(msgspec.Struct, frozen=True):
    brand: str
    tz: str
    domain: str
    per_minute: float  # mean customer mentions per minute before distractors and crisis
    negative_share: float
    languages: dict[str, float]


class Counts(msgspec.Struct):
    lines: int = 0  # every line written, garbage and duplicates included
    events: int = 0  # distinct valid events
    customer: int = 0
    replies: int = 0
    duplicates: int = 0  # extra deliveries of an id already written
    late: int = 0  # delivered 90 s .. 15 min after their event time
    very_late: int = 0  # delivered 30 min .. 8 h after
    garbage: int = 0
    garbage_kinds: dict[str, int] = {}
    without_lang: int = 0
    by_brand: dict[str, int] = {}


class Truth(msgspec.Struct):
    scenario: str
    seed: int
    days: int
    scale: float
    start: str
    end: str
    crisis: CrisisTruth | None
    distractors: list[DistractorTruth]
    brands: list[BrandTruth]
    counts: Counts
    reply_minutes: dict[str, float] = {}  # median brand response time of the crisis brand, before/during
