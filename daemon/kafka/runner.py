"""`crisisd run`: the mentions topic in, notifications out, surviving crashes and rebalances.

One `Pipeline` per assigned partition (state is per brand and brands are keyed to partitions, so
a consumer group spreads the brands over replicas). The loop:

    poll -> restore newly assigned partitions -> process the batch (invalid -> dead-letter topic)
         -> hand notifications to the outbox -> maybe checkpoint + commit -> backpressure

Offsets are committed only after what they cover is durable; `Runner._checkpoint` carries the
order. Auto-commit is off. A checkpoint happens every `commit_every_messages` messages or
`commit_interval_seconds`, on revoke (rebalance listener) and on shutdown. A partition assigned
to this replica is paused until its newest checkpoint is read back from the changelog, and
consumption starts at the checkpoint's offset: the checkpoint, not the committed offset, is the
truth (a crash between writing one and committing leaves the committed offset behind it).

Crash safety rests on determinism: re-processing from a checkpoint regenerates byte-identical
notifications; this machine's outbox drops the ones it already holds, and the shared
notification log (daemon/kafka/nflog.py) stops any replica from delivering what another one did.

Hooks for the HTTP server and SIGHUP: `readiness()`, `request_stop()`, `reload(settings)`, and a
`heartbeat` object whose `beat()` is called once per loop turn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from config.settings import Settings
from daemon import metrics
from daemon.clock import Clock, SystemClock
from daemon.kafka.changelog import CHECKPOINT_VERSION, Checkpoint, StateStore
from daemon.kafka.clients import (
    Consumer,
    Producer,
    RebalanceListener,
    client_errors,
    ensure_topics,
    make_admin,
    make_consumer,
    make_producer,
    partition_count,
    resume,
)
from daemon.kafka.deadletter import DeadLetterBudget, dead_letter_headers
from daemon.kafka.nflog import LoggedNotifier, NotificationLog
from daemon.kafka.rekey import Rekeyer, rekeyed_from
from daemon.kafka.relay import InteractionRelay
from daemon.notification import Notification, from_json, to_json
from daemon.outbox import Outbox
from daemon.pipeline import Pipeline
from notifiers.base import CAUGHT_UP_SECONDS, Notifier, Standing

log = logging.getLogger(__name__)


STATS_INTERVAL_SECONDS = 1.0
"""Prometheus figures of the pipelines are refreshed at most this often while busy."""

BROKER_PROBE_SECONDS = 10.0
"""While running, how often the brokers are asked for the cluster's metadata (the `brokers`
check of /readyz, and one log line when they stop or start answering)."""

CHECKPOINT_FLUSH_SECONDS = 60.0
"""How long a checkpoint in the loop waits for the brokers' acknowledgement (a broker that stalls
for seconds must not stop the daemon; /healthz tolerates `http.liveness_timeout_seconds`)."""

SPLIT_WARNING_SECONDS = 600.0
"""How often, at most, the log says that brands are spread over partitions."""


_CONNECT_ATTEMPT_SECONDS = 5.0
_CONNECT_BACKOFF_MAX_SECONDS = 30.0


def brand_of(incident_id: str) -> str:
    """The brand of an incident id, `<brand>-<start>-<signal>` (a brand may hold a "-")."""
    return incident_id.rsplit("-", 2)[0]


class KafkaUnreachable(RuntimeError):
    """The brokers did not answer within `kafka.connect_timeout_seconds` of the start (exit 1)."""


class BudgetExceeded(RuntimeError):
    """Too many invalid messages: consumption stops (exit 1) instead of dead-lettering the topic."""


@dataclass
class PartitionTask:
    """What this replica holds for one assigned partition."""

    tp: TopicPartition
    pipeline: Pipeline
    next_offset: int
    """Every message before it is processed (and its notifications handed to the outbox)."""
    checkpointed: int
    """`next_offset` of the last checkpoint written."""
    committed: int = -1
    handed: dict[tuple[str, int], Notification] = field(default_factory=dict)
    """Handed to the outbox, not yet seen delivered: carried in checkpoints."""
    seen: dict[str, Any] = field(default_factory=dict)
    """Pipeline stats already added to the Prometheus counters."""


@dataclass
class RunnerCounters:
    consumed: int = 0
    dead_lettered: int = 0
    notifications_new: int = 0
    checkpoints: int = 0
    commits: int = 0
    restores: int = 0
    rebalances: int = 0
    paused_times: int = 0
    unkeyed: int = 0
    """Messages read without a key: a brand's messages may then be on any partition."""


# /readyz reports the notifier unhealthy while this many deliveries in a row were given up
# (a revoked token, a channel the bot was removed from: every notification is refused).
NOTIFIER_UNHEALTHY_AFTER = 3


