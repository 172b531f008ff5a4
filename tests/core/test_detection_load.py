"""The staffing load of a brand's detection: what it keeps of closed buckets, and old checkpoints."""

from __future__ import annotations

import dataclasses
import pickle
import random
from collections import deque

import msgspec
import pytest

from config.settings import load_settings
from daemon.detection import BrandDetection, Mixes, _Mix, _summary
from daemon.enrich import TextScore
from daemon.events import Mention
from daemon.incidents import IncidentChange
from daemon.windows import Bucket
from detectors.brand import BrandDetector
from notifiers.render import thread_text


def _bucket(start: float, twitter: int, facebook: int) -> Bucket:
    return Bucket(
        "klm",
        start,
        60,
        mentions=twitter + facebook,
        by_platform={"twitter": twitter, "facebook": facebook},
        by_intent={"complaint": twitter, "praise": facebook},
        terms={"ash": 3},
    )


def _change(at: float) -> IncidentChange:
    return IncidentChange(
        type="opened",
        incident_id="klm-1",
        brand="klm",
        seq=1,
        severity="sev2",
        signals=("volume",),
        flags=(),
        started_at=at - 600,
        detected_at=at,
        at=at,
        observed_per_hour=900.0,
        expected_per_hour=100.0,
        upper_per_hour=200.0,
        ratio=9.0,
        negativity_share=0.7,
        baseline_share=0.25,
        top_terms=("ash",),
        languages={"en": 0.8, "nl": 0.2},
        samples=(),
        peak_per_hour=900.0,
        mentions=150,
        negative=105,
        replies=0,
    )


def test_recent_mix_keeps_counts_not_terms() -> None:
    d = BrandDetection("klm", load_settings(env={}))
    for i in range(20):
        d.on_bucket(_bucket(60.0 * i, twitter=i, facebook=2))
    assert len(d.recent) == 15
    assert d.recent.totals() == ({"twitter": sum(range(5, 20)), "facebook": 30}, {"complaint": 180, "praise": 30})
    assert not hasattr(d.recent, "terms")  # a closed bucket's terms and samples are not kept
    load = d._load(_change(1200.0), d.responses.figures(1200.0))
    assert sum(load.mentions_per_hour.values()) == 900.0


def test_checkpoint_with_old_bucket_mixes_gives_the_same_load() -> None:
    """Checkpoints written before `_Mix` hold sealed Buckets in `recent`: they still work."""
    settings = load_settings(env={})
    d = BrandDetection("klm", settings)
    for i in range(20):
        d.on_bucket(_bucket(60.0 * i, twitter=i, facebook=2))
    expected = d._load(_change(1200.0), d.responses.figures(1200.0))
    for kind in (Bucket, _Mix):
        state = dict(d.__dict__)
        ring: deque[Bucket | _Mix] = deque(maxlen=15)
        for i in range(3, 20):
            b = _bucket(60.0 * i, twitter=i, facebook=2)
            ring.append(b if kind is Bucket else _Mix(b))
        state["recent"] = ring
        old = BrandDetection.__new__(BrandDetection)
        old.__setstate__(state)
        assert isinstance(old.recent, Mixes) and len(old.recent) == 15
        assert old._load(_change(1200.0), d.responses.figures(1200.0)) == expected
    again = pickle.loads(pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL))  # Mixes pickles
    assert again._load(_change(1200.0), again.responses.figures(1200.0)) == expected


def _reference(buckets: list[Bucket], maxlen: int) -> tuple[dict[str, int], dict[str, int]]:
    """What the deque of per-bucket dicts summed (names in first-seen order)."""
    platforms: dict[str, int] = {}
    intents: dict[str, int] = {}
    for b in buckets[-maxlen:]:
        for k, v in b.by_platform.items():
            platforms[k] = platforms.get(k, 0) + v
        for k, v in b.by_intent.items():
            intents[k] = intents.get(k, 0) + v
    return platforms, intents


