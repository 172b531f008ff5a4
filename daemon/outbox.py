"""A durable notification outbox: notifications survive a crash between hand-off and delivery.

The consumer hands each notification to `Outbox.put` (durable when it returns: sqlite WAL with
`synchronous=FULL`) and only then commits its Kafka offsets. A worker thread delivers to a
`Notifier`, in `seq` order per incident; each (incident_id, seq) is queued once, so a
notification the consumer re-hands after a crash is ignored. Retryable failures wait with
exponential backoff and seeded jitter, or exactly `Delivery.retry_after` when the notifier
gives one (Slack's Retry-After); non-retryable failures are recorded as `failed`, logged and
counted, and the incident's next notification goes on.

Rows are states of one table: `pending` -> `sent` | `failed`. Delivered rows are kept for
`retain_seconds` so late duplicates are still recognised, then pruned.

>>> import tempfile
>>> from daemon.clock import FakeClock
>>> from daemon.notification import Notification, NegativityFigures, VolumeFigures
>>> from notifiers.base import Delivery
>>> class Printer:
...     def send(self, n):
...         print(n.incident_id, n.seq)
...         return Delivery.done()
...     def close(self): pass
>>> def note(seq):
...     return Notification(type="incident.updated", incident_id="i1", brand="b", severity="sev2",
...         signals=[], started_at="", detected_at="", seq=seq,
...         volume=VolumeFigures(1, 1, 1), negativity=NegativityFigures(0, 0))
>>> box = Outbox(tempfile.mkdtemp(), Printer(), clock=FakeClock())
>>> box.put(note(2)), box.put(note(1)), box.put(note(1))
(True, True, False)
>>> while box.run_once() is not None: pass
i1 1
i1 2
>>> box.pending(), box.counters()["sent"]
(0, 2)
>>> box.stop()
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog

from daemon import metrics
from daemon.clock import Clock, SystemClock
from daemon.notification import Notification, from_json, to_json
from notifiers.base import Notifier

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL,
    done_at REAL,
    error TEXT NOT NULL DEFAULT '',
    UNIQUE (incident_id, seq)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, incident_id, seq);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_at, id);
"""

# The head of each incident (its lowest pending seq) is the only row of it that may go out.
_NEXT_SQL = """
SELECT o.id, o.incident_id, o.seq, o.body, o.attempts, o.next_at FROM outbox o
WHERE o.status = 'pending' AND NOT EXISTS (
    SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.incident_id = o.incident_id AND p.seq < o.seq)
ORDER BY o.next_at, o.id LIMIT 1
"""


class _Kind(msgspec.Struct):
    type: str


_decode_kind = msgspec.json.Decoder(_Kind).decode


@dataclass(frozen=True)
class BackoffPolicy:
    """Delay before attempt n+1 after n failures: `base * 2**(n-1)` capped at `cap`, times a
    seeded jitter factor in [1 - jitter, 1].

    >>> p = BackoffPolicy(base=1.0, cap=8.0, jitter=0.0)
    >>> [p.delay(n, random.Random(0)) for n in (1, 2, 3, 4, 5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    """

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 0.5

    def delay(self, failures: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * 2 ** max(0, failures - 1))
        return raw * (1.0 - self.jitter * rng.random())


