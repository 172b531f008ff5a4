"""Catching up after an outage: history is posted, not paged.

A restart after an outage replays hours of backlog in event time, much faster than real time. An
incident that opened and resolved inside the backlog is posted (root shown resolved, its thread),
but nobody is paged for it; one still open once crisisd has caught up is paged then. These tests
run the real pieces the daemon wires together: the Kafka runner's loop turn (`Runner._step`, on a
stand-in consumer) says how far it has read, the durable outbox delivers to the Slack notifier,
and the notifier's escalation ticks run against the Slack emulator, all on one fake wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from slack_helpers import note, press, signed

from config.settings import load_settings
from daemon.clock import FakeClock
from daemon.kafka.runner import CAUGHT_UP_SECONDS, PartitionTask, Runner
from daemon.outbox import Outbox
from daemon.pipeline import Pipeline
from notifiers.slack import SlackNotifier
from notifiers.slack.testing import SlackEmulator

IID = "klm-20100416T0740Z-volume"
TP = TopicPartition("mentions", 0)
# The wall clock: noon on the day of the backlog. note(1) is detected at 05:43 (event time), its
# resolution comes at 09:40.
NOW = datetime(2010, 4, 16, 12, 0, tzinfo=UTC).timestamp()
BACKLOG_START = datetime(2010, 4, 16, 5, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@dataclass
class Record:
    offset: int
    value: bytes
    key: bytes | None = b"klm"
    topic: str = TP.topic
    partition: int = TP.partition
    timestamp: int = 0


class Consumer:
    """What `Runner._step` asks of the Kafka consumer: a batch per poll, the high watermark."""

    def __init__(self, high: int) -> None:
        self.high = high
        self.batches: list[dict[TopicPartition, list[Record]]] = []

    def poll(self, timeout_ms: int = 0) -> dict[TopicPartition, list[Record]]:
        return self.batches.pop(0) if self.batches else {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def resume(self, *tps: TopicPartition) -> None:
        pass


def mention(offset: int, at: float) -> Record:
    event = {
        "id": f"twitter:{offset}",
        "brand": "klm",
        "platform": "twitter",
        "created_at": int(at),
        "text": f"flight {offset} cancelled",
        "author": {"id": f"u{offset % 7}"},
        "lang": "en",
    }
    return Record(offset, json.dumps(event).encode())


class Daemon:
    """The runner's loop, the outbox and the Slack notifier, as `crisisd run` wires them."""

    def __init__(self, notifier: SlackNotifier, clock: FakeClock, state: Path, backlog: int) -> None:
        settings = load_settings(env={"CRISISD_STATE_DIR": str(state)})
        self.clock = clock
        self.notifier = notifier
        self.consumer = Consumer(high=backlog)
        self.runner = Runner(settings, notifier, clock=clock)
        self.runner._consumer = self.consumer  # type: ignore[assignment]
        self.runner._subscribed = True  # as `_start` leaves it (the stand-in has its partition already)
        self.runner._tasks[TP] = PartitionTask(TP, Pipeline(settings), 0, checkpointed=0)
        self.outbox = self.runner.outbox = Outbox(state / "outbox", notifier, clock=clock)
        self.runner._attach_standing()
        self.offset = 0
        self.newest = BACKLOG_START

    def read(self, count: int, until: float) -> None:
        """One loop turn over the next `count` messages of the backlog, the last one at `until`."""
        step = (until - self.newest) / count
        batch = [mention(self.offset + i, self.newest + step * (i + 1)) for i in range(count)]
        self.offset += count
        self.newest = until
        self.consumer.batches.append({TP: batch})
        self.runner._last_commit = self.clock.monotonic()  # no checkpoint in these tests
        self.runner._step()

    def hand(self, *notes: Any) -> None:
        """What the pipeline raised from the messages read: into the outbox (not yet delivered)."""
        self.outbox.put_many(notes)

    def deliver(self) -> None:
        while self.outbox.run_once() is not None:
            pass

    def close(self) -> None:
        self.outbox.stop()