def test_mixes_sum_like_the_dicts_they_replace_as_names_come_and_go() -> None:
    rng = random.Random(7)
    names = ["twitter", "facebook", "instagram", "complaint", "x"]  # a name can be a platform and an intent
    for maxlen in (1, 3, 15):
        m = Mixes(maxlen)
        seen: list[Bucket] = []
        for i in range(400):
            quiet = rng.random() < 0.3  # empty buckets, runs of them included
            pool = names[: rng.randint(1, len(names))]
            bp = {} if quiet else {k: rng.randint(1, 50) for k in rng.sample(pool, rng.randint(0, len(pool)))}
            bi = {} if quiet else {k: rng.randint(1, 9) for k in rng.sample(pool, rng.randint(0, len(pool)))}
            b = Bucket("klm", 60.0 * i, 60, by_platform=bp, by_intent=bi)
            m.append(b)
            seen.append(b)
            assert len(m) == min(i + 1, maxlen)
            assert m.totals() == _reference(seen, maxlen)
            assert len(m.platforms) + len(m.intents) <= len(names) * 2  # names no kept row counts leave
            if i % 50 == 0:
                m = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
                assert m.totals() == _reference(seen, maxlen)


def test_a_resolved_incident_keeps_its_staffing_only_while_a_backlog_needs_people() -> None:
    d = BrandDetection("klm", load_settings(env={}))
    for i in range(20):
        d.on_bucket(_bucket(60.0 * i, twitter=5, facebook=2))
    a = BrandDetector(seed=0).update(_bucket(1200.0, twitter=5, facebook=2))
    resolved = dataclasses.replace(_change(1260.0), type="resolved", resolved_at=1260.0, observed_per_hour=100.0)
    assert d._notification(resolved, a).staffing is None  # nothing waiting: nothing to ask
    for i in range(601):  # 601 complaints in the last ten minutes, one answered
        d.responses.observe_mention(f"twitter:{i}", 660.0 + i, "twitter")
    d.responses.observe_reply("twitter:0", 700.0)
    note = d._notification(resolved, a)
    assert note.staffing is not None and note.staffing.backlog == 600 and note.staffing.backlog_agents > 0
    # where the backlog waits reaches the staffing (its handle time): twitter's, not the recent mix's
    assert note.responses is not None and note.responses.backlog_by_platform == {"twitter": 600}
    assert d._load(resolved, note.responses).backlog_by_platform == {"twitter": 600}
    keep = note.staffing.call_in
    # no one was called in: the resolution asks no one to come (the block still says the need)
    assert note.called_in == 0 and thread_text(note).endswith("brand replies 0.")
    d.called_in = keep + 100  # what the incident's suggestions called in
    # one reply in the last half hour: the 600 wait far past the 15-minute target, so no one goes
    # home yet (the figures say what the text does)
    kept = d._notification(resolved, a)
    assert kept.staffing is not None and kept.staffing.stand_down == 0
    assert thread_text(kept).endswith(f"Keep the {keep + 100} called in until the backlog of 600 is cleared.")
    d.called_in = None  # restored from a checkpoint that did not keep it
    assert thread_text(d._notification(resolved, a)).endswith(
        "Keep those called in for the surge until the backlog of 600 is cleared."
    )
    for i in range(1600):  # 3,200 replies an hour (to older mentions): the 600 are answered within 15 minutes
        d.responses.observe_reply(f"older:{i}", 701.0 + i / 4)
    d.called_in = keep + 100
    released = d._notification(resolved, a)
    assert released.staffing is not None and released.staffing.stand_down == 100
    assert thread_text(released).endswith(
        f"Stand down 100 of the {keep + 100} called in; keep {keep} until the backlog of 600 is cleared."
    )
    d.called_in = None
    assert thread_text(d._notification(resolved, a)).endswith(
        f"Stand down those called in for the surge but {keep}, until the backlog of 600 is cleared."
    )
    # the headline does not say "back to normal" while 600 wait: a reader must not stand people down
    assert note.summary.startswith("klm: the surge is over after ") and "but 600 mentions still wait" in note.summary
    assert "back to normal" not in note.summary


