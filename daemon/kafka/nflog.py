"""The notification log: which notifications were delivered, shared by every replica through Kafka.

Why it exists: each replica's outbox is on its own machine. Replica A hands a notification to its
outbox, the outbox delivers it, and A is killed before committing the offsets. Replica B takes
the partition over, re-processes the same events and (the pipeline being deterministic) hands
the very same (incident_id, seq) to *its* outbox: without a shared record, Slack would get it
twice. So delivery goes through `LoggedNotifier`, alertmanager's nflog pattern: before sending,
look the key up in the log (read to its end); after a successful send, append the key and flush.

What remains: a replica killed between the send and the flush of its log record (a millisecond
per notification) can cause one duplicate after takeover. Writing the record *before* sending
would turn that into a possible loss instead; crisisd prefers a rare duplicate to a lost page.

The log topic is compacted (one small record per (incident_id, seq)); memory is bounded by
`capacity` keys (the oldest are forgotten first, long after their incident closed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from daemon.notification import Notification
from notifiers.base import Delivery, Notifier

log = logging.getLogger(__name__)


def log_key(incident_id: str, seq: int) -> bytes:
    return f"{incident_id}#{seq}".encode()


class _Entry(msgspec.Struct, frozen=True):
    incident_id: str
    seq: int
    by: str


_enc = msgspec.json.Encoder()


class NotificationLog:
    """A tail reader of the notifications topic plus a writer. `start()` runs the reader thread."""

    def __init__(
        self,
        topic: str,
        reader: KafkaConsumer,
        producer: KafkaProducer,
        *,
        replica: str,
        capacity: int = 500_000,
        poll_ms: int = 100,
    ) -> None:
        self.topic = topic
        self.replica = replica
        self._reader = reader
        self._producer = producer
        self._capacity = capacity
        self._poll_ms = poll_ms
        self._keys: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._rounds = 0  # completed reads that reached the end of every partition
        self._required = 1  # sends wait until this many rounds are done (see mark_takeover)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- reading ---------------------------------------------------------------------------------
    def start(self) -> None:
        parts = self._reader.partitions_for_topic(self.topic) or {0}
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self._reader.assign(tps)
        self._reader.seek_to_beginning(*tps)
        self._thread = threading.Thread(target=self._run, args=(tps,), name="crisisd-nflog", daemon=True)
        self._thread.start()

    def _run(self, tps: list[TopicPartition]) -> None:
        reader = self._reader
        while not self._stop.is_set():
            try:
                batch = reader.poll(timeout_ms=self._poll_ms)
                keys = [r.key for records in batch.values() for r in records if r.key is not None]
                at_end = all((h := reader.highwater(tp)) is not None and reader.position(tp) >= h for tp in tps)
            except Exception as exc:  # surfaced to senders, which then retry later
                if self._stop.is_set():
                    return
                log.warning("notification log: read failed: %s", exc)
                with self._lock:
                    self._error = exc
                self._stop.wait(1.0)
                continue
            with self._lock:
                self._error = None
                for k in keys:
                    self._remember(k)
                if at_end:
                    self._rounds += 1
                    self._synced.notify_all()

    def _remember(self, key: bytes) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def mark_takeover(self) -> None:
        """Partitions were just assigned: what their previous owner delivered must be read before
        anything is sent, so sends wait for a full read pass that starts after this call."""
        with self._lock:
            self._required = max(self._required, self._rounds + 2)

    def sync(self, timeout: float) -> bool:
        """Wait until the log is read to its end past the last takeover; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._rounds < self._required:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._synced.wait(left)
        return True

    def delivered(self, incident_id: str, seq: int) -> bool:
        with self._lock:
            return log_key(incident_id, seq) in self._keys

    # -- writing ---------------------------------------------------------------------------------
    def record(self, incident_id: str, seq: int, timeout: float = 10.0) -> None:
        key = log_key(incident_id, seq)
        value = _enc.encode(_Entry(incident_id, seq, self.replica))
        self._producer.send(self.topic, key=key, value=value).get(timeout)
        with self._lock:
            self._remember(key)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            self._synced.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


class LoggedNotifier:
    """A `Notifier` that skips what any replica already delivered and records what it delivers."""

    def __init__(self, inner: Notifier, nflog: NotificationLog, *, sync_timeout: float = 10.0) -> None:
        self.inner = inner
        self.nflog = nflog
        self._sync_timeout = sync_timeout
        self.skipped = 0

    def send(self, notification: Notification) -> Delivery:
        n = notification
        if not self.nflog.sync(self._sync_timeout):
            return Delivery(ok=False, retry=True, retry_after=1.0, error="notification log not readable")
        if self.nflog.delivered(n.incident_id, n.seq):
            self.skipped += 1
            log.info("notification %s #%d already delivered by another replica", n.incident_id, n.seq)
            return Delivery.done()
        result = self.inner.send(n)
        if result.ok:
            try:
                self.nflog.record(n.incident_id, n.seq)
            except Exception as exc:  # delivered all the same; a takeover may repeat it
                log.error("notification log: cannot record %s #%d: %s", n.incident_id, n.seq, exc)
        return result

    def close(self) -> None:
        self.inner.close()


def read_all(consumer_factory: Any, topic: str, timeout: float = 30.0) -> list[tuple[str, int, str]]:
    """Every (incident_id, seq, replica) in the log (tests and tools)."""
    reader: KafkaConsumer = consumer_factory()
    try:
        parts = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        out: list[tuple[str, int, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=200).values():
                for r in records:
                    e = msgspec.json.decode(r.value, type=_Entry)
                    out.append((e.incident_id, e.seq, e.by))
            if all((h := reader.highwater(tp)) is not None and reader.position(tp) >= h for tp in tps):
                return out
        raise TimeoutError(f"{topic} not read to its end in {timeout}s")
    finally:
        reader.close()
