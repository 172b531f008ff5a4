"""The re-keyer (`kafka.rekey_topic`): unkeyed mentions made keyed by brand, then detected.

Unit tests of the brand it reads need no broker; the others run against the loopback broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka_helpers import REPO, read_topic, wait_committed
from test_runner import Collect, event, run_until, settings_for

from config.settings import ConfigError, load_settings
from daemon.events import Mention, brand_key, decode
from daemon.kafka import rekey
from daemon.kafka.rekey import Rekeyer, fallback_partition, rekey_group
from daemon.kafka.runner import Runner

# -- the brand the re-keyer reads (no broker) ---------------------------------------------------


def test_brand_key_is_the_brand_the_decoder_reads() -> None:
    valid = [
        event(1, "KLM"),
        event(2, " Straße "),
        b"\xef\xbb\xbf" + event(3, "bol"),  # a byte order mark: the decoder drops it
        event(4, "klm").replace(b"flight 4", b"flight \\ud83d 4"),  # a lone surrogate escape: repaired
    ]
    for raw in valid:
        m = decode(raw)
        assert isinstance(m, Mention), raw
        assert brand_key(raw) == m.brand.encode()
    assert brand_key(event(2, " Straße ")) == brand_key(event(5, "STRASSE")) == b"strasse"


@pytest.mark.parametrize(
    "raw",
    [None, b"", b"not json", b"[1, 2]", b'{"brand": 7}', b'{"brand": "  "}', b'{"id": "t:1"}', b"\xff\xfe", b"{" * 5],
)
def test_brand_key_of_a_message_without_a_usable_brand_is_none(raw: bytes | None) -> None:
    assert brand_key(raw) is None


def test_a_message_without_brand_or_key_always_goes_to_the_same_partition() -> None:
    parts = {fallback_partition(b"not json %d" % i, 4) for i in range(200)}
    assert parts == {0, 1, 2, 3}  # spread, and each message's is fixed:
    assert all(fallback_partition(b"x%d" % i, 4) == fallback_partition(b"x%d" % i, 4) for i in range(50))


def test_rekey_topic_must_be_a_topic_of_its_own() -> None:
    assert load_settings(env={}).kafka.rekey_topic == ""  # off by default
    assert load_settings(env={"CRISISD_KAFKA_REKEY_TOPIC": "mentions-by-brand"}).kafka.rekey_topic
    for name, other in (("mentions", "kafka.topic"), ("crisisd-state", "kafka.state_topic")):
        with pytest.raises(ConfigError, match=f"kafka.rekey_topic: must not be {other}"):
            load_settings(env={"CRISISD_KAFKA_REKEY_TOPIC": name})


# -- against the broker ---------------------------------------------------------------------------

BRANDS = ("klm", "bol", "ing", "ahold", "philips", "asml")


def _mentions(runners: list[Runner]) -> dict[str, list[tuple[int, int, int]]]:
    """brand -> [(replica, partition, mentions counted)] over every partition the runners hold."""
    out: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for i, runner in enumerate(runners):
        for tp, task in list(runner._tasks.items()):
            for brand, state in list(task.pipeline.brands.items()):
                out[brand].append((i, tp.partition, state.mentions))
    return out


def _run_all(
    runners: list[Runner], ready: Callable[[], bool], then: Callable[[], object], done: Callable[[], bool]
) -> None:
    """Start the runners; once `ready()`, call `then()`; stop them once `done()` (or 60 s each)."""
    threads = [threading.Thread(target=r.run, daemon=True) for r in runners]
    for t in threads:
        t.start()
    try:
        for check in (ready, done):
            deadline = time.monotonic() + 60
            while not check() and time.monotonic() < deadline:
                time.sleep(0.1)
            if check is ready:
                assert ready(), [(r.assigned(), r.readiness()) for r in runners]
                then()
    finally:
        for r in runners:
            r.request_stop()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a runner did not stop"


@pytest.mark.kafka
def test_unkeyed_mentions_are_rekeyed_by_brand_and_each_counted_once(
    topic_factory, producer_factory, consumer_factory, settings_factory, unique, bootstrap, tmp_path: Path
) -> None:
    """Mentions of six brands spread round-robin over a 4-partition topic without keys: with
    `kafka.rekey_topic` set, two replicas re-key them, every brand ends up on one partition of the
    rekey topic keyed by its name, each valid mention is counted once by the one pipeline that
    holds its brand, and the invalid ones are dead-lettered with their reason."""
    from daemon import metrics

    topic = topic_factory(partitions=4)
    sent: list[bytes] = []
    per_brand: Counter[str] = Counter()
    for i in range(240):
        brand = BRANDS[i % len(BRANDS)]
        value = event(i, brand.upper() if i % 5 == 0 else brand)  # the key is the normalised brand
        sent.append(value)
        per_brand[brand] += 1
    sent[7] = sent[3]  # a duplicate delivery (the second copy is not counted)
    per_brand[BRANDS[7 % len(BRANDS)]] -= 1
    bad_time = json.loads(event(1000, "klm"))
    bad_time["created_at"] = "yesterday"
    invalid = [b"not json", json.dumps(bad_time).encode()]

    def produce() -> None:
        p = producer_factory()
        for i, value in enumerate([*sent, *invalid]):
            p.send(topic, value=value, partition=i % 4)  # no key, round-robin
        p.flush()

    rekey_topic = unique("rekey")
    common = settings_for(settings_factory, unique, topic)
    shared = {
        "CRISISD_KAFKA_REKEY_TOPIC": rekey_topic,
        "CRISISD_KAFKA_GROUP_ID": common.kafka.group_id,
        "CRISISD_KAFKA_STATE_TOPIC": common.kafka.state_topic,
        "CRISISD_KAFKA_DEAD_LETTER_TOPIC": common.kafka.dead_letter_topic,
        "CRISISD_KAFKA_NOTIFICATIONS_TOPIC": common.kafka.notifications_topic,
    }

    def replica(n: int) -> Runner:
        s = settings_for(settings_factory, unique, topic, **shared, CRISISD_STATE_DIR=str(tmp_path / f"replica-{n}"))
        return Runner(s, Collect(), replica=f"replica-{n}")

    runners = [replica(0), replica(1)]

    seen: dict[str, Any] = {}

    def done() -> bool:  # the state of the runners while they run (a stop hands the partitions back)
        counted = _mentions(runners)
        seen.update(counted=counted, holders={r.replica for r in runners if r._tasks})
        return (
            sum(r.counters.dead_lettered for r in runners) >= len(invalid)
            and all(sum(m for _, _, m in counted.get(b, [])) >= n for b, n in per_brand.items())
            and all(r.readiness()["rekey"]["ok"] for r in runners)
        )

    def ready() -> bool:  # both replicas hold partitions in both groups: no rebalance after this
        return all(r.assigned() and r.readiness()["rekey"]["partitions"] for r in runners)

    _run_all(runners, ready, produce, done)
    # every brand is held by one pipeline, and each valid mention was counted once
    counted = seen["counted"]
    for brand, n in per_brand.items():
        assert len(counted[brand]) == 1 and counted[brand][0][2] == n, (brand, counted)
    assert seen["holders"] == {"replica-0", "replica-1"}  # both took a share
    assert sum(r.counters.dead_lettered for r in runners) == len(invalid)
    assert sum(r.counters.unkeyed for r in runners) == 0
    assert metrics.REGISTRY.get_sample_value("crisisd_brands_split") == 0

    # the rekey topic: the original bytes, keyed by brand, one partition per brand
    records = read_topic(consumer_factory(), rekey_topic)
    assert {r.value for r in records} == set(sent) | set(invalid)  # copies after a rebalance allowed
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for r in records:
        assert r.key == brand_key(r.value), r
        if r.key is not None:
            partitions_of[r.key].add(r.partition)
        else:
            assert r.partition == fallback_partition(r.value, 4)
    assert set(partitions_of) == {b.encode() for b in BRANDS}
    assert all(len(parts) == 1 for parts in partitions_of.values()), partitions_of
    assert {r.partition for r in records} != {0}  # spread over the rekey topic's 4 partitions

    dead = read_topic(consumer_factory(), common.kafka.dead_letter_topic)
    reasons = {r.value: dict(r.headers) for r in dead}
    assert set(reasons) == set(invalid)
    assert reasons[b"not json"]["crisisd.reason"] == b"not_json"
    assert reasons[invalid[1]]["crisisd.reason"] == b"bad_timestamp"
    assert {h["crisisd.source.topic"] for h in reasons.values()} == {topic.encode()}  # the producer's
    assert {h["crisisd.rekey.topic"] for h in reasons.values()} == {rekey_topic.encode()}
    # the re-keyer committed its input to the end
    ends = Counter(i % 4 for i in range(len(sent) + len(invalid)))
    wait_committed(bootstrap, rekey_group(common.kafka), topic, dict(ends), timeout=10)


@pytest.mark.kafka
def test_a_backlog_is_forwarded_in_record_time_order(
    topic_factory, producer_factory, consumer_factory, settings_factory, unique
) -> None:
    """A backlog on two partitions, one brand spread over both: forwarded oldest first (record
    timestamps), not one partition's fetched chunk after the other's, so the brand's events keep
    within the windows' allowed lateness on the rekey topic; every record once, though partitions
    are paused and resumed on the way (kafka-python lost resumed partitions: `clients.resume`)."""
    topic = topic_factory(partitions=2)
    p = producer_factory(linger_ms=20)
    start_ms = 1_700_000_000_000
    n = 1500
    for i in range(n):  # one second apart, alternating partitions
        p.send(topic, value=event(i, "klm"), partition=i % 2, timestamp_ms=start_ms + 1000 * i)
    p.flush()
    rekey_topic = unique("rekey")
    # small polls: buffers fill, and partitions are paused and resumed on the way
    s = settings_for(
        settings_factory, unique, topic, CRISISD_KAFKA_REKEY_TOPIC=rekey_topic, CRISISD_KAFKA_MAX_POLL_RECORDS="100"
    )
    rekeyer = Rekeyer(s.kafka)
    rekeyer.start()
    try:
        deadline = time.monotonic() + 60
        while rekeyer.counters.forwarded < n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        rekeyer.stop(30)
    assert rekeyer.counters.forwarded >= n
    records = [r for r in read_topic(consumer_factory(), rekey_topic) if r.key == b"klm"]
    assert len({r.value for r in records}) == n and len({r.partition for r in records}) == 1
    records.sort(key=lambda r: r.offset)
    assert [r.timestamp for r in records[:3]] == [start_ms, start_ms + 1000, start_ms + 2000]  # kept
    newest, worst = 0, 0
    for r in records:
        newest = max(newest, r.timestamp)
        worst = max(worst, newest - r.timestamp)
    assert worst <= rekey.ALIGN_SECONDS * 1000, f"an event {worst / 1000:.0f} s behind the newest before it"


@pytest.mark.kafka
def test_the_rekeyer_waits_for_its_input_topic_and_says_why(settings_factory, unique) -> None:
    """Started before the input topic exists: not ready, naming the topic; then it makes the
    rekey topic with the input's partition count and forwards."""
    from kafka import KafkaAdminClient

    topic, rekey_topic = unique("mentions"), unique("rekey")
    # small polls: buffers fill, and partitions are paused and resumed on the way
    s = settings_for(
        settings_factory, unique, topic, CRISISD_KAFKA_REKEY_TOPIC=rekey_topic, CRISISD_KAFKA_MAX_POLL_RECORDS="100"
    )
    rekeyer = Rekeyer(s.kafka)
    rekeyer.start()
    admin: Any = None
    try:
        deadline = time.monotonic() + 20
        while "does not exist" not in rekeyer.readiness()["error"] and time.monotonic() < deadline:
            time.sleep(0.05)
        state = rekeyer.readiness()
        assert not state["ok"] and topic in state["error"]
        admin = KafkaAdminClient(bootstrap_servers=s.kafka.bootstrap_servers)
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
        deadline = time.monotonic() + 30
        while not rekeyer.readiness()["ok"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rekeyer.readiness()["ok"]
        from kafka import KafkaConsumer

        probe = KafkaConsumer(bootstrap_servers=s.kafka.bootstrap_servers)
        assert probe.partitions_for_topic(rekey_topic) == {0, 1, 2}
        probe.close()
    finally:
        rekeyer.stop(30)
        if admin is not None:
            admin.close()


@pytest.mark.kafka
def test_what_a_crash_forwards_twice_is_counted_once(
    topic_factory, producer_factory, consumer_factory, bootstrap, kafka_client, unique
) -> None:
    """At least once: a re-keyer that dies before committing leaves its input to the next one,
    which forwards it again. Every copy lands on the partition of the first (same brand, same
    key), where the pipeline's dedup on event id drops it."""
    from daemon.pipeline import Pipeline

    topic = topic_factory(partitions=3)
    p = producer_factory()
    n = 300
    for i in range(n):
        p.send(topic, value=event(i, BRANDS[i % len(BRANDS)]), partition=i % 3)
    p.flush()
    env = {
        "CRISISD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CRISISD_KAFKA_CLIENT": kafka_client,
        "CRISISD_KAFKA_TOPIC": topic,
        "CRISISD_KAFKA_GROUP_ID": unique("group"),
        "CRISISD_KAFKA_REKEY_TOPIC": unique("rekey"),
        "CRISISD_KAFKA_COMMIT_EVERY_MESSAGES": "100000",
        "CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS": "3600",
        "CRISISD_KAFKA_SESSION_TIMEOUT_MS": "2000",  # the dead member leaves the group after it
        "CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    }
    s = load_settings(env=env)
    # a process that forwards everything, then dies before its first commit
    crash = (
        "import os, time\n"
        "from config.settings import load_settings\n"
        "from daemon.kafka.rekey import Rekeyer\n"
        "r = Rekeyer(load_settings().kafka)\n"
        "r.start()\n"
        "deadline = time.monotonic() + 60\n"
        f"while r.counters.forwarded < {n} and time.monotonic() < deadline:\n"
        "    time.sleep(0.02)\n"
        "r._producer.flush(30)  # on the broker, not committed\n"
        "os._exit(0 if r.counters.forwarded == {n} and r.counters.commits == 0 else 3)\n"
    ).replace("{n}", str(n))
    done = subprocess.run([sys.executable, "-c", crash], env={**os.environ, **env}, cwd=REPO, timeout=120)
    assert done.returncode == 0
    second = Rekeyer(s.kafka)
    second.start()
    deadline = time.monotonic() + 60
    while second.counters.forwarded < n and time.monotonic() < deadline:
        time.sleep(0.05)
    second.stop(30)
    assert second.counters.forwarded == n and second.counters.commits >= 1

    by_partition: dict[int, list[bytes]] = defaultdict(list)
    for r in sorted(read_topic(consumer_factory(), s.kafka.rekey_topic), key=lambda r: (r.partition, r.offset)):
        by_partition[r.partition].append(r.value)
    assert sum(len(v) for v in by_partition.values()) == 2 * n  # every message twice...
    valid = duplicate = 0
    for values in by_partition.values():  # ... counted once by the partition's pipeline
        pipeline = Pipeline(s)
        for value in values:
            pipeline.process(value)
        valid += pipeline.stats.valid
        duplicate += pipeline.stats.duplicate
    assert (valid, duplicate) == (n, n)


@pytest.mark.kafka
def test_a_dead_letter_of_a_rekeyed_record_names_the_message_the_producer_sent(
    topic_factory, producer_factory, consumer_factory, settings_factory, unique
) -> None:
    """Each forwarded record carries where it was read (`crisisd.rekey.source`, once even when the
    producer set one), its value and other headers unchanged; a record the detection dead-letters
    names that original record in `crisisd.source.*`, and the rekey topic's in `crisisd.rekey.*`."""
    topic = topic_factory(partitions=2)
    p = producer_factory()
    own = [("trace", b"t-1"), ("crisisd.rekey.source", b"elsewhere:0:999")]
    for i in range(6):
        p.send(topic, value=event(i, "klm"), partition=i % 2)
    junk = p.send(topic, value=b"not json", partition=1, headers=own).get(10)
    p.flush()
    rekey_topic = unique("rekey")
    s = settings_for(settings_factory, unique, topic, CRISISD_KAFKA_REKEY_TOPIC=rekey_topic)
    runner = Runner(s, Collect(), replica="r")
    assert run_until(runner, lambda: runner.counters.dead_lettered >= 1 and runner.counters.consumed >= 7) == 0

    forwarded = read_topic(consumer_factory(), rekey_topic)
    assert len(forwarded) == 7
    by_value = {r.value: r for r in forwarded}
    for r in forwarded:
        assert [n for n, _ in r.headers].count("crisisd.rekey.source") == 1  # the producer's replaced
        assert dict(r.headers)["crisisd.rekey.source"].startswith(f"{topic}:".encode())
    assert by_value[b"not json"].headers == [
        ("trace", b"t-1"),
        ("crisisd.rekey.source", f"{topic}:1:{junk.offset}".encode()),
    ]

    (dead,) = read_topic(consumer_factory(), s.kafka.dead_letter_topic)
    assert dead.value == b"not json"
    headers = dict(dead.headers)
    assert headers["crisisd.reason"] == b"not_json"
    assert (headers["crisisd.source.topic"], headers["crisisd.source.partition"], headers["crisisd.source.offset"]) == (
        topic.encode(),
        b"1",
        str(junk.offset).encode(),
    )
    rekeyed = by_value[b"not json"]
    assert (headers["crisisd.rekey.topic"], headers["crisisd.rekey.partition"], headers["crisisd.rekey.offset"]) == (
        rekey_topic.encode(),
        str(rekeyed.partition).encode(),
        str(rekeyed.offset).encode(),
    )
    assert headers["crisisd.source.timestamp"] == str(junk.timestamp).encode()
