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
    assert "a new mention waits about" in f.breach_forecast or "no brand replies" in f.breach_forecast


def test_breach_forecast_when_arrivals_outrun_replies() -> None:
    t = _tracker(breach_after="30m")
    # 600 mentions per hour for an hour, replies at 300 per hour, FCFS.
    for i in range(600):
        t.observe_mention(f"m{i}", 6.0 * i, "twitter")
    for j in range(300):
        t.observe_reply(f"m{j}", 12.0 * j + 11.0)
    f = t.figures(now=3600.0)
    assert f.backlog == 300
    # 300 waiting, 300/h out: a new mention waits an hour (a projection, said as one).
    assert f.breach_forecast == (
        "at the current reply rate (300/h) a new mention waits about 60 minutes for a first reply (limit 30 minutes)"
    )


def test_a_projected_wait_beyond_the_tracking_age_says_such_mentions_count_as_dropped() -> None:
    t = _tracker(breach_after="30m", max_age="2h")
    # 600 arrive in the last half hour, 20 answered: at 40/h a new mention waits 14 hours
    for i in range(600):
        t.observe_mention(f"m{i}", 1800.0 + 3.0 * i, "twitter")
    for j in range(20):
        t.observe_reply(f"m{j}", 1800.0 + 90.0 * j + 5.0)
    f = t.figures(now=3600.0)
    assert f.breach_forecast == (
        "at the current reply rate (40/h) a new mention waits about 14 hours for a first reply (limit 30 minutes),"
        " past the 2 hours after which it counts as dropped unanswered"
    )


def test_breach_in_the_future() -> None:
    t = _tracker(breach_after="30m")
    # last half hour: 400/h arriving, 200/h answered, backlog 20: passes 30 min in (100-20)/200 h = 24 min
    for i in range(200):
        t.observe_mention(f"m{i}", 1800.0 + 9.0 * i, "twitter")
    for j in range(100):
        t.observe_reply(f"m{j}", 1800.0 + 18.0 * j)
    f = t.figures(now=3600.0)
    assert f.backlog == 100
    assert f.breach_forecast == (
        "at the current reply rate (198/h) a new mention waits about 30 minutes for a first reply (limit 30 minutes)"
    )
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


def test_every_brand_reply_counts_in_the_reply_rate() -> None:
    """A team clearing its backlog oldest first answers mentions past max_age (or past the memory
    bound): those replies are work done, and the breach forecast divides the backlog by the rate."""
    t = _tracker(max_age="1h", window="1h")
    for i in range(400):  # one a minute for 400 minutes: the first 340 forgotten by age
        t.observe_mention(f"m{i}", 60.0 * i, "twitter")
    now = 60.0 * 400
    for j in range(300):  # the last half hour: 300 replies to mentions of 5-6 hours ago
        t.observe_reply(f"m{j}", now - 1800.0 + 6.0 * (j + 1))
    t.observe_reply("m399", now)  # and one to a tracked mention, so figures are given
    t.observe_reply("m399", now)  # a follow-up to it takes nothing out of the queue
    f = t.figures(now)
    assert t.unmatched_replies == 300 and f.answered == 1
    assert f.replies_per_hour == 602.0
    # 59 waiting, 60/h arriving and 602/h going out (at 2/h, it said a new mention waits 30 hours)
    assert f.backlog == 59 and f.breach_forecast == "at current staffing the backlog of 59 clears in about 7 minutes"


def test_follow_up_replies_do_not_shorten_the_predicted_wait() -> None:
    """Three replies to each of 100 mentions empty the queue no faster than one each."""
    figures = []
    for replies_each in (1, 3):
        t = _tracker()
        for i in range(600):
            t.observe_mention(f"m{i}", 6.0 * i, "twitter")
        for i in range(100):
            for j in range(replies_each):
                t.observe_reply(f"m{i}", 2000.0 + 16.0 * i + j)
        figures.append(t.figures(3600.0))
    assert figures[0] == figures[1]


