"""The incident state machine: one crisis one incident, hysteresis, cool-down, severity, checkpoints."""

from __future__ import annotations

import itertools
import pickle
from dataclasses import replace

import pytest

from config.settings import load_settings
from daemon.detection import BrandDetection
from daemon.incidents import IncidentChange, IncidentTracker
from daemon.notification import StaffingFigures
from daemon.windows import Bucket, Sample
from detectors.brand import Assessment
from detectors.negativity import NegativityReading
from detectors.settings import DetectionSettings, IncidentSettings
from detectors.topic import TopicReading
from detectors.volume import VolumeReading

T0 = 1_271_376_000.0  # 2010-04-16T00:00Z


def assess(
    i: int,
    surprise: float = 0.0,
    severity: str | None = None,
    signals: tuple[str, ...] = (),
    mentions: int = 10,
    negative: int = 2,
    threshold: float = 6.0,
    terms: tuple[str, ...] = (),
    samples: tuple[Sample, ...] = (),
    brand: str = "klm",
) -> tuple[Bucket, Assessment]:
    start = T0 + i * 60
    firing = "volume" in signals
    vol = VolumeReading(surprise / (surprise + threshold), surprise, firing, mentions, 10.0, 30.0, 1,
                        float(mentions), 10.0, True, threshold)  # fmt: skip
    neg = NegativityReading(0.0, 0.0, "negativity" in signals, negative / max(mentions, 1), 0.2, 1, negative,
                            mentions, True)  # fmt: skip
    top = TopicReading(0.0, 9.0 if "topic" in signals else 0.0, "topic" in signals, terms, True)
    b = Bucket(brand, start, 60, mentions=mentions, negative=negative, by_lang={"en": mentions})
    a = Assessment(
        brand=brand, start=start, end=start + 60, seconds=60, volume=vol, negativity=neg, topic=top,
        signals=signals, severity=severity, flags=(), score=vol.score, quiet=surprise < 3.0 and not signals,
        elevated_since=None if surprise < 3.0 else start, mentions=mentions, negative=negative, replies=0,
        observed_per_hour=mentions * 60.0, by_lang={"en": mentions}, samples=samples,
    )  # fmt: skip
    return b, a


def run(tr: IncidentTracker, steps: list[tuple[Bucket, Assessment]]) -> list[IncidentChange]:
    out: list[IncidentChange] = []
    for b, a in steps:
        out += tr.step(b, a)
    return out


def calm(i: int) -> tuple[Bucket, Assessment]:
    return assess(i)


