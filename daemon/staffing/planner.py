"""The surge-staffing suggestion the pipeline attaches to every incident notification.

    planner = StaffingPlanner(settings.staffing)
    figures = planner.suggest(SurgeLoad(mentions_per_hour={"twitter": 900.0}, languages={"en": 0.7, "nl": 0.3}))

By default (`pooled`) one team answers every platform from one FCFS queue (a unified inbox): the
smallest team with which each platform meets its own target on the one wait (`erlang.solve_pooled`),
or the separate queues' when they need fewer; else each platform is its own queue (its own handle
time and target). Erlang C, or Erlang A when a platform has a patience, under the occupancy cap,
plus the agents that clear the backlog (at the handle time of where it waits) in time. Shrinkage
turns people answering at once into people to schedule; the roster says who is on shift at the
surge's event time, the rest is to call in. The split by language and skill is proportional;
volunteers who speak the short languages and are awake are asked first.

Pure and deterministic: the same settings and load give the same figures; the planner pickles.

>>> from daemon.staffing.settings import StaffingSettings
>>> f = StaffingPlanner(StaffingSettings()).suggest(SurgeLoad(mentions_per_hour={"facebook": 1000.0},
...     actionable_share=0.5, languages={"en": 0.6, "nl": 0.4}))
>>> f.agents_needed, f.to_schedule, f.call_in, f.by_language, f.sla_target, f.sla_targets
(40, 58, 58, {'en': 24, 'nl': 16}, '80/15m', {'facebook': '80/15m'})
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec

from daemon.notification import StaffingFigures, largest_first
from daemon.staffing.erlang import (
    MAX_ERLANGS,
    QueueClass,
    StaffingAnswer,
    StaffingQuestion,
    backlog_clearance_agents,
    solve,
    solve_pooled,
)
from daemon.staffing.settings import (
    Person,
    StaffingSettings,
    canonical_target,
    format_duration,
    in_hours,
    parse_duration,
    parse_hours,
    parse_target,
    strictest_target,
    zone,
)

_UNKNOWN_LANGS = frozenset({"", "und", "unknown", "other"})
# Hours until people called in now answer: while the load falls, they are called in for the need then.
_ARRIVAL_HOURS = 1.0


class SurgeLoad(msgspec.Struct, frozen=True, kw_only=True):
    """What the pipeline knows about the surge when it notifies."""

    mentions_per_hour: dict[str, float]
    """Customer mentions per hour by platform (the brand's own posts left out)."""
    actionable_share: float | None = None
    """Share needing a reply; None: from `intents`, else the configured default."""
    intents: dict[str, float] = {}
    """Share of the surge per intent (`complaint`, `question`, ...)."""
    languages: dict[str, float] = {}
    """Share of the surge per language."""
    backlog: int = 0
    """Unanswered mentions already waiting (from brand replies in the stream)."""
    backlog_by_platform: dict[str, int] = {}
    """Where the backlog waits: its count per platform (`responses.backlog_by_platform`); its mix
    sets the backlog's handle time (and split, per platform). Empty: the mix of `mentions_per_hour`."""
    usual_backlog: int = 0
    """The part of `backlog` the brand carries every day (what waited as the incident opened): left
    to the everyday team, so a surge is staffed for the backlog it adds, and is not kept on until a
    backlog that never clears is gone."""
    trend_per_hour: float = 0.0
    """Change of the total mentions per hour, per hour (> 0: still growing)."""
    baseline_per_hour: float = 0.0
    """The expected (normal) total mentions per hour, which a decaying surge returns to."""
    peak_per_hour: float = 0.0
    """The highest total mentions per hour of the incident so far (0: unknown, the current load);
    a growing forecast's ceiling is measured from it (`forecast_peak_multiple`)."""
    at: float | None = None
    """Event time of the suggestion, epoch seconds: picks who is on shift and who is awake."""
    on_shift: int | None = None
    """People on shift, overriding the roster."""
    skills: dict[str, float] = {}
    """Share of the work per skill, overriding the configured skill mix."""
    watch: bool = False
    """A low-severity watch: posted, not escalated, so no one is called in (`above_normal` says
    what the load would add to the schedule if it holds)."""
    escalating: bool = False
    """The incident opens or its severity rises: no one is sent home, whatever the load does."""
    called_in: int = 0
    """People the incident's earlier suggestions already called in (net of those sent home):
    available beside those on shift, so a suggestion asks only for more, and the first to go
    home when the need falls."""
    replies_per_hour: float | None = None
    """Brand replies per hour measured now (None: not measured): how fast the backlog is answered.
    No one is sent home while the backlog beyond the usual one takes longer than the response
    target to answer at this rate (`backlog_breaches_target`)."""


class QueuePlan(msgspec.Struct, frozen=True, kw_only=True):
    """The team a load needs (`StaffingPlanner.plan`), pooled or per platform."""

    agents: int
    """People answering at once: `queue_agents + backlog_agents`."""
    queue_agents: int
    backlog_agents: int
    by_platform: dict[str, int]
    """The agents by platform (pooled: the team's work on each platform's mentions and backlog)."""
    arrivals: dict[str, float]
    """Mentions needing a reply per hour, by platform."""
    service_level: float | None = None
    """Arrival-weighted share answered within each platform's own target (None: no arrivals)."""
    occupancy: float | None = None
    abandonment: float | None = None
    """Share of customers giving up (None: no platform has a patience)."""


def surge_backlog(load: SurgeLoad) -> int:
    """The backlog beyond the everyday one: what the surge team clears."""
    return max(0, load.backlog - max(0, load.usual_backlog))


def backlog_breaches_target(backlog: int, replies_per_hour: float | None, target: str) -> bool:
    """Whether a surge's backlog still keeps customers waiting past the response target: at the
    measured reply rate it takes longer than the target's time to answer (False without a
    backlog, a measured rate or a target; True with a backlog and no replies at all).

    >>> backlog_breaches_target(8415, 292.0, "80/15m"), backlog_breaches_target(500, 3000.0, "80/15m")
    (True, False)
    """
    if backlog <= 0 or replies_per_hour is None or not math.isfinite(replies_per_hour):
        return False
    try:
        seconds = parse_target(target)[1]
    except ValueError:  # no target ("": nothing to staff), or an older record's text
        return False
    return replies_per_hour <= 0 or backlog / replies_per_hour * 3600.0 > seconds


class StaffingPlanner:
    """Turns a `SurgeLoad` into `StaffingFigures`; holds only the settings."""

    def __init__(self, settings: StaffingSettings) -> None:
        self.settings = settings

    def __reduce__(self) -> tuple[type, tuple[StaffingSettings]]:
        return (StaffingPlanner, (self.settings,))

    # -- the suggestion ---------------------------------------------------------------------------

    def actionable(self, load: SurgeLoad) -> float:
        """Share of mentions needing a reply, never below the floor.

        >>> from daemon.staffing.settings import StaffingSettings
        >>> p = StaffingPlanner(StaffingSettings())
        >>> p.actionable(SurgeLoad(mentions_per_hour={}, intents={"complaint": 0.1, "praise": 0.9}))
        0.3
        """
        s = self.settings
        if load.actionable_share is not None:
            share = load.actionable_share
        elif load.intents:
            total = sum(v for v in load.intents.values() if v > 0)
            share = sum(max(0.0, load.intents.get(i, 0.0)) for i in s.actionable_intents) / total if total else 0.0
        else:
            share = s.actionable_share
        return min(1.0, max(s.actionable_floor, share if math.isfinite(share) else 0.0))

    def plan(self, load: SurgeLoad, scale: float = 1.0, backlog: bool = True) -> QueuePlan:
        """The team for the load's rates times `scale` (and its backlog unless `backlog` is False):
        one pooled queue (`pooled`), else one queue per platform."""
        share = self.actionable(load)
        # (below one mention in a century an hour, a rate is none: the formulas underflow)
        rates = {p: r * share * scale for p, r in sorted(load.mentions_per_hour.items()) if r * share * scale > 1e-6}
        waiting = surge_backlog(load) if backlog else 0
        # the backlog's platform mix: measured (where its mentions wait), else that of the arrivals
        measured = {p: float(n) for p, n in sorted(load.backlog_by_platform.items()) if n > 0}
        mix = measured or rates or {"other": 1.0}
        separate = self._per_platform(rates, waiting, mix)
        if not self.settings.pooled:
            return separate
        # One team can always split itself into the separate queues: where they need fewer (very
        # different targets on a small load: one FCFS queue holds every platform to the strictest),
        # the suggestion is theirs. Both grow with the load, and so does the smaller of them.
        pooled = self._pooled(rates, waiting, mix)
        return pooled if pooled.agents <= separate.agents else separate

    def _per_platform(self, rates: dict[str, float], waiting: int, mix: dict[str, float]) -> QueuePlan:
        """Each platform its own queue and team; the backlog split by its mix (a divisor method:
        a larger backlog never gives a platform fewer of it)."""
        s = self.settings
        backlogs = _split_monotone(waiting, mix)
        answers: dict[str, StaffingAnswer] = {}
        arrivals: dict[str, float] = {}
        for platform in sorted(set(rates) | {p for p, n in backlogs.items() if n}):
            ps = s.platform(platform)
            share_t, seconds = parse_target(ps.target)
            # A load beyond the model's range (a broken upstream count) must not stop the pipeline.
            rate = min(rates.get(platform, 0.0), MAX_ERLANGS * 3600.0 / (ps.aht_minutes * 60.0))
            arrivals[platform] = rate
            answers[platform] = solve(
                StaffingQuestion(
                    arrivals_per_hour=rate,
                    aht_seconds=ps.aht_minutes * 60.0,
                    target=share_t,
                    target_seconds=seconds,
                    max_occupancy=s.max_occupancy,
                    backlog=backlogs.get(platform, 0),
                    backlog_seconds=self._backlog_seconds(),
                    backlog_confidence=s.backlog_confidence,
                    patience_seconds=None if ps.patience_minutes is None else ps.patience_minutes * 60.0,
                )
            )
        total = sum(arrivals.values())
        queue_agents = sum(a.queue_agents for a in answers.values())
        patience = any(s.platform(p).patience_minutes for p in rates)
        return QueuePlan(
            agents=sum(a.agents_needed for a in answers.values()),
            queue_agents=queue_agents,
            backlog_agents=sum(a.backlog_agents for a in answers.values()),
            by_platform={p: a.agents_needed for p, a in answers.items()},
            arrivals=arrivals,
            service_level=sum(a.service_level * arrivals[p] for p, a in answers.items()) / total if total else None,
            occupancy=sum(a.occupancy * a.queue_agents for a in answers.values()) / queue_agents
            if queue_agents
            else None,
            abandonment=sum(a.abandonment * arrivals[p] for p, a in answers.items()) / total
            if total and patience
            else None,
        )

    def _pooled(self, rates: dict[str, float], waiting: int, mix: dict[str, float]) -> QueuePlan:
        """One queue and one team for every platform (`erlang.solve_pooled`)."""
        s = self.settings
        minutes = {p: s.platform(p).aht_minutes for p in sorted(set(rates) | set(mix))}
        # A load beyond the model's range (a broken upstream count) must not stop the pipeline.
        work = sum(r * minutes[p] * 60.0 for p, r in rates.items()) / 3600.0
        if work > MAX_ERLANGS * 0.999:
            rates = {p: r * MAX_ERLANGS * 0.999 / work for p, r in rates.items()}
        classes = []
        for platform, rate in rates.items():
            ps = s.platform(platform)
            share_t, seconds = parse_target(ps.target)
            classes.append(
                QueueClass(
                    arrivals_per_hour=rate,
                    aht_seconds=ps.aht_minutes * 60.0,
                    target=share_t,
                    target_seconds=seconds,
                    patience_seconds=None if ps.patience_minutes is None else ps.patience_minutes * 60.0,
                )
            )
        # the backlog: its own mix's handle time, cleared within `backlog_within`, else the
        # shortest target time of the platforms in the load
        mix_total = sum(mix.values())
        backlog_aht = sum(w * minutes[p] * 60.0 for p, w in mix.items()) / mix_total
        within = self._backlog_seconds()
        if within is None:
            within = min(parse_target(s.platform(p).target)[1] for p in minutes)
        if not classes and not waiting:
            return QueuePlan(agents=0, queue_agents=0, backlog_agents=0, by_platform={}, arrivals={})
        if not classes:  # a backlog and no new mentions
            clearing = backlog_clearance_agents(waiting, backlog_aht, within, s.backlog_confidence)
            return QueuePlan(
                agents=clearing,
                queue_agents=0,
                backlog_agents=clearing,
                by_platform=_split(clearing, {p: w * minutes[p] for p, w in mix.items()}),
                arrivals={},
            )
        pooled = solve_pooled(
            classes,
            max_occupancy=s.max_occupancy,
            backlog=waiting,
            backlog_aht_seconds=backlog_aht,
            backlog_seconds=within,
            backlog_confidence=s.backlog_confidence,
        )
        a = pooled.answer
        # who answers what: the team's work by platform, new mentions and backlog apart
        queue_share = _split(a.queue_agents, {p: r * minutes[p] for p, r in rates.items()})
        backlog_share = _split(a.backlog_agents, {p: w * minutes[p] for p, w in mix.items()})
        by_platform = {p: queue_share.get(p, 0) + backlog_share.get(p, 0) for p in sorted(set(rates) | set(mix))}
        return QueuePlan(
            agents=a.agents_needed,
            queue_agents=a.queue_agents,
            backlog_agents=a.backlog_agents,
            by_platform=by_platform,
            arrivals=dict(rates),
            service_level=a.service_level,
            occupancy=a.occupancy,
            abandonment=a.abandonment if pooled.patience_seconds is not None else None,
        )

    def _backlog_seconds(self) -> float | None:
        return parse_duration(self.settings.backlog_within) if self.settings.backlog_within else None

    def forecast_rates(self, load: SurgeLoad) -> list[float]:
        """Total mentions per hour 1..`forecast_hours` ahead.

        Growing (trend > 0): straight-line extrapolation, up to a ceiling: the excess over the
        baseline at most `forecast_peak_multiple` times the largest the incident has shown.
        Otherwise the excess over the baseline decays exponentially, at the rate the (negative)
        trend shows, else with the configured half-life.

        >>> from daemon.staffing.settings import StaffingSettings
        >>> p = StaffingPlanner(StaffingSettings(forecast_hours=2))
        >>> p.forecast_rates(SurgeLoad(mentions_per_hour={"x": 1000.0}, trend_per_hour=200.0))
        [1200.0, 1400.0]
        >>> p.forecast_rates(SurgeLoad(mentions_per_hour={"x": 1000.0}, baseline_per_hour=300.0,
        ...     trend_per_hour=20_000.0))
        [1700.0, 1700.0]
        >>> [round(r) for r in p.forecast_rates(SurgeLoad(mentions_per_hour={"x": 1100.0},
        ...     baseline_per_hour=100.0, trend_per_hour=-500.0))]
        [707, 468]
        """
        return [self._rate_ahead(load, h) for h in range(1, self.settings.forecast_hours + 1)]

    def _rate_ahead(self, load: SurgeLoad, h: float) -> float:
        """Total mentions per hour `h` hours ahead (`forecast_rates`)."""
        r0 = sum(max(0.0, r) for r in load.mentions_per_hour.values())
        g = load.trend_per_hour if math.isfinite(load.trend_per_hour) else 0.0
        if g > 0:
            # The slope is measured on the way up, and a surge's ramp ends (within the hour or so):
            # carried hours ahead, the straight line asked for tens of times the load ever seen.
            # Bounded by the growth seen so far: the excess over normal may at most double the
            # largest one of the incident (`forecast_peak_multiple`: a judgement to configure, not
            # a fit), and the ceiling rises with each new peak.
            peak = max(r0, load.peak_per_hour if math.isfinite(load.peak_per_hour) else 0.0)
            normal = min(max(0.0, load.baseline_per_hour), peak)
            ceiling = max(r0, normal + self.settings.forecast_peak_multiple * (peak - normal))
            return min(r0 + g * h, ceiling)
        base = min(max(0.0, load.baseline_per_hour), r0)
        excess = r0 - base
        k = -g / excess if g < 0 and excess > 0 else math.log(2.0) / self.settings.decay_half_life_hours
        return base + excess * math.exp(-k * h)

    def suggest(self, load: SurgeLoad) -> StaffingFigures:
        s = self.settings
        plan = self.plan(load)
        agents = plan.agents
        to_schedule = self._schedule(agents)
        on_shift = load.on_shift if load.on_shift is not None else self.on_shift_count(load.at)
        available = on_shift + max(0, load.called_in)
        mix = self._language_mix(load)
        by_language = _apportion(agents, mix)
        r0 = sum(max(0.0, r) for r in load.mentions_per_hour.values())
        # The load is measured to fall (and the incident neither opens nor escalates, nor is a watch)
        falling = load.trend_per_hour < 0 and not load.escalating and not load.watch
        # People called in now start answering within about an hour. While the load is measured to
        # fall, new mentions are fewer by then (the demo at 10:31: 3,920/h, falling by 1,167/h per
        # hour; 239 answering new mentions now, 179 in an hour), so they are called in for the need
        # the forecast gives then, not for the load now. The backlog is staffed in full: it does
        # not decay with the new mentions. Those already there see the hour through, and none of
        # them is sent home for it (`stand_down` counts against the need now).
        arriving = agents
        if falling and r0 > 0:
            ahead = self.plan(load, scale=self._rate_ahead(load, _ARRIVAL_HOURS) / r0)
            arriving = min(agents, ahead.agents)
        # enough people, and enough who speak each language: a shift that speaks only English does
        # not answer a Dutch surge (those called in are taken to have been called for what was short)
        short = 0
        if load.on_shift is None:  # the roster's people (a head count given with the load has no languages)
            needed = by_language if arriving == agents else _apportion(arriving, mix)
            short = max(0, self.language_shortfall(load, needed) - max(0, load.called_in))
        call_in = 0 if load.watch else max(self._schedule(arriving) - available, short)
        backlog_agents = plan.backlog_agents
        surge = surge_backlog(load)
        total_arrivals = sum(plan.arrivals.values())

        forecast = [
            self.plan(load, scale=f / r0, backlog=False).agents if r0 > 0 else 0 for f in self.forecast_rates(load)
        ]
        lo = self.plan(load, scale=1.0 - s.range_spread).agents
        hi = self.plan(load, scale=1.0 + s.range_spread).agents
        # What the load above the normal one adds to the schedule, for new mentions only: a watch
        # calls no one in, and the backlog it finds is mostly the everyday one. Erlang is not
        # linear (a bigger queue needs fewer people per mention), so it is the difference of two
        # schedules, not the schedule of the excess.
        base = min(max(0.0, load.baseline_per_hour), r0)
        normal = self.plan(load, scale=base / r0, backlog=False).agents if r0 else 0
        above_normal = max(0, self._schedule(agents - backlog_agents) - self._schedule(normal))

        skill_mix = load.skills or s.skill_mix
        by_skill = _apportion(agents, {k: v for k, v in skill_mix.items() if v > 0})
        ask_first = self.ask_first(load, by_language, by_skill, to_schedule, call_in)
        # People go home only while the need is measured to fall: a roster that covers the first
        # minutes of a growing surge (or of one whose trend is not clear yet) will not cover the next
        # hour; and never as the incident opens or escalates, nor for a watch (it asks nothing).
        # Nor while the surge's backlog still waits past the response target at the measured reply
        # rate: the demo sent 437 home at 14:01 while 13,940 waited beyond the usual and a new
        # mention waited more than 2 days. The plan clears the backlog within `backlog_within`
        # with the people it counts; the measurement says they are not answering it, and a
        # planner releases no one while customers wait hours (the backlog's people go "after").
        targets = {p: canonical_target(s.platform(p).target) for p in plan.by_platform}
        waiting = backlog_breaches_target(surge, load.replies_per_hour, strictest_target(targets.values()))
        stand_down = max(0, available - to_schedule) if falling and not waiting else 0

        figures = StaffingFigures(
            agents_needed=agents,
            to_schedule=to_schedule,
            on_shift=on_shift,
            called_in=max(0, load.called_in),
            call_in=call_in,
            by_language=by_language,
            # each platform meets its own target (pooled: on the one wait); the headline is the strictest
            # (StaffingFigures.sla_target), the human text says them all (`sla_text`)
            sla_target=strictest_target(targets.values()),
            by_skill=by_skill,
            range=(min(lo, agents), max(hi, agents)),
            ask_first=ask_first,
            service_level=None if plan.service_level is None else round(plan.service_level, 4),
            occupancy=None if plan.occupancy is None else round(plan.occupancy, 4),
            arrivals_per_hour=round(total_arrivals, 2),
            actionable_share=round(self.actionable(load), 4),
            backlog=surge,
            usual_backlog=max(0, load.backlog) - surge,
            backlog_agents=backlog_agents,
            by_platform=plan.by_platform,
            forecast=forecast,
            stand_down=stand_down,
            abandonment=None if plan.abandonment is None else round(plan.abandonment, 4),
            above_normal=above_normal,
            sla_targets=targets,
        )
        ahead_schedule = self._schedule(arriving) if arriving < agents else None
        return msgspec.structs.replace(figures, advice=advice(figures, load, s, ahead_schedule))

    def _schedule(self, agents: int) -> int:
        """People to schedule for `agents` answering at once (shrinkage)."""
        return math.ceil(agents / (1.0 - self.settings.shrinkage) - 1e-9)

    # -- roster -----------------------------------------------------------------------------------

    def on_shift_count(self, at: float | None) -> int:
        """Roster agents whose shift covers the event time `at` (all listed ones when unknown)."""
        roster = self.settings.roster
        if not roster.agents:
            return roster.on_shift
        return sum(1 for p in roster.agents if _on_shift(p, at))

    def _language_mix(self, load: SurgeLoad) -> dict[str, float]:
        s = self.settings
        total = sum(v for v in load.languages.values() if v > 0 and math.isfinite(v))
        mix: dict[str, float] = {}
        for lang, v in load.languages.items():
            if not (v > 0 and math.isfinite(v)):
                continue
            share = v / total
            key = lang if lang not in _UNKNOWN_LANGS and share >= s.min_language_share else s.fallback_language
            mix[key] = mix.get(key, 0.0) + share
        return mix or {s.fallback_language: 1.0}

    def language_shortfall(self, load: SurgeLoad, by_language: Mapping[str, int]) -> int:
        """People to schedule for the languages the roster agents on shift do not speak (0 when
        the roster is a head count: its languages are not known). Each on-shift agent covers one
        of their languages still short, as `ask_first` counts them.

        >>> from daemon.staffing.settings import Person, Roster, StaffingSettings
        >>> team = Roster(agents=[Person(name=f"a{i}", languages=["en"]) for i in range(20)])
        >>> p = StaffingPlanner(StaffingSettings(roster=team, shrinkage=0.0))
        >>> p.language_shortfall(SurgeLoad(mentions_per_hour={}), {"nl": 10}), p.language_shortfall(
        ...     SurgeLoad(mentions_per_hour={}), {"en": 12, "nl": 3})
        (10, 3)
        """
        if not self.settings.roster.agents:
            return 0
        need = self._schedule_by(by_language)
        self._cover_with_shift(load.at, need)
        return sum(max(0, n) for n in need.values())

    def _schedule_by(self, answering: Mapping[str, int]) -> dict[str, int]:
        """People to schedule per language (or skill) for those answering at once in it (shrinkage)."""
        scale = 1.0 / (1.0 - self.settings.shrinkage)
        return {k: math.ceil(n * scale - 1e-9) for k, n in answering.items()}

    def _cover_with_shift(self, at: float | None, need: dict[str, int], skills: dict[str, int] | None = None) -> bool:
        """Take from `need` (people to schedule by language) what the roster agents on shift at `at`
        cover: each covers one of their languages still short, and, given `skills` (people to
        schedule by skill), one of their skills still short. False when no roster agent is on shift."""
        on = [p for p in self.settings.roster.agents if _on_shift(p, at)]
        for p in on:
            short = [lang for lang in p.languages if need.get(lang, 0) > 0]
            if short:
                need[short[0]] -= 1
            if skills is not None:
                for k in p.skills:
                    if skills.get(k, 0) > 0:
                        skills[k] -= 1
                        break
        return bool(on)

    def ask_first(
        self,
        load: SurgeLoad,
        by_language: Mapping[str, int],
        by_skill: Mapping[str, int],
        to_schedule: int,
        call_in: int,
    ) -> list[str]:
        """Volunteers to ask first: awake now, speaking the languages still short, rarest first.

        The people to call in are split by language like the agents; roster agents on shift cover
        their own languages. Each pick covers the open language with the fewest remaining
        candidates, then the skill still short (technical specialists are scarce).
        """
        s = self.settings
        limit = min(s.ask_first_limit, call_in)
        if limit <= 0 or not s.roster.volunteers:
            return []
        need = self._schedule_by(by_language)
        skills = self._schedule_by(by_skill)
        # each on-shift agent covers one of their short languages and a skill
        if not self._cover_with_shift(load.at, need, skills):  # only a head count: assume the mix of the surge
            covered = _apportion(min(to_schedule, to_schedule - call_in), by_language)
            need = {lang: n - covered.get(lang, 0) for lang, n in need.items()}
        awake = parse_hours(s.roster.awake_hours)
        pool = sorted((p for p in s.roster.volunteers if _local_ok(p, load.at, awake)), key=lambda p: p.name)
        # Scarcity over the whole awake pool: a language few volunteers speak is asked for first.
        speakers = {lang: sum(lang in p.languages for p in pool) for lang in need}
        chosen: list[str] = []
        while pool and len(chosen) < limit:
            open_langs = {lang for lang, n in need.items() if n > 0}

            def score(p: Person, open_langs: set[str] = open_langs, speakers: dict[str, int] = speakers) -> float:
                langs = [lang for lang in p.languages if lang in open_langs]
                if not langs:
                    return 0.0
                rarity = max(1.0 / speakers[lang] for lang in langs)
                skill = sum(1 for k in p.skills if skills.get(k, 0) > 0) / (1 + len(p.skills))
                return 1.0 + rarity + 0.5 * skill

            best = max(pool, key=lambda p: (score(p), [-ord(c) for c in p.name]))
            if score(best) <= 0:
                break
            pool.remove(best)
            chosen.append(best.name)
            langs = [lang for lang in best.languages if lang in open_langs]
            need[min(langs, key=lambda lang: (speakers[lang], lang))] -= 1
            for k in best.skills:
                if skills.get(k, 0) > 0:
                    skills[k] -= 1
                    break
        return chosen


def _local_hour(person: Person, at: float) -> float:
    dt = datetime.fromtimestamp(at, UTC).astimezone(zone(person.timezone))
    return dt.hour + dt.minute / 60.0


def _on_shift(p: Person, at: float | None) -> bool:
    if at is None or not p.shift:
        return True
    return in_hours(_local_hour(p, at), parse_hours(p.shift))


def _local_ok(p: Person, at: float | None, awake: tuple[float, float]) -> bool:
    return at is None or in_hours(_local_hour(p, at), awake)


def _split(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder split of a count by weights (deterministic ties by key)."""
    wsum = sum(weights.values())
    if total <= 0 or wsum <= 0:
        return {k: 0 for k in weights}
    raw = {k: total * w / wsum for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in raw.items()}
    left = total - sum(out.values())
    for k in sorted(raw, key=lambda k: (out[k] - raw[k], k))[:left]:
        out[k] += 1
    return out


def _split_monotone(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """A split of a count by weights that never gives anyone less of a larger count: the
    highest-averages (D'Hondt) divisor method, which no Alabama paradox touches. The largest
    remainder (`_split`) does: the backlog of 103 split over four platforms gave the smallest 3
    and that of 104 gave it 2, and its own queue's backlog agent went with them.

    >>> w = {"p0": 5.31, "p1": 70.63, "p2": 98.34, "p3": 59.73}
    >>> _split(103, w)["p0"], _split(104, w)["p0"], _split_monotone(103, w)["p0"], _split_monotone(104, w)["p0"]
    (3, 2, 2, 2)
    >>> _split_monotone(7, {"a": 1.0, "b": 1.0, "c": 1.0})
    {'a': 3, 'b': 2, 'c': 2}
    """
    wsum = sum(weights.values())
    if total <= 0 or wsum <= 0:
        return {k: 0 for k in weights}
    # every party gets at least its lower quota under D'Hondt; the rest go one at a time to the
    # highest quotient w / (seats + 1), ties to the first key (a total order: the same seats as
    # handing them all out one at a time from none)
    keys = sorted(weights)
    out = {k: math.floor(total * weights[k] / wsum) for k in keys}
    for _ in range(total - sum(out.values())):
        i = max(range(len(keys)), key=lambda i: (weights[keys[i]] / (out[keys[i]] + 1), -i))
        out[keys[i]] += 1
    return out


def _apportion(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Split `total` people by shares; every share gets at least one person while people last.

    >>> _apportion(10, {"en": 0.9, "sr": 0.05, "mk": 0.05})
    {'en': 8, 'mk': 1, 'sr': 1}
    >>> _apportion(0, {"en": 1.0})
    {}
    """
    shares = {k: v for k, v in shares.items() if v > 0}
    if total <= 0 or not shares:
        return {}
    out = _split(total, shares)
    for k in sorted(shares, key=lambda k: (shares[k], k)):  # smallest first
        if out[k] == 0:
            donor = max(out, key=lambda d: (out[d], d))
            if out[donor] <= 1:
                break
            out[donor] -= 1
            out[k] = 1
    return {k: out[k] for k in sorted(out) if out[k] > 0}


def target_said(target: str) -> str:
    """A `PERCENT/DURATION` target as people read it; other text (an older record's) as it is.

    >>> target_said("80/15m"), target_said("90/30s"), target_said("80% in 15m; twitter 80% in 25m")
    ('80% in 15m', '90% in 30s', '80% in 15m; twitter 80% in 25m')
    """
    try:
        share, seconds = parse_target(target)
    except ValueError:
        return target
    return f"{share * 100:g}% in {format_duration(seconds)}"


def sla_text(f: StaffingFigures) -> str:
    """The suggestion's targets as every message says them: each platform's when known, else the
    headline `sla_target` ("" when there is none).

    >>> sla_text(StaffingFigures(0, 0, 0, 0, sla_target="80/15m",
    ...     sla_targets={"facebook": "80/15m", "twitter": "80/25m"}))
    'facebook 80% in 15m; twitter 80% in 25m'
    >>> sla_text(StaffingFigures(0, 0, 0, 0, sla_target="80/15m")), sla_text(StaffingFigures(0, 0, 0, 0))
    ('80% in 15m', '')
    """
    return targets_text(f.sla_targets) if f.sla_targets else target_said(f.sla_target)


def targets_text(targets: Mapping[str, str]) -> str:
    """The platforms' targets as people read them: the one most share said once without names, the
    others by platform.

    >>> targets_text({"email": "80/15m", "facebook": "80/15m", "twitter": "80/25m", "whatsapp": "80/15m"})
    '80% in 15m; twitter 80% in 25m'
    >>> targets_text({"facebook": "80/15m", "twitter": "90/25m"}), targets_text({"vk": "80/1h"})
    ('facebook 80% in 15m; twitter 90% in 25m', '80% in 1h')
    """
    groups: dict[str, list[str]] = {}
    for platform, target in sorted(targets.items()):
        groups.setdefault(target, []).append(platform)

    common = max(groups, key=lambda t: (len(groups[t]), t), default="")
    if len(groups) == 1 or len(groups.get(common, ())) > 1:
        others = sorted((t for t in groups if t != common), key=lambda t: groups[t])
        rest = [f"{', '.join(groups[t])} {target_said(t)}" for t in others]
        return "; ".join([target_said(common), *rest])
    return "; ".join(f"{p} {target_said(t)}" for t, (p,) in sorted(groups.items(), key=lambda kv: kv[1]))


def backlog_said(backlog: int, usual: int) -> str:
    """The backlog a surge clears, beside the one the brand always carries.

    >>> backlog_said(8415, 266), backlog_said(600, 0)
    ('the 8,415 waiting beyond the usual 266', 'the backlog of 600')
    """
    return f"the {backlog:,} waiting beyond the usual {usual:,}" if usual else f"the backlog of {backlog:,}"


def watch_advice(above_normal: int, normal_per_hour: float, backlog: int) -> str:
    """A watch calls no one in: what the load above normal adds to the schedule if it holds,
    without the backlog, which a watch finds mostly as it is every day (the full suggestion, with
    the backlog, comes with an escalation).

    >>> watch_advice(133, 3119.4, 0)
    'Watch: no call-in. If this load holds, it needs 133 more on the schedule than the normal 3,119/h.'
    >>> watch_advice(0, 4.25, 12)
    'Watch: no call-in. This load needs no more on the schedule than the normal 4.2/h; the 12 waiting are not counted.'
    """
    normal = f"the normal {normal_per_hour:,.0f}/h" if normal_per_hour >= 10 else f"the normal {normal_per_hour:,.1f}/h"
    if above_normal:
        text = f"Watch: no call-in. If this load holds, it needs {above_normal:,} more on the schedule than {normal}"
    else:
        text = f"Watch: no call-in. This load needs no more on the schedule than {normal}"
    return text + (f"; the {backlog:,} waiting are not counted." if backlog else ".")


def advice(f: StaffingFigures, load: SurgeLoad, s: StaffingSettings, ahead: int | None = None) -> str:
    """One short paragraph for the incident channel. `ahead`: the people to schedule in an hour that
    the call-in is for, when the load decays (None: the call-in is for the need now)."""
    parts: list[str] = []
    lo, hi = f.range or (f.agents_needed, f.agents_needed)
    if load.watch:
        return watch_advice(f.above_normal, load.baseline_per_hour, f.backlog + f.usual_backlog)
    if f.agents_needed == 0:
        return "No replies needed at this load."
    span = f" (range {lo:,}–{hi:,})" if lo != hi else ""
    called = f", {f.called_in:,} called in already" if f.called_in else ""
    # covered only for the hour ahead, as the load decays, not for the need now
    decaying = ahead is not None and f.on_shift + f.called_in < f.to_schedule
    if f.call_in > 0:
        more = " more" if f.called_in else ""
        parts.append(
            f"Call in {f.call_in:,}{more}: {f.agents_needed:,} people answering at once{span}, "
            f"{f.to_schedule:,} on the schedule with {round(s.shrinkage * 100)}% shrinkage, {f.on_shift:,} on shift"
            f"{called}."
        )
        if ahead is not None:
            parts.append(
                f"The call-in is for the {ahead:,} needed on the schedule in {_ARRIVAL_HOURS:g} h, when"
                " they arrive, as the load falls."
            )
    elif decaying:
        who = f"The {f.on_shift:,} on shift" + (f" and {f.called_in:,} called in" if f.called_in else "")
        parts.append(
            f"{who} cover it as the load decays: {f.agents_needed:,} answering at once now{span}, "
            f"{f.to_schedule:,} on the schedule now and {ahead:,} in {_ARRIVAL_HOURS:g} h."
        )
    elif f.called_in:
        parts.append(
            f"The {f.on_shift:,} on shift and {f.called_in:,} called in cover it: "
            f"{f.agents_needed:,} answering at once{span}, {f.to_schedule:,} on the schedule."
        )
    else:
        parts.append(f"The {f.on_shift:,} on shift cover it: {f.agents_needed:,} answering at once{span}.")
    if len(f.by_language) > 1:  # of those answering at once, not of those to call in
        parts.append("Languages of those answering: " + largest_first(f.by_language) + ".")
    if f.ask_first:
        parts.append("Ask first: " + ", ".join(f.ask_first) + ".")
    if f.backlog_agents:
        parts.append(
            f"{f.backlog_agents:,} of them clear {backlog_said(f.backlog, f.usual_backlog)} within "
            + (s.backlog_within if s.backlog_within else "the target")
            + "; release them after."
        )
    if f.forecast:
        parts.extend(_forecast_advice(f, load, s))
    # `stand_down` is not said here: whether people go home is the incident's call too (not as it
    # opens or escalates), which the message knows and the load does not (notifiers.render)
    return " ".join(parts)


def _forecast_advice(f: StaffingFigures, load: SurgeLoad, s: StaffingSettings) -> list[str]:
    """What the next hours ask of the team answering new mentions (the backlog's team is released
    on its own schedule, so with a backlog the forecast is said of new mentions only)."""
    last = f.forecast[-1]
    queue_now = f.agents_needed - f.backlog_agents
    hours = len(f.forecast)
    if f.backlog_agents:
        needed = f"new mentions will need about {last:,} in {hours} h ({queue_now:,} now)"
        stand_down = f"plan to stand down {queue_now - last:,} of those then"
    else:
        needed = f"about {last:,} needed in {hours} h"
        stand_down = f"plan to stand down {queue_now - last:,} then"
    if last < queue_now and load.trend_per_hour < 0:
        return [f"The surge is decaying: {needed}; {stand_down}."]
    if last < queue_now and load.trend_per_hour == 0:
        # no trend in the last hour: the forecast is the configured decay, an assumption, said as one
        return [
            f"No clear trend over the last hour; if it eases as surges do (half-life"
            f" {s.decay_half_life_hours:g} h), {needed}."
        ]
    if last > queue_now:
        return [f"Still growing: {needed}."]
    return []
