"""The Runner in process against the real broker: dead letters, the budget, duplicates, backpressure."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka_helpers import note, read_topic

from daemon.kafka.runner import Runner
from daemon.notification import Notification
from daemon.outbox import Outbox
from notifiers.base import Delivery

pytestmark = pytest.mark.kafka


class Collect:
    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.accept = threading.Event()
        self.accept.set()

    def send(self, n: Notification) -> Delivery:
        if not self.accept.is_set():
            return Delivery(ok=False, retry=True, retry_after=0.05, error="not now")
        self.sent.append(n)
        return Delivery.done()

    def close(self) -> None:
        pass


def event(i: int, brand: str = "klm") -> bytes:
    return json.dumps(
        {
            "id": f"twitter:{i}",
            "brand": brand,
            "platform": "twitter",
            "created_at": 1271300000 + 60 * i,
            "text": f"flight {i} cancelled",
            "author": {"id": f"u{i % 7}"},
            "lang": "en",
        }
    ).encode()


def settings_for(settings_factory: Callable[..., Any], unique: Callable[[str], str], topic: str, **env: str) -> Any:
    fresh = {
        "CRISISD_KAFKA_TOPIC": topic,
        "CRISISD_KAFKA_GROUP_ID": unique("group"),
        "CRISISD_KAFKA_STATE_TOPIC": unique("state"),
        "CRISISD_KAFKA_DEAD_LETTER_TOPIC": unique("dead"),
        "CRISISD_KAFKA_NOTIFICATIONS_TOPIC": unique("nflog"),
        "CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS": "0.5",
    }
    return settings_factory(**{**fresh, **env})


def run_until(runner: Runner, done: Callable[[], bool], timeout: float = 60.0) -> int:
    """Run in a thread until `done()`, then stop; returns the exit code. When `done()` never came,
    the runner's state at that moment is printed (shown with the failure the test then meets)."""
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while not done() and t.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not done():
        print(f"run_until: not done after {timeout:g}s (runner alive: {t.is_alive()}): {runner.counters},")
        print(f"  assigned {runner.assigned()}, readiness {runner.readiness()}")
    runner.request_stop()
    t.join(timeout)
    assert not t.is_alive(), "the runner did not stop"
    return result[0]