class Runner:
    """The daemon's consumer loop. `run()` blocks until `request_stop()` (or a failure) and
    returns the exit code: 0 after a clean stop, 1 when the dead-letter budget is exceeded."""

    def __init__(
        self,
        settings: Settings,
        notifier: Notifier,
        *,
        json_out: IO[bytes] | None = None,
        clock: Clock | None = None,
        heartbeat: Any = None,
        replica: str | None = None,
    ) -> None:
        self.settings = settings
        self.k = settings.kafka
        self.clock = clock or SystemClock()
        self.json_out = json_out
        self.heartbeat = heartbeat
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}"
        self.counters = RunnerCounters()
        self._inner_notifier = notifier
        self._stop = threading.Event()
        self._pending_settings: Settings | None = None
        self._tasks: dict[TopicPartition, PartitionTask] = {}
        self._to_restore: set[TopicPartition] = set()
        # partitions read up to the present, as of the end of the last loop turn (read by any thread)
        self._caught_up: frozenset[TopicPartition] = frozenset()
        # brands of partitions lost without a rebalance (the group session timed out: Kafka out of
        # reach), each with whether it was caught up then; their incidents stay run by this replica
        # until the group next assigns partitions (`_on_lost`). Replaced whole (read by any thread).
        self._kept: dict[str, bool] = {}
        self._joined = False
        self._failed = False
        self._paused = False
        self._last_commit = 0.0
        self._since_commit = 0
        # wall time since which processed work has waited for a checkpoint (None: all saved)
        self._unsaved_since: float | None = None
        self._stats_due = False
        self._last_stats = float("-inf")
        self._next_split_warning = 0.0
        self._budget = self._new_budget()
        # why the brokers have not answered yet at start ("connecting" before the first try ends)
        self._unreachable: str | None = "connecting"
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._store: StateStore | None = None
        self._nflog: NotificationLog | None = None
        self._relay: InteractionRelay | None = None
        self._rekeyer: Rekeyer | None = None
        self._subscribed = False
        self.outbox: Outbox | None = None
        if hasattr(notifier, "relayed"):
            # A notifier with buttons (Slack) runs only the incidents of the brands this replica holds:
            # none before its partitions are restored. Its background thread starts before Kafka answers
            # (`crisisd run`), and must not page nor write from an old record in the meantime.
            notifier.owns = self.owns_incident  # type: ignore[attr-defined]

    # -- hooks for the HTTP server and signals ---------------------------------------------------
    def request_stop(self) -> None:
        """Ask the loop to finish the batch in hand, checkpoint, commit and return (signal-safe)."""
        self._stop.set()

    def reload(self, settings: Settings) -> list[str]:
        """Take new settings at the next loop turn. Commit policy, dead-letter budget, pause bound
        and timeouts apply live; returns the changed `kafka.*` fields that need a restart."""
        self._pending_settings = settings
        live = _LIVE_FIELDS
        old, new = msgspec.structs.asdict(self.k), msgspec.structs.asdict(settings.kafka)
        return [f"kafka.{name}" for name in old if name not in live and old[name] != new[name]]

    @property
    def source(self) -> str:
        """The topic the detection consumes: `kafka.rekey_topic` when re-keying, else `kafka.topic`."""
        return self.k.rekey_topic or self.k.topic

    def readiness(self) -> dict[str, Any]:
        """Checks for /readyz: each value is a bool or a mapping with an `ok` key."""
        pending = self.outbox.pending() if self.outbox is not None else 0
        failed, last_error = self.outbox.failing() if self.outbox is not None else (0, "")
        checks = {
            "brokers": {"ok": self._unreachable is None, "error": self._unreachable or ""},
            "group_joined": self._joined and not self._stop.is_set(),
            "partitions_restored": {"ok": not self._to_restore, "restoring": len(self._to_restore)},
            "outbox": {
                "ok": pending <= self.k.pause_above_pending,
                "pending": pending,
                "limit": self.k.pause_above_pending,
            },
            "notifier": {"ok": failed < NOTIFIER_UNHEALTHY_AFTER, "failed_in_a_row": failed, "last_error": last_error},
        }
        if self.k.rekey_topic:
            rekeyer = self._rekeyer
            checks["rekey"] = rekeyer.readiness() if rekeyer is not None else {"ok": False, "error": "not started"}
        return checks

    def assigned(self) -> list[int]:
        return sorted(tp.partition for tp in self._tasks)

    # -- life cycle ------------------------------------------------------------------------------
    def run(self) -> int:
        if not self._start():
            log.info("stopped before Kafka answered")
            return 0
        code = 0
        try:
            while not self._stop.is_set():
                self._step()
        except BudgetExceeded as exc:
            log.error("dead-letter budget exceeded, stopping consumption: %s", exc)
            self._failed = True
            code = 1
        except BaseException:
            self._failed = True
            raise
        finally:
            self._shutdown(clean=not self._failed)
        return code

    def _await_brokers(self) -> bool:
        """Topic discovery and creation, retried with backoff until the brokers answer; False if
        a stop came first. Raises `KafkaUnreachable` after `connect_timeout_seconds`."""
        k = self.k
        bound = k.connect_timeout_seconds
        deadline = self.clock.monotonic() + bound if bound > 0 else float("inf")
        delay = 1.0
        errors = client_errors(k)
        while not self._stop.is_set():
            if self.heartbeat is not None:  # alive while waiting (/healthz); /readyz says not ready
                self.heartbeat.beat()
            left = deadline - self.clock.monotonic()
            # kafka-python blocks a whole bootstrap attempt (30 s by default): keep each short so a
            # stop is noticed within seconds (librdkafka's metadata calls time out in 10 s)
            attempt_ms = int(min(_CONNECT_ATTEMPT_SECONDS, max(1.0, left)) * 1000)
            try:
                self._discover_topics(attempt_ms)
                self._unreachable = None
                return True
            except errors as exc:
                self._unreachable = str(exc)
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    raise KafkaUnreachable(
                        f"Kafka at {','.join(k.bootstrap_servers)} did not answer within {bound:g} s: {exc}"
                    ) from exc
                log.warning(
                    "Kafka not reachable yet; retrying",
                    extra={"bootstrap_servers": k.bootstrap_servers, "error": str(exc), "retry_in_seconds": delay},
                )
                self._sleep_beating(min(delay, left))
                delay = min(2 * delay, _CONNECT_BACKOFF_MAX_SECONDS)
        return False

    def _sleep_beating(self, seconds: float) -> None:
        """Wait out a backoff (or until a stop) and stay alive for /healthz: a 30 s backoff must not
        outlast a shorter `http.liveness_timeout_seconds` and get the pod restarted while it waits."""
        left = seconds
        while left > 0 and not self._stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat.beat()
            self._stop.wait(min(1.0, left))
            left -= 1.0

    def _discover_topics(self, attempt_ms: int) -> None:
        k = self.k
        admin = make_admin(k, bootstrap_timeout_ms=attempt_ms)
        try:
            probe = make_consumer(k, bootstrap_timeout_ms=attempt_ms)
            try:
                partitions = partition_count(probe, k.topic)
            finally:
                probe.close()
            if k.create_topics:
                compact = {"cleanup.policy": "compact"}
                ensure_topics(
                    admin,
                    {
                        k.state_topic: (max(1, partitions), compact),
                        k.dead_letter_topic: (1, {}),
                        k.notifications_topic: (1, compact),
                        k.interactions_topic: (1, {}),
                    },
                )
        finally:
            admin.close()

    def _start(self) -> bool:
        """Clients, state store, notification log and outbox; False if stopped while waiting for
        the brokers (nothing started then)."""
        k = self.k
        if not self._await_brokers():
            return False
        # checkpoints come compressed (changelog.encode); dead letters are few
        self._producer = make_producer(k, acks="all", linger_ms=5, max_request_size=k.max_snapshot_bytes)
        reader = make_consumer(
            k, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest", fetch_max_wait_ms=50
        )
        probe = make_consumer(k)
        try:
            state_partitions = partition_count(probe, k.state_topic) or 1
        finally:
            probe.close()
        self._store = StateStore(
            k.state_topic, self._producer, reader, group=k.group_id, state_partitions=state_partitions
        )
        # an idle log answers a fetch after fetch_max_wait_ms: 250 ms halves kafka-python's idle CPU
        # (4.6 % -> 2.4 % of a CPU) against 50 ms, and delays a send after a takeover by <= 0.5 s
        nf_reader = make_consumer(k, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=250)
        nf_producer = make_producer(k, acks="all", linger_ms=0)
        self._nflog = NotificationLog(
            k.notifications_topic, nf_reader, nf_producer, replica=self.replica, group=k.group_id
        )
        self._nflog.start()
        self.outbox = Outbox(self.settings.state_dir, LoggedNotifier(self._inner_notifier, self._nflog))
        self._attach_standing()
        self.outbox.start()
        self._start_relay()
        if k.rekey_topic:
            self._rekeyer = Rekeyer(k)
            self._rekeyer.start()
        threading.Thread(target=self._watch_brokers, name="crisisd-broker-probe", daemon=True).start()
        self._consumer = make_consumer(
            k,
            group_id=k.group_id,
            enable_auto_commit=False,
            auto_offset_reset=k.auto_offset_reset,
            session_timeout_ms=k.session_timeout_ms,
            heartbeat_interval_ms=k.heartbeat_interval_ms,
            max_poll_records=k.max_poll_records,
        )
        if self._rekeyer is None:
            self._subscribe()
        # else at the first loop turn after the re-keyer has found or made the rekey topic: a
        # consumer subscribed to a topic that does not exist yet may not see it for minutes
        return True

    def _subscribe(self) -> None:
        assert self._consumer is not None
        self._consumer.subscribe([self.source], listener=RebalanceListener(self))
        self._subscribed = True
        self._last_commit = self.clock.monotonic()
        log.info("consuming %s as %s in group %s", self.source, self.replica, self.k.group_id)

    def _start_relay(self) -> None:
        """A notifier with buttons (Slack) learns which incidents this replica runs, and passes
        presses for the others on through the interactions topic."""
        notifier = self._inner_notifier
        relayed = getattr(notifier, "relayed", None)
        if relayed is None:
            return
        k = self.k
        reader = make_consumer(k, enable_auto_commit=False, group_id=None, auto_offset_reset="latest")
        producer = make_producer(k, acks="all", linger_ms=0)
        self._relay = InteractionRelay(
            k.interactions_topic, reader, producer, group=k.group_id, replica=self.replica, apply=relayed
        )
        self._relay.start()
        notifier.owns = self.owns_incident  # type: ignore[attr-defined]
        notifier.relay = self._relay.send  # type: ignore[attr-defined]

    def _watch_brokers(self) -> None:
        """Ask the brokers for the cluster's metadata every BROKER_PROBE_SECONDS: an outage after
        the start shows on /readyz (`brokers`) and in one crisisd line, not only in the client's
        own reconnection noise."""
        k = self.k
        admin: Any = None
        while not self._stop.wait(BROKER_PROBE_SECONDS):
            try:
                if admin is None:
                    admin = make_admin(k, bootstrap_timeout_ms=5000, request_timeout_ms=5000)
                admin.describe_cluster()
            except Exception as exc:  # whatever the client raises: the brokers did not answer
                if self._stop.is_set():
                    break  # stopping meanwhile: the probe's answer no longer matters
                if self._unreachable is None:
                    log.warning("Kafka stopped answering: %s", exc, extra={"bootstrap_servers": k.bootstrap_servers})
                self._unreachable = str(exc) or type(exc).__name__
                if admin is not None:
                    with contextlib.suppress(Exception):  # it is being replaced
                        admin.close()
                    admin = None
                continue
            if self._unreachable is not None:
                log.info("Kafka answers again", extra={"bootstrap_servers": k.bootstrap_servers})
                self._unreachable = None
        if admin is not None:
            admin.close()

    def _attach_standing(self) -> None:
        """What a notifier that pages (Slack) asks of the replica: `incident_standing` before an
        incident's first page, `runs_provisionally` before it acts on one, and the notification log
        where another replica put an incident's root."""
        if hasattr(self._inner_notifier, "standing"):
            self._inner_notifier.standing = self.incident_standing
        if hasattr(self._inner_notifier, "provisional"):
            self._inner_notifier.provisional = self.runs_provisionally
        if hasattr(self._inner_notifier, "root_hint"):
            self._inner_notifier.root_hint = self.root_address

    def incident_standing(self, incident_id: str) -> Standing:
        """Whether the incident is known to be open now (any thread): `over` once its resolution is
        in the outbox, `open` when its partition is caught up (`CAUGHT_UP_SECONDS`) and it is not
        over, else `behind` (catching up, or a brand this replica does not hold)."""
        # The partition is read first: every notification of what it covers was put in the outbox
        # before it was marked caught up, so a resolution it covers is seen below.
        caught_up = not self._caught_up.isdisjoint(self._holding(incident_id))
        caught_up = caught_up or self._kept.get(brand_of(incident_id), False)
        if self.outbox is not None and self.outbox.resolved(incident_id):
            return "over"
        return "open" if caught_up else "behind"

    def owns_incident(self, incident_id: str) -> bool:
        """Whether this replica runs the incident (any thread: a snapshot of the tasks): it holds the
        incident's brand, or held it when Kafka went out of reach and the group has not moved it since."""
        return bool(self._holding(incident_id)) or brand_of(incident_id) in self._kept

    def root_address(self, incident_id: str) -> str | None:
        """Where the replica that last delivered a notification of the incident put it (the notification
        log's `where`; None: not recorded). Raises LookupError until the log has been read past the
        last takeover, so a replica that just got a partition does not take "not recorded" for an answer."""
        nflog = self._nflog
        if nflog is None:
            return None
        if not nflog.sync(0.0):
            raise LookupError("the notification log is not read to its end yet")
        return nflog.where(incident_id)

    def runs_provisionally(self, incident_id: str) -> bool:
        """Whether this replica runs the incident (`owns_incident`) without knowing that no other one
        does (any thread): Kafka is out of its reach, or the partition was lost and not assigned again.
        The group may have given the partition to another replica meanwhile; the notifier reads the
        root before each write and leaves the incident to that one once it wrote there."""
        brand = brand_of(incident_id)
        if brand in self._kept:
            return True
        return self._unreachable is not None and bool(self._holding(incident_id))

    def _holding(self, incident_id: str) -> list[TopicPartition]:
        """The partitions of this replica that hold the incident's brand (any thread: a snapshot)."""
        brand = brand_of(incident_id)
        return [tp for tp, task in list(self._tasks.items()) if brand in task.pipeline.brands]

    def _shutdown(self, clean: bool) -> None:
        deadline = time.monotonic() + self.k.shutdown_timeout_seconds
        if self._rekeyer is not None:
            self._rekeyer.request_stop()  # it forwards what it holds and commits meanwhile
        consumer = self._consumer
        if consumer is not None:
            try:
                if clean and self._tasks:
                    self._checkpoint(list(self._tasks), commit="sync")
            except Exception:
                log.exception("final checkpoint failed")
            finally:
                left_ms = int(max(1.0, deadline - time.monotonic()) * 1000)
                consumer.close(autocommit=False, timeout_ms=min(left_ms, 10_000))
        if self.outbox is not None:
            if clean and not self.outbox.drain(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "outbox: %d notifications still pending at exit (delivered after restart)", self.outbox.pending()
                )
            self.outbox.stop(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
        if self._nflog is not None:
            self._nflog.stop()
        if self._relay is not None:
            self._relay.stop()
        if self._rekeyer is not None:
            self._rekeyer.stop(timeout=max(1.0, deadline - time.monotonic()))
        if self._producer is not None:
            self._producer.close(timeout=max(0.1, deadline - time.monotonic()))
        if self._store is not None:
            self._store._reader.close()
        metrics.PARTITIONS_ASSIGNED.set(0)

    # -- the loop --------------------------------------------------------------------------------
    def _step(self) -> None:
        assert self._consumer is not None
        if self._pending_settings is not None:
            self._apply_settings(self._pending_settings)
        if self.heartbeat is not None:
            self.heartbeat.beat()
        if not self._subscribed:
            if self._rekeyer is not None and not self._rekeyer.topic_ready.is_set():
                self._stop.wait(self.k.poll_timeout_ms / 1000)
                return
            self._subscribe()
        batch = self._consumer.poll(timeout_ms=self.k.poll_timeout_ms)
        if self._to_restore:
            self._restore_assigned()
        budget = self._budget
        keyed_by_us = bool(self.k.rekey_topic)  # the re-keyer's keys are brands (or junk's own)
        n = 0
        for tp, records in batch.items():
            task = self._tasks.get(tp)
            if task is None or tp in self._to_restore:
                continue  # fetched before a rebalance; the restore seeks again
            process = task.pipeline.process
            notes: list[Notification] = []
            next_offset = task.next_offset
            valid = 0  # valid messages not yet recorded in the budget (recorded in one call)
            unkeyed = 0
            for r in records:
                offset = r.offset
                if offset < next_offset:
                    continue
                if r.key is None and not keyed_by_us:
                    unkeyed += 1
                out = process(r.value)
                next_offset = offset + 1
                if out.invalid is None:
                    valid += 1
                    if out.notifications:
                        notes.extend(out.notifications)
                    continue
                n += valid + 1
                budget.record_valid(valid)
                valid = 0
                self._dead_letter(r, out.invalid.reason, out.invalid.detail)
                budget.record(False)
                reason = budget.exceeded()
                if reason is not None:
                    task.next_offset = next_offset
                    self._hand(task, notes)
                    raise BudgetExceeded(f"{reason} on {tp.topic}:{tp.partition} at offset {offset}")
                if out.notifications:
                    notes.extend(out.notifications)
            n += valid
            budget.record_valid(valid)
            task.next_offset = next_offset
            if unkeyed:
                self.counters.unkeyed += unkeyed
                metrics.MESSAGES_UNKEYED.inc(unkeyed)
            if notes:
                self._hand(task, notes)
        self._note_caught_up()
        self.counters.consumed += n
        self._since_commit += n
        now = self.clock.monotonic()
        if n:
            self._stats_due = True
        # Prometheus figures at most once a second (they cost O(brands)), and as soon as idle
        if self._stats_due and (not n or now - self._last_stats >= STATS_INTERVAL_SECONDS):
            self._publish_stats()
            self._stats_due = False
            self._last_stats = now
        unsaved = self._since_commit or self._unsaved_since is not None  # (a new partition's first checkpoint)
        if self._since_commit >= self.k.commit_every_messages or (
            unsaved and now - self._last_commit >= self.k.commit_interval_seconds
        ):
            self._checkpoint(list(self._tasks), commit="sync", flush_timeout=CHECKPOINT_FLUSH_SECONDS)
        self._backpressure()
        self._publish_checkpoint_age()

    def _note_caught_up(self) -> None:
        """Which partitions are read up to the present (`CAUGHT_UP_SECONDS`); after `_hand`, so
        a partition is never caught up before its notifications are in the outbox."""
        consumer = self._consumer
        assert consumer is not None
        oldest = self.clock.now() - CAUGHT_UP_SECONDS
        current = set()
        for tp, task in list(self._tasks.items()):
            if tp in self._to_restore:
                continue
            high = consumer.highwater(tp)
            newest = task.pipeline.max_ts
            if (high is not None and task.next_offset >= high) or (newest is not None and newest >= oldest):
                current.add(tp)
        self._caught_up = frozenset(current)

    def _publish_checkpoint_age(self) -> None:
        """How long processed work has waited for a checkpoint; 0 when everything is saved, so
        an idle healthy replica (no messages, nothing to save) never looks like a stuck one."""
        if any(t.next_offset != t.checkpointed for t in self._tasks.values()):
            now = self.clock.now()
            if self._unsaved_since is None:
                self._unsaved_since = now
            metrics.CHECKPOINT_AGE.set(now - self._unsaved_since)
        else:
            self._unsaved_since = None
            metrics.CHECKPOINT_AGE.set(0.0)

    def _hand(self, task: PartitionTask, notes: list[Notification]) -> None:
        """Step (1) of the checkpoint order, done per batch so incidents go out at once:
        `Outbox.put` is durable when it returns."""
        assert self.outbox is not None
        for note in notes:
            new = self.outbox.put(note)
            task.handed[(note.incident_id, note.seq)] = note
            if new:
                self.counters.notifications_new += 1
                context = {"brand": note.brand, "incident_id": note.incident_id, "partition": task.tp.partition}
                log.info("%s (%s, seq %d) handed to the outbox", note.type, note.severity, note.seq, extra=context)
                if self.json_out is not None:
                    self.json_out.write(to_json(note) + b"\n")
        if self.json_out is not None:
            self.json_out.flush()

    def _dead_letter(self, r: Any, reason: str, detail: str) -> None:
        assert self._producer is not None
        source = rekeyed_from(r.headers) if r.topic == self.k.rekey_topic else None
        if source is None:
            headers = dead_letter_headers(reason, detail, r.topic, r.partition, r.offset, r.timestamp)
        else:  # the message its producer sent, which ops can trace, and the re-keyer's copy
            headers = dead_letter_headers(
                reason, detail, *source, r.timestamp, rekeyed_at=(r.topic, r.partition, r.offset)
            )
        self._producer.send(self.k.dead_letter_topic, key=r.key, value=r.value, headers=headers)
        self.counters.dead_lettered += 1

    # -- checkpoints -----------------------------------------------------------------------------
    def _checkpoint(self, tps: list[TopicPartition], commit: str, flush_timeout: float | None = None) -> None:
        """Make the work done on `tps` durable, then commit their offsets. The order is the
        contract (a crash between any two steps only means re-processing, never a loss):

        1. every notification of the processed events is in the outbox: `_hand` put them there
           per batch (`Outbox.put` is durable on return); dead-letter records are flushed with
           the producer in step 2;
        2. one checkpoint per partition that moved (pipeline snapshot, next offset, notifications
           not yet known delivered) is written to the state topic, and the producer is flushed:
           checkpoints and dead letters are on the broker;
        3. the offsets are committed: `sync` from the loop; `async` from the rebalance listener
           (it runs on the IO thread, which may not block on the coordinator; the checkpoint
           of step 2 is what the next owner restores from, so a lost commit costs nothing).
        """
        assert self._store is not None and self._consumer is not None
        # (1) notifications were handed in `_hand`; drop from the carried list what went out.
        nflog = self._nflog
        wrote = 0
        for tp in tps:
            task = self._tasks.get(tp)
            if task is None:
                continue
            if nflog is not None and task.handed:
                task.handed = {k: v for k, v in task.handed.items() if not nflog.delivered(*k)}
            if task.next_offset == task.checkpointed:
                continue
            # (2) the pipeline snapshot, at the offset it covers
            self._store.write(
                Checkpoint(
                    version=CHECKPOINT_VERSION,
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=task.next_offset,
                    pipeline=task.pipeline.snapshot(),
                    undelivered=[to_json(n) for n in task.handed.values()],
                    written_at=self.clock.now(),
                )
            )
            wrote += 1
        # also flushes dead letters; on revoke and shutdown within their bound, in the loop longer
        self._store.flush(flush_timeout or self.k.shutdown_timeout_seconds)
        for tp in tps:
            task = self._tasks.get(tp)
            if task is not None:
                task.checkpointed = task.next_offset
        if wrote:
            self.counters.checkpoints += wrote
        # (3) commit
        offsets = {
            tp: OffsetAndMetadata(t.next_offset, "", -1)
            for tp in tps
            if (t := self._tasks.get(tp)) is not None and t.next_offset != t.committed
        }
        if offsets:
            if commit == "sync":
                try:
                    self._consumer.commit(offsets)
                except KafkaError as exc:  # e.g. a rebalance started: the checkpoint holds
                    log.warning("offset commit failed (%s); the checkpoint covers it", exc)
                else:
                    self._mark_committed(offsets)
            else:
                self._consumer.commit_async(offsets)
                self._mark_committed(offsets)
        self._since_commit = 0
        self._last_commit = self.clock.monotonic()

    def _mark_committed(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.counters.commits += 1
        for tp, om in offsets.items():
            task = self._tasks.get(tp)
            if task is not None:
                task.committed = om.offset

    # -- rebalances ------------------------------------------------------------------------------
    def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        owned = [tp for tp in revoked if tp in self._tasks]
        if owned and not self._failed:
            try:
                self._checkpoint(owned, commit="async")
            except Exception:
                log.exception("checkpoint on revoke failed; the next owner re-processes from the last one")
        release = getattr(self._inner_notifier, "release", None)
        if owned and release is not None:
            # before the partitions go (the next owner gets them once this returns): a press applied
            # here and not yet on the incident's root would otherwise be lost
            brands = {brand for tp in owned for brand in self._tasks[tp].pipeline.brands}
            try:
                release(lambda incident_id: brand_of(incident_id) in brands)
            except Exception:
                log.exception("notifier release on revoke failed")
        for tp in revoked:
            self._tasks.pop(tp, None)
            self._to_restore.discard(tp)
        if owned:
            self.counters.rebalances += 1
            log.info("partitions revoked: %s", sorted(tp.partition for tp in owned))
        metrics.PARTITIONS_ASSIGNED.set(len(self._tasks))

    def _on_lost(self, lost: set[TopicPartition]) -> None:
        """The group session ended without a rebalance: Kafka was out of reach for the session
        timeout (confluent-kafka tells at once, kafka-python when it reaches the group again). The
        partitions may be another replica's now: no commit; the outbox keeps what was handed.

        Their incidents stay run by this replica (escalation pages, presses, root refreshes) until the
        group next assigns partitions: in an outage of Kafka itself nobody else can run them, and an
        unacknowledged crisis must go on paging. They are run provisionally (`runs_provisionally`): a
        replica cut off alone leaves each to the one that took its partition over once that one has
        written its root."""
        kept = dict(self._kept)
        for tp in lost:
            task = self._tasks.pop(tp, None)
            self._to_restore.discard(tp)
            if task is not None:
                caught_up = tp in self._caught_up
                for brand in task.pipeline.brands:
                    kept[brand] = kept.get(brand, False) or caught_up
        self._kept = kept
        log.warning(
            "partitions lost: %s; their incidents stay run here until the group assigns partitions again",
            sorted(tp.partition for tp in lost),
        )
        metrics.PARTITIONS_ASSIGNED.set(len(self._tasks))

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._joined = True
        # the group is whole again: a lost brand is run by whichever replica holds it now
        self._kept = {}
        fresh = {tp for tp in assigned if tp not in self._tasks}
        if fresh:
            # before `owns_incident` says yes for them: an incident this replica gets back may have
            # been run by another one since, and the notifier reads its root again before acting on it
            reassigned = getattr(self._inner_notifier, "reassigned", None)
            if reassigned is not None:
                reassigned()
            assert self._consumer is not None
            self._consumer.pause(*fresh)  # until restored (in the loop, off the IO thread)
            self._to_restore |= fresh
            log.info("partitions assigned: %s", sorted(tp.partition for tp in fresh))

    def _restore_assigned(self) -> None:
        """Startup and takeover: read each new partition's newest checkpoint, seek, resume."""
        assert self._consumer is not None and self._store is not None and self.outbox is not None
        if self._nflog is not None:
            self._nflog.mark_takeover()
        done = []
        committed_before = {tp: self._consumer.committed(tp) for tp in self._to_restore}
        ran_before = {tp for tp, offset in committed_before.items() if offset is not None}
        latest = self._store.read_latest(sorted(self._to_restore), legacy=ran_before)
        for tp, c in latest.items():
            if c is not None:
                pipeline = Pipeline.restore(self.settings, c.pipeline)
                offset = c.offset
                task = PartitionTask(tp, pipeline, offset, checkpointed=offset)
                redo = [from_json(raw) for raw in c.undelivered]
                if redo:
                    self._hand(task, redo)
                log.info(
                    "restored %s:%d at offset %d (%d undelivered re-handed)", tp.topic, tp.partition, offset, len(redo),
                    extra={"partition": tp.partition},
                )  # fmt: skip
            else:
                committed = committed_before[tp]
                offset = committed if committed is not None else self._consumer.position(tp)
                # checkpointed=-1: the next checkpoint writes one even if nothing arrives
                task = PartitionTask(tp, Pipeline(self.settings), offset, checkpointed=-1)
                if committed is not None:
                    log.warning(
                        "no checkpoint for %s:%d; starting empty at committed offset %d",
                        tp.topic,
                        tp.partition,
                        offset,
                        extra={"partition": tp.partition},
                    )
            task.seen = _stats_view(task.pipeline)
            self._consumer.seek(tp, task.next_offset)
            self._tasks[tp] = task
            self.counters.restores += 1
            done.append(tp)
        self._to_restore.difference_update(done)
        adopt = getattr(self._inner_notifier, "adopt", None)
        if done and adopt is not None:
            # incidents open in what was restored: another replica may have run them until now
            brands = [bs for tp in done for bs in self._tasks[tp].pipeline.brands.values()]
            adopt([bs.detection.last_notification for bs in brands if bs.detection.last_notification is not None])
        if done and not self._paused:
            resume(self._consumer, *done)
        metrics.PARTITIONS_ASSIGNED.set(len(self._tasks))

    # -- backpressure, metrics, settings ---------------------------------------------------------
    def _backpressure(self) -> None:
        assert self.outbox is not None and self._consumer is not None
        pending = self.outbox.pending()
        bound = self.k.pause_above_pending
        if not self._paused and pending > bound:
            self._paused = True
            self.counters.paused_times += 1
            self._consumer.pause(*self._tasks)
            metrics.PAUSED.set(1)
            log.warning("outbox holds %d notifications (limit %d): partitions paused", pending, bound)
        elif self._paused and pending <= bound // 2:
            self._paused = False
            resume(self._consumer, *[tp for tp in self._tasks if tp not in self._to_restore])
            metrics.PAUSED.set(0)
            log.info("outbox drained to %d: partitions resumed", pending)

    def _publish_stats(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        for tp, task in self._tasks.items():
            now = _stats_view(task.pipeline)
            before = task.seen
            if now == before:
                continue
            metrics.EVENTS_CONSUMED.inc(now["consumed"] - before.get("consumed", 0))
            metrics.EVENTS_LATE.inc(max(0, now["late"] - before.get("late", 0)))
            metrics.EVENTS_DUPLICATE.inc(max(0, now["duplicate"] - before.get("duplicate", 0)))
            old_invalid = before.get("invalid", {})
            for reason, count in now["invalid"].items():
                delta = count - old_invalid.get(reason, 0)
                if delta > 0:
                    metrics.EVENTS_INVALID.labels(reason).inc(delta)
            old_brands = before.get("brands", {})
            for brand, (mentions, replies) in now["brands"].items():
                m0, r0 = old_brands.get(brand, (0, 0))
                if mentions > m0:
                    metrics.BRAND_MENTIONS.labels(brand).inc(mentions - m0)
                if replies > r0:
                    metrics.BRAND_REPLIES.labels(brand).inc(replies - r0)
            task.seen = now
            high = consumer.highwater(tp)
            if high is not None:
                metrics.CONSUMER_LAG.labels(str(tp.partition)).set(max(0, high - task.next_offset))
        open_by = dict.fromkeys(("sev1", "sev2", "sev3"), 0)
        for task in self._tasks.values():
            for state in task.pipeline.brands.values():
                for incident in state.detection.tracker.open_incidents():
                    open_by[incident.severity] = open_by.get(incident.severity, 0) + 1
        for severity, count in open_by.items():
            metrics.INCIDENTS_OPEN.labels(severity).set(count)
        self._check_brands_split()

    def _check_brands_split(self) -> None:
        """A brand's state lives with the partition its messages are on: messages not keyed by
        brand spread it over partitions, and each part is detected on its own (a spike looks a
        fraction of its size). Seen here as a brand in two of this replica's pipelines."""
        seen: set[str] = set()
        split: set[str] = set()
        for task in self._tasks.values():
            brands = task.pipeline.brands.keys()
            split.update(seen.intersection(brands))
            seen.update(brands)
        metrics.BRANDS_SPLIT.set(len(split))
        now = self.clock.monotonic()
        if split and now >= self._next_split_warning:
            self._next_split_warning = now + SPLIT_WARNING_SECONDS
            names = ", ".join(sorted(split)[:5]) + (f" and {len(split) - 5} more" if len(split) > 5 else "")
            if self.k.rekey_topic:  # the re-keyer keys by brand: something else changed
                log.warning(
                    "brands %s are on several partitions of %s, which the re-keyer keys by brand: does "
                    "something else write to it, or was its partition count changed? Each partition detects "
                    "its share on its own",
                    names,
                    self.k.rekey_topic,
                )
                return
            log.warning(
                "brands %s are on several partitions (%d messages without a key so far): each partition "
                "detects its share on its own; key the mentions by brand (crisisd produce does), or use "
                "a topic with one partition",
                names,
                self.counters.unkeyed,
            )

    def _apply_settings(self, settings: Settings) -> None:
        self._pending_settings = None
        live = {name: getattr(settings.kafka, name) for name in _LIVE_FIELDS}
        self.k = msgspec.structs.replace(self.k, **live)
        # SIGHUP (daemon/lifecycle.py hands over only what may change live): new thresholds, escalation
        # and roster for every brand now, learned state kept; new partitions and brands get them too
        self.settings = msgspec.structs.replace(settings, kafka=self.k)
        for task in self._tasks.values():
            task.pipeline.settings = self.settings
            for state in task.pipeline.brands.values():
                state.detection.reconfigure(self.settings)
        self._budget = self._new_budget()
        if self._rekeyer is not None:
            self._rekeyer.reconfigure(self.k)
        log.info("settings reloaded")

    def _new_budget(self) -> DeadLetterBudget:
        k = self.k
        return DeadLetterBudget(
            window=k.dead_letter_window,
            max_ratio=k.dead_letter_max_ratio,
            min_messages=k.dead_letter_min_messages,
            max_consecutive=k.dead_letter_max_consecutive,
        )


_LIVE_FIELDS = (
    "commit_every_messages",
    "commit_interval_seconds",
    "dead_letter_window",
    "dead_letter_max_ratio",
    "dead_letter_min_messages",
    "dead_letter_max_consecutive",
    "pause_above_pending",
    "shutdown_timeout_seconds",
    "poll_timeout_ms",
)


def _stats_view(p: Pipeline) -> dict[str, Any]:
    s = p.stats
    brands = {name: (b.mentions, b.replies) for name, b in p.brands.items()}
    return {"consumed": s.consumed, "late": s.late, "duplicate": s.duplicate, "invalid": dict(s.invalid),
            "brands": brands}  # fmt: skip


RunnerFactory = Callable[[Settings], Runner]