def test_mentions_that_leave_the_backlog_unanswered_are_counted() -> None:
    """The backlog forgets a mention older than max_age or past the memory bound; the figures say
    how many left it unanswered in the last 24 hours, and why, so a shrinking backlog does not
    look answered."""
    t = _tracker(max_tracked=1000, max_age="6h", window="2h")
    for i in range(600):  # one a minute for 10 hours, the first 100 answered
        t.observe_mention(f"m{i}", 60.0 * i, "twitter")
        if i < 100:
            t.observe_reply(f"m{i}", 60.0 * i + 30.0)
    f = t.figures(now=36_000.0)
    assert f.backlog == 360  # the last 6 hours
    assert (f.dropped_old, f.dropped_untracked, f.max_age_minutes) == (140, 0, 360)
    assert t.figures(now=35_999.0).dropped_old == 140  # one aged out by then is not yet pruned
    for i in range(600, 2000):  # a burst: 1,400 more in the next minute, past the bound of 1,000
        t.observe_mention(f"m{i}", 36_000.0 + i / 100.0, "twitter")
    f = t.figures(now=36_060.0)
    assert f.backlog == 1000 and (f.dropped_old, f.dropped_untracked) == (141, 759)
    # a day later only the drops of the last 24 hours are said: the 1,000 that aged out since
    t.observe_mention("late", 36_060.0 + 86_400.0, "twitter")
    f = t.figures(now=36_060.0 + 86_400.0)
    assert f.backlog == 1 and (f.dropped_old, f.dropped_untracked) == (1000, 0)
    assert t.forgotten == 140 + 1 + 759 + 1000  # the lifetime count, as before
    assert len(t._dropped) <= 24


def test_the_drop_counts_survive_a_checkpoint_and_older_ones_restore() -> None:
    t = _tracker(max_tracked=100, max_age="1h", window="1h")
    for i in range(300):
        t.observe_mention(f"m{i}", 10.0 * i, "twitter")
    t.observe_reply("m299", 3000.0)
    f = t.figures(now=3000.0)
    assert f.dropped_untracked == 200
    assert pickle.loads(pickle.dumps(t)).figures(now=3000.0) == f
    state = t.__getstate__()
    del state["_dropped"]  # a checkpoint written before the counts
    old = ResponseTracker.__new__(ResponseTracker)
    old.__setstate__(state)
    assert old.figures(now=3000.0) == _no_drops(f)
    old.observe_mention("m300", 3010.0, "twitter")
    assert old.figures(now=3010.0).dropped_untracked == 1  # counted from the restore on


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


def _no_drops(f: ResponseFigures) -> ResponseFigures:
    """The figures but for the mentions dropped unanswered, which older checkpoints did not keep."""
    return msgspec.structs.replace(f, dropped_old=0, dropped_untracked=0, max_age_minutes=None)


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
    state = t.__getstate__()
    columns = ("_fresh", "_sorted_keys", "_sorted_seq", "_index_base", "_ts", "_delay", "_plat")
    for name in (*columns, "_head", "_tail", "_offset", "_platforms", "_codes", "_dropped"):
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
    assert _record_per_mention_figures(events, now) == _no_drops(f)  # an old checkpoint knows none


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


def _stream(n: int = 1200) -> list[tuple[str, str, float, str]]:
    """Mentions ("m", id, ts, platform) and brand replies ("r", id, ts, ""), in arrival order: stamps
    to the millisecond, first replies after seconds to 15 minutes, some stamped before their mention
    (clock skew), some repeated, some to mentions the tracker never saw."""
    t0 = 1_271_396_530.0
    events: list[tuple[str, str, float, str]] = []
    due: dict[int, list[tuple[str, str, float, str]]] = {}
    for i in range(n):
        ts = t0 + 6.0 * i + 0.001 * (i * 7 % 1000)
        events.append(("m", f"m{i}", ts, ("twitter", "facebook", "instagram")[i % 3]))
        events.extend(due.pop(i, []))
        if i % 97 == 0:
            events.append(("r", f"x{i}", ts, ""))
        if i % 41 == 0:
            due.setdefault(i + 1, []).append(("r", f"m{i}", ts - 3.0, ""))
        elif i % 3 != 2:
            k = 1 + (i * 37) % 150
            due.setdefault(i + k, []).append(("r", f"m{i}", ts + 6.0 * k - 2.5 + 0.0007 * i, ""))
            if i % 10 == 0:
                due.setdefault(i + k + 3, []).append(("r", f"m{i}", ts + 6.0 * k + 30.0, ""))
    return events


def _feed(t: ResponseTracker, events: list[tuple[str, str, float, str]]) -> None:
    for kind, key, ts, platform in events:
        if kind == "m":
            t.observe_mention(key, ts, platform)
        else:
            t.observe_reply(key, ts)


