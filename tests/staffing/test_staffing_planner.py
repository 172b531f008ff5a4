from __future__ import annotations

import pickle
from datetime import UTC, datetime

import msgspec
import pytest

from daemon.notification import StaffingFigures, from_json, to_json
from daemon.staffing.planner import StaffingPlanner, SurgeLoad, sla_text
from daemon.staffing.settings import StaffingSettings, parse_target
from notifiers.render import IncidentStatus, render

# 2010-04-16 05:42 UTC: early morning in western Europe, afternoon in Vladivostok.
AT = datetime(2010, 4, 16, 5, 42, tzinfo=UTC).timestamp()


@pytest.fixture
def settings() -> StaffingSettings:
    return msgspec.convert(
        {
            "roster": {
                "agents": [
                    {"name": "@eva", "languages": ["en", "nl"], "timezone": "Europe/Amsterdam", "shift": "06:00-15:00"},
                    {"name": "@tom", "languages": ["en"], "timezone": "Europe/Amsterdam", "shift": "15:00-23:00"},
                ],
                "volunteers": [
                    {"name": "@anna", "languages": ["en", "nl"], "timezone": "Europe/Amsterdam"},
                    {"name": "@bob", "languages": ["en"], "timezone": "America/New_York"},
                    {
                        "name": "@dragan",
                        "languages": ["sr", "hr", "bs", "en"],
                        "timezone": "Europe/Belgrade",
                        "skills": ["technical_specialist"],
                    },
                    {"name": "@ivan", "languages": ["ru"], "timezone": "Asia/Vladivostok"},
                    {"name": "@kees", "languages": ["nl"], "timezone": "Europe/Amsterdam"},
                ],
            }
        },
        StaffingSettings,
    )


def _load(**kw: object) -> SurgeLoad:
    base: dict[str, object] = {
        "mentions_per_hour": {"twitter": 1800.0, "facebook": 1200.0},
        "intents": {"complaint": 0.5, "question": 0.2, "praise": 0.1, "other": 0.2},
        "languages": {"en": 0.5, "nl": 0.35, "sr": 0.1, "ru": 0.04, "mk": 0.01},
        "at": AT,
    }
    base.update(kw)
    return SurgeLoad(**base)  # type: ignore[arg-type]


