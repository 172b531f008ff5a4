"""The `confluent` client backend (`kafka.client: confluent`): librdkafka through confluent-kafka,
behind the subset of kafka-python's API that crisisd uses (`daemon/kafka/clients.py` lists it),
so the runner, the changelog and the notification log run unchanged on either client.

librdkafka fetches in its own C threads, ahead of the application (fetching overlaps processing)
and without the GIL, and decodes record batches in C: it reads small messages many times faster
than kafka-python. What this adapter has to bridge:

- rebalance callbacks run inside `poll()`, on the polling thread (kafka-python runs them on its IO
  thread): the listener gets the same three calls with sets of `TopicPartition`. With the eager
  protocol the adapter assigns before telling the listener, so the listener may pause at once;
- librdkafka starts a new assignment asynchronously: a `seek` right after it answers `_STATE`.
  A manual assignment not yet polled is re-assigned at the offset instead, a group one retried;
- positions are tracked here (the seek or assignment offset, then the offset after the last
  record returned), so "read to the high watermark" loops behave as with kafka-python;
  `highwater` is librdkafka's cached high watermark, updated by every fetch response;
- a send that fails makes the next `flush()` raise (kafka-python only fails the send's future):
  a checkpoint is never followed by a commit when a record it depends on was lost; a send's
  future tells its own error (`is_done`, `exception`) as kafka-python's does;
- keyed records go to the partition kafka-python and the Java client pick (murmur2), so brands
  land on the same partitions whichever client produced them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaException,
    Producer,
)
from confluent_kafka import KafkaError as CKError
from confluent_kafka import TopicPartition as CTP
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from daemon.kafka.clients import SendFailures

log = logging.getLogger(__name__)
_rdlog = logging.getLogger("daemon.kafka.librdkafka")
_DIGITS = re.compile(r"\d+")


class DropRepeats(logging.Filter):
    """The same line at most once per `window` seconds, then with how many were dropped.

    librdkafka reports every failed reconnect, tens a second per client while a broker is down
    (390 lines in the first 11 s of a start without Kafka); one a window says as much.

    >>> now = [0.0]
    >>> f = DropRepeats(window=30.0, clock=lambda: now[0])
    >>> def rec(msg): return logging.LogRecord("x", logging.ERROR, "", 0, msg, (), None)
    >>> [f.filter(rec("refused")) for now[0] in (0.0, 1.0, 2.0)]
    [True, False, False]
    >>> r = rec("refused"); now[0] = 31.0; f.filter(r), r.getMessage()
    (True, 'refused (and 2 more like it in the last 31 s)')
    >>> f.filter(rec("consumer-2: refused after 0ms")), f.filter(rec("consumer-6: refused after 4ms"))
    (True, False)
    """

    def __init__(self, window: float = 30.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # message -> (when it last passed, dropped since)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        # lines that differ only in numbers are alike: the client instance, "after 3ms", a port
        key = _DIGITS.sub("#", msg)
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) >= 1000:  # bounded: many distinct lines are not a flood of one
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg, record.args = f"{msg} (and {last[1]} more like it in the last {now - last[0]:.0f} s)", ()
        return True


_repeats = DropRepeats()
_rdlog.addFilter(_repeats)
log.addFilter(_repeats)  # the error callback's "kafka client: ..." lines repeat the same way

# kafka-python keyword -> librdkafka property (and a conversion)
_COMMON: dict[str, tuple[str, Any]] = {
    "bootstrap_servers": ("bootstrap.servers", lambda v: v if isinstance(v, str) else ",".join(v)),
    "client_id": ("client.id", str),
    "security_protocol": ("security.protocol", str),
    "sasl_mechanism": ("sasl.mechanism", str),
    "sasl_plain_username": ("sasl.username", str),
    "sasl_plain_password": ("sasl.password", str),
    "ssl_cafile": ("ssl.ca.location", str),
    "ssl_certfile": ("ssl.certificate.location", str),
    "ssl_keyfile": ("ssl.key.location", str),
    "ssl_password": ("ssl.key.password", str),
    "ssl_check_hostname": ("ssl.endpoint.identification.algorithm", lambda v: "https" if v else "none"),
}
_CONSUMER: dict[str, tuple[str, Any]] = {
    "group_id": ("group.id", str),
    "enable_auto_commit": ("enable.auto.commit", bool),
    "auto_offset_reset": ("auto.offset.reset", str),
    "session_timeout_ms": ("session.timeout.ms", int),
    "heartbeat_interval_ms": ("heartbeat.interval.ms", int),
    "max_poll_interval_ms": ("max.poll.interval.ms", int),
    "fetch_max_wait_ms": ("fetch.wait.max.ms", int),
    "fetch_min_bytes": ("fetch.min.bytes", int),
    "fetch_max_bytes": ("fetch.max.bytes", int),
    "max_partition_fetch_bytes": ("max.partition.fetch.bytes", int),
}
_PRODUCER: dict[str, tuple[str, Any]] = {
    "acks": ("acks", str),
    "linger_ms": ("linger.ms", int),
    "batch_size": ("batch.size", int),
    "compression_type": ("compression.type", str),
    "max_request_size": ("message.max.bytes", int),
    "retries": ("retries", int),
    "request_timeout_ms": ("request.timeout.ms", int),
}
_ROLES = {"consumer": _CONSUMER, "producer": _PRODUCER, "admin": {}}


def translate(cfg: Mapping[str, Any], role: str) -> dict[str, Any]:
    """kafka-python keywords -> librdkafka properties for `role`; keys with a dot are librdkafka
    properties already (from `client_options`) and win. Other keywords are dropped.

    >>> translate({"bootstrap_servers": ["a:1", "b:2"], "linger_ms": 5, "max_poll_records": 9,
    ...            "linger.ms": 7}, "producer")
    {'bootstrap.servers': 'a:1,b:2', 'linger.ms': 7}
    """
    names = _ROLES[role]
    out: dict[str, Any] = {}
    for name, value in cfg.items():
        spec = names.get(name) or _COMMON.get(name)
        if spec is not None and value is not None:
            out[spec[0]] = spec[1](value)
    out.update({k: v for k, v in cfg.items() if "." in k})
    return out


def _error_cb(err: CKError) -> None:
    # transient connection errors are retried by librdkafka; fatal ones surface on the next call
    (log.error if err.fatal() else log.warning)("kafka client: %s", err)


def _tp(ctp: CTP) -> TopicPartition:
    return TopicPartition(ctp.topic, ctp.partition)


def _drive(result: Any) -> None:
    """Run a listener method: kafka-python's listeners may be `async def` (they never await)."""
    if hasattr(result, "send"):
        try:
            result.send(None)
        except StopIteration:
            return
        result.close()
        raise RuntimeError("rebalance listener awaited: not supported by the confluent client")


