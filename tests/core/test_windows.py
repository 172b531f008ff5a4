"""Event-time windows: buckets, watermark, allowed lateness, late counting, brand replies, author cap."""

from __future__ import annotations

import pickle

import msgspec
import pytest

from daemon.enrich import TextScore
from daemon.events import Mention
from daemon.windows import COPY_PERIOD_SECONDS, BrandWindows, Bucket, WindowSettings, _author_key

NEG = TextScore("en", 0.9, True, "complaint")
POS = TextScore("en", 0.1, False, "praise")


def mention(i: int, ts: float, author: str | None = None, is_brand: bool = False) -> Mention:
    return Mention(
        id=f"t:{i}",
        brand="klm",
        platform="twitter",
        ts=ts,
        text=f"text {i}",
        author_id=author or f"u{i}",
        is_brand=is_brand,
    )


def feed(w: BrandWindows, items: list[tuple[Mention, TextScore]]) -> list:
    out = []
    for m, s in items:
        out += w.add(m, s, ["ash", "cancelled"])
    return out


def test_buckets_close_when_watermark_passes_their_end() -> None:
    w = BrandWindows("klm", WindowSettings(bucket_seconds=60, allowed_lateness_seconds=120))
    closed = feed(w, [(mention(1, 0), NEG), (mention(2, 59), POS), (mention(3, 170), NEG)])
    assert closed == []  # watermark 50: bucket [0, 60) still open
    closed = feed(w, [(mention(4, 185), NEG)])  # watermark 65
    assert [(b.start, b.mentions, b.negative) for b in closed] == [(0, 2, 1)]


def test_late_within_allowed_lateness_counts_and_beyond_is_late() -> None:
    w = BrandWindows("klm", WindowSettings(bucket_seconds=60, allowed_lateness_seconds=120))
    closed = feed(w, [(mention(1, 0), NEG), (mention(2, 150), NEG), (mention(3, 10), NEG)])
    assert closed == [] and w.stats.late == 0  # 140 s late, but bucket [0, 60) is still open
    closed = feed(w, [(mention(4, 400), NEG), (mention(5, 20), NEG)])
    assert w.stats.late == 1  # bucket [0, 60) already closed
    assert [b.mentions for b in closed][:1] == [2]


def test_empty_buckets_are_emitted_in_order() -> None:
    w = BrandWindows("klm", WindowSettings(bucket_seconds=60, allowed_lateness_seconds=0))
    closed = feed(w, [(mention(1, 5), NEG), (mention(2, 305), NEG)])
    assert [b.start for b in closed] == [0, 60, 120, 180, 240]
    assert [b.mentions for b in closed] == [1, 0, 0, 0, 0]
    assert [b.start for b in w.flush()] == [300]


def test_brand_replies_are_not_customer_mentions() -> None:
    w = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0))
    feed(w, [(mention(1, 1), NEG), (mention(2, 2, author="klm", is_brand=True), NEG)])
    [b] = w.flush()
    assert b.mentions == 1 and b.replies == 1 and b.negative == 1


def test_one_author_flood_is_capped_per_hour() -> None:
    w = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0, author_cap_per_hour=5))
    buckets = feed(w, [(mention(i, 60 + i * 20, author="troll"), NEG) for i in range(150)])
    buckets += w.flush()
    total = sum(b.mentions for b in buckets)
    capped = sum(b.capped for b in buckets)
    assert total <= 5 * 2  # 150 posts over ~50 minutes: at most the cap per event-time hour
    assert total + capped == 150


def test_terms_count_once_per_author_and_near_duplicates_are_seen() -> None:
    w = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0))
    said = ["ash", "cancelled", "again"]
    for i in range(3):
        w.add(mention(i, 1, author="same"), NEG, said)
    for i in range(3, 6):
        w.add(mention(i, 2), NEG, said)
    [b] = w.flush()
    assert b.terms["ash"] == 4  # one author counts once
    assert b.near_duplicates == 3  # same text from three other authors
    assert b.authors == 4 and b.max_author == 3


def test_copies_are_seen_across_buckets_and_through_varied_hashtags_and_handles() -> None:
    """A campaign of a few copies a minute: each bucket holds one or two, the last ten minutes many."""
    w = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0))
    words = ["exploits", "cabin", "crew", "stop", "flying"]
    variants = ["@KLM {} #boycott", "#KLM {} #fairpay", "KLM {}", "{} #stopflying #boycott"]
    closed = []
    for i in range(12):  # one a minute, each from a new account
        text = variants[i % 4].format("exploits its cabin crew, stop flying")
        tags = [t for t in ("boycott", "fairpay", "stopflying") if "#" + t in text]
        m = msgspec.structs.replace(mention(i, 60.0 * i + 1), text=text)
        closed += w.add(m, NEG, [*words, *(["klm"] if "KLM" in text else []), *tags])
    closed += w.flush()
    assert sum(b.near_duplicates for b in closed) == 11  # all but the first
    # one message: its copies so far in each five-minute copy period (the first post is no copy)
    assert [b.top_copies for b in closed] == [0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 1, 2]
    short = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0))
    for i in range(5):  # "thanks @klm, great crew" from many people is not a campaign
        short.add(mention(i, 1), POS, ["thanks", "great"])
    assert short.flush()[0].near_duplicates == 0


def test_copies_older_than_two_periods_are_forgotten() -> None:
    w = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0))
    said = ["ash", "cancelled", "again"]
    w.add(mention(0, 1), NEG, said)
    w.add(mention(1, 2 * COPY_PERIOD_SECONDS + 1), NEG, said)  # ten minutes on: a coincidence
    w.add(mention(2, 2 * COPY_PERIOD_SECONDS + 2), NEG, said)
    assert sum(b.near_duplicates for b in w.flush()) == 1


