"""The re-keyer: mentions that are not keyed by brand, made keyed by brand (`kafka.rekey_topic`).

A brand's state lives with the partition its messages are on, so several replicas detect a brand
correctly only when its messages are all on one partition: keyed by brand. When the producers
cannot do that (third-party connectors), `crisisd run` with `kafka.rekey_topic` set runs this
stage on a thread of its own beside the detection stage (`Runner`), as a Kafka Streams
repartition topic does:

    kafka.topic --(group <group_id>.rekey)--> Rekeyer --(key = brand)--> kafka.rekey_topic
                --(group <group_id>)--> Runner (detection, as without re-keying)

Every message is forwarded unchanged (value, headers, timestamp) with its brand as key, read the
way the decoder reads it (`events.brand_key`: only `brand` is decoded), and one header more saying
where it was read, `crisisd.rekey.source: <topic>:<partition>:<offset>` (a producer's own header
of that name is replaced, not repeated): a dead letter of the detection stage names that record,
the one the producer sent (`rekeyed_from`). One header, not three: kafka-python encodes each
header in Python, and three cost the re-keyer about a fifth of its rate (one: 6-9 %). A message
whose brand cannot be read is forwarded too, with its own key, or when it has none to a partition
picked from its bytes (the same one each time): the detection stage dead-letters it with its full
reason. Nothing is dropped.

At least once: the offsets of `kafka.topic` are committed only past records acknowledged, each
either on the rekey topic or on the dead-letter topic (`_settle`). A crash or a rebalance
forwards again what was forwarded since the last commit; a copy lands on the partition of the
first one (same brand, same key), where the pipeline drops it by its event id
(`pipeline.dedup_capacity` ids per partition).

A record refused for good (send_errors.refused_for_good: too large for the producer's
`MAX_REQUEST_BYTES` or the rekey topic's `max.message.bytes`, invalid in the broker's eyes) cannot
be forwarded, ever: it goes to `kafka.dead_letter_topic` instead, with the original key, value and
timestamp, reason `rekey_refused`, the client's error as detail and its place in `kafka.topic`
(deadletter.dead_letter_headers), and forwarding goes on. Should the dead-letter topic refuse it
too, its dead letter goes without key and with an empty value, `crisisd.omitted` giving their
sizes: the record is still at its source, which the headers name, while a dead letter that
cannot be written would stall every brand as the refusal did. Any other error (a broker down, a
timeout, a leader moving) is not the record's: the partitions go back to their last commit and
forward again, after a backoff.

Which record was refused: the client refuses one over its bound in `send`, at once. The brokers'
refusals come back later, to `flush` (`SendFailed`); noting every send's record until it is
acknowledged would cost 10-15 % of the rate (the records outlive a garbage collection), so
sends are not noted until a flush fails with refusals only: the partitions then go back to their
last commit at once (`_FindRefused`, no backoff), and the records up to where forwarding had got
are sent again noting which fails (`_note`); the next commit dead-letters them.

Order: the order within an input partition is kept. A brand spread over several input partitions
reaches its rekey partition in the order the re-keyer forwards them, which is by record timestamp
(Kafka Streams' choice): polled records wait in a buffer per partition, and the oldest head goes
first, but not past `ALIGN_SECONDS` beyond the last record of a partition that is still behind
its end with nothing buffered (its next records are not known yet). While the re-keyer keeps up
no partition is behind, and every record polled goes out at once; while it catches up a backlog,
the brand's events keep within `ALIGN_SECONDS` of record-time order, inside the windows' allowed
lateness (120 s by default) when the producers' timestamps follow event time. A partition that
gives nothing for `ALIGN_IDLE_SECONDS` is not waited for; records without a timestamp are not
held.

Broker errors are retried with backoff (1 s doubling to 30 s; new clients after 3 in a row),
shown on /readyz (`rekey`) and in the log; the thread ends only on a stop.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from daemon import metrics
from daemon.cli import describe
from daemon.events import brand_key
from daemon.kafka.clients import (
    Consumer,
    Producer,
    RebalanceListener,
    SendFailed,
    SendFuture,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
    partition_count,
    resume,
)
from daemon.kafka.deadletter import HEADER_OMITTED, dead_letter_headers
from daemon.kafka.send_errors import refusal, refused_for_good
from daemon.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)

FLUSH_SECONDS = 60.0
"""How long a commit waits for the brokers to acknowledge what it covers."""

MAX_REQUEST_BYTES = 16 << 20
"""The producer's own bound on one request: the brokers' (`message.max.bytes`, the topic's
`max.message.bytes`) are the ones that count, as they did for the input topic."""

ALIGN_SECONDS = 30.0
"""How far (record time) forwarding may run ahead of a partition still behind its end."""

ALIGN_IDLE_SECONDS = 5.0
"""A partition behind its end (as far as the client knows) that gave no record for this long is
not waited for (a transaction marker at its end, a broker that does not answer for it)."""

HEADER_SOURCE = "crisisd.rekey.source"
"""On each forwarded record: where the re-keyer read it, `<topic>:<partition>:<offset>` (a topic
name has no `:`)."""

REFUSED_REASON = "rekey_refused"
"""The dead letter's reason for a record refused for good on the rekey topic."""

