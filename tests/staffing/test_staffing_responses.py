from __future__ import annotations

import pickle

import msgspec
import numpy as np
import pytest

from daemon.events import Mention
from daemon.notification import ResponseFigures
from daemon.staffing import responses
from daemon.staffing.responses import ResponseTracker, _km_quantile
from daemon.staffing.settings import StaffingSettings


def _tracker(**responses: object) -> ResponseTracker:
    return ResponseTracker(msgspec.convert({"responses": responses}, StaffingSettings))


def test_all_answered_quickly() -> None:
    t = _tracker()
    for i in range(100):
        t.observe_mention(f"m{i}", 10.0 * i, "twitter")
        t.observe_reply(f"m{i}", 10.0 * i + 60.0 * (1 + i % 10))  # 1..10 minutes
    f = t.figures(now=3000.0)
    assert f.response_rate == 1.0 and f.backlog == 0
    assert f.median_first_response_minutes == 5.0
    assert f.p90_first_response_minutes == 9.0
    assert f.target_attainment == 1.0  # twitter: 80/25m
    assert f.mentions == 100 and f.answered == 100


def test_censoring_keeps_the_median_honest() -> None:
    t = _tracker()
    for i in range(10):
        t.observe_mention(f"m{i}", 0.0, "facebook")
    t.observe_reply("m0", 60.0)
    t.observe_reply("m1", 120.0)
    f = t.figures(now=3600.0)
    # 8 of 10 still waiting after an hour: the median is unknown (over an hour), not 1.5 minutes.
    assert f.median_first_response_minutes is None
    assert f.response_rate == 0.2 and f.backlog == 8
    assert f.target_attainment == 0.2  # facebook 80/15m: all are decided after an hour
    assert "already takes" in f.breach_forecast or "no brand replies" in f.breach_forecast


def test_breach_forecast_when_arrivals_outrun_replies() -> None:
    t = _tracker(breach_after="30m")
    # 600 mentions per hour for an hour, replies at 300 per hour, FCFS.
    for i in range(600):
        t.observe_mention(f"m{i}", 6.0 * i, "twitter")
    for j in range(300):
        t.observe_reply(f"m{j}", 12.0 * j + 11.0)
    f = t.figures(now=3600.0)
    assert f.backlog == 300
    # 300 waiting, 300/h out: the wait is already an hour.
    assert f.breach_forecast.startswith("the median first reply already takes")


def test_breach_in_the_future() -> None:
    t = _tracker(breach_after="30m")
    # last half hour: 400/h arriving, 200/h answered, backlog 20: passes 30 min in (100-20)/200 h = 24 min
    for i in range(200):
        t.observe_mention(f"m{i}", 1800.0 + 9.0 * i, "twitter")
    for j in range(100):
        t.observe_reply(f"m{j}", 1800.0 + 18.0 * j)
    f = t.figures(now=3600.0)
    assert f.backlog == 100
    assert f.breach_forecast == "the median first reply already takes about 30 minutes (limit 30 minutes)"
    t3 = _tracker(breach_after="30m")
    for i in range(200):
        t3.observe_mention(f"m{i}", 1800.0 + 9.0 * i, "twitter")
    for j in range(180):
        t3.observe_reply(f"m{j}", 1800.0 + 10.0 * j + 5.0)
    f3 = t3.figures(now=3600.0)
    # arrivals 400/h, replies 360/h, backlog 20: (0.5 * 360 - 20) / 40 h = 4 h
    assert f3.breach_forecast == "at current staffing the median first reply passes 30 minutes in about 4 hours"


def test_backlog_clearing_sentence() -> None:
    t = _tracker()
    for i in range(50):
        t.observe_mention(f"m{i}", float(i), "twitter")
    for j in range(40):
        t.observe_reply(f"m{j}", 1000.0 + 30.0 * j)
    f = t.figures(now=2200.0)
    assert f.backlog == 10
    assert "clears in about" in f.breach_forecast


def test_memory_is_bounded_and_old_mentions_leave() -> None:
    t = _tracker(max_tracked=100, max_age="1h", window="1h")
    for i in range(1000):
        t.observe_mention(f"m{i}", float(i), "twitter")
    assert len(t) == 100 and t.forgotten == 900
    t.observe_mention("late", 10_000.0, "twitter")
    t.observe_mention("later", 10_010.0, "twitter")
    assert len(t) == 2  # the rest is older than an hour
    t.observe_reply("later", 10_020.0)
    f = t.figures(now=10_030.0)
    assert f.backlog == 1


def test_a_stream_without_brand_replies_says_nothing() -> None:
    t = _tracker()
    for i in range(100):
        t.observe_mention(f"m{i}", 10.0 * i, "twitter")
    assert t.figures(now=2000.0) == ResponseFigures()


def test_replies_to_unknown_or_repeated() -> None:
    t = _tracker()
    t.observe_mention("a", 0.0, "twitter")
    t.observe_reply("zzz", 10.0)
    t.observe_reply("a", 60.0)
    t.observe_reply("a", 600.0)  # second reply does not change the first-response time
    t.observe_mention("a", 5.0, "twitter")  # duplicate delivery
    f = t.figures(now=700.0)
    assert t.unmatched_replies == 1
    assert f.median_first_response_minutes == 1.0 and f.mentions == 1