def _id_key_column_state(t: ResponseTracker, events: list[tuple[str, str, float, str]]) -> dict[str, object]:
    """`t`'s state in the layout checkpointed up to 13ac77c, built by hand from the stream `t` saw:
    an id key column beside the index, first replies as float64 times, uint16 platform codes, a
    sorted index of some rows (the first of them forgotten since) and a dict of the ids added after."""
    mentions = [(key, ts, platform) for kind, key, ts, platform in events if kind == "m"][-len(t) :]
    first_reply: dict[str, float] = {}
    for kind, key, ts, _ in events:
        if kind == "r":
            first_reply.setdefault(key, ts)
    forgotten, spare, offset = 5, 40, 3_000_000_000  # sequence numbers past 2^31
    rows = forgotten + len(mentions) + spare
    keys = np.full(rows, 12345, dtype=np.uint64)
    ts_col = np.full(rows, np.inf)
    reply = np.full(rows, -np.inf)  # rows outside [head, tail) hold anything
    plat = np.full(rows, 7, dtype=np.uint16)
    platforms = sorted({p for _, _, p in mentions})
    fresh: dict[str, int] = {}
    for row, (key, ts, platform) in enumerate(mentions, start=forgotten):
        keys[row] = responses._id_key(key)
        ts_col[row] = ts
        reply[row] = max(ts, first_reply[key]) if key in first_reply else np.nan
        plat[row] = platforms.index(platform)
        if row >= 200:
            fresh[key] = row + offset
    order = np.argsort(keys[:200], kind="stable")
    state = t.__getstate__()
    for name in ("_fresh", "_sorted_keys", "_sorted_seq", "_index_base", "_ts", "_delay", "_plat", "_dropped"):
        state.pop(name)
    state.update(
        _keys=keys,
        _ts=ts_col,
        _reply=reply,
        _plat=plat,
        _sorted_keys=keys[:200][order],
        _sorted_seq=order.astype(np.int64) + offset,
        _fresh=fresh,
        _head=forgotten,
        _tail=forgotten + len(mentions),
        _offset=offset,
        _platforms=platforms,
        _codes={p: i for i, p in enumerate(platforms)},
        _targets={"twitter": 1500.0},  # parsed targets, cached per brand
    )
    return state


def test_a_checkpoint_with_an_id_key_column_restores_with_the_same_figures() -> None:
    events = _stream()
    t = _tracker(max_tracked=300, max_age="6h", window="1h")
    _feed(t, events[:-40])
    restored = ResponseTracker.__new__(ResponseTracker)
    restored.__setstate__(pickle.loads(pickle.dumps(_id_key_column_state(t, events[:-40]))))
    last = events[-41][2]
    # what 13ac77c computed from the same stream, to the digit, but for the reply rate and the
    # forecasts made from it: every reply that takes a mention out of the queue counts since, those
    # to ids the tracker never saw too, but not a follow-up to one already answered
    expected = [
        ResponseFigures(
            response_rate=0.5067,
            median_first_response_minutes=11.17,
            backlog=148,
            breach_forecast="at current staffing the median first reply passes 30 minutes in about 20 minutes",
            target_attainment=0.76,
            mentions=300,
            answered=152,
            replies_per_hour=408.0,
            window_minutes=60,
        ),
        ResponseFigures(
            response_rate=0.36,
            median_first_response_minutes=10.97,
            backlog=96,
            breach_forecast="at current staffing the backlog of 96 clears in about 60 minutes",
            target_attainment=1.0,
            mentions=150,
            answered=54,
            replies_per_hour=400.0,
            window_minutes=60,
        ),
        ResponseFigures(
            response_rate=0.5067,
            median_first_response_minutes=14.57,
            backlog=148,
            breach_forecast="no brand replies in the last 30 minutes; 148 mentions are waiting",
            target_attainment=0.5067,
            mentions=300,
            answered=152,
            replies_per_hour=0.0,
            window_minutes=60,
        ),
    ]
    for now, figures in zip((last, last - 900.0, last + 1800.0), expected, strict=True):
        assert restored.figures(now) == _no_drops(t.figures(now))
        # 13ac77c had no backlog by platform: it adds up to the backlog
        assert sum(restored.figures(now).backlog_by_platform.values()) == figures.backlog
        assert msgspec.structs.replace(restored.figures(now), backlog_by_platform={}) == figures
    assert len(restored) == 300 and restored._sorted_seq.dtype == np.int32
    # the rest of the stream: replies to ids of the old index and of its dict, new mentions
    _feed(t, events[-40:])
    _feed(restored, events[-40:])
    then = ResponseFigures(
        response_rate=0.5167,
        median_first_response_minutes=10.67,
        backlog=145,
        breach_forecast="at current staffing the median first reply passes 30 minutes in about 20 minutes",
        target_attainment=0.7635,
        mentions=300,
        answered=155,
        replies_per_hour=414.0,
        window_minutes=60,
    )
    assert _no_drops(restored.figures(events[-1][2])) == _no_drops(t.figures(events[-1][2]))
    assert msgspec.structs.replace(_no_drops(t.figures(events[-1][2])), backlog_by_platform={}) == then
    # the mentions dropped since the restore are counted; those before it the checkpoint did not keep
    assert restored.figures(events[-1][2]).dropped_untracked == 8
    assert t.figures(events[-1][2]).dropped_untracked == 293
    counters = ("forgotten", "unmatched_replies", "replies_seen")
    assert [getattr(restored, c) for c in counters] == [getattr(t, c) for c in counters] == [293, 13, 762]


