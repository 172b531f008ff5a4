"""The re-keyer and records refused for good on the rekey topic: dead-lettered, and forwarding goes on.

The loopback broker (Tansu) does not enforce `max.message.bytes`, so a refusal comes either from the
re-keyer's own producer (its request bound made small: the client refuses the record in `send`, as
it does over 16 MiB in production) or from a stand-in producer failing a send's future with the
error a broker answers (kafka-python's exception, or librdkafka's delivery error)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from kafka.errors import MessageSizeTooLargeError, NotLeaderForPartitionError
from kafka.future import Future
from kafka_helpers import read_topic, wait_committed
from test_runner import Collect, event, run_until, settings_for

from daemon import metrics
from daemon.kafka import rekey
from daemon.kafka.clients import SendFailed
from daemon.kafka.rekey import Rekeyer, rekey_group
from daemon.kafka.runner import Runner

BRANDS = ("klm", "bol", "ing")
ERROR_NAMED = re.compile(rb"MessageSizeTooLarge|MSG_SIZE_TOO_LARGE")


def big_event(i: int, size: int) -> bytes:
    m = json.loads(event(i, "klm"))
    m["text"] = "x" * size
    return json.dumps(m).encode()


def refused_total() -> float:
    return metrics.REGISTRY.get_sample_value("crisisd_rekey_refused_total") or 0.0


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.kafka
def test_a_record_the_rekey_topic_refuses_is_dead_lettered_and_the_others_detected(
    monkeypatch, topic_factory, producer_factory, consumer_factory, settings_factory, unique, bootstrap
) -> None:
    """One message too large for the rekey topic among 60 normal ones: it goes to the dead-letter
    topic whole, with reason `rekey_refused`, the client's error and the coordinates of the message
    the producer sent; every other message is re-keyed and detected, the input is committed to its
    end, and /readyz's `rekey` check is ok (it used to retry the refused record for ever)."""
    monkeypatch.setattr(rekey, "MAX_REQUEST_BYTES", 16 * 1024)
    topic = topic_factory(partitions=2)
    big = big_event(500, 40_000)
    p = producer_factory()
    per_brand: Counter[str] = Counter()
    for i in range(60):
        if i == 30:
            sent = p.send(topic, value=big, partition=1).get(10)
        p.send(topic, value=event(i, BRANDS[i % 3]), partition=i % 2)
        per_brand[BRANDS[i % 3]] += 1
    p.flush()
    refused_before = refused_total()

    s = settings_for(settings_factory, unique, topic, CRISISD_KAFKA_REKEY_TOPIC=unique("rekey"))
    runner = Runner(s, Collect(), replica="r")

    def done() -> bool:
        rekeyer = runner._rekeyer
        counted: Counter[str] = Counter()
        for task in list(runner._tasks.values()):
            for brand, state in list(task.pipeline.brands.items()):
                counted[brand] += state.mentions
        return (
            rekeyer is not None
            and rekeyer.counters.refused >= 1
            and counted == per_brand
            and runner.readiness()["rekey"]["ok"]
        )

    assert run_until(runner, done) == 0
    assert runner.counters.dead_lettered == 0  # the refused record never reached detection
    dead = read_topic(consumer_factory(), s.kafka.dead_letter_topic)
    assert [r.value for r in dead] == [big]
    headers = dict(dead[0].headers)
    assert headers["crisisd.reason"] == b"rekey_refused"
    assert ERROR_NAMED.search(headers["crisisd.detail"]), headers["crisisd.detail"]
    assert headers["crisisd.source.topic"] == topic.encode()
    assert headers["crisisd.source.partition"] == b"1"
    assert headers["crisisd.source.offset"] == str(sent.offset).encode()
    assert headers["crisisd.source.timestamp"] == str(sent.timestamp).encode()
    assert "crisisd.omitted" not in headers
    assert refused_total() == refused_before + 1
    wait_committed(bootstrap, rekey_group(s.kafka), topic, {0: 30, 1: 31}, timeout=10)


@pytest.mark.kafka
def test_a_refused_record_too_large_for_the_dead_letter_topic_too_is_dead_lettered_without_it(
    monkeypatch, topic_factory, producer_factory, consumer_factory, settings_factory, unique, bootstrap
) -> None:
    """A message the dead-letter topic refuses too (here over the dead-letter producer's bound,
    `kafka.max_snapshot_bytes`): its dead letter goes without key and with an empty value, with `crisisd.omitted`
    giving their sizes, so that nothing stalls and the record can still be found at its source."""
    monkeypatch.setattr(rekey, "MAX_REQUEST_BYTES", 16 * 1024)
    topic = topic_factory(partitions=1)
    huge = big_event(500, 1_200_000)
    p = producer_factory(max_request_size=4 << 20)
    p.send(topic, value=event(1, "klm"))
    sent = p.send(topic, key=b"k1", value=huge).get(10)
    p.send(topic, value=event(2, "klm"))
    p.flush()
    s = settings_for(
        settings_factory,
        unique,
        topic,
        CRISISD_KAFKA_REKEY_TOPIC=unique("rekey"),
        CRISISD_KAFKA_MAX_SNAPSHOT_BYTES=str(1 << 20),
    )
    rekeyer = Rekeyer(s.kafka)
    rekeyer.start()
    try:
        wait_for(lambda: rekeyer.counters.refused >= 1 and rekeyer.readiness()["ok"])
    finally:
        rekeyer.stop(30)
    assert rekeyer.counters.refused == 1 and rekeyer.counters.omitted == 1
    dead = read_topic(consumer_factory(), s.kafka.dead_letter_topic)
    assert len(dead) == 1 and dead[0].value == b"" and dead[0].key is None
    headers = dict(dead[0].headers)
    assert headers["crisisd.reason"] == b"rekey_refused"
    assert headers["crisisd.omitted"] == f"value {len(huge)} bytes, key 2 bytes".encode()
    assert headers["crisisd.source.offset"] == str(sent.offset).encode()
    assert {r.value for r in read_topic(consumer_factory(), s.kafka.rekey_topic)} == {event(1, "klm"), event(2, "klm")}
    wait_committed(bootstrap, rekey_group(s.kafka), topic, {0: 3}, timeout=10)


