"""The balanced stream of bench/bench_scaleout.py: valid events, similar brands, even partitions."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import msgspec
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_scaleout import balanced_stream, partition_of

from daemon.events import Mention, decode
from daemon.kafka.produce_command import brand_key
from daemon.simulate import generate


@pytest.fixture(scope="module")
def source() -> list[bytes]:
    return list(generate("normal", days=1, seed=3, scale=0.2))


def test_events_are_valid_with_lang_and_brands_are_similar(source: list[bytes]) -> None:
    lines, volume = balanced_stream(source, 60, 6)
    events = [decode(line) for line in lines]
    assert all(isinstance(m, Mention) and m.lang for m in events)
    assert Counter(m.brand for m in events if isinstance(m, Mention)) == volume
    assert len(volume) == 60
    # at this small scale the extremes are makpetrol (one account) and the troll's account
    assert max(volume.values()) < 1.8 * min(volume.values())


def test_every_partition_gets_the_same_brands_and_a_similar_share(source: list[bytes]) -> None:
    for brands, partitions in ((24, 6), (60, 6), (12, 4)):
        lines, volume = balanced_stream(source, brands, partitions)
        per_brand = Counter(partition_of(b.encode(), partitions) for b in volume)
        assert sorted(per_brand.values()) == [brands // partitions] * partitions
        # the key the bench produces with, hashed as kafka-python's default partitioner does
        per_message = Counter(partition_of(brand_key(line) or b"", partitions) for line in lines)
        mean = len(lines) / partitions
        assert max(per_message.values()) < 1.1 * mean, (brands, partitions, per_message)


def test_brand_replies_stay_with_the_account_they_answer(source: list[bytes]) -> None:
    lines, _ = balanced_stream(source, 24, 6)
    objs = [msgspec.json.decode(line) for line in lines]
    brand_of = {o["id"]: o["brand"] for o in objs}
    replies = [o for o in objs if o["author"].get("is_brand") and o.get("in_reply_to") in brand_of]
    assert len(replies) > 100
    same = sum(o["brand"] == brand_of[o["in_reply_to"]] for o in replies)
    assert same > 0.99 * len(replies)
    for o in objs:
        if o["author"].get("is_brand"):
            assert o["author"]["id"] == f"brand:{o['brand']}"


def test_deterministic(source: list[bytes]) -> None:
    assert balanced_stream(source, 24, 6) == balanced_stream(source, 24, 6)


def test_too_few_brands_is_an_error(source: list[bytes]) -> None:
    with pytest.raises(ValueError, match="fewer than"):
        balanced_stream(source, 3, 6)
