"""`crisisd produce`, the notification log, the changelog reader and the local broker."""

from __future__ import annotations

import doctest
import time

import msgspec
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka_helpers import crisisd, note, read_topic

from daemon.kafka import changelog, deadletter, local_broker, nflog, produce_command, run_command, settings
from daemon.kafka.changelog import Checkpoint, StateStore
from daemon.kafka.nflog import CLAIMED, LoggedNotifier, NotificationLog
from daemon.kafka.run_command import FileNotifier
from daemon.notification import Notification
from notifiers.base import Delivery


@pytest.mark.parametrize("module", [changelog, deadletter, local_broker, nflog, produce_command, run_command, settings])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


@pytest.mark.kafka
def test_produce_keys_by_brand_and_passes_garbage_through(bootstrap, topic_factory, consumer_factory, tmp_path) -> None:
    topic = topic_factory(partitions=3)
    f = tmp_path / "in.jsonl"
    f.write_bytes(b'{"id": "1", "brand": "KLM", "text": "a"}\n\nnot json\n{"id": "2", "brand": "bol"}\n[1]\n')
    done = crisisd("produce", str(f), "--topic", topic, "--bootstrap-servers", bootstrap, env={"PATH": ""})
    assert done.returncode == 0, done.stderr
    assert b"produced 4 messages" in done.stderr and b"2 without a brand key" in done.stderr
    records = read_topic(consumer_factory(), topic)
    assert sorted((r.key or b"", r.value) for r in records) == sorted(
        [
            (b"klm", b'{"id": "1", "brand": "KLM", "text": "a"}'),
            (b"", b"not json"),
            (b"bol", b'{"id": "2", "brand": "bol"}'),
            (b"", b"[1]"),
        ]
    )


def test_produce_without_bootstrap_servers_exits_2(tmp_path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text("{}\n")
    done = crisisd("produce", str(f), "--topic", "t", env={"PATH": ""})
    assert done.returncode == 2
    assert b"kafka.bootstrap_servers: not configured" in done.stderr


class Count:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def send(self, n: Notification) -> Delivery:
        self.sent.append(n.seq)
        return Delivery.done()

    def close(self) -> None:
        pass


def replica_log(bootstrap: str, topic: str, name: str) -> NotificationLog:
    """Replica `name`'s notification log, reading."""
    log = NotificationLog(
        topic,
        KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=50),
        KafkaProducer(bootstrap_servers=bootstrap),
        replica=name,
        group="crisisd",
    )
    log.start()
    return log


@pytest.mark.kafka
def test_a_notification_one_replica_delivered_is_not_sent_by_another(bootstrap, topic_factory, tmp_path) -> None:
    topic = topic_factory("nflog")

    a, b = replica_log(bootstrap, topic, "a"), replica_log(bootstrap, topic, "b")
    try:
        sink_a, sink_b = Count(), Count()
        assert LoggedNotifier(sink_a, a).send(note(1)).ok
        b.mark_takeover()  # b takes the partition over and re-hands #1, then #2
        assert LoggedNotifier(sink_b, b).send(note(1)).ok
        assert LoggedNotifier(sink_b, b).send(note(2)).ok
        assert (sink_a.sent, sink_b.sent) == ([1], [2])

        # a crash between the claim and the send: the next one asks the receiver (a file here)
        path = tmp_path / "notified.jsonl"
        b.record("klm-1", 3, CLAIMED)  # claimed, never sent
        a.mark_takeover()
        assert LoggedNotifier(FileNotifier(path), a).send(note(3)).ok
        b.record("klm-1", 4, CLAIMED)
        FileNotifier(path).send(note(4))  # sent, crashed before recording it
        a.mark_takeover()
        assert LoggedNotifier(FileNotifier(path), a).send(note(4)).ok
        assert path.read_text().count('"incident_id":"klm-1"') == 2  # #3 and #4, once each
    finally:
        a.stop()
        b.stop()


class Addressed(Count):
    """A receiver that says where it put each incident (the Slack notifier: the root's channel and ts)."""

    def address(self, incident_id: str) -> str:
        return f"C0CRISIS 1271300000.{len(self.sent):06d}"


@pytest.mark.kafka
def test_the_log_says_where_each_incident_was_delivered(bootstrap, topic_factory) -> None:
    """Another replica learns from the log where the last delivery put the incident: a takeover reads
    the root there instead of scanning the channel's history for it."""
    topic = topic_factory("nflog")

    a, b = replica_log(bootstrap, topic, "a"), replica_log(bootstrap, topic, "b")
    try:
        sink = Addressed()
        assert LoggedNotifier(sink, a).send(note(1)).ok
        assert LoggedNotifier(sink, a).send(note(2)).ok
        other = msgspec.structs.replace(note(1), incident_id="bol-1")
        assert LoggedNotifier(Count(), a).send(other).ok  # a receiver that cannot say where
        b.mark_takeover()
        assert b.sync(30.0)
        assert b.where("klm-1") == "C0CRISIS 1271300000.000002"
        assert b.where("bol-1") is None and b.where("nobody") is None
    finally:
        a.stop()
        b.stop()