def test_platform_codes_widen_past_256_names() -> None:
    platforms = {f"p{i}": {"target": "80/1m" if i % 2 else "80/1h"} for i in range(300)}
    t = ResponseTracker(msgspec.convert({"platforms": platforms}, StaffingSettings))
    for i in range(600):
        t.observe_mention(f"m{i}", float(i), f"p{i % 300}")
        t.observe_reply(f"m{i}", i + 300.0)  # 5 minutes: meets the 1h targets only
    assert t._plat.dtype == np.uint16 and len(t._platforms) == 300
    assert t.figures(now=1000.0).target_attainment == 0.5


def test_a_tracked_mention_costs_about_25_bytes() -> None:
    t = _tracker(max_tracked=20_000, max_age="6h", window="2h")
    idle = _tracker()
    assert idle._ts is _tracker()._ts  # brands without mentions share their empty columns
    assert idle._max_age is t._max_age  # and the parsed settings
    for i in range(100_000):
        t.observe_mention(f"m{i}", float(i), "twitter")
        if len(t._fresh) == 0:
            columns = t._ts.nbytes + t._delay.nbytes + t._plat.nbytes  # 13 bytes a row
            index = t._sorted_keys.nbytes + t._sorted_seq.nbytes  # 12 bytes a tracked mention
            assert columns <= 13 * 1.25 * 20_000 and index <= 12 * (len(t) + 1)  # + the one pruned after
        assert len(t._fresh) <= max(32, len(t) // 16)


def test_a_measured_median_is_said_as_measured() -> None:
    """Over the limit because replies were slow, not because the queue projects it: the median is reported."""
    t = _tracker(breach_after="30m")
    for i in range(100):
        t.observe_mention(f"m{i}", float(i), "twitter")
    for j in range(60):
        t.observe_reply(f"m{j}", 2000.0 + 10.0 * j)  # first replies after 33-43 minutes
    f = t.figures(now=3000.0)
    # 40 waiting, 120 replies/h: a new mention would wait 20 minutes, less than the measured median
    assert f.backlog == 40
    assert f.breach_forecast == "the median first reply takes about 40 minutes (limit 30 minutes)"


def test_a_backlog_older_than_the_window_still_has_its_reply_rate() -> None:
    """No mention in the last window, but some older ones still wait: the reply rate that says how
    fast they are answered is measured all the same (staffing sends no one home on a backlog that
    waits past the target at it)."""
    t = _tracker(max_age="6h", window="1h")
    for i in range(10):
        t.observe_mention(f"m{i}", 60.0 * i, "facebook")
    for i in range(4):
        t.observe_reply(f"m{i}", 7000.0 + 60.0 * i)
    f = t.figures(now=7300.0)
    assert f.mentions == 0 and f.backlog == 6
    assert f.replies_per_hour == 8.0  # 4 in the last half hour


def test_the_backlog_is_counted_by_platform() -> None:
    """Where the backlog waits: the staffing's backlog mix (its handle time), whatever new mentions
    come in on now."""
    t = _tracker(max_age="6h", window="1h")
    for i in range(30):
        t.observe_mention(f"t{i}", 10.0 * i, "twitter")
        t.observe_mention(f"e{i}", 10.0 * i + 1, "email")
    for i in range(25):
        t.observe_reply(f"t{i}", 400.0 + i)
    t.observe_reply("e0", 500.0)
    f = t.figures(now=600.0)
    assert f.backlog == 34 and f.backlog_by_platform == {"twitter": 5, "email": 29}
    assert _tracker().figures(now=600.0).backlog_by_platform == {}
