"""The durable outbox: durable, ordered per incident, idempotent, retrying with backoff, restart-safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.clock import FakeClock
from daemon.notification import NegativityFigures, Notification, VolumeFigures
from daemon.outbox import BackoffPolicy, Outbox
from notifiers.base import Delivery


def note(incident: str, seq: int) -> Notification:
    return Notification(
        type="incident.opened" if seq == 1 else "incident.updated",
        incident_id=incident,
        brand="b",
        severity="sev2",
        signals=["volume"],
        started_at="2010-04-16T05:40:00Z",
        detected_at="2010-04-16T05:43:00Z",
        volume=VolumeFigures(10, 1, 10),
        negativity=NegativityFigures(0.5, 0.2),
        seq=seq,
    )


class Scripted:
    """A notifier that answers from a script per (incident, seq), then succeeds; records deliveries."""

    def __init__(self, script: dict[tuple[str, int], list[Delivery | Exception]] | None = None) -> None:
        self.script = script or {}
        self.attempts: list[tuple[str, int]] = []
        self.delivered: list[tuple[str, int]] = []

    def send(self, n: Notification) -> Delivery:
        key = (n.incident_id, n.seq)
        self.attempts.append(key)
        queue = self.script.get(key, [])
        if queue:
            answer = queue.pop(0)
            if isinstance(answer, Exception):
                raise answer
            if not answer.ok:
                return answer
        self.delivered.append(key)
        return Delivery.done()

    def close(self) -> None:
        pass


def run_all(box: Outbox, clock: FakeClock, limit: int = 10_000) -> None:
    """Drive the outbox on the fake clock until nothing is pending."""
    for _ in range(limit):
        wait = box.run_once()
        if wait is None:
            return
        if wait > 0:
            clock.advance(wait)
    raise AssertionError("outbox did not drain")


RETRY = Delivery(ok=False, retry=True, error="503")


def test_put_is_idempotent_and_delivery_ordered_per_incident(tmp_path: Path) -> None:
    clock, notifier = FakeClock(0), Scripted({("a", 1): [RETRY, RETRY]})
    box = Outbox(tmp_path, notifier, clock=clock)
    assert [box.put(note("a", s)) for s in (3, 1, 2)] == [True, True, True]
    assert box.put(note("a", 1)) is False and box.put_many([note("b", 1), note("a", 2)]) == 1
    assert box.pending() == 4
    run_all(box, clock)
    a = [k for k in notifier.delivered if k[0] == "a"]
    assert a == [("a", 1), ("a", 2), ("a", 3)], "a retried head holds back the incident's later notifications"
    assert ("b", 1) in notifier.delivered and notifier.delivered.index(("b", 1)) < 2, "other incidents go on"
    assert box.counters() == {"sent": 4, "retried": 2, "failed": 0, "duplicates": 2, "pending": 0}
    assert box.put(note("a", 2)) is False, "a delivered notification is not queued again"
    box.stop()


def test_retry_after_is_honoured_and_backoff_grows_with_seeded_jitter(tmp_path: Path) -> None:
    clock = FakeClock(0)
    limited = Delivery(ok=False, retry=True, retry_after=7.0, error="429")
    notifier = Scripted({("a", 1): [limited, RETRY, RETRY, RETRY]})
    box = Outbox(tmp_path, notifier, clock=clock, backoff=BackoffPolicy(base=1, cap=60, jitter=0.5), seed=42)
    box.put(note("a", 1))
    waits = []
    while (w := box.run_once()) is not None:
        if w > 0:
            waits.append(w)
            clock.advance(w)
    assert waits[0] == 7.0
    assert 0.5 <= waits[1] <= 2.0 and 1.0 <= waits[2] <= 4.0 and 2.0 <= waits[3] <= 8.0
    box.stop()
    # the same seed gives the same delays
    clock2, notifier2 = FakeClock(0), Scripted({("a", 1): [limited, RETRY, RETRY, RETRY]})
    box2 = Outbox(
        tmp_path / "other", notifier2, clock=clock2, backoff=BackoffPolicy(base=1, cap=60, jitter=0.5), seed=42
    )
    box2.put(note("a", 1))
    waits2 = []
    while (w := box2.run_once()) is not None:
        if w > 0:
            waits2.append(w)
            clock2.advance(w)
    assert waits2 == waits
    box2.stop()


def test_non_retryable_failure_is_recorded_and_the_incident_goes_on(tmp_path: Path) -> None:
    clock = FakeClock(0)
    notifier = Scripted({("a", 1): [Delivery(ok=False, retry=False, error="channel_not_found")]})
    box = Outbox(tmp_path, notifier, clock=clock)
    box.put_many([note("a", 1), note("a", 2)])
    run_all(box, clock)
    assert notifier.delivered == [("a", 2)]
    assert box.failures() == [("a", 1, "channel_not_found")]
    assert box.counters()["failed"] == 1 and box.counters()["sent"] == 1
    box.stop()


def test_a_raising_notifier_is_retried_then_given_up(tmp_path: Path) -> None:
    clock = FakeClock(0)
    notifier = Scripted({("a", 1): [RuntimeError("bug")] * 10})
    box = Outbox(tmp_path, notifier, clock=clock, max_exception_attempts=3)
    box.put(note("a", 1))
    run_all(box, clock)
    assert notifier.attempts == [("a", 1)] * 3 and box.counters()["failed"] == 1
    assert box.failures()[0][2].startswith("exception: RuntimeError")
    box.stop()


def test_pending_rows_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(0)
    first = Scripted({("a", 1): [RETRY]})
    box = Outbox(tmp_path, first, clock=clock)
    box.put_many([note("a", 1), note("a", 2), note("b", 1)])
    box.run_once()  # a#1 fails once, then the process "crashes"
    box.stop()
    second = Scripted()
    box = Outbox(tmp_path, second, clock=clock)
    assert box.pending() == 3
    assert box.put(note("a", 1)) is False, "the consumer re-handing a#1 after the crash changes nothing"
    run_all(box, clock)
    assert sorted(second.delivered) == [("a", 1), ("a", 2), ("b", 1)]
    assert second.delivered.index(("a", 1)) < second.delivered.index(("a", 2))
    box.stop()


def test_worker_thread_delivers_and_drains(tmp_path: Path) -> None:
    from daemon.clock import SystemClock

    notifier = Scripted({("a", 2): [Delivery(ok=False, retry=True, retry_after=0.01)]})
    box = Outbox(tmp_path, notifier, clock=SystemClock(), idle_poll_seconds=0.01)
    box.start()
    box.put_many([note("a", s) for s in range(1, 21)])
    assert box.drain(timeout=30)
    box.stop()
    assert notifier.delivered == [("a", s) for s in range(1, 21)]


@pytest.mark.parametrize("name", ["outbox.sqlite3", "custom.sqlite3"])
def test_path_may_be_a_directory_or_a_file(tmp_path: Path, name: str) -> None:
    target = tmp_path if name == "outbox.sqlite3" else tmp_path / name
    box = Outbox(target, Scripted(), clock=FakeClock(0))
    assert box.path == tmp_path / name
    box.stop()


def test_notifier_readiness_fails_after_permanent_failures_in_a_row(tmp_path: Path) -> None:
    """/readyz reports the notifier unhealthy while its last deliveries all failed for good."""
    from config.settings import load_settings
    from daemon.kafka.runner import NOTIFIER_UNHEALTHY_AFTER, Runner

    refused = Delivery(ok=False, retry=False, error="slack error: invalid_auth")
    script: dict[tuple[str, int], list[Delivery | Exception]] = {
        (f"i{k}", 1): [refused] for k in range(NOTIFIER_UNHEALTHY_AFTER)
    }
    notifier = Scripted(script)
    runner = Runner(load_settings(env={}), notifier)
    box = runner.outbox = Outbox(tmp_path, notifier, clock=FakeClock())
    assert runner.readiness()["notifier"]["ok"] is True
    box.put_many(note(f"i{k}", 1) for k in range(NOTIFIER_UNHEALTHY_AFTER))
    while box.run_once() is not None:
        pass
    check = runner.readiness()["notifier"]
    assert check == {"ok": False, "failed_in_a_row": NOTIFIER_UNHEALTHY_AFTER, "last_error": refused.error}
    box.put(note("i9", 1))
    box.run_once()
    assert runner.readiness()["notifier"] == {"ok": True, "failed_in_a_row": 0, "last_error": ""}
    box.stop()


def test_the_oldest_waiting_notification_is_published_for_an_outage_alert(tmp_path: Path) -> None:
    """Slack down for an hour: the pending count stays small, but the oldest waiting notification's
    hand-in time tells the alert how long (`time() - crisisd_outbox_oldest_pending_timestamp_seconds`)."""
    from daemon import metrics

    def oldest() -> float | None:
        return metrics.REGISTRY.get_sample_value("crisisd_outbox_oldest_pending_timestamp_seconds")

    clock = FakeClock(1000.0)
    notifier = Scripted({("a", 1): [RETRY] * 3})
    box = Outbox(tmp_path, notifier, clock=clock, backoff=BackoffPolicy(base=60, cap=600, jitter=0.0), seed=1)
    assert oldest() == 0.0
    box.put(note("a", 1))
    clock.advance(30)
    box.put(note("b", 1))
    assert oldest() == 1000.0
    box.run_once()  # a's first try fails; b goes out
    box.run_once()
    assert notifier.delivered == [("b", 1)] and oldest() == 1000.0
    run_all(box, clock)
    assert oldest() == 0.0
    box.stop()


def test_it_tells_whether_an_incidents_resolution_was_handed_in(tmp_path: Path) -> None:
    """Pending, delivered or given up: the incident is over either way (the Slack notifier asks
    before paging, so a resolution stuck behind a slow Slack still stops the pages)."""
    import msgspec

    clock = FakeClock()
    notifier = Scripted({("i2", 2): [Delivery(ok=False, retry=False, error="refused")]})
    box = Outbox(tmp_path, notifier, clock=clock)
    box.put_many([note("i1", 1), note("i1", 2), note("i2", 1)])
    assert not box.resolved("i1") and not box.resolved("i2") and not box.resolved("nobody")
    box.put(msgspec.structs.replace(note("i1", 3), type="incident.resolved"))
    assert box.resolved("i1"), "handed in, still pending"
    box.put(msgspec.structs.replace(note("i2", 2), type="incident.resolved"))
    run_all(box, clock)
    assert box.resolved("i1") and box.resolved("i2"), "delivered, or given up"
    assert box.failures() == [("i2", 2, "refused")]
    box.stop()