LAG_INTERVAL_SECONDS = 1.0

REOPEN_AFTER_FAILURES = 3
"""Errors in a row after which the clients are closed and made anew."""

_BACKOFF_MAX_SECONDS = 30.0
_NO_TIME = float("-inf")


def rekey_group(k: KafkaSettings) -> str:
    """The re-keyer's consumer group: its own, so its offsets are apart from the detection's."""
    return f"{k.group_id}.rekey"


def fallback_partition(value: bytes | None, partitions: int) -> int:
    """The partition of a message with neither a brand nor a key: from its bytes, the same every time.

    >>> fallback_partition(b"not json", 6) == fallback_partition(b"not json", 6), fallback_partition(None, 6)
    (True, 0)
    """
    return zlib.crc32(value or b"") % partitions


def rekeyed_from(headers: list[tuple[str, bytes]] | None) -> tuple[str, int, int] | None:
    """Where the re-keyer read a record of the rekey topic: (topic, partition, offset) from its
    headers; None when they are missing or unreadable.

    >>> rekeyed_from([("trace", b"x"), (HEADER_SOURCE, b"mentions.eu:3:42")])
    ('mentions.eu', 3, 42)
    >>> rekeyed_from([(HEADER_SOURCE, b"mentions")]), rekeyed_from([]), rekeyed_from(None)
    (None, None, None)
    """
    for name, value in headers or ():
        if name == HEADER_SOURCE and value:
            topic, _, where = value.decode("utf-8", "replace").partition(":")
            partition, _, offset = where.partition(":")
            try:
                return topic, int(partition), int(offset)
            except ValueError:  # not the re-keyer's
                return None
    return None


class _FindRefused(Exception):
    """Sends were refused for good, but which was not noted: forward them again, noting it."""


def _note_failure(failures: list[tuple[Any, BaseException]], record: Any, error: BaseException) -> None:
    failures.append((record, error))  # from the client's IO thread too: one append is atomic


def _stamp(r: Any) -> float:
    t = r.timestamp
    return t if t is not None and t >= 0 else _NO_TIME


@dataclass
class RekeyCounters:
    forwarded: int = 0
    unreadable: int = 0
    """Forwarded without a brand (the detection stage dead-letters them)."""
    refused: int = 0
    """Refused for good on the rekey topic, dead-lettered instead."""
    omitted: int = 0
    """Of `refused`, dead-lettered without value and key (the dead-letter topic refused them too)."""
    commits: int = 0
    retries: int = 0
    """Errors met and retried."""