def test_malformed_messages_are_dead_lettered_and_valid_ones_processed(
    topic_factory, producer_factory, consumer_factory, settings_factory, unique
) -> None:
    topic = topic_factory(partitions=1)
    bad = [
        b"not json",
        b"[1, 2]",
        b'{"id": "x"}',
        b'{"id":"t:9","brand":"klm","platform":"twitter","created_at":"yesterday","text":"","author":{"id":"u"}}',
        b"\xff\xfe",
    ]
    p = producer_factory()
    sent = []
    for i in range(40):
        value = bad[i // 8] if i % 8 == 3 else event(i)
        p.send(topic, key=b"klm" if value not in bad else b"junk", value=value)
        sent.append(value)
    p.flush()
    s = settings_for(settings_factory, unique, topic)
    runner = Runner(s, Collect())
    assert run_until(runner, lambda: runner.counters.consumed >= 40) == 0
    assert runner.counters.dead_lettered == len(bad)

    dead = read_topic(consumer_factory(), s.kafka.dead_letter_topic)
    assert [r.value for r in dead] == bad
    for r in dead:
        h = dict(r.headers)
        assert h["crisisd.source.topic"].decode() == topic
        assert sent[int(h["crisisd.source.offset"])] == r.value
        assert h["crisisd.source.partition"] == b"0" and r.key == b"junk"
    reasons = [dict(r.headers)["crisisd.reason"].decode() for r in dead]
    assert reasons == ["not_json", "not_an_object", "missing_field", "bad_timestamp", "invalid_utf8"]
    # every valid message around them was processed, and the offsets are committed past all
    c = consumer_factory(group_id=s.kafka.group_id)
    assert c.committed(TopicPartition(topic, 0)) == 40


def test_dead_letter_budget_stops_consumption_loudly(
    topic_factory, producer_factory, consumer_factory, settings_factory, unique, caplog
) -> None:
    topic = topic_factory(partitions=1)
    p = producer_factory()
    for i in range(300):
        p.send(topic, value=b"<html>wrong topic %d</html>" % i)
    p.flush()
    s = settings_for(settings_factory, unique, topic, CRISISD_KAFKA_DEAD_LETTER_MAX_CONSECUTIVE="50")
    runner = Runner(s, Collect())
    with caplog.at_level(logging.ERROR, logger="daemon.kafka.runner"):
        code = run_until(runner, lambda: False, timeout=60)
    assert code == 1
    assert any("dead-letter budget exceeded" in r.getMessage() for r in caplog.records)
    assert runner.counters.dead_lettered == 50  # stopped, not dead-lettering the topic
    # nothing committed: after a fix, the messages are read again
    c = consumer_factory(group_id=s.kafka.group_id)
    assert c.committed(TopicPartition(topic, 0)) in (None, 0)  # 0: an idle partition's first checkpoint


def test_duplicate_deliveries_never_double_count(topic_factory, producer_factory, settings_factory, unique) -> None:
    topic = topic_factory(partitions=2)
    p = producer_factory()
    for _ in range(2):  # the whole stream delivered twice
        for i in range(30):
            p.send(topic, key=b"klm" if i % 2 else b"bol", value=event(i, "klm" if i % 2 else "bol"))
    p.flush()
    s = settings_for(settings_factory, unique, topic)
    runner = Runner(s, Collect())
    assert run_until(runner, lambda: runner.counters.consumed >= 60) == 0
    # the totals are in the last checkpoints
    from kafka import KafkaConsumer

    from daemon.kafka.changelog import StateStore
    from daemon.pipeline import Pipeline

    reader = KafkaConsumer(bootstrap_servers=s.kafka.bootstrap_servers, fetch_max_wait_ms=50)
    store = StateStore(s.kafka.state_topic, None, reader, group=s.kafka.group_id, state_partitions=2)  # type: ignore[arg-type]
    latest = store.read_latest([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    reader.close()
    stats = [Pipeline.restore(s, c.pipeline).stats for c in latest.values() if c is not None]
    assert sum(x.valid for x in stats) == 30
    assert sum(x.duplicate for x in stats) == 30


def test_backpressure_pauses_while_the_outbox_is_full(
    topic_factory, producer_factory, settings_factory, unique, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=1)
    s = settings_for(
        settings_factory, unique, topic, CRISISD_KAFKA_PAUSE_ABOVE_PENDING="2", CRISISD_KAFKA_MAX_POLL_RECORDS="5"
    )
    notifier = Collect()
    notifier.accept.clear()
    # notifications waiting from before a restart fill the outbox
    box = Outbox(s.state_dir, notifier)
    for seq in range(1, 6):
        box.put(note(seq))
    box.stop()
    p = producer_factory()
    for i in range(50):
        p.send(topic, key=b"klm", value=event(i))
    p.flush()
    runner = Runner(s, notifier)
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while runner.counters.paused_times == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.counters.paused_times == 1
    held = runner.counters.consumed
    time.sleep(1.5)  # still polling (the group keeps us), consuming nothing
    assert runner.counters.consumed == held < 50
    assert runner.readiness()["outbox"]["ok"] is False
    notifier.accept.set()  # Slack is back
    while runner.counters.consumed < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.request_stop()
    t.join(30)
    assert result == [0]
    assert runner.counters.consumed == 50
    assert [n.seq for n in notifier.sent] == [1, 2, 3, 4, 5]


def test_each_consumer_group_keeps_its_own_checkpoints(
    topic_factory, producer_factory, consumer_factory, settings_factory, unique
) -> None:
    """A second deployment (another group) on the same state topic starts from its own offsets:
    it used to restore the first group's checkpoint and consume nothing. A checkpoint written
    before keys named the group is read only by a group that has committed offsets (its own)."""
    from daemon.kafka.changelog import CHECKPOINT_VERSION, Checkpoint, StateStore, encode, legacy_state_key

    topic = topic_factory(partitions=1)
    p = producer_factory()
    for i in range(60):
        p.send(topic, key=b"klm", value=event(i))
    p.flush()
    first = settings_for(settings_factory, unique, topic)
    a = Runner(first, Collect())
    assert run_until(a, lambda: a.counters.consumed >= 60) == 0
    k = first.kafka
    second = settings_for(
        settings_factory, unique, topic,
        CRISISD_KAFKA_STATE_TOPIC=k.state_topic, CRISISD_KAFKA_NOTIFICATIONS_TOPIC=k.notifications_topic,
    )  # fmt: skip
    b = Runner(second, Collect())
    assert run_until(b, lambda: b.counters.consumed >= 60, timeout=30) == 0
    assert b.counters.consumed == 60

    tp = TopicPartition(topic, 0)
    legacy = Checkpoint(version=CHECKPOINT_VERSION, topic=topic, partition=0, offset=7, pipeline=b"p")
    p.send(k.state_topic, key=legacy_state_key(topic, 0), value=encode(legacy), partition=0)
    p.flush()
    store = StateStore(k.state_topic, None, consumer_factory(), group="upgraded", state_partitions=1)  # type: ignore[arg-type]
    assert store.read_latest([tp], legacy={tp})[tp].offset == 7  # type: ignore[union-attr]
    assert store.read_latest([tp])[tp] is None  # a new group
    assert (
        StateStore(k.state_topic, None, consumer_factory(), group=k.group_id, state_partitions=1)
        .read_latest(  # type: ignore[arg-type]
            [tp], legacy={tp}
        )[tp]
        .offset
        == 60
    )  # type: ignore[union-attr]  # its own, newer than the legacy one


def test_a_brand_spread_over_partitions_is_reported(
    topic_factory, producer_factory, settings_factory, unique, caplog
) -> None:
    """Messages without a key land on any partition: each one's pipeline sees part of the brand.
    The replica counts them and says which brands are split, in the log and in /metrics."""
    from daemon import metrics

    topic = topic_factory(partitions=2)
    p = producer_factory()
    for i in range(40):
        p.send(topic, value=event(i, "klm"), partition=i % 2)  # no key
        p.send(topic, key=b"bol", value=event(100 + i, "bol"), partition=0)
    p.flush()
    s = settings_for(settings_factory, unique, topic)
    runner = Runner(s, Collect())
    with caplog.at_level(logging.WARNING, logger="daemon.kafka.runner"):
        assert run_until(runner, lambda: runner.counters.consumed >= 80) == 0
    assert runner.counters.unkeyed == 40
    assert metrics.REGISTRY.get_sample_value("crisisd_brands_split") == 1
    warned = [r.getMessage() for r in caplog.records if "several partitions" in r.getMessage()]
    assert warned and warned[0].startswith("brands klm are on several partitions (40 messages without a key")


def test_a_replica_runs_the_incidents_of_the_brands_it_holds(settings_factory) -> None:
    """`owns_incident` decides which replica applies a button press and pages: the one whose
    partitions hold the incident's brand (a brand name may contain dashes)."""
    from daemon.kafka.runner import PartitionTask
    from daemon.pipeline import BrandState, Pipeline

    s = settings_factory()
    runner = Runner(s, Collect())
    pipeline = Pipeline(s)
    for brand in ("klm", "air-serbia"):
        pipeline.brands[brand] = BrandState(brand, s)
    tp = TopicPartition("mentions", 3)
    runner._tasks[tp] = PartitionTask(tp, pipeline, 0, checkpointed=0)
    assert runner.owns_incident("klm-20100416T0740Z-volume")
    assert runner.owns_incident("air-serbia-20100416T0740Z-negativity")
    assert not runner.owns_incident("bol-20100416T0740Z-volume")
    assert not runner.owns_incident("serbia-20100416T0740Z-volume")


def test_incidents_of_partitions_lost_to_an_outage_stay_run_until_the_group_assigns_again(settings_factory) -> None:
    """When Kafka is out of reach for the session timeout the client gives the partitions up as
    lost (confluent-kafka at once); the replica stopped running their incidents, so an open,
    unacknowledged crisis stopped paging for as long as Kafka was down. They stay run here, as
    open as they were, until the group assigns partitions again; then whoever holds the brand runs it."""
    from daemon.kafka.runner import PartitionTask
    from daemon.pipeline import BrandState, Pipeline

    s = settings_factory()
    runner = Runner(s, Collect())
    caught_up, behind = TopicPartition("mentions", 3), TopicPartition("mentions", 4)
    for tp, brands in ((caught_up, ("klm", "air-serbia")), (behind, ("bol",))):
        pipeline = Pipeline(s)
        for brand in brands:
            pipeline.brands[brand] = BrandState(brand, s)
        runner._tasks[tp] = PartitionTask(tp, pipeline, 0, checkpointed=0)
    runner._caught_up = frozenset({caught_up})
    klm, serbia, bol = "klm-20100416T0740Z-volume", "air-serbia-20100416T0740Z-negativity", "bol-20100416T0740Z-volume"
    runner._on_lost({caught_up, behind})
    assert not runner._tasks
    assert runner.owns_incident(klm) and runner.owns_incident(serbia) and runner.owns_incident(bol)
    assert not runner.owns_incident("wolt-20100416T0740Z-volume")
    assert runner.incident_standing(klm) == "open" and runner.incident_standing(bol) == "behind"
    runner._on_assigned(set())  # the group is whole again; these partitions went elsewhere
    assert not runner.owns_incident(klm) and not runner.owns_incident(bol)
    assert runner.incident_standing(klm) == "behind"


def test_a_replica_keeps_running_its_incidents_through_a_kafka_outage(settings_factory, unique, kafka_client) -> None:
    """Past the session timeout without the coordinator, librdkafka gives the assignment up as lost
    (kafka-python only once it reaches the group again); the incidents of the brands the replica held
    are still its own to page: nobody else can run them while Kafka is down."""
    from kafka import KafkaProducer

    from daemon.kafka.local_broker import LocalBroker

    with LocalBroker() as broker:
        s = settings_for(
            settings_factory, unique, unique("mentions"),
            CRISISD_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, CRISISD_KAFKA_SHUTDOWN_TIMEOUT_SECONDS="2",
        )  # fmt: skip
        runner = Runner(s, Collect())
        result: list[int] = []
        t = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
        t.start()
        p = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        for i in range(5):
            p.send(s.kafka.topic, key=b"klm", value=event(i, "klm"))
        p.flush()
        p.close()
        iid = "klm-20100416T0740Z-volume"
        deadline = time.monotonic() + 60
        while not runner.owns_incident(iid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.owns_incident(iid)
        broker.stop()
        deadline = time.monotonic() + s.kafka.session_timeout_ms / 1000 + 10
        while runner._tasks and time.monotonic() < deadline:  # librdkafka: the partitions lost
            time.sleep(0.2)
        lost, owned = not runner._tasks, runner.owns_incident(iid)
        runner.request_stop()
        t.join(30)
    assert lost == (kafka_client == "confluent") and owned


def test_a_restored_partition_names_its_open_incidents_to_the_notifier(settings_factory) -> None:
    """The partition's open incidents, each with the notification its root shows, go to the notifier
    (`adopt`) once restored: another replica ran them until now, and the Slack notifier looks for their
    roots and goes on paging them without waiting for their next notification. The checkpoint carries
    the last notification; a resolved incident's is gone."""
    from types import SimpleNamespace

    from daemon.notification import NegativityFigures, Notification, VolumeFigures
    from daemon.pipeline import BrandState, Pipeline

    class Adopting(Collect):
        def __init__(self) -> None:
            super().__init__()
            self.adopted: list[Notification] = []

        def adopt(self, notes: list[Notification]) -> None:
            self.adopted.extend(notes)

    s = settings_factory()
    tp = TopicPartition("mentions", 3)
    before = Pipeline(s)
    for brand in ("klm", "bol"):
        before.brands[brand] = BrandState(brand, s)
    opened = Notification(
        type="incident.opened", incident_id="klm-20100416T0740Z-volume", brand="klm", severity="sev2",
        signals=["volume"], started_at="2010-04-16T07:40:00Z", detected_at="2010-04-16T07:43:00Z",
        volume=VolumeFigures(5400.0, 310.0, 17.4), negativity=NegativityFigures(0.71, 0.24),
    )  # fmt: skip
    before.brands["klm"].detection.last_notification = opened
    checkpoint = SimpleNamespace(pipeline=before.snapshot(), offset=12, undelivered=[])
    notifier = Adopting()
    runner = Runner(s, notifier)
    runner._store = SimpleNamespace(read_latest=lambda tps, legacy: {tp: checkpoint})  # type: ignore[assignment]
    runner._consumer = SimpleNamespace(  # type: ignore[assignment]
        committed=lambda tp: 12, seek=lambda tp, offset: None, pause=lambda *tps: None, resume=lambda *tps: None
    )
    runner.outbox = SimpleNamespace(put_many=lambda notes: None)  # type: ignore[assignment]
    runner._to_restore = {tp}
    runner._restore_assigned()
    assert [n.incident_id for n in notifier.adopted] == ["klm-20100416T0740Z-volume"]


def test_partitions_assigned_tell_the_notifier_before_the_replica_runs_them(settings_factory) -> None:
    """A replica may get back an incident another replica ran meanwhile: the runner tells the notifier
    (`reassigned`) as partitions are assigned, before `owns_incident` says yes for their brands, so the
    Slack notifier reads the incident's root again before it pages or writes."""
    from types import SimpleNamespace

    class Reassigned(Collect):
        def __init__(self) -> None:
            super().__init__()
            self.owned_then: list[bool] = []

        def reassigned(self) -> None:
            self.owned_then.append(runner.owns_incident("klm-20100416T0740Z-volume"))

    notifier = Reassigned()
    runner = Runner(settings_factory(), notifier)
    runner._consumer = SimpleNamespace(pause=lambda *tps: None)  # type: ignore[assignment]
    runner._on_assigned({TopicPartition("mentions", 3)})
    assert notifier.owned_then == [False]
    runner._on_assigned(set())  # nothing new
    assert notifier.owned_then == [False]


def test_an_idle_replica_checkpoints_its_new_partitions_and_reads_no_checkpoint_age(
    topic_factory, settings_factory, unique
) -> None:
    """A partition that never gets a message still gets its first checkpoint after the commit
    interval, so crisisd_checkpoint_age_seconds goes back to 0 (it grew without end, and the
    documented alert on it fired for every idle replica)."""
    from daemon import metrics

    topic = topic_factory(partitions=2)
    s = settings_for(settings_factory, unique, topic)
    runner = Runner(s, Collect())
    assert run_until(runner, lambda: runner.counters.checkpoints >= 2, timeout=30) == 0
    assert runner.counters.consumed == 0 and runner.counters.checkpoints >= 2
    assert metrics.REGISTRY.get_sample_value("crisisd_checkpoint_age_seconds") == 0.0


def test_a_broker_outage_while_running_shows_on_readiness_and_in_one_line(
    settings_factory, unique, monkeypatch, caplog
) -> None:
    """/readyz said `brokers: ok` through an outage (the check was only made at start), and crisisd
    itself logged nothing among the client's reconnection noise."""
    from daemon.kafka import runner as runner_module
    from daemon.kafka.local_broker import LocalBroker

    monkeypatch.setattr(runner_module, "BROKER_PROBE_SECONDS", 0.3)
    with LocalBroker() as broker:
        s = settings_for(
            settings_factory, unique, unique("mentions"),
            CRISISD_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers, CRISISD_KAFKA_SHUTDOWN_TIMEOUT_SECONDS="2",
        )  # fmt: skip
        runner = Runner(s, Collect())
        result: list[int] = []
        t = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
        with caplog.at_level(logging.INFO, logger="daemon.kafka.runner"):
            t.start()
            deadline = time.monotonic() + 30
            while not runner.readiness()["group_joined"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert runner.readiness()["brokers"]["ok"]
            broker.stop()
            deadline = time.monotonic() + 30
            while runner.readiness()["brokers"]["ok"] and time.monotonic() < deadline:
                time.sleep(0.1)
            brokers = runner.readiness()["brokers"]
            runner.request_stop()
            t.join(30)
    assert not brokers["ok"] and brokers["error"]
    # this runner's lines only: another test's runner, stopping, may still log about its own broker
    ours = [r for r in caplog.records if getattr(r, "bootstrap_servers", None) == s.kafka.bootstrap_servers]
    assert sum("Kafka stopped answering" in r.getMessage() for r in ours) == 1