def test_a_checkpoint_without_the_call_in_restores_it_as_unknown() -> None:
    """Not as "none called in": the resolution then says to stand down those called in."""
    d = BrandDetection("klm", load_settings(env={}))
    state = {k: v for k, v in pickle.loads(pickle.dumps(d)).__dict__.items() if k != "called_in"}
    restored = BrandDetection.__new__(BrandDetection)
    restored.__setstate__(state)
    assert d.called_in == 0 and restored.called_in is None


def test_a_share_waits_for_no_reply() -> None:
    d = BrandDetection("klm", load_settings(env={}))
    complaint = TextScore("en", 0.9, True, "complaint")
    post = Mention(id="t:1", brand="klm", platform="twitter", ts=100.0, text="my flight is cancelled", author_id="u1")
    d.observe_mention(post, complaint)
    d.observe_mention(Mention(**{**msgspec.structs.asdict(post), "id": "t:2", "kind": "share"}), complaint)
    d.observe_mention(Mention(**{**msgspec.structs.asdict(post), "id": "t:3", "text": "RT @u1: my flight"}), complaint)
    d.observe_mention(Mention(**{**msgspec.structs.asdict(post), "id": "t:4"}), complaint)
    d.responses.observe_reply("t:4", 150.0)
    assert d.responses.figures(200.0).backlog == 1  # t:1 waits; its shares do not


def test_languages_rounding_to_zero_are_left_out() -> None:
    d = BrandDetection("klm", load_settings(env={}))
    change = dataclasses.replace(_change(1200.0), type="updated", languages={"en": 0.9996, "und": 0.0004})
    n = d._notification(change, d.detector.update(_bucket(1200.0, twitter=5, facebook=0)))
    assert n.languages == {"en": 1.0}


def test_a_noisy_plateau_has_no_load_trend() -> None:
    """The staffing forecast's trend is fitted over the last hour: a crisis plateau with minute-to-minute
    noise is flat, where the difference of two single buckets swung by thousands per hour."""
    rng = random.Random(7)
    d = BrandDetection("klm", load_settings(env={}))
    for i in range(90):
        n = rng.randint(60, 120)  # 3,600-7,200/h around a flat 5,400/h
        d.on_bucket(_bucket(60.0 * i, twitter=n, facebook=0))
    assert d._load(_change(5400.0), d.responses.figures(5400.0)).trend_per_hour == 0.0
    for i in range(90, 150):
        d.on_bucket(_bucket(60.0 * i, twitter=90 + 2 * (i - 90), facebook=0))  # +7,200/h per hour
    trend = d._load(_change(9000.0), d.responses.figures(9000.0)).trend_per_hour
    assert trend == pytest.approx(7200.0, rel=0.05)


def test_the_summary_speaks_of_the_signals_firing_now() -> None:
    """An update after the volume calmed does not say "mentions spiking" (the incident's signals
    still list every signal seen, for the title), nor does one where the volume detector still fires
    on an hours-long excess while the load in the sentence is back to normal."""
    opened = dataclasses.replace(
        _change(1200.0), signals=("volume", "negativity", "topic"), firing=("volume", "negativity", "topic")
    )
    assert _summary(opened).startswith(
        "klm: mentions spiking, anger rising and a new topic emerging (ash): 900/h against 100/h normal"
    )
    calmed = dataclasses.replace(
        opened, type="updated", seq=5, firing=("negativity",), observed_per_hour=110.0, ratio=1.1
    )
    assert _summary(calmed) == "klm: anger rising: 110/h against 100/h normal, 70% negative (normally 25%)."
    long_excess = dataclasses.replace(calmed, firing=("volume", "negativity"))
    assert _summary(long_excess) == _summary(calmed)
    above = dataclasses.replace(long_excess, observed_per_hour=150.0, ratio=1.5)
    assert _summary(above).startswith("klm: mentions above normal and anger rising: 150/h against 100/h")
    easing = dataclasses.replace(calmed, firing=())
    assert _summary(easing).startswith("klm: still elevated: 110/h")
    diluted = dataclasses.replace(calmed, negativity_share=0.08, baseline_share=0.18, recent_negativity_share=0.61)
    assert _summary(diluted).endswith("61% negative (normally 18%).")  # not "anger rising ... 8% negative"
    below = dataclasses.replace(easing, observed_per_hour=40.0, ratio=0.4)  # said "still elevated: 40/h"
    assert _summary(below).startswith("klm: still open, the load back to normal: 40/h against 100/h normal")
    late_open = dataclasses.replace(opened, started_at=opened.at - 3 * 3600)  # raised after a long run
    assert "a new topic emerging (ash)" in _summary(late_open)
    hours_in = dataclasses.replace(opened, type="updated", seq=9, at=opened.detected_at + 3 * 3600)
    assert _summary(hours_in).startswith("klm: mentions spiking, anger rising and the topic still trending (ash):")