class Outbox:
    """Durable, ordered, idempotent delivery of notifications to one notifier.

    `path` is the state directory (the file `outbox.sqlite3` inside it) or a `.sqlite3` file.
    `max_exception_attempts` bounds retries when the notifier raises instead of returning a
    `Delivery` (a bug, not an outage); `Delivery(retry=True)` is retried without limit.
    """

    FILENAME = "outbox.sqlite3"

    def __init__(
        self,
        path: str | os.PathLike[str],
        notifier: Notifier,
        *,
        clock: Clock | None = None,
        backoff: BackoffPolicy | None = None,
        seed: int = 0,
        retain_seconds: float = 7 * 86400.0,
        max_exception_attempts: int = 5,
        idle_poll_seconds: float = 0.5,
    ) -> None:
        p = Path(path)
        if p.suffix not in (".sqlite3", ".db"):
            p.mkdir(parents=True, exist_ok=True)
            p = p / self.FILENAME
        self.path = p
        self._notifier = notifier
        self._clock = clock or SystemClock()
        self._backoff = backoff or BackoffPolicy()
        self._rng = random.Random(seed)
        self._retain = retain_seconds
        self._max_exc = max_exception_attempts
        self._idle_poll = idle_poll_seconds
        self._db = sqlite3.connect(str(p), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()  # one connection, shared by put() callers and the worker
        self._wake = threading.Condition(threading.Lock())
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent = 0
        self._retried = 0
        self._failed = 0
        self._duplicates = 0
        self._failed_in_a_row = 0  # deliveries given up since the last one that went out
        self._last_error = ""
        self._pending = self._count_pending()
        if self._pending:
            log.info("outbox.pending_after_restart", pending=self._pending)
        self._publish_oldest()

    # -- producer side -------------------------------------------------------------------
    def put(self, notification: Notification) -> bool:
        """Queue one notification; durable when it returns. False if (incident_id, seq) was
        already queued or delivered (the consumer re-handed it after a crash)."""
        return self.put_many([notification]) == 1

    def put_many(self, notifications: Iterable[Notification]) -> int:
        """Queue several notifications in one transaction (one fsync); returns how many were new."""
        now = self._clock.now()
        rows = [(n.incident_id, n.seq, to_json(n), now, now) for n in notifications]
        if not rows:
            return 0
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbox (incident_id, seq, body, next_at, created_at) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            added = self._db.total_changes - before
            self._pending += added
            self._duplicates += len(rows) - added
            metrics.OUTBOX_PENDING.set(self._pending)
            if added and self._pending == added:
                metrics.OUTBOX_OLDEST.set(now)  # the queue was empty: these are the oldest
        if added:
            with self._wake:
                self._wake.notify_all()
        return added

    def pending(self) -> int:
        """Notifications not yet delivered nor given up (the consumer pauses above a bound)."""
        return self._pending

    def counters(self) -> dict[str, int]:
        """sent, retried (attempts that will be tried again), failed (given up), duplicates."""
        return {
            "sent": self._sent,
            "retried": self._retried,
            "failed": self._failed,
            "duplicates": self._duplicates,
            "pending": self._pending,
        }

    def failing(self) -> tuple[int, str]:
        """(deliveries given up in a row since the last one sent, the last one's error)."""
        return self._failed_in_a_row, self._last_error

    def resolved(self, incident_id: str) -> bool:
        """Whether the incident's `incident.resolved` has been handed in (pending, sent or given up;
        kept `retain_seconds`): the incident is over, delivered or not. Any thread; the Slack
        notifier asks it (through the runner) before paging."""
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM outbox WHERE incident_id = ? ORDER BY seq DESC LIMIT 1", (incident_id,)
            ).fetchone()
        if row is None:
            return False
        try:  # the resolution is an incident's last notification
            return _decode_kind(row[0]).type == "incident.resolved"
        except msgspec.DecodeError:
            return False

    def failures(self, limit: int = 100) -> list[tuple[str, int, str]]:
        """The most recent given-up notifications as (incident_id, seq, error)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT incident_id, seq, error FROM outbox WHERE status = 'failed' ORDER BY done_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [(str(a), int(b), str(c)) for a, b, c in rows]

    # -- delivery ------------------------------------------------------------------------
    def run_once(self) -> float | None:
        """Deliver at most one due notification. Returns None when nothing is pending, 0.0
        when it did work, else the seconds until the next one is due (tests with a fake clock
        drive the outbox with this instead of the thread)."""
        with self._lock:
            row = self._db.execute(_NEXT_SQL).fetchone()
        if row is None:
            return None
        rid, incident_id, seq, body, attempts, next_at = row
        now = self._clock.now()
        if next_at > now:
            return float(next_at - now)
        try:
            notification = from_json(body)
        except Exception as exc:  # a row this version cannot read: never block the incident on it
            self._finish(rid, "failed", f"undecodable: {exc}")
            return 0.0
        try:
            result = self._notifier.send(notification)
        except Exception as exc:
            log.exception("outbox.notifier_raised", incident_id=incident_id, seq=seq)
            if attempts + 1 >= self._max_exc:
                self._finish(rid, "failed", f"exception: {type(exc).__name__}: {exc}")
            else:
                self._reschedule(rid, attempts + 1, None, f"exception: {type(exc).__name__}")
            return 0.0
        if result.ok:
            self._finish(rid, "sent", "")
        elif result.retry:
            self._reschedule(rid, attempts + 1, result.retry_after, result.error, paced=result.paced)
        else:
            log.error("outbox.gave_up", incident_id=incident_id, seq=seq, error=result.error)
            self._finish(rid, "failed", result.error)
        return 0.0

    def _finish(self, rid: int, status: str, error: str) -> None:
        now = self._clock.now()
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET status = ?, error = ?, done_at = ?, attempts = attempts + 1 WHERE id = ?",
                (status, error, now, rid),
            )
            self._db.execute("DELETE FROM outbox WHERE status != 'pending' AND done_at < ?", (now - self._retain,))
            self._pending -= 1
            if status == "sent":
                self._sent += 1
                self._failed_in_a_row, self._last_error = 0, ""
                metrics.NOTIFICATIONS_SENT.inc()
            else:
                self._failed += 1
                self._failed_in_a_row += 1
                self._last_error = error
                metrics.NOTIFICATIONS_FAILED.inc()
            metrics.OUTBOX_PENDING.set(self._pending)
            self._publish_oldest()

    def _publish_oldest(self) -> None:
        """When the oldest undelivered notification was handed in (0: none), so that an alert can
        tell a Slack outage from a busy minute: `time() - crisisd_outbox_oldest_pending_timestamp_seconds`."""
        with self._lock:
            (oldest,) = self._db.execute("SELECT MIN(created_at) FROM outbox WHERE status = 'pending'").fetchone()
        metrics.OUTBOX_OLDEST.set(oldest or 0.0)

    def _reschedule(
        self, rid: int, attempts: int, retry_after: float | None, error: str, *, paced: bool = False
    ) -> None:
        delay = retry_after if retry_after is not None else self._backoff.delay(attempts, self._rng)
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = ?, next_at = ?, error = ? WHERE id = ?",
                (attempts, self._clock.now() + max(0.0, delay), error, rid),
            )
            self._retried += 1
        metrics.NOTIFICATIONS_RETRIED.inc()
        if paced:  # the notifier keeps to a rate: a burst waits its turn, nothing failed
            log.info("outbox.paced", delay=round(delay, 2), attempt=attempts, error=error)
        else:
            log.warning("outbox.retry", delay=round(delay, 2), attempt=attempts, error=error)

    def _count_pending(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        return int(n)

    # -- the worker thread ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="crisisd-outbox", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = self.run_once()
            except Exception:  # e.g. the disk is full: keep the worker alive, try again shortly
                log.exception("outbox.worker_error")
                wait = self._idle_poll
            if wait == 0.0:
                continue
            with self._wake:
                # Wall time caps the wait so a fake clock moved by a test is noticed too.
                self._wake.wait(self._idle_poll if wait is None else min(wait, self._idle_poll))

    def drain(self, timeout: float) -> bool:
        """Wait (wall time) until nothing is pending; True if drained. Needs `start()`."""
        deadline = self._clock_wall() + timeout
        while self._pending > 0:
            left = deadline - self._clock_wall()
            if left <= 0:
                return False
            self._stopping.wait(min(0.02, left))
        return True

    @staticmethod
    def _clock_wall() -> float:
        # drain's timeout is about the caller's patience, not about delivery logic.
        return time.monotonic()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker (the notification in flight finishes) and close the file.
        Pending rows stay on disk and go out after the next start."""
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # a send still in flight: leave the file to it (daemon thread)
                log.warning("outbox.stop_timeout", pending=self._pending)
                return
            self._thread = None
        with self._lock:
            self._db.close()