def crisis(
    i: int, sev: str = "sev2", signals: tuple[str, ...] = ("volume", "negativity"), m: int = 100
) -> tuple[Bucket, Assessment]:
    """A firing bucket; two signals by default (corroborated: confirmed by `open_buckets` alone)."""
    return assess(i, surprise=12.0, severity=sev, signals=signals, mentions=m, negative=m // 2)


def test_one_crisis_one_incident_and_resolution_after_quiet() -> None:
    tr = IncidentTracker()
    steps = [calm(i) for i in range(10)] + [crisis(i) for i in range(10, 40)] + [calm(i) for i in range(40, 200)]
    changes = run(tr, steps)
    kinds = [c.type for c in changes if c.reason != "load"]
    assert kinds == ["opened", "resolved"]
    opened, resolved = changes[0], changes[-1]
    assert opened.incident_id == "klm-20100416T0010Z-volume"
    assert opened.started_at == T0 + 600 and opened.detected_at == T0 + 720  # confirmed by its 2nd bucket
    assert resolved.resolved_at == T0 + 40 * 60 + 60 * 60  # 60 quiet minutes after the last anomaly
    assert resolved.mentions == sum(a.mentions for _, a in steps[10:100])


def test_no_flapping_when_the_signal_oscillates() -> None:
    tr = IncidentTracker(DetectionSettings(incidents=IncidentSettings(open_buckets=1)))
    steps = [crisis(i) if i % 3 == 0 else calm(i) for i in range(300)]
    changes = run(tr, steps)
    assert [c.type for c in changes if c.type != "updated"] == ["opened"]
    assert len(changes) <= 3  # no update per bucket


def test_a_burst_gone_by_the_next_bucket_opens_nothing_unless_overwhelming() -> None:
    tr = IncidentTracker()
    bursts = [crisis(i) if i % 3 == 0 else calm(i) for i in range(300)]  # 2 x threshold, one bucket each
    assert run(tr, bursts) == []
    tr = IncidentTracker()
    huge = [assess(0, surprise=30.0, severity="sev2", signals=("volume",))]  # 5 x threshold: at once
    (c,) = run(tr, huge)
    assert c.type == "opened" and c.detected_at == T0 + 60
    tr = IncidentTracker()  # elevated before, firing now: the evidence spans two buckets already
    steps = [calm(0), assess(1, surprise=4.0), crisis(2)]
    (c,) = run(tr, steps)
    assert c.type == "opened" and c.started_at == T0 + 60 and c.detected_at == T0 + 180


def lone(i: int, seconds: int = 60, firing: bool = True) -> tuple[Bucket, Assessment]:
    """A firing bucket of the volume signal alone (or a calm one), `seconds` wide."""
    if firing:
        b, a = assess(i, surprise=12.0, severity="sev2", signals=("volume",), mentions=100, negative=20)
    else:
        b, a = calm(i)
    start = T0 + i * seconds
    return replace(b, start=start, seconds=seconds), replace(a, start=start, end=start + seconds, seconds=seconds)


def test_a_lone_signal_must_last_confirm_minutes_of_event_time() -> None:
    for seconds in (60, 300):  # 1-minute and 5-minute buckets confirm alike
        n = 15 * 60 // seconds  # buckets in the default 15 minutes
        tr = IncidentTracker()
        short = [lone(i, seconds, firing=i < n - 1) for i in range(n + 5)]
        assert run(tr, short) == []  # gone before a quarter of an hour
        tr = IncidentTracker()
        (c,) = [c for c in run(tr, [lone(i, seconds) for i in range(n + 3)]) if c.type == "opened"]
        assert c.signals == ("volume",) and c.detected_at - c.started_at == 15 * 60
    tr = IncidentTracker(DetectionSettings(incidents=IncidentSettings(confirm_minutes=0)))
    (c,) = [c for c in run(tr, [lone(i) for i in range(5)]) if c.type == "opened"]
    assert c.detected_at == T0 + 120  # without it: open_buckets alone


def jointly(i: int, own: str | None = None) -> tuple[Bucket, Assessment]:
    """Volume and negativity firing only through Fisher's combination (or `own` past its own threshold too)."""
    b, a = crisis(i)
    vol, neg = replace(a.volume, firing=own == "volume"), replace(a.negativity, firing=own == "negativity")
    return b, replace(a, volume=vol, negativity=neg)


def test_two_signals_significant_only_together_must_last_like_a_lone_one() -> None:
    tr = IncidentTracker()
    brief = [jointly(i) if i < 10 else calm(i) for i in range(40)]
    assert run(tr, brief) == []  # two weak hints for ten minutes: not a crisis
    tr = IncidentTracker()
    (c,) = [c for c in run(tr, [jointly(i) for i in range(20)]) if c.type == "opened"]
    assert c.detected_at - c.started_at == 15 * 60
    for own in ("volume", "negativity"):  # one of them significant alone: corroborated at once
        tr = IncidentTracker()
        (c,) = [c for c in run(tr, [jointly(i, own) for i in range(5)]) if c.type == "opened"]
        assert c.detected_at == T0 + 120


def test_hysteresis_elevated_but_not_firing_keeps_it_open() -> None:
    tr = IncidentTracker()
    steps = [crisis(i) for i in range(5)]
    steps += [assess(i, surprise=4.0) for i in range(5, 200)]  # above close level (3.0), below firing
    changes = run(tr, steps)
    assert [c.type for c in changes if c.reason != "load"] == ["opened"]


def test_cooldown_absorbs_a_lesser_relapse_but_not_an_escalation() -> None:
    tr = IncidentTracker(DetectionSettings(incidents=IncidentSettings(quiet_minutes=30, cooldown_minutes=120)))
    steps = [crisis(i) for i in range(5)] + [calm(i) for i in range(5, 60)]
    steps += [crisis(i) for i in range(60, 65)] + [calm(i) for i in range(65, 100)]  # relapse: same severity
    steps += [crisis(i, "sev1", ("volume", "negativity")) for i in range(100, 105)]  # worse: opens
    changes = run(tr, steps)
    opened = [c for c in changes if c.type == "opened"]
    assert [c.severity for c in opened] == ["sev2", "sev1"]
    assert opened[1].alert


def test_the_crisis_back_in_the_cooldown_opens_once_it_lasts() -> None:
    """A crisis as severe as the one resolved, returning in the cool-down and going on for hours,
    used to extend the cool-down minute by minute and never open (after a sev1, nothing is more
    severe). It opens once it has lasted confirm_minutes; a lesser relapse once it has lasted the
    cool-down itself."""
    s = IncidentSettings(quiet_minutes=30, cooldown_minutes=120, confirm_minutes=15)
    tr = IncidentTracker(DetectionSettings(incidents=s))
    steps = [crisis(i, "sev1", ("volume", "negativity")) for i in range(5)] + [calm(i) for i in range(5, 60)]
    steps += [crisis(i, "sev1", ("volume", "negativity")) for i in range(60, 300)]  # four hours of it
    opened = [c for c in run(tr, steps) if c.type == "opened"]
    assert [(c.severity, c.detected_at - c.started_at) for c in opened] == [("sev1", 120.0), ("sev1", 15 * 60.0)]

    tr = IncidentTracker(DetectionSettings(incidents=s))
    steps = [crisis(i, "sev1", ("volume", "negativity")) for i in range(5)] + [calm(i) for i in range(5, 60)]
    steps += [crisis(i) for i in range(60, 300)]  # a long sev2 after the sev1
    opened = [c for c in run(tr, steps) if c.type == "opened"]
    assert [(c.severity, c.detected_at - c.started_at) for c in opened] == [("sev1", 120.0), ("sev2", 120 * 60.0)]


def test_after_cooldown_a_new_incident_opens() -> None:
    tr = IncidentTracker(DetectionSettings(incidents=IncidentSettings(quiet_minutes=30, cooldown_minutes=60)))
    steps = [crisis(i) for i in range(5)] + [calm(i) for i in range(5, 200)] + [crisis(i) for i in range(200, 205)]
    opened = [c for c in run(tr, steps) if c.type == "opened"]
    assert len(opened) == 2 and opened[0].incident_id != opened[1].incident_id


def test_escalation_updates_and_alerts_never_deescalates() -> None:
    tr = IncidentTracker()
    steps = [crisis(i, "sev3") for i in range(3)]
    steps += [crisis(i, "sev1", ("volume", "negativity", "topic")) for i in range(3, 6)]
    steps += [crisis(i, "sev3") for i in range(6, 20)]
    changes = run(tr, steps)
    assert [(c.type, c.severity, c.reason) for c in changes][:2] == [
        ("opened", "sev3", ""),
        ("updated", "sev1", "severity"),
    ]
    assert changes[1].alert and changes[1].previous_severity == "sev3"
    assert changes[1].signals == ("volume", "negativity", "topic")
    assert all(c.severity == "sev1" for c in changes[1:])


def test_new_signal_updates_without_alert() -> None:
    tr = IncidentTracker()
    steps = [crisis(i, "sev2") for i in range(3)] + [crisis(i, "sev2", ("volume", "topic")) for i in range(3, 6)]
    changes = run(tr, steps)
    assert [(c.type, c.reason) for c in changes] == [("opened", ""), ("updated", "signals")]
    assert not changes[1].alert


def test_load_change_updates_at_most_every_min_update_minutes() -> None:
    tr = IncidentTracker()
    steps = [crisis(i, m=100 * (1 + i)) for i in range(30)]  # load keeps growing
    changes = run(tr, steps)
    loads = [c for c in changes if c.reason == "load"]
    assert loads and all(b.at - a.at >= 600 for a, b in itertools.pairwise(changes))


def test_a_watch_posts_load_updates_at_most_every_watch_update_minutes() -> None:
    """A sev3 watch is posted, not escalated: its load is re-posted hourly at most; an escalation
    is posted at once."""
    tr = IncidentTracker()
    steps = [crisis(i, "sev3", m=100 * (1 + i)) for i in range(130)]  # load keeps growing
    steps += [crisis(130, "sev2", m=100 * 131)]
    changes = run(tr, steps)
    loads = [c for c in changes if c.reason == "load"]
    assert len(loads) == 2 and all(b.at - a.at >= 3600 for a, b in itertools.pairwise(changes[:-1]))
    assert changes[-1].reason == "severity" and changes[-1].at - changes[-2].at < 3600
    hourly = IncidentTracker(DetectionSettings(incidents=IncidentSettings(watch_update_minutes=10.0)))
    assert len([c for c in run(hourly, steps) if c.reason == "load"]) > 2 * len(loads)


def test_a_pending_update_changes_nothing_until_sent() -> None:
    """A downstream reason (the staffing moved) may update an open incident as often as the load may."""
    tr = IncidentTracker()
    changes = run(tr, [crisis(i) for i in range(5)])  # a steady load: opened, no load update
    assert [c.type for c in changes] == ["opened"]
    assert tr.pending_update(crisis(5)[1], "staffing") is None  # too soon: 4 minutes after opening
    run(tr, [crisis(i) for i in range(5, 12)])
    pending = tr.pending_update(crisis(11)[1], "staffing")
    assert pending is not None and (pending.type, pending.seq, pending.reason) == ("updated", 2, "staffing")
    assert tr.pending_update(crisis(11)[1], "staffing") == pending  # not sent: still pending
    tr.sent(pending)
    assert tr.pending_update(crisis(12)[1], "staffing") is None  # sent: the next waits its turn
    run(tr, [crisis(i) for i in range(12, 22)])
    later = tr.pending_update(crisis(21)[1], "staffing")
    assert later is not None and later.seq == 3
    assert tr.pending_update(assess(21, brand="other")[1], "staffing") is None  # no incident open


def test_a_backlog_building_under_a_steady_load_updates_the_incident(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load holds, so the tracker sends nothing; the staffing suggestion grows with the backlog,
    and each 50 % move is posted (looked at every `min_update_minutes`)."""
    d = BrandDetection("klm", load_settings(env={}))
    steps = iter([crisis(i) for i in range(120)])
    monkeypatch.setattr(d.detector, "update", lambda b: next(steps)[1])

    def staffing(c: IncidentChange, figures: object) -> StaffingFigures:
        n = 10 + 2 * int(c.at - T0) // 60  # two more agents a minute as the backlog grows
        return StaffingFigures(agents_needed=n, to_schedule=n, on_shift=0, call_in=n)

    monkeypatch.setattr(d, "_staffing", staffing)
    notes = [n for i in range(120) for n in d.on_bucket(crisis(i)[0])]
    assert notes[0].type == "incident.opened" and all(n.type == "incident.updated" for n in notes[1:])
    agents = [n.staffing.agents_needed for n in notes if n.staffing is not None]
    assert len(agents) == len(notes) >= 4
    assert all(b >= 1.5 * a for a, b in itertools.pairwise(agents))
    assert [n.seq for n in notes] == list(range(1, len(notes) + 1))


def test_severity_rank_of_opening_and_samples_name_top_terms() -> None:
    s1 = Sample("t:1", "my flight was cancelled, ash everywhere", None, "en", "twitter", 0.9, 10, "u1")
    s2 = Sample("t:2", "terrible service", None, "en", "twitter", 0.95, 10_000, "u2")
    tr = IncidentTracker()
    b, a = assess(0, surprise=30, severity="sev1", signals=("volume", "topic"), terms=("ash",), samples=(s2, s1))
    (c,) = tr.step(b, a)
    assert c.top_terms == ("ash",)
    assert c.samples[0].id == "t:1"  # names the topic first
    assert c.languages == {"en": 1.0}


def test_pickle_round_trip_mid_incident() -> None:
    tr = IncidentTracker()
    steps = [crisis(i) for i in range(10)] + [calm(i) for i in range(10, 120)]
    run(tr, steps[:12])
    clone = pickle.loads(pickle.dumps(tr))
    assert run(tr, steps[12:]) == run(clone, steps[12:])


def test_a_checkpoint_from_before_the_runs_kept_a_copied_message_resumes() -> None:
    """Before 2026-12 an incident's run of totals held no copied message: it starts without one."""
    from daemon.incidents import _Run

    run_ = _Run(mentions=5)
    state = {k: v for k, v in run_.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2][1].items() if "cop" not in k}
    old = _Run.__new__(_Run)
    old.__setstate__((None, state))
    assert (old.mentions, old.copies, old.copy_sample) == (5, 0, None)


def test_a_coordinated_incidents_copied_message_leads_its_samples() -> None:
    """Its fresh accounts reach few, so the pool of telling mentions seldom holds the campaign's
    message; the run keeps the most-copied one for the incident's samples."""
    loud = Sample("t:1", "ash cloud, cancelled", None, "en", "twitter", 0.9, 90_000, "u1")
    copied = Sample("t:2", "KLM exploits its cabin crew", None, "en", "twitter", 0.9, 12, "u2")
    tr = IncidentTracker()
    changes: list[IncidentChange] = []
    for i in range(5):
        b, a = crisis(i)
        a = replace(a, flags=("coordinated",), samples=(loud,), top_copies=3 + i, copy_sample=copied)
        changes += tr.step(b, a)
    assert changes and all(c.samples[0] == copied for c in changes)
    plain = IncidentTracker()  # without the flag, the loudest mention leads as before
    changes = [c for i in range(5) for c in plain.step(*_with(crisis(i), samples=(loud,), copy_sample=copied))]
    assert changes and all(c.samples[0] == loud for c in changes)


def _with(step: tuple[Bucket, Assessment], **fields: object) -> tuple[Bucket, Assessment]:
    return step[0], replace(step[1], **fields)  # type: ignore[arg-type]


def test_brands_are_independent_and_overrides_apply() -> None:
    s = DetectionSettings(brands={"quiet": {"incidents": {"quiet_minutes": 5}}})
    tr = IncidentTracker(s)
    steps = []
    for i in range(40):
        b, a = crisis(i) if i < 3 else calm(i)
        steps.append((b, a))
        qb, qa = crisis(i) if i < 3 else calm(i)
        steps.append((replace(qb, brand="quiet"), replace(qa, brand="quiet")))
    changes = run(tr, steps)
    resolved = {c.brand for c in changes if c.type == "resolved"}
    assert resolved == {"quiet"}  # klm keeps the 60-minute default