def test_the_summary_says_the_rates_as_the_figures_below_it_do() -> None:
    """The headline and the Volume line format the same one-decimal figure: 340.54/h is not "341"
    in one and "340" in the other, and a sparse brand's 4.25/h is 4.2 in both."""
    from daemon.notification import per_hour_text

    for observed, expected in ((6120.0, 340.54), (12.0, 4.25)):
        c = dataclasses.replace(
            _change(0.0), observed_per_hour=observed, expected_per_hour=expected, firing=("volume",)
        )
        figure = f"{per_hour_text(round(observed, 1))}/h against {per_hour_text(round(expected, 1))}/h normal"
        assert figure in _summary(c)


def test_the_summary_says_why_a_watch_is_only_a_watch() -> None:
    c = dataclasses.replace(_change(0.0), firing=("volume", "topic"), flags=("coordinated",))
    assert "likely a coordinated campaign (one message copied by many accounts): 900/h" in _summary(c)
    assert "after one post went viral" in _summary(dataclasses.replace(c, flags=("viral",)))
    assert "campaign" not in _summary(dataclasses.replace(c, flags=()))


def test_the_staffing_load_carries_the_incident_peak() -> None:
    """The growing forecast's ceiling is measured from the incident's peak, not only from now."""
    d = BrandDetection("klm", load_settings(env={}))
    d.on_bucket(_bucket(0.0, twitter=5, facebook=2))
    change = dataclasses.replace(_change(60.0), peak_per_hour=5000.0)
    assert d._load(change, d.responses.figures(60.0)).peak_per_hour == 5000.0


def _trend_after(shape: list[int]) -> float:
    """The staffing load's trend after one bucket per minute of these mentions (with some noise)."""
    rng = random.Random(3)
    d = BrandDetection("klm", load_settings(env={}))
    for i, n in enumerate(shape):
        d.on_bucket(_bucket(60.0 * i, twitter=n + rng.randint(-12, 12), facebook=0))
    end = 60.0 * len(shape)
    return d._load(_change(end), d.responses.figures(end)).trend_per_hour


def test_a_surge_past_its_peak_is_not_forecast_to_grow() -> None:
    """The last hour's slope still held the ramp after the peak: the demo's forecast grew (+2,152/h
    per hour, 669 people in 3 h) at 07:01 while the load had fallen from 5,940/h to 4,724/h. The
    growth is carried on only while the last half hour still rises; a fall after it is the trend."""
    ramp = [10 + 3 * i for i in range(30)]  # 600/h to 5,820/h in half an hour
    assert _trend_after(ramp) > 0
    assert _trend_after(ramp + [100] * 30) == 0.0  # a plateau: no clear trend, not "still growing"
    falling = _trend_after(ramp + [round(100 - 1.6 * i) for i in range(30)])  # down to 3,100/h
    assert falling < 0 and falling == pytest.approx(-5800.0, rel=0.15)
    # a decay that turns up again is no longer easing (nor yet a growth over the hour)
    assert _trend_after([100 - 2 * i for i in range(40)] + [20 + 2 * i for i in range(20)]) == 0.0