def test_shares_count_as_mentions_but_are_neither_copies_nor_waiting_for_a_reply() -> None:
    w = BrandWindows("klm", WindowSettings(allowed_lateness_seconds=0))
    w.add(mention(0, 1), NEG, ["ash"])
    for i in range(1, 4):  # retweets of it, marked as the contract says or only by their text
        m = mention(i, 2)
        m = msgspec.structs.replace(m, kind="share") if i < 3 else msgspec.structs.replace(m, text="RT @u0: text 0")
        w.add(m, NEG, ["ash"])
    [b] = w.flush()
    assert (b.mentions, b.negative, b.terms["ash"]) == (4, 4, 4)
    assert b.near_duplicates == 0  # a retweet ring is not a copy-paste campaign
    assert b.by_intent == {"complaint": 1, "share": 3}


def test_a_bucket_from_a_checkpoint_with_the_retired_actionable_count_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Open buckets are in checkpoints; before 2026-12 they also held `actionable`."""
    b = Bucket("klm", 60.0, 60, mentions=3, by_intent={"complaint": 2})
    assert pickle.loads(pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL)) == b
    new_obj, args, (_, slots), *_ = b.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    # the pickle an older version wrote: the same slots, and the retired count among them
    monkeypatch.setattr(
        Bucket, "__reduce_ex__", lambda self, protocol: (new_obj, args, (None, {**slots, "actionable": 2}))
    )
    blob = pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    old = pickle.loads(blob)
    assert old == b and not hasattr(old, "actionable")


def test_a_bucket_from_a_checkpoint_before_copies_were_counted_per_brand_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before 2026-12 a bucket found its own copies (`_texts`) and knew no `top_copies`."""
    b = Bucket("klm", 60.0, 60, mentions=3, near_duplicates=1)
    new_obj, args, (_, slots), *_ = b.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
    slots = {k: v for k, v in slots.items() if k not in ("top_copies", "copy_sample")}
    monkeypatch.setattr(
        Bucket, "__reduce_ex__", lambda self, protocol: (new_obj, args, (None, {**slots, "_texts": {}}))
    )
    blob = pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    old = pickle.loads(blob)
    assert old == b and (old.top_copies, old.copy_sample) == (0, None) and not hasattr(old, "_texts")
    w = BrandWindows("klm", WindowSettings())
    state = w.__reduce_ex__(pickle.HIGHEST_PROTOCOL)[2]
    slots = {k: v for k, v in state[1].items() if not k.startswith("_cop")}
    fresh = BrandWindows.__new__(BrandWindows)
    fresh.__setstate__((None, slots))  # a brand's windows from before: copies are remembered from here on
    assert fresh.add(mention(1, 0.0), NEG, ["ash", "cancelled", "again"]) == []


def test_a_first_event_from_long_ago_does_not_build_millions_of_buckets() -> None:
    w = BrandWindows("klm", WindowSettings(bucket_seconds=60, allowed_lateness_seconds=0))
    w.add(mention(1, 0.0), NEG, [])  # 1970
    closed = w.add(mention(2, 1_271_396_530.0), NEG, [])  # 2010
    assert closed[0].start == 0.0 and closed[0].mentions == 1
    assert len(closed) <= 7 * 24 * 60 + 2
    assert closed[-1].end <= 1_271_396_530.0


def test_hourly_caps_resume_from_a_checkpoint_of_either_key_layout() -> None:
    import pickle

    settings = WindowSettings(allowed_lateness_seconds=0, author_cap_per_hour=5)
    w = BrandWindows("klm", settings)
    feed(w, [(mention(i, 10.0 + i, author="troll"), NEG) for i in range(3)])
    old = pickle.loads(pickle.dumps(w))
    old._author_hour = {"troll": 3}  # the caps as checkpoints before int keys held them
    older = pickle.loads(pickle.dumps(w))
    older._author_hour = {_author_key("troll"): 3}  # ...and before AuthorCounts held them
    for restored in (pickle.loads(pickle.dumps(w)), pickle.loads(pickle.dumps(old)), pickle.loads(pickle.dumps(older))):
        buckets = feed(restored, [(mention(10 + i, 20.0 + i, author="troll"), NEG) for i in range(5)])
        buckets += restored.flush()
        assert sum(b.mentions for b in buckets) == 5 and sum(b.capped for b in buckets) == 3


def test_author_counts_agree_with_a_dict_across_merges() -> None:
    import pickle
    import random

    from daemon.author_counts import AuthorCounts

    rng = random.Random(7)
    counts, plain = AuthorCounts(), {}
    for _ in range(5_000):
        key = rng.randrange(1 << 32) if rng.random() < 0.5 else rng.choice([*plain] or [1])
        want = plain.get(key, 0) + 1
        assert counts.add(key, limit=20) == want
        if want <= 20:
            plain[key] = want
        if rng.random() < 0.01:
            counts = pickle.loads(pickle.dumps(counts))
    assert len(counts) == len(plain)
    assert all(counts.get(k) == n for k, n in plain.items())


def test_author_counts_stop_tracking_new_authors_at_capacity() -> None:
    from daemon.author_counts import AuthorCounts

    counts = AuthorCounts()
    assert [counts.add(k, capacity=3) for k in (1, 2, 3, 4, 4, 1)] == [1, 1, 1, 1, 1, 2]
    assert len(counts) == 3