def test_suggestion_is_consistent(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(_load())
    assert isinstance(f, StaffingFigures)
    assert f.actionable_share == 0.7
    assert f.arrivals_per_hour == pytest.approx(3000 * 0.7)
    assert f.agents_needed == sum(f.by_platform.values())
    assert f.to_schedule >= f.agents_needed / 0.7 - 1e-9
    assert f.on_shift == 1  # only @eva works at 07:42 Amsterdam time
    # all but @eva, or more where whole people per language add up to more than the schedule
    short = StaffingPlanner(settings).language_shortfall(_load(), f.by_language)
    assert f.call_in == max(f.to_schedule - 1, short) <= f.to_schedule
    assert sum(f.by_language.values()) == f.agents_needed
    assert "mk" not in f.by_language  # below the 2 % share: answered by the fallback language
    assert sum(f.by_skill.values()) == f.agents_needed
    assert f.range is not None and f.range[0] <= f.agents_needed <= f.range[1]
    assert f.sla_target == "80/15m"  # the strictest: docs/cli.md's P/DURATION, as `--target`
    assert f.sla_targets == {"facebook": "80/15m", "twitter": "80/25m"}
    assert sla_text(f) == "facebook 80% in 15m; twitter 80% in 25m"
    assert f.service_level is not None and f.service_level >= 0.8
    assert f.occupancy is not None and f.occupancy <= 0.85
    assert f.advice.startswith("Call in")


def test_ask_first_prefers_awake_speakers_of_short_languages(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(_load())
    # @bob is asleep in New York (01:42); the sr and ru speakers are the scarcest.
    assert "@bob" not in f.ask_first
    assert f.ask_first[:2] == ["@dragan", "@ivan"]
    assert set(f.ask_first) == {"@dragan", "@ivan", "@anna", "@kees"}


def test_deterministic_and_picklable(settings: StaffingSettings) -> None:
    planner = StaffingPlanner(settings)
    clone = pickle.loads(pickle.dumps(planner))
    assert clone.suggest(_load()) == planner.suggest(_load())


def test_actionable_floor(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(_load(intents={"praise": 1.0}))
    assert f.actionable_share == settings.actionable_floor


def test_backlog_term_and_release_advice(settings: StaffingSettings) -> None:
    planner = StaffingPlanner(settings)
    plain = planner.suggest(_load())
    f = planner.suggest(_load(backlog=400))
    assert f.backlog == 400 and f.backlog_agents > 0
    assert f.agents_needed == plain.agents_needed + f.backlog_agents
    assert "backlog of 400" in f.advice


def test_decaying_surge_gets_stand_down_advice(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(_load(trend_per_hour=-1000.0, baseline_per_hour=200.0))
    assert f.forecast == sorted(f.forecast, reverse=True)
    assert f.forecast[-1] < f.agents_needed
    assert "decaying" in f.advice


def test_no_trend_says_the_decay_is_an_assumption(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(_load(trend_per_hour=0.0, baseline_per_hour=200.0))
    assert f.forecast[-1] < f.agents_needed
    assert "decaying" not in f.advice and "stand down" not in f.advice
    assert "No clear trend over the last hour; if it eases as surges do (half-life 4 h)" in f.advice


def test_growing_surge_forecast(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(_load(trend_per_hour=1500.0))
    assert f.forecast == sorted(f.forecast) and f.forecast[0] > f.agents_needed
    assert "growing" in f.advice


def test_overstaffed_team_can_stand_down_while_the_load_falls(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(
        _load(mentions_per_hour={"twitter": 20.0}, on_shift=10, trend_per_hour=-5.0, baseline_per_hour=10.0)
    )
    assert f.call_in == 0 and f.stand_down == 10 - f.to_schedule
    assert "stand down" not in f.advice  # the message says it, unless the incident opens or escalates


@pytest.mark.parametrize("trend", [600.0, 0.0, float("nan")])
def test_no_stand_down_at_the_start_of_a_growing_surge(settings: StaffingSettings, trend: float) -> None:
    """The roster covers the first minutes of a SEV1 that is still growing (or whose trend is not
    clear yet): no one goes home, whatever the current need."""
    f = StaffingPlanner(settings).suggest(
        _load(mentions_per_hour={"twitter": 300.0}, on_shift=40, trend_per_hour=trend)
    )
    assert f.call_in == 0 and f.to_schedule < 40
    assert f.stand_down == 0 and "stand down" not in f.advice


def test_no_one_is_sent_home_as_the_incident_opens_or_escalates(settings: StaffingSettings) -> None:
    falling = _load(mentions_per_hour={"twitter": 300.0}, on_shift=40, trend_per_hour=-200.0)
    assert StaffingPlanner(settings).suggest(falling).stand_down > 0
    escalating = msgspec.structs.replace(falling, escalating=True)
    assert StaffingPlanner(settings).suggest(escalating).stand_down == 0


def test_a_watch_calls_no_one_in(settings: StaffingSettings) -> None:
    """The JSON says what the message says: a sev3 watch asks for no one, and its advice is the
    load above normal, not 'Call in ...' for the whole queue and the everyday backlog."""
    load = _load(mentions_per_hour={"twitter": 3000.0}, baseline_per_hour=1500.0, backlog=2000, on_shift=0)
    surge = StaffingPlanner(settings).suggest(load)
    watch = StaffingPlanner(settings).suggest(msgspec.structs.replace(load, watch=True))
    assert surge.call_in > 0 and watch.call_in == 0
    assert watch.agents_needed == surge.agents_needed and 0 < watch.above_normal < surge.to_schedule
    assert watch.advice.startswith(f"Watch: no call-in. If this load holds, it needs {watch.above_normal:,} more")
    assert watch.advice.endswith("; the 2,000 waiting are not counted.")


def test_those_called_in_count_beside_the_shift(settings: StaffingSettings) -> None:
    """A suggestion asks only for more than the incident already called in; as the need falls,
    the surplus may stand down (and a watch sends no one home: it asked no one)."""
    load = _load(mentions_per_hour={"twitter": 3000.0}, on_shift=10)
    first = StaffingPlanner(settings).suggest(load)
    again = StaffingPlanner(settings).suggest(msgspec.structs.replace(load, called_in=first.call_in - 5))
    assert again.call_in == 5 and again.called_in == first.call_in - 5
    assert again.advice.startswith(f"Call in 5 more: {again.agents_needed:,} people answering at once")
    falling = msgspec.structs.replace(load, called_in=first.call_in + 40, trend_per_hour=-500.0)
    surplus = StaffingPlanner(settings).suggest(falling)
    assert surplus.call_in == 0 and surplus.stand_down == 40
    assert surplus.advice.startswith(f"The 10 on shift and {first.call_in + 40:,} called in cover it")
    assert StaffingPlanner(settings).suggest(msgspec.structs.replace(falling, watch=True)).stand_down == 0


def test_the_everyday_backlog_is_left_to_the_everyday_team(settings: StaffingSettings) -> None:
    """The 2,300 a brand always has waiting are not staffed as surge work, nor kept until cleared."""
    load = _load(mentions_per_hour={"twitter": 3000.0}, backlog=2500, on_shift=0)
    whole = StaffingPlanner(settings).suggest(load)
    beyond = StaffingPlanner(settings).suggest(msgspec.structs.replace(load, usual_backlog=2300))
    assert (beyond.backlog, beyond.usual_backlog) == (200, 2300) and whole.backlog == 2500
    assert 0 < beyond.backlog_agents < whole.backlog_agents
    assert "clear the 200 waiting beyond the usual 2,300 within" in beyond.advice
    usual = StaffingPlanner(settings).suggest(msgspec.structs.replace(load, usual_backlog=2600))
    assert usual.backlog == 0 and usual.backlog_agents == 0


def test_no_load(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(SurgeLoad(mentions_per_hour={}))
    assert f.agents_needed == 0 and f.call_in == 0 and f.by_language == {}


def test_backlog_without_new_arrivals(settings: StaffingSettings) -> None:
    f = StaffingPlanner(settings).suggest(SurgeLoad(mentions_per_hour={}, backlog=50))
    assert f.agents_needed == f.backlog_agents > 0


def test_patience_switches_to_erlang_a() -> None:
    s = msgspec.convert(
        {"platforms": {"twitter": {"aht_minutes": 3, "target": "80/5m", "patience_minutes": 10}}}, StaffingSettings
    )
    f = StaffingPlanner(s).suggest(SurgeLoad(mentions_per_hour={"twitter": 2000.0}, actionable_share=1.0))
    assert f.abandonment is not None and 0 <= f.abandonment < 0.2


def test_figures_serialise_into_the_notification() -> None:
    f = StaffingPlanner(StaffingSettings()).suggest(_load())
    raw = msgspec.json.encode(f)
    assert msgspec.json.decode(raw, type=StaffingFigures) == f


def test_single_target_names_no_platform() -> None:
    f = StaffingPlanner(StaffingSettings()).suggest(SurgeLoad(mentions_per_hour={"facebook": 100.0}))
    assert f.sla_target == "80/15m"
    assert sla_text(f) == "80% in 15m"


def test_equal_targets_are_said_once() -> None:
    """The demo's five platforms, four of them at the default target."""
    rates = {p: 100.0 for p in ("email", "facebook", "instagram", "twitter", "whatsapp")}
    f = StaffingPlanner(StaffingSettings()).suggest(SurgeLoad(mentions_per_hour=rates))
    assert f.sla_target == "80/15m"
    assert f.sla_targets["twitter"] == "80/25m" and f.sla_targets["email"] == "80/15m"
    assert sla_text(f) == "80% in 15m; twitter 80% in 25m"
    assert f.range is not None and f"(range {f.range[0]:,}–{f.range[1]:,})" in f.advice  # as the Range line


def test_absurd_load_does_not_raise() -> None:
    f = StaffingPlanner(StaffingSettings()).suggest(
        SurgeLoad(mentions_per_hour={"twitter": 1e12, "facebook": float("nan")}, backlog=-5)
    )
    assert f.agents_needed > 0 and f.backlog == 0


def test_backlog_within_setting() -> None:
    load = _load(backlog=3000)
    fast = StaffingPlanner(StaffingSettings()).suggest(load)
    slow = StaffingPlanner(StaffingSettings(backlog_within="2h")).suggest(load)
    assert 0 < slow.backlog_agents < fast.backlog_agents
    assert "within 2h" in slow.advice
    with pytest.raises(msgspec.ValidationError, match="backlog_within"):
        msgspec.convert({"backlog_within": "later"}, StaffingSettings)


def test_with_a_backlog_the_forecast_speaks_of_new_mentions(settings: StaffingSettings) -> None:
    """The backlog's team is released on its own ("release them after"): the stand-down is counted
    against those answering new mentions, not against everyone called in."""
    f = StaffingPlanner(settings).suggest(_load(trend_per_hour=-1000.0, baseline_per_hour=200.0, backlog=20_000))
    queue_now = f.agents_needed - f.backlog_agents
    assert f.backlog_agents > 0
    assert (
        f"The surge is decaying: new mentions will need about {f.forecast[-1]:,} in 3 h ({queue_now:,} now);"
        f" plan to stand down {queue_now - f.forecast[-1]:,} of those then." in f.advice
    )
    assert "backlog of 20,000" in f.advice


def test_the_load_above_normal_is_a_difference_of_schedules(settings: StaffingSettings) -> None:
    """What a watch says: the people the load above the expected one adds, for new mentions only
    (the backlog a watch finds is mostly the everyday one)."""
    planner = StaffingPlanner(settings)
    rates = {"twitter": 3200.0, "facebook": 2140.0}  # 5,340/h against 3,119/h normal
    f = planner.suggest(_load(mentions_per_hour=rates, baseline_per_hour=3119.0, backlog=2176))
    now = planner.suggest(_load(mentions_per_hour=rates))  # no backlog
    normal = planner.suggest(_load(mentions_per_hour={p: r * 3119.0 / 5340.0 for p, r in rates.items()}))
    assert f.above_normal == now.to_schedule - normal.to_schedule > 0
    assert f.above_normal < f.call_in - normal.to_schedule  # the backlog's people are not in it
    assert planner.suggest(_load(mentions_per_hour=rates, baseline_per_hour=9000.0)).above_normal == 0


def test_the_headline_target_is_the_strictest_in_the_form_staffing_target_takes() -> None:
    """docs/cli.md: `sla_target` is P/DURATION, as `crisisd staffing --target` takes and prints it;
    configured spellings (`60m`, `900s`) come out as `--json` prints them; each platform keeps its own."""
    s = msgspec.convert(
        {
            "platforms": {
                "twitter": {"target": "90/60m"},
                "facebook": {"target": "80/900s"},
                "vk": {"target": "95/30s"},
            },
            "default_platform": {"target": "80/20m"},
        },
        StaffingSettings,
    )
    planner = StaffingPlanner(s)
    f = planner.suggest(SurgeLoad(mentions_per_hour={"twitter": 500.0, "facebook": 100.0, "email": 50.0}))
    assert f.sla_targets == {"email": "80/20m", "facebook": "80/15m", "twitter": "90/1h"}
    assert f.sla_target == "80/15m"  # the shortest time, whichever platform carries most of the load
    assert parse_target(f.sla_target) == (0.8, 900.0)
    assert sla_text(f) == "email 80% in 20m; facebook 80% in 15m; twitter 90% in 1h"
    f = planner.suggest(SurgeLoad(mentions_per_hour={"vk": 10.0, "twitter": 500.0}))
    assert (f.sla_target, f.sla_targets) == ("95/30s", {"twitter": "90/1h", "vk": "95/30s"})
    none = planner.suggest(SurgeLoad(mentions_per_hour={}))
    assert (none.sla_target, none.sla_targets, sla_text(none)) == ("", {}, "")


_OLD_NOTIFICATION = (
    b'{"type":"incident.opened","incident_id":"klm-20100415T0554Z-volume","brand":"klm","severity":"sev1",'
    b'"signals":["volume"],"started_at":"2010-04-15T05:54:00Z","detected_at":"2010-04-15T05:57:00Z",'
    b'"volume":{"observed_per_hour":1040.0,"expected_per_hour":305.2,"ratio":3.41},'
    b'"negativity":{"share":0.5,"baseline_share":0.2},'
    b'"staffing":{"agents_needed":53,"to_schedule":76,"on_shift":0,"call_in":76,"by_language":{"en":53},'
    b'"sla_target":"80% in 15m; twitter 80% in 25m","by_platform":{"facebook":25,"twitter":28}},"seq":1}'
)


def test_a_notification_written_before_p_duration_targets_still_decodes() -> None:
    """Outbox rows, checkpoints' undelivered notifications and Slack bodies of an older version
    read back in today's form (their human text says what it can)."""
    n = from_json(_OLD_NOTIFICATION)
    assert n.staffing is not None
    assert n.staffing.sla_target == "80/15m" and n.staffing.sla_targets == {}
    assert n.staffing.agents_needed == 53 and n.staffing.by_platform == {"facebook": 25, "twitter": 28}
    assert "SLA target: 80% in 15m" in render(n, IncidentStatus()).staffing
    other = from_json(_OLD_NOTIFICATION.replace(b"80% in 15m; twitter 80% in 25m", b"facebook 90% in 1h"))
    assert other.staffing is not None and other.staffing.sla_target == "90/1h"
    # today's form round-trips untouched
    f = StaffingPlanner(StaffingSettings()).suggest(_load())
    new = msgspec.structs.replace(n, staffing=f)
    assert from_json(to_json(new)) == new


def test_a_shift_that_does_not_speak_the_surge_language_does_not_cover_it() -> None:
    """20 English-only agents on shift and a Dutch surge: 'the 20 on shift cover it' called no one
    in, and asked no Dutch-speaking volunteer first."""
    from daemon.staffing.settings import Person, Roster

    team = [Person(name=f"agent{i}", languages=["en"]) for i in range(20)]
    helpers = [
        Person(name="nl1", languages=["nl"]),
        Person(name="nl2", languages=["nl"]),
        Person(name="sr1", languages=["sr"]),
    ]
    planner = StaffingPlanner(StaffingSettings(roster=Roster(agents=team, volunteers=helpers)))
    f = planner.suggest(SurgeLoad(mentions_per_hour={"facebook": 200.0}, languages={"nl": 1.0}, at=12 * 3600.0))
    assert f.on_shift == 20 and f.by_language == {"nl": f.agents_needed}
    assert f.call_in >= f.to_schedule  # nobody on shift answers in Dutch
    assert f.ask_first[:2] == ["nl1", "nl2"]
    english = planner.suggest(SurgeLoad(mentions_per_hour={"facebook": 200.0}, languages={"en": 1.0}, at=12 * 3600.0))
    assert english.call_in == 0  # the same load in English: covered


def test_the_growth_forecast_stops_at_twice_the_largest_excess_seen() -> None:
    """A straight line through the first minutes of a ramp (1,000/h, +20,000/h per hour against a
    normal 300/h) asked for 2,153 people in 3 h, for 61,000/h: 60 times the load seen. The excess
    over normal may at most double the largest excess the incident has shown (`forecast_peak_multiple`)."""
    planner = StaffingPlanner(StaffingSettings())
    ramp = SurgeLoad(mentions_per_hour={"twitter": 1000.0}, baseline_per_hour=300.0, trend_per_hour=20_000.0)
    assert planner.forecast_rates(ramp) == [1700.0, 1700.0, 1700.0]  # 300 + 2 x 700
    at_ceiling = planner.suggest(msgspec.structs.replace(ramp, mentions_per_hour={"twitter": 1700.0}))
    assert planner.suggest(ramp).forecast == [at_ceiling.agents_needed] * 3
    # past a higher peak (2,500/h), the ceiling is twice that peak's excess; a slow growth stays a line
    peaked = msgspec.structs.replace(ramp, peak_per_hour=2500.0)
    assert planner.forecast_rates(peaked) == [4700.0, 4700.0, 4700.0]
    assert planner.forecast_rates(msgspec.structs.replace(ramp, trend_per_hour=200.0)) == [1200.0, 1400.0, 1600.0]
    wider = StaffingPlanner(StaffingSettings(forecast_peak_multiple=3.0))
    assert wider.forecast_rates(ramp) == [2400.0, 2400.0, 2400.0]
    with pytest.raises(msgspec.ValidationError, match="forecast_peak_multiple"):
        msgspec.convert({"forecast_peak_multiple": 0.5}, StaffingSettings)


def _at_rate(load: SurgeLoad, total: float) -> SurgeLoad:
    """The same load mix at another total rate, with no trend."""
    r0 = sum(load.mentions_per_hour.values())
    rates = {p: r * total / r0 for p, r in load.mentions_per_hour.items()}
    return msgspec.structs.replace(load, mentions_per_hour=rates, trend_per_hour=0.0)


def test_a_decaying_load_calls_in_for_the_need_when_they_arrive() -> None:
    """The demo at 10:31: 3,920/h and falling by 1,167/h per hour, and the suggestion called in for
    the load now. Those called in start within about an hour, when the forecast has the load at
    2,923/h: new mentions are staffed for that; the need now is still said, and the backlog (which
    does not decay with the new mentions) is still staffed in full."""
    planner = StaffingPlanner(StaffingSettings())
    load = SurgeLoad(
        mentions_per_hour={"twitter": 2400.0, "facebook": 1520.0},
        baseline_per_hour=322.0,
        trend_per_hour=-1167.0,
        on_shift=0,
    )
    ahead = planner.forecast_rates(load)[0]
    assert round(ahead) == 2923
    f = planner.suggest(load)
    now, then = planner.suggest(_at_rate(load, 3920.0)), planner.suggest(_at_rate(load, ahead))
    assert (f.agents_needed, f.to_schedule) == (now.agents_needed, now.to_schedule)  # the need now, as it is
    assert f.range is not None
    assert f.call_in == then.to_schedule < now.call_in
    assert (
        f"Call in {f.call_in:,}: {f.agents_needed:,} people answering at once (range {f.range[0]}–{f.range[1]}),"
        f" {f.to_schedule:,} on the schedule with 30% shrinkage, 0 on shift. The call-in is for the"
        f" {then.to_schedule:,} needed on the schedule in 1 h, when they arrive, as the load falls." in f.advice
    )
    # enough people for the hour ahead, not for now: no one more, and no one sent home
    enough = planner.suggest(msgspec.structs.replace(load, called_in=then.to_schedule + 1))
    assert enough.call_in == 0 and enough.stand_down == 0 and enough.to_schedule > then.to_schedule + 1
    assert enough.advice.startswith(
        f"The 0 on shift and {then.to_schedule + 1:,} called in cover it as the load decays:"
        f" {enough.agents_needed:,} answering at once now"
    )
    # the backlog's people are called in in full
    waiting = planner.suggest(msgspec.structs.replace(load, backlog=5000))
    later = planner.suggest(msgspec.structs.replace(_at_rate(load, ahead), backlog=5000))
    assert waiting.call_in == later.to_schedule and later.backlog_agents == waiting.backlog_agents > 0
    # not while the trend is unclear or the incident escalates: then the need now is called in
    assert planner.suggest(msgspec.structs.replace(load, trend_per_hour=0.0)).call_in == now.call_in
    assert planner.suggest(msgspec.structs.replace(load, escalating=True)).call_in == now.call_in


def test_no_one_is_sent_home_while_the_surge_backlog_waits_past_the_target() -> None:
    """The demo offered stand-downs from 10:41 on (437 at 14:01) while 14,000-20,000 waited and a
    new mention waited more than 2 days at the measured ~290 replies/h. While the backlog beyond
    the usual one takes longer than the response target to answer at the measured reply rate, the
    people there stay; it stands down once the backlog is answered within the target."""
    from daemon.staffing.planner import backlog_breaches_target

    planner = StaffingPlanner(StaffingSettings())
    falling = SurgeLoad(
        mentions_per_hour={"twitter": 600.0}, baseline_per_hour=400.0, trend_per_hour=-300.0, on_shift=0
    )
    load = msgspec.structs.replace(falling, backlog=14_206, usual_backlog=266, called_in=1600, replies_per_hour=290.0)
    f = planner.suggest(load)
    assert f.backlog == 13_940 and f.to_schedule < 1600
    assert f.stand_down == 0 and f.call_in == 0
    # answered within the target at the measured rate (13,940 at 60,000/h: 14 minutes): the surplus goes
    fast = planner.suggest(msgspec.structs.replace(load, replies_per_hour=60_000.0))
    assert fast.stand_down == 1600 - fast.to_schedule > 0
    # no reply measured (None): the plan's own figures, as before; none at all (0/h): nothing is answered
    assert planner.suggest(msgspec.structs.replace(load, replies_per_hour=None)).stand_down == fast.stand_down
    assert planner.suggest(msgspec.structs.replace(load, replies_per_hour=0.0)).stand_down == 0
    # the everyday backlog is the everyday team's: it keeps no one on
    usual = msgspec.structs.replace(load, usual_backlog=14_206)
    assert planner.suggest(usual).stand_down == 1600 - planner.suggest(usual).to_schedule > 0
    assert backlog_breaches_target(13_940, 290.0, "80/15m") and not backlog_breaches_target(13_940, 60_000.0, "80/15m")
    assert not backlog_breaches_target(0, 0.0, "80/15m") and not backlog_breaches_target(50, None, "80/15m")
