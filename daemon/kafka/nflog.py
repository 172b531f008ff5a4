"""The notification log: which notifications were delivered, shared by every replica through Kafka.

Why it exists: each replica's outbox is on its own machine. Replica A hands a notification to its
outbox, the outbox delivers it, and A is killed before committing the offsets. Replica B takes
the partition over, re-processes the same events and (the pipeline being deterministic) hands
the very same (incident_id, seq) to *its* outbox: without a shared record, Slack would get it
twice. So delivery goes through `LoggedNotifier`, alertmanager's nflog pattern made two-phase:

1. read the log to its end (past the last takeover); `delivered` -> skip;
2. append `claimed` and wait for the broker's ack;
3. send; on success append `delivered`.

A crash between 2 and 3, or between the send and its `delivered` record, leaves a bare claim.
Whoever meets a bare claim (the same replica after a restart, or the next owner) cannot know
whether the send happened, so it asks the notifier when it can tell: a notifier with a
`delivered(notification) -> bool | None` method (the JSONL file notifier reads its file; a Slack
notifier can look for its message). Without an answer it sends again: crisisd prefers a rare
duplicate to a lost page.

Keys name the consumer group (`<group>/<incident_id>#<seq>`): each deployment (group) delivers its own
notifications, wherever another one sends them. Records from before the key named the group are not
read: at an upgrade, a notification in flight may be sent once more.

A `delivered` record also says where the notifier put the incident (`where`: for Slack, the root
message's channel and ts, from the notifier's `address(incident_id)`), so the replica that takes an
incident over finds its root in one read, however far back the channel's history it lies
(`NotificationLog.where`).

The log topic is compacted (one small record per (incident_id, seq), the newest state wins);
memory is bounded by `capacity` keys (the oldest are forgotten first, long after their incident
closed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

import msgspec
from kafka import TopicPartition

from daemon.kafka.clients import Consumer, Producer
from daemon.notification import Notification
from notifiers.base import Delivery, Notifier

log = logging.getLogger(__name__)


def log_key(group: str, incident_id: str, seq: int) -> bytes:
    return f"{group}/{incident_id}#{seq}".encode()


CLAIMED = "claimed"
DELIVERED = "delivered"


class _Entry(msgspec.Struct, frozen=True):
    incident_id: str
    seq: int
    by: str
    state: str = DELIVERED
    where: str = ""  # where the notifier put the incident (Slack: "<channel id> <root ts>"); "" unknown


_enc = msgspec.json.Encoder()


class NotificationLog:
    """A tail reader of the notifications topic plus a writer. `start()` runs the reader thread."""

    def __init__(
        self,
        topic: str,
        reader: Consumer,
        producer: Producer,
        *,
        replica: str,
        group: str,
        capacity: int = 500_000,
        poll_ms: int = 100,
    ) -> None:
        self.topic = topic
        self.replica = replica
        self.group = group
        self._prefix = f"{group}/".encode()
        self._reader = reader
        self._producer = producer
        self._capacity = capacity
        self._poll_ms = poll_ms
        self._keys: OrderedDict[bytes, str] = OrderedDict()
        self._where: OrderedDict[str, str] = OrderedDict()  # incident_id -> its last delivery's `where`
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
                mine = self._prefix  # other groups' records are theirs to read
                keys = [
                    (r.key, _entry(r.value)) for rs in batch.values() for r in rs if r.key and r.key.startswith(mine)
                ]
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
                for k, entry in keys:
                    self._remember(k, entry)
                if at_end:
                    self._rounds += 1
                    self._synced.notify_all()

    def _remember(self, key: bytes, entry: _Entry | None) -> None:
        state = DELIVERED if entry is None else entry.state
        if self._keys.get(key) == DELIVERED:
            state = DELIVERED  # a late claim (a zombie) never undoes a delivery
        self._keys[key] = state
        self._keys.move_to_end(key)
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        if entry is not None and entry.where:
            self._where[entry.incident_id] = entry.where
            self._where.move_to_end(entry.incident_id)
            if len(self._where) > self._capacity:
                self._where.popitem(last=False)

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

    def state(self, incident_id: str, seq: int) -> str | None:
        """`claimed`, `delivered`, or None when the log has no record of it."""
        with self._lock:
            return self._keys.get(log_key(self.group, incident_id, seq))

    def delivered(self, incident_id: str, seq: int) -> bool:
        return self.state(incident_id, seq) == DELIVERED

    def where(self, incident_id: str) -> str | None:
        """Where the last delivery of the incident that the log has read put it (any thread)."""
        with self._lock:
            return self._where.get(incident_id)

    # -- writing ---------------------------------------------------------------------------------
    def record(
        self, incident_id: str, seq: int, state: str = DELIVERED, timeout: float = 10.0, *, where: str = ""
    ) -> None:
        """Append `state` for (incident_id, seq) and wait for the broker's acknowledgement."""
        key = log_key(self.group, incident_id, seq)
        entry = _Entry(incident_id, seq, self.replica, state, where)
        self._producer.send(self.topic, key=key, value=_enc.encode(entry)).get(timeout)
        with self._lock:
            self._remember(key, entry)

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
        nflog = self.nflog
        if not nflog.sync(self._sync_timeout):
            return Delivery(ok=False, retry=True, retry_after=1.0, error="notification log not readable")
        state = nflog.state(n.incident_id, n.seq)
        if state == DELIVERED:
            return self._skip(n, "already delivered")
        if state == CLAIMED:
            # A send may or may not have happened before a crash: ask the receiver if it can tell.
            ask = getattr(self.inner, "delivered", None)
            answer = ask(n) if ask is not None else None
            if answer:
                self._record(n, DELIVERED)
                return self._skip(n, "delivered before a crash")
        else:
            try:
                nflog.record(n.incident_id, n.seq, CLAIMED)
            except Exception as exc:
                return Delivery(ok=False, retry=True, retry_after=1.0, error=f"notification log: {exc}")
        result = self.inner.send(n)
        if result.ok:
            self._record(n, DELIVERED)
        return result

    def _skip(self, n: Notification, why: str) -> Delivery:
        self.skipped += 1
        log.info("notification %s #%d not sent again: %s", n.incident_id, n.seq, why)
        return Delivery.done()

    def _record(self, n: Notification, state: str) -> None:
        where = ""
        address = getattr(self.inner, "address", None)
        if state == DELIVERED and address is not None:
            try:
                where = address(n.incident_id) or ""
            except Exception:  # the address is a shortcut for a takeover, never a reason to fail
                log.exception("notification log: no address for %s", n.incident_id)
        try:
            self.nflog.record(n.incident_id, n.seq, state, where=where)
        except Exception as exc:  # delivered all the same; the bare claim makes the next one ask
            log.error("notification log: cannot record %s #%d: %s", n.incident_id, n.seq, exc)

    def close(self) -> None:
        self.inner.close()


def _entry(value: bytes | None) -> _Entry | None:
    """A record's entry; None (taken as delivered) for one without a readable value."""
    if not value:
        return None
    try:
        return msgspec.json.decode(value, type=_Entry)
    except msgspec.DecodeError:
        return None


def read_all(consumer_factory: Any, topic: str, timeout: float = 30.0) -> list[tuple[str, int, str, str]]:
    """Every (incident_id, seq, replica, state) record of the log, in log order (tests and tools)."""
    reader: Consumer = consumer_factory()
    try:
        parts = reader.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        out: list[tuple[str, int, str, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=200).values():
                for r in records:
                    e = msgspec.json.decode(r.value, type=_Entry)
                    out.append((e.incident_id, e.seq, e.by, e.state))
            if all((h := reader.highwater(tp)) is not None and reader.position(tp) >= h for tp in tps):
                return out
        raise TimeoutError(f"{topic} not read to its end in {timeout}s")
    finally:
        reader.close()