def test_observe_routes_mentions() -> None:
    t = _tracker()
    cust = Mention(id="c1", brand="klm", platform="twitter", ts=0.0, text="where is my bag?", author_id="u")
    reply = Mention(
        id="b1",
        brand="klm",
        platform="twitter",
        ts=120.0,
        text="DM us",
        author_id="klm",
        is_brand=True,
        kind="reply",
        in_reply_to="c1",
    )
    t.observe(cust, needs_reply=True)
    t.observe(reply, needs_reply=False)
    assert t.figures(now=200.0).median_first_response_minutes == 2.0


def test_pickle_round_trip() -> None:
    t = _tracker()
    t.observe_mention("a", 0.0, "twitter")
    t2 = pickle.loads(pickle.dumps(t))
    t2.observe_reply("a", 30.0)
    assert t2.figures(now=60.0).answered == 1 and t.figures(now=60.0).answered == 0


def test_empty() -> None:
    assert _tracker().figures(now=0.0).response_rate is None


def test_km_matches_plain_median_without_censoring() -> None:
    rng = np.random.default_rng(1)
    x = rng.exponential(300.0, 1001)
    assert _km_quantile(x, np.ones(1001, bool), 0.5) == pytest.approx(np.median(x))


def test_settings_can_be_replaced_on_reload() -> None:
    t = _tracker(window="2h")
    for i in range(10):
        t.observe_mention(f"m{i}", 600.0 * i, "twitter")  # one every 10 minutes
    t.observe_reply("m0", 60.0)
    assert t.figures(now=5400.0).mentions == 10
    t.settings = msgspec.convert({"responses": {"window": "30m"}}, StaffingSettings)
    assert t.figures(now=5400.0).mentions == 4  # 3600..5400


def _record_per_mention_figures(events: list[tuple[str, str, float, str]], now: float) -> ResponseFigures:
    """The same stream through a tracker rebuilt from the older checkpoint layout (id -> record)."""
    t = _tracker(max_tracked=300, max_age="1h", window="1h")
    records: dict[str, list[float | str]] = {}
    replies = []
    for kind, key, ts, platform in events:
        if kind == "m":
            records.setdefault(key, [ts, platform, float("nan")])
        elif key in records and records[key][2] != records[key][2]:
            records[key][2] = max(float(records[key][0]), ts)
            replies.append(ts)
    old = {k: v for k, v in records.items() if float(v[0]) >= now - 3600.0}
    state = dict(vars(t))
    columns = ("_fresh", "_keys", "_sorted_keys", "_sorted_seq", "_ts", "_reply", "_plat")
    for name in (*columns, "_head", "_tail", "_offset", "_platforms", "_codes"):
        state.pop(name)
    state["_records"] = dict(list(old.items())[-300:])
    state["settings"] = state.pop("_settings")
    state["_replies"] = replies
    state["replies_seen"] = len(replies)
    restored = ResponseTracker.__new__(ResponseTracker)
    restored.__setstate__(state)
    return restored.figures(now)


def test_columns_compact_and_keep_rows_matched_to_ids() -> None:
    # thousands of mentions through a small bound: the columns are compacted and regrown many
    # times; replies still land on their own mention, and a checkpoint restores it exactly
    t = _tracker(max_tracked=300, max_age="1h", window="1h")
    events: list[tuple[str, str, float, str]] = []
    for i in range(5000):
        platform = ("twitter", "facebook", "instagram")[i % 3]
        events.append(("m", f"m{i}", 2.0 * i, platform))
        t.observe_mention(f"m{i}", 2.0 * i, platform)
        if i % 4 == 0 and i >= 50:
            events.append(("r", f"m{i - 50}", 2.0 * i, ""))
            t.observe_reply(f"m{i - 50}", 2.0 * i)
    assert len(t) == 300 and len(t._ts) <= 1024
    assert t.forgotten == 4700 - sum(1 for j in range(4700) if j % 4 == 2)  # the unanswered dropped
    now = 2.0 * 5000
    f = t.figures(now)
    assert f.mentions == 300 and f.answered == sum(1 for j in range(4700, 4950) if j % 4 == 2)
    again = pickle.loads(pickle.dumps(t))
    assert again.figures(now) == f and pickle.dumps(again) == pickle.dumps(t)
    assert _record_per_mention_figures(events, now) == f


def test_settings_reload_changes_targets_at_once() -> None:
    t = _tracker()
    for i in range(10):
        t.observe_mention(f"m{i}", 60.0 * i, "twitter")
        t.observe_reply(f"m{i}", 60.0 * i + 20 * 60.0)  # 20 minutes
    assert t.figures(now=1800.0).target_attainment == 1.0  # twitter: 80/25m
    t.settings = msgspec.convert({"platforms": {"twitter": {"target": "80/15m"}}}, StaffingSettings)
    assert t.figures(now=1800.0).target_attainment == 0.0


def test_the_sorted_id_index_finds_what_the_dict_would(monkeypatch: pytest.MonkeyPatch) -> None:
    # a big brand: most ids are found by binary search of their keys, not in a dict of strings
    def run() -> tuple[ResponseFigures, int, int, int]:
        t = _tracker(max_tracked=3000, max_age="6h", window="2h")
        for i in range(20_000):
            t.observe_mention(f"m{i}", 1.0 * i, ("twitter", "facebook")[i % 2])
            t.observe_mention(f"m{i - 7}", 1.0 * i, "twitter")  # a duplicate delivery: ignored
            if i % 3 == 0:
                t.observe_reply(f"m{i - (i % 4000)}", 1.0 * i + 1)
        assert len(t) == 3000
        return t.figures(20_000.0), t.unmatched_replies, t.forgotten, t.replies_seen

    indexed = run()
    monkeypatch.setattr(responses, "_FRESH_MIN", 10**9)  # every id stays in the dict
    assert run() == indexed