@pytest.fixture
def daemon(make_notifier: Callable[..., SlackNotifier], clock: FakeClock, tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(make_notifier(), clock, tmp_path / "daemon", backlog=1000)
    yield d
    d.close()


def pages(slack: SlackEmulator) -> list[str]:
    return [m["text"] for m in thread(slack) if "Escalation level" in m.get("text", "")]


def root(slack: SlackEmulator) -> dict[str, Any]:
    roots = slack.messages("#crisis")
    assert len(roots) == 1
    return roots[0]


def thread(slack: SlackEmulator) -> list[dict[str, Any]]:
    return slack.replies("#crisis", root(slack)["ts"])


def opened() -> Any:
    return note(1, severity="sev1")


def resolved() -> Any:
    return note(2, type="incident.resolved", severity="sev1")


def live(seq: int = 1, type: str = "incident.opened") -> Any:
    """Detected two minutes ago."""
    return note(seq, type=type, severity="sev1", detected_at="2010-04-16T11:58:00Z", resolved_at="2010-04-16T12:10:00Z")


def test_an_incident_over_within_the_backlog_is_posted_resolved_and_pages_nobody(
    slack: SlackEmulator, daemon: Daemon, clock: FakeClock
) -> None:
    daemon.read(400, until=BACKLOG_START + 2700)  # 05:45 of a backlog that runs to noon
    daemon.hand(opened())
    daemon.deliver()
    daemon.notifier.tick()
    assert pages(slack) == [], "crisisd is replaying history: the incident may be over already"
    blocks = json.dumps(root(slack)["blocks"])
    assert (
        "Posted during catch-up, 6h 17m after the fact: paged only if still open once crisisd has caught up" in blocks
    )
    assert thread(slack)[0]["text"].startswith("Opened at 2010-04-16T05:43:00Z")
    assert "(posted during catch-up, 6h 17m after the fact)" in thread(slack)[0]["text"]

    clock.advance(5)
    daemon.read(300, until=BACKLOG_START + 5 * 3600)  # 10:00 event time
    daemon.hand(resolved())
    daemon.notifier.tick()  # before the resolution is delivered
    daemon.read(300, until=NOW - 60)  # the end of the backlog: caught up
    daemon.notifier.tick()
    daemon.deliver()
    for _ in range(4):
        clock.advance(3600)
        daemon.notifier.tick()
    assert pages(slack) == []
    assert root(slack)["text"].startswith("RESOLVED · SEV1 · klm")
    assert "Posted during catch-up, 6h 17m after the fact: over by then, nobody was paged" in json.dumps(
        root(slack)["blocks"]
    )
    assert thread(slack)[-1]["text"].startswith("Resolved at 2010-04-16T09:40:00Z")


def test_the_tick_between_catching_up_and_delivering_the_resolution_pages_nobody(
    slack: SlackEmulator, daemon: Daemon, clock: FakeClock
) -> None:
    """The race: the outbox delivered the opening, the runner has read to the end and handed the
    resolution, which still waits in the outbox (Slack is slow) when the background tick runs."""
    daemon.read(500, until=BACKLOG_START + 2700)
    daemon.hand(opened())
    daemon.deliver()
    daemon.hand(resolved())
    daemon.read(500, until=NOW - 60)  # caught up
    assert daemon.runner.incident_standing(IID) == "over"
    daemon.notifier.tick()
    clock.advance(3600)
    daemon.notifier.tick()
    assert pages(slack) == []
    daemon.deliver()
    daemon.notifier.tick()
    assert pages(slack) == [] and root(slack)["text"].startswith("RESOLVED")


def test_an_incident_still_open_once_caught_up_is_paged_then_and_its_ladder_goes_on(
    slack: SlackEmulator, daemon: Daemon, clock: FakeClock
) -> None:
    daemon.read(400, until=BACKLOG_START + 2700)
    daemon.hand(opened())
    daemon.deliver()
    daemon.notifier.tick()
    clock.advance(30)
    daemon.read(300, until=BACKLOG_START + 5 * 3600)  # 10:00: still two hours behind
    daemon.notifier.tick()
    assert pages(slack) == [] and daemon.runner.incident_standing(IID) == "behind"

    clock.advance(30)
    daemon.read(300, until=NOW)  # read to the end, the incident still open: it is live
    assert daemon.runner.incident_standing(IID) == "open"
    daemon.notifier.tick()
    assert pages(slack) == [
        "<!subteam^S0ONCALL> Still open after catch-up: SEV1 incident on klm (posted 6h 17m after the fact)."
        " Escalation level 1 (on-call): please Acknowledge on the incident message."
    ]
    daemon.notifier.tick()  # the root no longer says that paging waits
    blocks = json.dumps(root(slack)["blocks"])
    assert "Posted during catch-up, 6h 17m after the fact" in blocks and "paged only if" not in blocks
    clock.advance(301)  # sev1: level 1 has 600 s x 0.5
    daemon.notifier.tick()
    assert len(pages(slack)) == 2 and pages(slack)[1].startswith("<@U0LEAD1> <@U0LEAD2> Not acknowledged after 5 min")


def test_a_live_incident_is_paged_at_once(slack: SlackEmulator, daemon: Daemon, clock: FakeClock) -> None:
    daemon.read(1000, until=NOW - 30)  # caught up
    daemon.hand(live())
    daemon.deliver()
    daemon.notifier.tick()
    assert len(pages(slack)) == 1 and pages(slack)[0].startswith("<!subteam^S0ONCALL> New SEV1 incident on klm.")
    assert "catch-up" not in json.dumps(root(slack)["blocks"]) + thread(slack)[0]["text"]


def test_found_in_the_backlog_but_posted_once_caught_up_is_paged_at_once_saying_so(
    slack: SlackEmulator, daemon: Daemon, clock: FakeClock
) -> None:
    """Reading outruns Slack: the backlog is read to its end before the outbox gets to an incident
    found in it. It is open now, so it is paged at the first tick, and says it was found late."""
    daemon.read(500, until=BACKLOG_START + 2700)
    daemon.hand(opened())
    daemon.read(500, until=NOW - 30)  # caught up, the incident still open
    daemon.deliver()
    assert "Posted during catch-up, 6h 17m after the fact" in json.dumps(root(slack)["blocks"])
    daemon.notifier.tick()
    assert pages(slack) == [
        "<!subteam^S0ONCALL> Still open after catch-up: SEV1 incident on klm (posted 6h 17m after the fact)."
        " Escalation level 1 (on-call): please Acknowledge on the incident message."
    ]


def test_a_busy_partition_is_current_by_event_time_before_it_is_read_to_its_end(daemon: Daemon) -> None:
    """A partition that is never read to its very end is caught up once its newest event is at most
    `CAUGHT_UP_SECONDS` old; a brand this replica does not hold is never known to be open."""
    daemon.read(100, until=NOW - CAUGHT_UP_SECONDS - 60)
    assert daemon.runner.incident_standing(IID) == "behind"
    daemon.read(100, until=NOW - CAUGHT_UP_SECONDS + 60)
    assert daemon.offset < daemon.consumer.high
    assert daemon.runner.incident_standing(IID) == "open"
    assert daemon.runner.incident_standing("bol-20100416T0740Z-volume") == "behind"


def test_escalate_pressed_while_catching_up_pages_at_once(
    slack: SlackEmulator, daemon: Daemon, clock: FakeClock
) -> None:
    daemon.read(400, until=BACKLOG_START + 2700)
    daemon.hand(opened())
    daemon.deliver()
    daemon.notifier.tick()
    assert pages(slack) == []
    body, headers = signed(press("crisisd.escalate", "U0ANA", IID), clock.now())
    assert daemon.notifier.handle_interaction(body, headers) == (200, b"")
    daemon.notifier.tick()
    assert len(pages(slack)) == 1 and pages(slack)[0].startswith(
        "<!subteam^S0ONCALL> New SEV1 incident on klm (posted 6h 17m after the fact). Escalation level 1"
    )


def test_a_paged_incident_whose_resolution_waits_in_the_outbox_is_not_paged_again(
    slack: SlackEmulator, daemon: Daemon, clock: FakeClock
) -> None:
    """Slack was slow, not crisisd: the ladder of a live incident stops as soon as its resolution
    is handed in, not when Slack has taken it."""
    daemon.read(1000, until=NOW - 30)
    daemon.hand(live())
    daemon.deliver()
    daemon.notifier.tick()
    assert len(pages(slack)) == 1
    clock.advance(120)
    daemon.hand(live(2, "incident.resolved"))  # not delivered yet
    clock.advance(600)
    daemon.notifier.tick()
    assert len(pages(slack)) == 1, "no 'Not acknowledged' page for an incident that is over"
    daemon.deliver()
    assert root(slack)["text"].startswith("RESOLVED")
    assert "catch-up" not in json.dumps(root(slack)["blocks"])


def test_a_replica_taking_a_waiting_incident_over_keeps_it_waiting(
    slack: SlackEmulator, make_notifier: Callable[..., SlackNotifier], clock: FakeClock, tmp_path: Path
) -> None:
    """The root carries how late the incident was posted: the next owner of its partition, still
    catching up, does not page it either."""
    first = Daemon(make_notifier(state="first"), clock, tmp_path / "first", backlog=1000)
    first.read(400, until=BACKLOG_START + 2700)
    first.hand(opened())
    first.deliver()
    first.notifier.tick()
    first.notifier.owns = lambda iid: False
    second = Daemon(make_notifier(state="second"), clock, tmp_path / "second", backlog=1000)
    second.read(400, until=BACKLOG_START + 3000)
    second.hand(note(2, type="incident.updated", severity="sev1"))
    second.deliver()
    second.notifier.tick()
    assert pages(slack) == []
    second.read(600, until=NOW)
    second.notifier.tick()
    assert [p[:70] for p in pages(slack)] == ["<!subteam^S0ONCALL> Still open after catch-up: SEV1 incident on klm (p"]
    first.close()
    second.close()


def test_a_replica_taking_over_an_escalated_incident_pages_it_while_catching_up(
    slack: SlackEmulator, make_notifier: Callable[..., SlackNotifier], clock: FakeClock, tmp_path: Path
) -> None:
    """Someone pressed Escalate while crisisd caught up after a Slack outage; the page failed (Slack
    still answering 500 to posts) but the root took the press; then the partition moved. The next
    owner, catching up too, pages at once rather than hold the page back until it has caught up."""
    first = Daemon(make_notifier(state="first"), clock, tmp_path / "first", backlog=1000)
    first.read(400, until=BACKLOG_START + 2700)
    first.hand(opened())
    first.deliver()
    first.notifier.tick()
    body, headers = signed(press("crisisd.escalate", "U0ANA", IID), clock.now())
    assert first.notifier.handle_interaction(body, headers) == (200, b"")
    slack.fail("500", "chat.postMessage")
    first.notifier.tick()
    assert pages(slack) == [] and root(slack)["metadata"]["event_payload"]["pages"] == 0
    first.notifier.owns = lambda iid: False
    second = Daemon(make_notifier(state="second"), clock, tmp_path / "second", backlog=1000)
    second.read(400, until=BACKLOG_START + 3000)
    second.hand(note(2, type="incident.updated", severity="sev1"))
    second.deliver()

    second.notifier.tick()

    assert len(pages(slack)) == 1
    assert pages(slack)[0].startswith("<!subteam^S0ONCALL> New SEV1 incident on klm (posted 6h 17m after the fact)")
    first.close()
    second.close()
