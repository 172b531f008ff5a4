"""What the two client backends (`kafka.client`) must agree on, against the real broker."""

from __future__ import annotations

import doctest
import time

import pytest
from kafka import TopicPartition
from kafka_helpers import PARTITIONS, _partition, read_topic

from daemon.kafka.changelog import CHECKPOINT_VERSION, Checkpoint, StateStore
from daemon.kafka.clients import ensure_topics, make_admin, make_consumer, make_producer

pytestmark = pytest.mark.kafka


def test_confluent_doctests() -> None:
    pytest.importorskip("confluent_kafka")
    from daemon.kafka import confluent_client

    assert doctest.testmod(confluent_client).failed == 0


def test_keyed_records_land_where_kafka_python_puts_them(settings_factory, unique, consumer_factory) -> None:
    """`crisisd produce` with either client: a brand's partition is the same (murmur2)."""
    s = settings_factory()
    topic = unique("keys")
    admin = make_admin(s.kafka)
    try:
        assert ensure_topics(admin, {topic: (PARTITIONS, {})}) == [topic]
        assert ensure_topics(admin, {topic: (PARTITIONS, {})}) == []  # exists: nothing to do
    finally:
        admin.close()
    producer = make_producer(s.kafka)
    brands = [f"brand{i}".encode() for i in range(40)]
    for b in brands:
        producer.send(topic, key=b, value=b"x")
    producer.flush(10)
    producer.close()
    got = {r.key: r.partition for r in read_topic(consumer_factory(), topic)}
    assert got == {b: _partition(b, PARTITIONS) for b in brands}


def test_a_reader_sees_checkpoints_written_after_its_last_read(settings_factory, unique) -> None:
    """A replica restores twice with the same reader (two rebalances): the second read must find
    the newer checkpoint, never stop at the end the first read saw."""
    s = settings_factory()
    state = unique("state")
    admin = make_admin(s.kafka)
    try:
        ensure_topics(admin, {state: (2, {"cleanup.policy": "compact"})})
    finally:
        admin.close()
    producer = make_producer(s.kafka, acks="all")
    reader = make_consumer(s.kafka, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50)
    store = StateStore(state, producer, reader, group="g", state_partitions=2)
    tps = [TopicPartition("m", 0), TopicPartition("m", 1)]
    try:

        def write(partition: int, offset: int) -> None:
            store.write(Checkpoint(version=CHECKPOINT_VERSION, topic="m", partition=partition, offset=offset,
                                   pipeline=b"p"))  # fmt: skip
            store.flush(10)

        assert store.read_latest(tps) == {tps[0]: None, tps[1]: None}
        for offset in (5, 6, 7):
            write(0, offset)
        assert store.read_latest(tps)[tps[0]].offset == 7  # type: ignore[union-attr]
        write(0, 8)
        write(1, 3)
        latest = store.read_latest(tps)
        assert latest[tps[0]].offset == 8 and latest[tps[1]].offset == 3  # type: ignore[union-attr]
    finally:
        reader.close()
        producer.close()


def test_flush_raises_when_a_send_was_not_delivered(kafka_client: str) -> None:
    """The broker goes away: the record it never acknowledges makes `flush` raise with either
    client (kafka-python's own flush only fails the future), so the runner never commits offsets
    past a lost dead letter or checkpoint, and `crisisd produce` does not report a loss as sent."""
    import msgspec
    from kafka.errors import KafkaError

    from daemon.kafka.local_broker import LocalBroker
    from daemon.kafka.settings import KafkaSettings

    with LocalBroker() as broker:
        s = msgspec.convert({"bootstrap_servers": [broker.bootstrap_servers], "client": kafka_client}, KafkaSettings)
        quick = {"delivery_timeout_ms": 2000, "request_timeout_ms": 1000, "delivery.timeout.ms": 2000}
        producer = make_producer(s, linger_ms=0, **quick)
        try:
            producer.send("t", value=b"delivered").get(10)
            producer.flush(10)  # nothing failed: no error
            broker.stop()
            producer.send("t", value=b"lost")
            with pytest.raises(KafkaError, match="1 records not delivered"):
                producer.flush(15)
            producer.flush(1)  # reported once
        finally:
            producer.close(1)


def test_a_partition_resumed_halfway_through_a_fetch_is_read_to_its_end(
    settings_factory, unique, producer_factory
) -> None:
    """kafka-python 3.0.12 never fetched again a partition paused while part of its fetched records
    were still unread and resumed after another partition's records were read (the re-keyer's and
    the runner's pauses): `clients.resume` lets it read on, with either client."""
    from daemon.kafka.clients import resume

    s = settings_factory()
    topic = unique("paused")
    admin = make_admin(s.kafka)
    try:
        ensure_topics(admin, {topic: (2, {})})
    finally:
        admin.close()
    p = producer_factory(linger_ms=5)
    for i in range(4000):
        p.send(topic, value=b"x" * 200, partition=i % 2)
    p.flush()
    c = make_consumer(s.kafka, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    c.assign(tps)
    got = {0: 0, 1: 0}
    paused_at = None
    try:
        deadline = time.monotonic() + 20
        while sum(got.values()) < 4000 and time.monotonic() < deadline:
            for tp, records in c.poll(timeout_ms=100, max_records=250).items():
                got[tp.partition] += len(records)
            if paused_at is None and 0 < got[0] < 2000:
                c.pause(tps[0])  # halfway through its fetched records
                paused_at = time.monotonic()
            elif paused_at and time.monotonic() - paused_at > 0.5 and got[1] > 0:
                resume(c, tps[0])
                paused_at = 0.0
    finally:
        c.close()
    assert got == {0: 2000, 1: 2000}