@pytest.mark.kafka
def test_changelog_reads_the_newest_checkpoint_behind_a_multi_record_batch(
    bootstrap, topic_factory, consumer_factory
) -> None:
    """Tansu answers ListOffsets(latest) with the start of the last batch + 1: the reader must
    still find the newest checkpoint when several sit in one batch, and keys sharing a partition."""
    state = topic_factory("state", partitions=1, configs={"cleanup.policy": "compact"})
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    store = StateStore(state, producer, consumer_factory(), group="g", state_partitions=1)
    for offset in range(5):
        for p in (0, 1):
            store.write(Checkpoint(topic="m", partition=p, offset=offset * 10 + p, pipeline=b"x"))
    store.flush()
    latest = store.read_latest([TopicPartition("m", 0), TopicPartition("m", 1), TopicPartition("m", 2)])
    assert {tp.partition: (c.offset if c else None) for tp, c in latest.items()} == {0: 40, 1: 41, 2: None}
    producer.close()


@pytest.mark.kafka
def test_broker_keeps_headers_and_group_offsets(bootstrap, topic_factory, producer_factory, consumer_factory) -> None:
    topic = topic_factory(partitions=2)
    producer_factory().send(topic, key=b"k", value=b"v", headers=[("crisisd.reason", b"not_json")]).get(10)
    (r,) = read_topic(consumer_factory(), topic)
    assert r.headers == [("crisisd.reason", b"not_json")]
    from kafka.structs import OffsetAndMetadata

    c = consumer_factory(group_id=f"g-{topic}")
    tp = TopicPartition(topic, r.partition)
    c.commit({tp: OffsetAndMetadata(1, "", -1)})
    assert c.committed(tp) == 1


def test_local_broker_starts_and_stops() -> None:
    b = local_broker.LocalBroker()
    try:
        b.start()
    except local_broker.BrokerError as exc:  # pragma: no cover
        pytest.skip(str(exc))
    assert b.running
    b.stop()
    deadline = time.monotonic() + 5
    while b.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not b.running


@pytest.mark.kafka
def test_each_consumer_group_delivers_its_own_notifications(bootstrap, topic_factory) -> None:
    """Two deployments (groups) sharing the notifications topic: what one delivered, the other
    still sends (to its own Slack channel, say)."""
    topic = topic_factory("nflog")

    def log_of(group: str) -> NotificationLog:
        log = NotificationLog(
            topic,
            KafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=50),
            KafkaProducer(bootstrap_servers=bootstrap),
            replica="r",
            group=group,
        )
        log.start()
        return log

    a, b = log_of("prod"), log_of("staging")
    try:
        a.record("klm-1", 1)
        assert a.delivered("klm-1", 1)
        again = log_of("prod")
        try:
            assert again.sync(10) and again.delivered("klm-1", 1)
        finally:
            again.stop()
        assert b.sync(10) and not b.delivered("klm-1", 1) and b.state("klm-1", 1) is None
    finally:
        a.stop()
        b.stop()


def test_a_press_reaches_the_other_replicas_of_the_group(bootstrap, topic_factory, kafka_client) -> None:
    """Slack gave a press to a replica that does not run the incident: through the interactions
    topic, the other replicas of its group get it (not the sender, not another group)."""
    import time

    import msgspec

    from daemon.kafka.clients import make_consumer, make_producer
    from daemon.kafka.relay import InteractionRelay
    from daemon.kafka.settings import KafkaSettings

    topic = topic_factory("interactions")
    k = msgspec.convert({"bootstrap_servers": [bootstrap], "client": kafka_client}, KafkaSettings)
    got: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": [], "other": [], "late": []}

    def relay(name: str, group: str = "crisisd") -> InteractionRelay:
        r = InteractionRelay(
            topic,
            make_consumer(k, group_id=None, enable_auto_commit=False, auto_offset_reset="latest", fetch_max_wait_ms=50),
            make_producer(k, linger_ms=0),
            group=group,
            replica=name,
            apply=lambda *press: got[name].append(press),
        )
        r.start()
        return r

    a, b, other = relay("a"), relay("b"), relay("other", group="staging")
    try:
        assert b.send("crisisd.ack", "klm-20100416T0740Z-volume", "U0ANA") is True
        deadline = time.monotonic() + 15
        while not got["a"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got["a"] == [("crisisd.ack", "klm-20100416T0740Z-volume", "U0ANA")]
        late = relay("late")  # started after the press: it was answered before it came
        time.sleep(0.5)
        assert got["b"] == [] and got["other"] == [] and got["late"] == []
        late.stop()
    finally:
        for r in (a, b, other):
            r.stop()


def test_a_press_the_brokers_do_not_take_is_reported_not_lost() -> None:
    """The notifier keeps a press `send` reports as not passed on, and tries again."""
    from daemon.kafka.relay import InteractionRelay

    class Unreachable:
        def send(self, *args: object, **kwargs: object) -> object:
            raise TimeoutError("Kafka out of reach")

    r = InteractionRelay("interactions", None, Unreachable(), group="crisisd", replica="a", apply=print)  # type: ignore[arg-type]
    assert r.send("crisisd.ack", "klm-20100416T0740Z-volume", "U0ANA") is False