class _Record:
    """One consumed record, with the attributes of kafka-python's ConsumerRecord that crisisd
    reads (`offset` and `value` eagerly, the rest on demand: they matter for dead letters only)."""

    __slots__ = ("_m", "offset", "value")

    def __init__(self, offset: int, value: bytes | None, m: Any) -> None:
        self.offset = offset
        self.value = value
        self._m = m

    @property
    def key(self) -> bytes | None:
        key: bytes | None = self._m.key()
        return key

    @property
    def topic(self) -> str:
        topic: str = self._m.topic()
        return topic

    @property
    def partition(self) -> int:
        partition: int = self._m.partition()
        return partition

    @property
    def timestamp(self) -> int | None:
        kind, ts = self._m.timestamp()
        return None if kind == 0 else int(ts)  # TIMESTAMP_NOT_AVAILABLE

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._m.headers() or [])


class ConfluentConsumer:
    """A librdkafka consumer with kafka-python's method names (the subset crisisd uses)."""

    def __init__(self, config: Mapping[str, Any], *, max_poll_records: int = 500) -> None:
        cfg = dict(config)
        self._reset = str(cfg.get("auto.offset.reset", "latest"))
        self._grouped = "group.id" in cfg
        if not self._grouped:  # librdkafka wants one; a reader never joins nor commits with it
            cfg["group.id"] = f"{cfg.get('client.id', 'crisisd')}-reader"
        cfg.setdefault("enable.auto.commit", False)
        cfg.setdefault("enable.auto.offset.store", False)
        cfg.setdefault("error_cb", _error_cb)
        self._cfg = cfg
        self._c = Consumer(cfg, logger=_rdlog)
        self._ever: set[TopicPartition] = set()  # manually assigned at some point
        self._max = max_poll_records
        self._pos: dict[TopicPartition, int] = {}
        self._ctps: dict[TopicPartition, CTP] = {}
        self._manual: dict[TopicPartition, int] | None = None  # assign(): tp -> start offset
        self._fresh = False  # a manual assignment not polled yet

    def _ctp(self, tp: TopicPartition) -> CTP:
        c = self._ctps.get(tp)
        if c is None:
            c = self._ctps[tp] = CTP(tp.topic, tp.partition)
        return c

    # -- metadata ------------------------------------------------------------------------------
    def partitions_for_topic(self, topic: str) -> set[int]:
        t = self._c.list_topics(topic, timeout=10).topics.get(topic)
        if t is None or t.error is not None:
            return set()
        return set(t.partitions)

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        low, high = self._c.get_watermark_offsets(self._ctp(tp), timeout=10)
        return int(low), int(high)

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._watermarks(tp)[0] for tp in tps}

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._watermarks(tp)[1] for tp in tps}

    def highwater(self, tp: TopicPartition) -> int | None:
        """The high watermark of the last fetch response (None before one)."""
        _, high = self._c.get_watermark_offsets(self._ctp(tp), cached=True)
        return int(high) if high >= 0 else None

    def position(self, tp: TopicPartition) -> int:
        pos = self._pos.get(tp)
        if pos is None:
            low, high = self._watermarks(tp)
            committed = self.committed(tp) if self._grouped else None
            pos = committed if committed is not None else (low if self._reset == "earliest" else high)
            self._pos[tp] = pos
        return pos

    def committed(self, tp: TopicPartition) -> int | None:
        (c,) = self._c.committed([CTP(tp.topic, tp.partition)], timeout=10)
        if c.error is not None:
            raise KafkaError(f"committed offset of {tp.topic}:{tp.partition}: {c.error}")
        return int(c.offset) if c.offset >= 0 else None

    # -- assignment ----------------------------------------------------------------------------
    def assign(self, tps: Iterable[TopicPartition]) -> None:
        """Manual assignment (no group); reading starts at committed/reset unless `seek`ed.

        Re-assigning a partition starts a new client: librdkafka keeps the high watermark of an
        earlier read, which a "read to the end" loop must not trust (kafka-python forgets it)."""
        wanted = list(tps)
        if self._ever & set(wanted):
            self._c.close()
            self._c = Consumer(self._cfg, logger=_rdlog)
            self._ever = set()
        self._ever.update(wanted)
        self._manual = dict.fromkeys(wanted, OFFSET_INVALID)
        self._pos = {}
        self._apply_manual()

    def _apply_manual(self) -> None:
        assert self._manual is not None
        self._c.assign([CTP(tp.topic, tp.partition, off) for tp, off in self._manual.items()])
        self._fresh = True

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if self._manual is not None and self._fresh and tp in self._manual:
            self._manual[tp] = offset  # not started yet: start it there
            self._apply_manual()
        else:
            target = CTP(tp.topic, tp.partition, offset)
            deadline = time.monotonic() + 10
            while True:
                try:
                    self._c.seek(target)
                    break
                except KafkaException as exc:  # the assignment is still starting
                    if exc.args[0].code() != CKError._STATE or time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
        self._pos[tp] = offset

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.seek(tp, OFFSET_BEGINNING)
            self._pos[tp] = self._watermarks(tp)[0]

    def pause(self, *tps: TopicPartition) -> None:
        if tps:
            self._c.pause([self._ctp(tp) for tp in tps])

    def resume(self, *tps: TopicPartition) -> None:
        if tps:
            self._c.resume([self._ctp(tp) for tp in tps])

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        """Join the group. `listener` has kafka-python's ConsumerRebalanceListener methods
        (`on_partitions_revoked/assigned/lost`); they run inside `poll()`."""

        def on_assign(c: Any, parts: list[CTP]) -> None:
            c.assign(parts)  # eager protocol: take them now, so the listener may pause them
            tps = {_tp(p) for p in parts}
            for tp in tps:
                self._pos.pop(tp, None)
            if listener is not None:
                _drive(listener.on_partitions_assigned(tps))

        def on_revoke(c: Any, parts: list[CTP]) -> None:
            if listener is not None:
                _drive(listener.on_partitions_revoked({_tp(p) for p in parts}))

        def on_lost(c: Any, parts: list[CTP]) -> None:
            if listener is not None:
                _drive(listener.on_partitions_lost({_tp(p) for p in parts}))

        self._c.subscribe(list(topics), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    # -- reading -------------------------------------------------------------------------------
    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Any]]:
        """Up to `max_records` (default `max_poll_records`) records by partition, in offset order."""
        msgs: list[Any] = self._c.consume(max_records or self._max, timeout_ms / 1000)
        self._fresh = False
        if not msgs:
            return {}
        out: dict[TopicPartition, list[Any]] = {}
        last: tuple[str, int] | None = None
        records: list[Any] = []
        for m in msgs:
            if m.error() is not None:
                self._on_error(m.error())
                continue
            where = (m.topic(), m.partition())
            if where != last:
                last = where
                tp = TopicPartition(*where)
                records = out.setdefault(tp, [])
            records.append(_Record(m.offset(), m.value(), m))
        pos = self._pos
        for tp, recs in out.items():
            pos[tp] = recs[-1].offset + 1
        return out

    def _on_error(self, err: CKError) -> None:
        if err.code() == CKError._PARTITION_EOF:
            return
        if err.fatal():
            raise KafkaException(err)
        log.warning("kafka consumer: %s", err)

    # -- offsets -------------------------------------------------------------------------------
    def commit(self, offsets: Mapping[TopicPartition, Any]) -> None:
        """Synchronous commit of `tp -> OffsetAndMetadata` (raises KafkaError on failure)."""
        try:
            done = self._c.commit(offsets=_offsets(offsets), asynchronous=False)
        except KafkaException as exc:
            raise KafkaError(f"commit failed: {exc.args[0]}") from exc
        failed = [p for p in done or () if p.error is not None]
        if failed:
            raise KafkaError(f"commit failed: {failed[0].error}")

    def commit_async(self, offsets: Mapping[TopicPartition, Any]) -> None:
        try:
            self._c.commit(offsets=_offsets(offsets), asynchronous=True)
        except KafkaException as exc:  # e.g. no group generation during a rebalance
            log.warning("async commit not sent: %s", exc.args[0])

    def close(self, autocommit: bool = False, timeout_ms: int | None = None) -> None:
        """Leave the group (the listener's `on_partitions_revoked` runs) and close."""
        self._c.close()