class BrokerAnswers:
    """The re-keyer's producer, with the broker's answer to some sends to the rekey topic made up:
    refused for good when the value holds `REFUSE`, refused once (not leader: retriable) when it
    holds `FLAKY`. A failed send calls its `on_error` and makes the next `flush` raise, as with
    the real producers."""

    def __init__(self, producer: Any, rekey_topic: str, client: str) -> None:
        self._p = producer
        self._topic = rekey_topic
        self._client = client
        self._failed: list[BaseException] = []
        self.flaky_failed = False

    def _error(self, permanent: bool) -> Exception:
        if self._client == "confluent":
            from confluent_kafka import KafkaError, KafkaException

            code = KafkaError.MSG_SIZE_TOO_LARGE if permanent else KafkaError.NOT_LEADER_FOR_PARTITION
            return KafkaException(KafkaError(code))
        return MessageSizeTooLargeError() if permanent else NotLeaderForPartitionError()

    def send(self, topic: str, value: bytes | None = None, on_error: Any = None, **kw: Any) -> Any:
        if topic == self._topic and value is not None:
            permanent = b"REFUSE" in value
            if permanent or (b"FLAKY" in value and not self.flaky_failed):
                self.flaky_failed |= not permanent
                error = self._error(permanent)
                self._failed.append(error)
                if on_error is not None:
                    on_error(error)
                return Future().failure(error)
        return self._p.send(topic, value=value, on_error=on_error, **kw)

    def flush(self, timeout: float | None = None) -> None:
        self._p.flush(timeout)
        if self._failed:
            failed, self._failed = self._failed, []
            raise SendFailed(failed)

    def close(self, timeout: float | None = None) -> None:
        self._p.close(timeout)


@pytest.mark.kafka
def test_a_broker_refusal_is_dead_lettered_and_a_transient_error_retried(
    monkeypatch,
    caplog,
    topic_factory,
    producer_factory,
    consumer_factory,
    settings_factory,
    unique,
    bootstrap,
    kafka_client,
) -> None:
    """The broker refuses one record for good (its future fails with the message-too-large error)
    and another once with a retriable error: the first is dead-lettered whole (once the re-keyer
    has forwarded again noting which send fails), the second forwarded on the retry (never
    dead-lettered), and every other record forwarded."""
    caplog.set_level(logging.INFO, logger="daemon.kafka.rekey")
    topic = topic_factory(partitions=2)
    refused = event(7, "klm").replace(b"flight 7", b"flight 7 REFUSE")
    flaky = event(8, "bol").replace(b"flight 8", b"flight 8 FLAKY")
    values = [event(i, BRANDS[i % 3]) for i in range(20)]
    values[7], values[8] = refused, flaky
    p = producer_factory()
    offsets = [p.send(topic, value=v, partition=i % 2).get(10).offset for i, v in enumerate(values)]
    s = settings_for(settings_factory, unique, topic, CRISISD_KAFKA_REKEY_TOPIC=unique("rekey"))
    made: list[BrokerAnswers] = []
    real = rekey.make_producer

    def make_producer(k: Any, **kw: Any) -> Any:
        made.append(BrokerAnswers(real(k, **kw), s.kafka.rekey_topic, kafka_client))
        return made[-1]

    monkeypatch.setattr(rekey, "make_producer", make_producer)
    rekeyer = Rekeyer(s.kafka)
    rekeyer.start()
    try:
        wait_for(lambda: rekeyer.counters.refused >= 1 and rekeyer.counters.commits >= 1 and rekeyer.readiness()["ok"])
        wait_committed(bootstrap, rekey_group(s.kafka), topic, {0: 10, 1: 10}, timeout=30)
    finally:
        rekeyer.stop(30)
    assert made and made[0].flaky_failed and rekeyer.counters.retries >= 1
    assert "forwarding again, noting which" in caplog.text
    assert rekeyer.counters.refused == 1 and rekeyer.counters.omitted == 0
    dead = read_topic(consumer_factory(), s.kafka.dead_letter_topic)
    assert [r.value for r in dead] == [refused]  # once: the retry re-sent it, then its refusal was final
    headers = dict(dead[0].headers)
    assert headers["crisisd.reason"] == b"rekey_refused"
    assert ERROR_NAMED.search(headers["crisisd.detail"]), headers["crisisd.detail"]
    assert (headers["crisisd.source.partition"], headers["crisisd.source.offset"]) == (b"1", str(offsets[7]).encode())
    forwarded = {r.value for r in read_topic(consumer_factory(), s.kafka.rekey_topic)}
    assert forwarded == set(values) - {refused}