class Rekeyer:
    """`start()` runs the re-keyer on a thread until `stop()`; `readiness()` for /readyz."""

    def __init__(self, k: KafkaSettings) -> None:
        assert k.rekey_topic, "kafka.rekey_topic is not set"
        self.k = k
        self.group = rekey_group(k)
        self.counters = RekeyCounters()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = "starting"
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._dead_letters: Producer | None = None  # made at the first refusal
        self._partitions = 0  # of the rekey topic
        self.topic_ready = threading.Event()
        """Set once the rekey topic exists (found or made): the detection may subscribe to it."""
        self._assigned: set[TopicPartition] = set()
        self._buffer: dict[TopicPartition, deque[Any]] = {}  # polled, not forwarded yet
        self._full: set[TopicPartition] = set()  # paused while their buffer is full
        self._first: dict[TopicPartition, int] = {}  # first offset forwarded since the last commit
        self._next: dict[TopicPartition, int] = {}  # after the last offset forwarded, not committed
        self._forwarded_to: dict[TopicPartition, int] = {}  # after the last offset forwarded
        self._polled_to: dict[TopicPartition, int] = {}  # after the last offset polled
        self._last_time: dict[TopicPartition, float] = {}  # timestamp (ms) of the last record polled
        self._moved: dict[TopicPartition, float] = {}  # when assigned or when it last gave records
        self._start: dict[TopicPartition, int] = {}  # its position before anything was polled
        self._refused: list[tuple[Any, BaseException]] = []  # (record, error): refused by `send` itself
        self._failed: list[tuple[Any, BaseException]] = []  # (record, error): sends noted failing
        self._note: dict[TopicPartition, int] = {}  # sends of records before these offsets are noted
        self._unsettled: Exception | None = None  # why a settle on revoke failed
        self._source: dict[TopicPartition, bytes] = {}  # b"<topic>:<partition>:", of HEADER_SOURCE
        self._since_commit = 0
        self._last_commit = time.monotonic()
        self._last_lag = 0.0
        self._lag = 0

    # -- hooks -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="crisisd-rekey", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float) -> None:
        """Commit what was forwarded and close, within `timeout` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("re-keyer did not stop within %.0f s", timeout)
            self._thread = None

    def reconfigure(self, k: KafkaSettings) -> None:
        """The live settings of a reload (commit policy, timeouts); any thread."""
        self.k = k

    def readiness(self) -> dict[str, Any]:
        alive = self._thread is not None and self._thread.is_alive()
        return {
            "ok": alive and self._error is None,
            "error": self._error or ("" if alive else "not running"),
            "lag": self._lag,
            "partitions": len(self._assigned),
        }

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 1.0
        failures = 0
        while not self._stop.is_set():
            try:
                if self._consumer is None:
                    self._open()
                self._step()
            except _FindRefused as exc:  # no backoff: the cluster is fine, a record is not
                log.info("re-keyer: %s; forwarding again, noting which", exc)
                self._rewind()
            except Exception as exc:  # broker errors and anything else: never end the thread
                failures += 1
                self._error = str(exc) or type(exc).__name__
                self.counters.retries += 1
                metrics.REKEY_ERRORS.inc()
                log.warning(
                    "re-keyer: %s; retrying in %.0f s",
                    self._error,
                    delay,
                    extra={"topic": self.k.topic, "rekey_topic": self.k.rekey_topic},
                )
                self._rewind()
                if failures >= REOPEN_AFTER_FAILURES and self._consumer is not None:
                    self._close(commit=False)  # new clients at the next turn
                self._stop.wait(delay)
                delay = min(2 * delay, _BACKOFF_MAX_SECONDS)
            else:
                if self._error is not None:
                    if self._error != "starting":
                        log.info("re-keyer: forwarding again")
                    self._error = None
                delay, failures = 1.0, 0
        self._close(commit=self._error is None)

    def _open(self) -> None:
        """The rekey topic (made with the input's partition count when missing), the producer, and
        the consumer in the re-keyer's group. Raises while the input topic does not exist."""
        k = self.k
        probe = make_consumer(k)
        try:
            partitions = partition_count(probe, k.topic)
            if not partitions:
                raise RuntimeError(f"topic {k.topic} does not exist (yet)")
            if k.create_topics and not partition_count(probe, k.rekey_topic):
                admin = make_admin(k)
                try:
                    ensure_topics(admin, {k.rekey_topic: (partitions, {})})
                finally:
                    admin.close()
            for _ in range(50):  # a topic just made shows in the metadata after a moment
                self._partitions = partition_count(probe, k.rekey_topic)
                if self._partitions or not k.create_topics:
                    break
                time.sleep(0.1)
        finally:
            probe.close()
        if not self._partitions:
            raise RuntimeError(
                f"topic {k.rekey_topic} does not exist and kafka.create_topics is off: "
                f"create it with {partitions} partitions (those of {k.topic})"
            )
        self.topic_ready.set()
        if self._partitions != partitions:
            log.info(
                "%s has %d partitions and %s %d; the rekey topic's count is the bound on useful replicas",
                k.topic, partitions, k.rekey_topic, self._partitions,
            )  # fmt: skip
        producer = make_producer(k, acks="all", linger_ms=5, batch_size=256 * 1024, max_request_size=MAX_REQUEST_BYTES)
        try:
            consumer = make_consumer(
                k,
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset=k.auto_offset_reset,
                session_timeout_ms=k.session_timeout_ms,
                heartbeat_interval_ms=k.heartbeat_interval_ms,
                max_poll_records=k.max_poll_records,
            )
            consumer.subscribe([k.topic], listener=RebalanceListener(self))
        except BaseException:
            producer.close(0)
            raise
        self._producer, self._consumer = producer, consumer
        self._last_commit = time.monotonic()
        log.info("re-keying %s into %s by brand, in group %s", k.topic, k.rekey_topic, self.group)

    def _step(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        k = self.k
        batch = consumer.poll(timeout_ms=k.poll_timeout_ms)
        now = time.monotonic()
        for tp, records in batch.items():
            if records and tp in self._assigned:
                self._buffer.setdefault(tp, deque()).extend(records)
                last = records[-1]
                self._polled_to[tp] = last.offset + 1
                self._moved[tp] = now
                if _stamp(last) != _NO_TIME:
                    self._last_time[tp] = _stamp(last)
        if self._buffer:
            self._forward(now)
            self._bound_buffers()
        if self._since_commit >= k.commit_every_messages or (
            self._next and now - self._last_commit >= k.commit_interval_seconds
        ):
            self._commit()
        if now - self._last_lag >= LAG_INTERVAL_SECONDS:
            self._last_lag = now
            self._publish_lag()

    def _limit(self, now: float) -> float:
        """The newest record time (ms) that may go out now: ALIGN_SECONDS past the last record of
        each partition still behind its end with nothing buffered; +inf when there is none."""
        limit = float("inf")
        for tp in self._assigned:
            if not self._buffer.get(tp):
                limit = min(limit, self._wait_bound(tp, now))
        return limit

    def _wait_bound(self, tp: TopicPartition, now: float) -> float:
        """For a partition with nothing buffered: how far (record time, ms) the others may go
        before its next records are known; +inf when it is not waited for."""
        if now - self._moved.get(tp, now) > ALIGN_IDLE_SECONDS or not self._behind(tp):
            return float("inf")
        last = self._last_time.get(tp)
        if last is not None:
            return last + ALIGN_SECONDS * 1000
        # not read yet: wait for its first records; read, but with no record timestamps: not waited for
        return _NO_TIME if tp not in self._polled_to else float("inf")

    def _forward(self, now: float) -> None:
        """Buffered records, oldest head first, while within `_limit` (untimed ones at once)."""
        producer = self._producer
        assert producer is not None
        limit = self._limit(now)
        topic, partitions, send = self.k.rekey_topic, self._partitions, producer.send
        sources = self._source
        note = self._note
        on_error = partial(_note_failure, self._failed)  # a rewind starts a new list: late failures go to the old
        heads = [(_stamp(q[0]), tp.partition, tp) for tp, q in self._buffer.items() if q]
        heapq.heapify(heads)
        forwarded = unreadable = 0
        while heads:
            when, _, tp = heads[0]
            if when > limit:
                break
            q = self._buffer[tp]
            r = q.popleft()
            value = r.value
            key = brand_key(value)
            partition = None
            if key is None:
                unreadable += 1
                key = r.key
                if key is None:
                    partition = fallback_partition(value, partitions)
            source = sources.get(tp)
            if source is None:
                source = sources[tp] = b"%s:%d:" % (tp.topic.encode(), tp.partition)
            headers = [(HEADER_SOURCE, source + b"%d" % r.offset)]
            own = r.headers
            if own:
                headers = [h for h in own if h[0] != HEADER_SOURCE] + headers
            try:
                send(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    partition=partition,
                    timestamp_ms=None if when == _NO_TIME else int(when),
                    # noting which send fails keeps its record until acknowledged (the garbage
                    # collector's work): only while looking for a refused one
                    on_error=partial(on_error, r) if note and r.offset < note.get(tp, -1) else None,
                )
                forwarded += 1
            except Exception as exc:
                if not refused_for_good(exc):
                    raise
                self._refused.append((r, exc))  # by the client itself: dead-lettered when settling
            self._first.setdefault(tp, r.offset)
            self._next[tp] = self._forwarded_to[tp] = r.offset + 1
            if q:
                heapq.heapreplace(heads, (_stamp(q[0]), tp.partition, tp))
            else:  # ran dry: while behind, its next records bound the others
                heapq.heappop(heads)
                limit = min(limit, self._wait_bound(tp, now))
        if forwarded:
            self.counters.forwarded += forwarded
            self.counters.unreadable += unreadable
            self._since_commit += forwarded
            metrics.REKEYED.inc(forwarded)
            if unreadable:
                metrics.REKEY_UNREADABLE.inc(unreadable)

    def _bound_buffers(self) -> None:
        """Pause a partition while it holds more than two polls' worth of records, so a partition
        waited for cannot make the others' buffers grow without bound."""
        consumer = self._consumer
        assert consumer is not None
        high = 2 * self.k.max_poll_records
        full = [tp for tp, q in self._buffer.items() if len(q) > high and tp not in self._full]
        drained = [tp for tp in self._full if len(self._buffer.get(tp, ())) <= high // 2]
        if full:
            consumer.pause(*full)
            self._full.update(full)
        if drained:
            resume(consumer, *drained)
            self._full.difference_update(drained)

    def _behind(self, tp: TopicPartition) -> bool:
        """Has `tp` records not polled yet, as far as the last fetch told (unknown: maybe)?"""
        consumer = self._consumer
        assert consumer is not None
        high = consumer.highwater(tp)
        if high is None:
            return True
        position = self._polled_to.get(tp)
        if position is None:
            position = self._start.get(tp)
            if position is None:  # known (no request) once a fetch answered for it
                position = self._start[tp] = consumer.position(tp)
        return position < high

    def _commit(self) -> None:
        """Every record forwarded acknowledged or dead-lettered (raises if not), then the offsets after them."""
        consumer = self._consumer
        assert consumer is not None
        self._settle(FLUSH_SECONDS)
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._next.items()}
        if offsets:
            consumer.commit(offsets)
            self.counters.commits += 1
        if self._note:  # what was looked for is past
            self._note = {tp: end for tp, end in self._note.items() if self._next.get(tp, 0) < end}
        self._first.clear()
        self._next.clear()
        self._since_commit = 0
        self._last_commit = time.monotonic()

    def _settle(self, timeout: float) -> None:
        """Every record sent since the last settle acknowledged on the rekey topic, or refused for
        good and then acknowledged on the dead-letter topic. Raises when a send failed otherwise,
        before dead-lettering anything (the caller forwards them all again)."""
        producer = self._producer
        assert producer is not None
        if self._unsettled is not None:  # a revoke's settle failed: what it covered goes again
            unsettled, self._unsettled = self._unsettled, None
            raise unsettled
        try:
            producer.flush(timeout)
            refused = self._refused
        except SendFailed as exc:
            if not all(refused_for_good(error) for error in exc.errors):
                raise  # the cluster's: forwarded again, after a backoff
            if len(self._failed) < len(exc.errors):  # sent without noting which
                for tp, end in self._next.items():
                    self._note[tp] = max(end, self._note.get(tp, 0))
                raise _FindRefused(
                    f"{len(exc.errors)} records refused for good, e.g. {describe(exc.errors[0])}"
                ) from exc
            refused = self._refused + self._failed
        if refused:
            self._dead_letter(refused)
        self._refused, self._failed = [], []

    def _dead_letter(self, refused: list[tuple[Any, BaseException]]) -> None:
        """Records refused for good on the rekey topic, to the dead-letter topic: whole, or without
        value and key when that topic refuses them too. Returns once all are acknowledged."""
        k = self.k
        if self._dead_letters is None:  # the detection's dead letters have the same bound
            self._dead_letters = make_producer(k, acks="all", linger_ms=5, max_request_size=k.max_snapshot_bytes)
        send = self._dead_letters.send
        sends = []
        for r, error in refused:  # all sent first, then waited for: one round trip, not one each
            headers = dead_letter_headers(
                REFUSED_REASON, f"{k.rekey_topic}: {describe(error)}", r.topic, r.partition, r.offset, r.timestamp
            )
            outcome: SendFuture | BaseException
            try:
                outcome = send(k.dead_letter_topic, key=r.key, value=r.value, headers=headers)
            except Exception as exc:
                if not refused_for_good(exc):
                    raise
                outcome = exc
            sends.append((r, error, headers, outcome))
        for r, error, headers, outcome in sends:
            too_much = outcome if isinstance(outcome, BaseException) else refusal(outcome, FLUSH_SECONDS)
            if too_much is not None:
                sizes = f"value {len(r.value or b'')} bytes, key {len(r.key or b'')} bytes"
                future = send(k.dead_letter_topic, value=b"", headers=[*headers, (HEADER_OMITTED, sizes.encode())])
                if refusal(future, FLUSH_SECONDS) is not None:  # a few hundred bytes of headers: not the record's
                    raise RuntimeError(f"{k.dead_letter_topic} refuses even a dead letter without value and key")
                self.counters.omitted += 1
            log.warning(
                "re-keyer: %s:%d offset %d refused by %s (%s); dead-lettered%s",
                r.topic, r.partition, r.offset, k.rekey_topic, describe(error),
                f" without its value and key ({describe(too_much)})" if too_much is not None else "",
                extra={"dead_letter_topic": k.dead_letter_topic},
            )  # fmt: skip
        self.counters.refused += len(refused)
        metrics.REKEY_REFUSED.inc(len(refused))

    def _rewind(self) -> None:
        """After an error: whatever was forwarded since the last commit may be lost, so each
        partition goes back to it, or to its first buffered record (forwarded twice at worst: the
        detection stage drops the copies)."""
        consumer = self._consumer
        if consumer is not None:
            for tp in self._assigned:
                q = self._buffer.get(tp)
                offset = self._first.get(tp, q[0].offset if q else None)
                if offset is None:
                    continue
                try:
                    consumer.seek(tp, offset)
                except Exception as exc:  # revoked meanwhile: its next owner starts at the commit
                    log.debug("re-keyer: cannot seek %s: %s", tp, exc)
                    continue
                self._polled_to[tp] = offset
        self._buffer.clear()
        self._first.clear()
        self._next.clear()
        self._refused, self._failed = [], []
        self._unsettled = None
        self._since_commit = 0

    def _close(self, commit: bool) -> None:
        consumer, producer = self._consumer, self._producer
        k = self.k
        if consumer is not None and commit:
            try:
                self._commit()
            except Exception as exc:
                log.warning("re-keyer: final commit failed (%s); what it covers is forwarded again", exc)
        if consumer is not None:
            try:
                consumer.close(autocommit=False, timeout_ms=int(min(k.shutdown_timeout_seconds, 10.0) * 1000))
            except Exception as exc:
                log.warning("re-keyer: consumer close failed: %s", exc)
        for p in (producer, self._dead_letters):
            if p is not None:
                try:
                    p.close(k.shutdown_timeout_seconds)
                except Exception as exc:
                    log.warning("re-keyer: producer close failed: %s", exc)
        self._consumer = self._producer = self._dead_letters = None
        self._forget(set(self._assigned))
        self._full.clear()
        metrics.REKEY_LAG.clear()

    def _publish_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        total = 0
        for tp in self._assigned:
            high = consumer.highwater(tp)
            position = self._forwarded_to.get(tp, self._start.get(tp))
            if high is None or position is None:
                continue
            lag = max(0, high - position)
            metrics.REKEY_LAG.labels(str(tp.partition)).set(lag)
            total += lag
        self._lag = total

    # -- rebalances (inside poll) ----------------------------------------------------------------
    def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        owned = {tp: offset for tp, offset in self._next.items() if tp in revoked}
        if owned and self._consumer is not None and self._producer is not None:
            try:
                self._settle(min(FLUSH_SECONDS, self.k.shutdown_timeout_seconds))
            except Exception as exc:
                self._unsettled = exc  # the partitions kept must not be committed past it either
                log.warning("re-keyer: forwarded records not settled on revoke (%s); forwarded again", exc)
                owned = {}
            try:
                if owned:
                    self._consumer.commit_async({tp: OffsetAndMetadata(o, "", -1) for tp, o in owned.items()})
            except Exception as exc:
                log.warning("re-keyer: commit on revoke failed (%s); the next owner forwards again", exc)
        self._forget(revoked)

    def _on_lost(self, lost: set[TopicPartition]) -> None:
        self._forget(lost)

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assigned |= assigned
        now = time.monotonic()
        for tp in assigned:
            self._moved.setdefault(tp, now)
        log.info("re-keyer: partitions assigned: %s", sorted(tp.partition for tp in assigned))

    def _forget(self, tps: set[TopicPartition]) -> None:
        for tp in tps:
            self._assigned.discard(tp)
            self._full.discard(tp)
            for state in (
                self._buffer, self._first, self._next, self._forwarded_to, self._polled_to, self._last_time,
                self._moved, self._start,
            ):  # fmt: skip
                state.pop(tp, None)