def _offsets(offsets: Mapping[TopicPartition, Any]) -> list[CTP]:
    return [CTP(tp.topic, tp.partition, int(getattr(om, "offset", om))) for tp, om in offsets.items()]


class _Future:
    """The result of one send: `get(timeout)` waits for the broker's acknowledgement; `is_done` and
    `exception` (the delivery error as a KafkaException, with its code) as kafka-python's futures."""

    __slots__ = ("_event", "_on_error", "_producer", "error", "offset")

    def __init__(self, producer: ConfluentProducer, on_error: Callable[[BaseException], None] | None) -> None:
        self._producer = producer
        self._on_error = on_error
        self._event = threading.Event()
        self.error: Any = None
        self.offset: int | None = None

    def _done(self, err: Any, msg: Any) -> None:
        self.error = err
        if err is None:
            self.offset = msg.offset()
        else:
            error = KafkaException(err)  # with its code, for send_errors.refused_for_good
            self._producer.failures.add(error)
            if self._on_error is not None:
                self._on_error(error)
        self._event.set()

    @property
    def is_done(self) -> bool:
        return self._event.is_set()

    @property
    def exception(self) -> KafkaException | None:
        return None if self.error is None else KafkaException(self.error)

    def get(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._event.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                raise KafkaTimeoutError(f"no acknowledgement in {timeout}s")
            self._producer._p.poll(0.02)  # serves delivery callbacks (any thread may)
        if self.error is not None:
            raise KafkaError(str(self.error))
        return self.offset


class ConfluentProducer:
    """A librdkafka producer with kafka-python's `send/flush/close`."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        cfg = dict(config)
        cfg.setdefault("partitioner", "murmur2_random")  # kafka-python's and Java's partitions
        cfg.setdefault("error_cb", _error_cb)
        self._p = Producer(cfg, logger=_rdlog)
        self.failures = SendFailures()

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> _Future:
        future = _Future(self, on_error)
        part = -1 if partition is None else partition  # -1: the partitioner picks
        stamp = timestamp_ms or 0  # 0: librdkafka stamps the send's time
        while True:
            try:
                self._p.produce(
                    topic,
                    value,
                    key,
                    part,
                    on_delivery=future._done,
                    timestamp=stamp,
                    headers=headers,  # type: ignore[arg-type]
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._p.poll(0.05)
        self._p.poll(0)
        return future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every send is acknowledged; raise when one is not or one failed."""
        left = self._p.flush(-1 if timeout is None else timeout)
        if left:
            raise KafkaTimeoutError(f"{left} records not acknowledged in {timeout}s")
        self.failures.raise_any()

    def close(self, timeout: float | None = None) -> None:
        left = self._p.flush(-1 if timeout is None else timeout)
        if left:
            log.warning("producer closed with %d records not acknowledged", left)


class ConfluentAdmin:
    """The admin calls `clients.ensure_topics` makes, with kafka-python's result shapes."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._a = AdminClient(dict(config), logger=_rdlog)

    def list_topics(self) -> list[str]:
        return list(self._a.list_topics(timeout=10).topics)

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": list(self._a.list_topics(timeout=10).brokers.values())}

    def create_topics(self, spec: Mapping[str, Mapping[str, Any]], raise_errors: bool = False) -> dict[str, Any]:
        new = [
            NewTopic(
                name,
                num_partitions=int(s["num_partitions"]),
                replication_factor=int(s["replication_factor"]),
                config=dict(s.get("configs") or {}),
            )
            for name, s in spec.items()
        ]
        topics = []
        for name, future in self._a.create_topics(new, operation_timeout=30, request_timeout=30).items():
            try:
                future.result()
            except KafkaException as exc:
                err = exc.args[0]
                if raise_errors:
                    raise
                topics.append({"name": name, "error_code": err.code(), "error_message": err.str()})
            else:
                topics.append({"name": name, "error_code": 0})
        return {"topics": topics}

    def close(self) -> None:
        pass
