"""An incident moving between two replicas and back (partitions reassigned): two notifiers with their
own state directories, one emulated Slack, an ownership function flipped by the test (the runner's
`owns_incident` in the daemon).

What must hold: a replica that no longer runs an incident writes nothing of its own view to the root
(no refresh, no note, no page), and one that gets an incident back goes on from what the root says
when another replica changed it meanwhile (acknowledgement, level paged, volunteers)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from slack_helpers import note, press, signed

from daemon.clock import FakeClock
from notifiers.slack import SlackNotifier
from notifiers.slack.notifier import RETAIN_ROOT_ADDRESS_SECONDS
from notifiers.slack.testing import SlackEmulator

IID = "klm-20100416T0740Z-volume"
ROSTER = {"U0ANA": ["nl"], "U0MARKO": ["sr"], "U0LI": ["zh"]}


class Ownership:
    """Which replica holds the brand's partition: each replica's `owns` asks it. `move` hands the
    partition over as a rebalance does: the runner tells the replica that gets it (`reassigned`)."""

    def __init__(self, replicas: dict[str, SlackNotifier], holder: str) -> None:
        self.replicas, self.holder = replicas, holder
        for name, n in replicas.items():
            n.owns = self._of(name)

    def _of(self, name: str) -> Callable[[str], bool]:
        return lambda iid: self.holder == name

    def move(self, to: str) -> None:
        self.holder = to
        self.replicas[to].reassigned()


def replicas(make_notifier: Callable[..., SlackNotifier]) -> tuple[SlackNotifier, SlackNotifier, Ownership]:
    a = make_notifier(state="replica-a", languages_for=lambda u: ROSTER.get(u, []))
    b = make_notifier(state="replica-b", languages_for=lambda u: ROSTER.get(u, []))
    return a, b, Ownership({"a": a, "b": b}, "a")


def root(slack: SlackEmulator) -> dict[str, Any]:
    return slack.messages("#crisis")[0]


def carried(slack: SlackEmulator) -> dict[str, Any]:
    return dict(root(slack)["metadata"]["event_payload"])


def thread(slack: SlackEmulator) -> list[str]:
    return [m["text"] for m in slack.replies("#crisis", root(slack)["ts"])]


def pages(slack: SlackEmulator) -> list[str]:
    return [t for t in thread(slack) if "Escalation level" in t]


def click(n: SlackNotifier, clock: FakeClock, action: str, user: str) -> None:
    body, headers = signed(press(action, user), clock.now())
    assert n.handle_interaction(body, headers) == (200, b"")


def shown(slack: SlackEmulator) -> str:
    return json.dumps(root(slack)["blocks"], ensure_ascii=False)


# -- the previous owner writes nothing of its stale view -----------------------------------------------


def test_the_previous_owner_does_not_refresh_the_root_nor_post_its_notes_after_the_move(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A press reaches A just before the partition moves; A's background thread runs only after B took
    the incident over and recorded an acknowledgement. A's refresh would put its own view on the root
    (no acknowledgement), and its thread note would announce a sign-up B never counted."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    assert len(pages(slack)) == 1
    click(a, clock, "crisisd.volunteer", "U0ANA")  # applied on A; the tick that shows it has not run
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    click(b, clock, "crisisd.ack", "U0MARKO")
    b.tick()
    assert carried(slack)["acked_by"] == "U0MARKO"
    updates = len(slack.method_calls("chat.update"))

    a.tick()  # A's background thread, late

    assert len(slack.method_calls("chat.update")) == updates, "A wrote to a root it no longer runs"
    assert carried(slack)["acked_by"] == "U0MARKO"
    assert "Acknowledged by <@U0MARKO>" in shown(slack)
    assert not [t for t in thread(slack) if "can help" in t], "A posted a note for an incident it no longer runs"


def test_a_refresh_that_failed_before_the_move_is_not_retried_by_the_previous_owner(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A's root refresh after a press failed (Slack 500) and waits for the next tick; meanwhile the
    partition moved and B paged the next level. A's retry would carry level 1 back onto the root."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    slack.fail("500", "chat.update")
    click(a, clock, "crisisd.volunteer", "U0ANA")
    a.tick()  # the note goes out, the root's refresh fails
    assert len(pages(slack)) == 1 and carried(slack)["pages"] == 1 and "volunteers" not in carried(slack)
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    clock.advance(601)
    b.tick()
    assert len(pages(slack)) == 2 and carried(slack)["level"] == 1

    a.tick()

    assert carried(slack)["level"] == 1 and carried(slack)["pages"] == 2
    assert "Escalated to level 2" in shown(slack)


def test_the_previous_owner_delivering_a_late_notification_keeps_the_roots_state(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A's outbox still held a notification when the partition moved (it drains on shutdown; the
    notification log lets one replica deliver each). A delivers it: the root shows the new figures
    and what B recorded (an acknowledgement, a volunteer), not A's old view of the escalation."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    click(b, clock, "crisisd.ack", "U0MARKO")
    click(b, clock, "crisisd.volunteer", "U0LI")
    b.tick()

    assert a.send(note(3, type="incident.updated", severity="sev2")).ok

    payload = carried(slack)
    assert payload["acked_by"] == "U0MARKO" and payload["volunteers"] == 1
    assert "Acknowledged by <@U0MARKO>" in shown(slack) and "Volunteers signed up: 1 (zh)" in shown(slack)
    assert "5,700" in shown(slack), "the notification's own figures are shown"  # note(3): 5400 + 300
    clock.advance(100_000)
    a.tick()
    b.tick()
    assert len(pages(slack)) == 1, "acknowledged on B: nobody pages"


# -- the incident comes back ----------------------------------------------------------------------------


def test_a_replica_getting_an_incident_back_does_not_page_new_again(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A posts the root and loses the partition before its first page; B pages "New". The partition
    comes back to A: A's record still says nobody was paged."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    own.move("b")
    a.tick()  # not A's any more: no page
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    b.tick()
    assert [p[:40] for p in pages(slack)] == ["<!subteam^S0ONCALL> New SEV2 incident on"]
    clock.advance(60)
    own.move("a")

    a.tick()
    b.tick()

    assert len(pages(slack)) == 1, "'New' paged again by the replica that got the incident back"
    clock.advance(541)  # 601 s after B's page: the next level is due, once
    a.tick()
    b.tick()
    assert len(pages(slack)) == 2 and pages(slack)[1].startswith("<@U0LEAD1> <@U0LEAD2> Not acknowledged after 10 min")


def test_a_replica_getting_an_incident_back_keeps_what_the_other_recorded(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A pages level 1; B takes over, pages level 2, a volunteer signs up and someone acknowledges on B;
    the partition comes back to A. A must neither page again nor wipe the acknowledgement or the
    volunteer from the root on its next update."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    click(a, clock, "crisisd.volunteer", "U0ANA")
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    clock.advance(601)
    b.tick()
    assert len(pages(slack)) == 2
    click(b, clock, "crisisd.volunteer", "U0LI")
    click(b, clock, "crisisd.ack", "U0MARKO")
    b.tick()
    own.move("a")

    clock.advance(100_000)
    a.tick()
    assert len(pages(slack)) == 2, "acknowledged on B: A does not page"
    assert a.send(note(3, type="incident.updated", severity="sev2")).ok
    payload = carried(slack)
    assert payload["acked_by"] == "U0MARKO" and payload["level"] == 1 and payload["pages"] == 2
    assert payload["volunteers"] == 2 and sorted(payload["volunteer_ids"].split(",")) == ["U0ANA", "U0LI"]
    assert "Acknowledged by <@U0MARKO>" in shown(slack) and "Volunteers signed up: 2 (nl, zh)" in shown(slack)
    click(a, clock, "crisisd.volunteer", "U0LI")  # signed up on B already: counted once
    a.tick()
    assert carried(slack)["volunteers"] == 2
    assert sum("can help" in t for t in thread(slack)) == 2


def test_a_replica_getting_an_incident_back_goes_on_from_the_level_the_other_paged(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """B paged level 2 and nobody answered: back on A, the next page is level 3 when level 2's time is
    up, not level 2 a second time."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    clock.advance(601)
    b.tick()
    own.move("a")
    clock.advance(60)
    a.tick()
    assert len(pages(slack)) == 2, "level 2 was paged by B a minute ago"
    clock.advance(841)  # 901 s after level 2
    a.tick()
    assert len(pages(slack)) == 3 and pages(slack)[2].startswith("<@U0HEAD> Not acknowledged after 15 min")


def test_a_replica_restarted_while_another_ran_its_incident_reads_the_root_first(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A stops (its partitions go to B, which pages level 2 and records an acknowledgement) and starts
    again with the same state directory: its record is from before the move, so it reads the root
    before it pages."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    a.close()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    clock.advance(601)
    b.tick()
    click(b, clock, "crisisd.ack", "U0MARKO")
    b.tick()
    restarted = make_notifier(state="replica-a")
    own.replicas["a"] = restarted
    restarted.owns = lambda iid: own.holder == "a"
    own.move("a")

    clock.advance(100_000)
    restarted.tick()

    assert len(pages(slack)) == 2
    assert restarted.store.escalation(IID).acked_by == "U0MARKO"
    assert len(slack.method_calls("conversations.replies")) == 1, "the root is read once"
    restarted.tick()
    assert len(slack.method_calls("conversations.replies")) == 1


def test_a_press_on_a_replica_that_got_the_incident_back_applies_on_top_of_the_root(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A press reaches A right after the partition came back, before A read the root: it waits for the
    read and is applied on what B recorded (B's volunteer and acknowledgement kept, the new one counted)."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    click(b, clock, "crisisd.volunteer", "U0LI")
    click(b, clock, "crisisd.ack", "U0MARKO")
    b.tick()
    own.move("a")

    click(a, clock, "crisisd.volunteer", "U0ANA")
    assert a.store.volunteer_summary(IID).count == 0, "kept until the root is read"
    a.tick()

    payload = carried(slack)
    assert payload["volunteers"] == 2 and payload["acked_by"] == "U0MARKO"
    assert "Volunteers signed up: 2 (nl, zh)" in shown(slack) and "Acknowledged by <@U0MARKO>" in shown(slack)
    assert [t for t in thread(slack) if "can help" in t] == ["<@U0LI> can help (zh).", "<@U0ANA> can help (nl)."]


def test_a_kept_press_goes_to_the_owner_when_the_incident_moved_again(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A press kept until A read the root, and the partition moves again before A's background thread
    ran: A passes it on to the replica that runs the incident (daemon/kafka/relay.py between processes)."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    own.move("a")
    click(a, clock, "crisisd.ack", "U0MARKO")
    own.move("b")
    a.relay = b.relayed
    a.tick()
    b.tick()
    assert b.store.escalation(IID).acked_by == "U0MARKO"
    assert carried(slack)["acked_by"] == "U0MARKO"
    assert a.store.deferred_presses() == []


def test_a_root_whose_answer_was_lost_is_not_taken_for_another_replicas(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """The root's post went through but its answer was lost; someone acknowledges on it before the
    retry finds it. The root is this replica's own (its writer id), older than its record: the
    acknowledgement stays."""
    n = make_notifier()
    slack.fail("lost", "chat.postMessage")
    assert not n.send(note(1, severity="sev2")).ok
    assert n.store.root(IID) is not None and n.store.root(IID).root_ts is None
    click(n, clock, "crisisd.ack", "U0ANA")
    assert n.send(note(1, severity="sev2")).ok
    assert len(slack.messages("#crisis")) == 1
    assert n.store.escalation(IID).acked_by == "U0ANA"
    n.tick()
    assert carried(slack)["acked_by"] == "U0ANA" and pages(slack) == []


def test_the_root_carries_a_revision_each_owner_raises(slack: SlackEmulator, make_notifier, clock: FakeClock) -> None:
    """Every write by the replica running the incident raises the revision; the previous owner
    delivering a late notification writes back the revision it read, as the root's state it is."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    assert (carried(slack)["rev"], carried(slack)["by"]) == (1, a.store.writer())
    a.tick()  # the page, then the root shows the level
    assert carried(slack)["rev"] == 2
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    assert (carried(slack)["rev"], carried(slack)["by"]) == (3, b.store.writer())
    assert a.send(note(3, type="incident.updated", severity="sev2")).ok
    assert (carried(slack)["rev"], carried(slack)["by"]) == (3, a.store.writer())
    assert b.send(note(4, type="incident.updated", severity="sev2")).ok
    assert (carried(slack)["rev"], carried(slack)["by"]) == (4, b.store.writer())


def test_a_restarted_replica_runs_no_incident_before_its_partitions_are_restored(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    """`crisisd run` starts the Slack background thread before Kafka answers: until the runner has
    restored the brand's partition, the restarted replica neither pages from its old record nor
    writes to the root (another replica may run the incident now); then it reads the root first."""
    from types import SimpleNamespace

    from kafka import TopicPartition

    from config.settings import load_settings
    from daemon.kafka.runner import PartitionTask, Runner
    from daemon.pipeline import BrandState, Pipeline

    before = make_notifier(state="replica-a")
    assert before.send(note(1, severity="sev2")).ok
    before.close()  # stopped before its first page
    n = make_notifier(state="replica-a")
    settings = load_settings(env={"CRISISD_STATE_DIR": str(tmp_path / "daemon")})
    runner = Runner(settings, n, clock=clock)
    clock.advance(60)
    n.tick()
    assert pages(slack) == [] and slack.method_calls("conversations.replies") == []

    pipeline = Pipeline(settings)
    pipeline.brands["klm"] = BrandState("klm", settings)
    tp = TopicPartition("mentions", 0)
    runner._consumer = SimpleNamespace(pause=lambda *tps: None)  # type: ignore[assignment]
    runner._on_assigned({tp})  # the rebalance listener; then the partition's state is restored:
    runner._tasks[tp] = PartitionTask(tp, pipeline, 0, checkpointed=0)
    n.tick()
    assert len(slack.method_calls("conversations.replies")) == 1
    assert [p[:40] for p in pages(slack)] == ["<!subteam^S0ONCALL> New SEV2 incident on"]


def test_a_replica_that_cannot_read_the_root_it_got_back_writes_nothing_until_it_can(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """Back on A, the root cannot be read (a missing scope, then a 500): A neither pages, nor writes
    the root, nor delivers the next notification from its old record; it tries again, then goes on."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    click(b, clock, "crisisd.ack", "U0MARKO")
    b.tick()
    own.move("a")
    clock.advance(100_000)
    updates = len(slack.method_calls("chat.update"))
    slack.fail("error:missing_scope", "conversations.replies")
    slack.fail("500", "conversations.replies")

    a.tick()
    result = a.send(note(3, type="incident.updated", severity="sev2"))

    assert not result.ok and result.retry
    assert len(pages(slack)) == 1 and len(slack.method_calls("chat.update")) == updates
    assert a.send(note(3, type="incident.updated", severity="sev2")).ok
    a.tick()
    assert len(pages(slack)) == 1 and carried(slack)["acked_by"] == "U0MARKO"


def test_a_press_while_starting_is_kept_until_the_replica_knows_its_incidents(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A press that reaches a replica still starting (its partitions not restored, no relay yet) is
    neither applied blindly nor lost: it waits, and applies once the replica runs the incident; one
    nobody could take within PRESS_HOLD_SECONDS is dropped with a warning."""
    from notifiers.slack.notifier import PRESS_HOLD_SECONDS

    n = make_notifier(state="replica-a")
    assert n.send(note(1, severity="sev2")).ok
    starting = {"runs": False}
    n.owns = lambda iid: starting["runs"]
    click(n, clock, "crisisd.ack", "U0MARKO")
    n.tick()
    assert "acked_by" not in carried(slack) or carried(slack)["acked_by"] == ""
    starting["runs"] = True  # partitions restored
    n.reassigned()
    n.tick()
    assert carried(slack)["acked_by"] == "U0MARKO"
    assert pages(slack) == []  # acknowledged before its first page was due

    starting["runs"] = False
    click(n, clock, "crisisd.snooze", "U0ANA")
    clock.advance(PRESS_HOLD_SECONDS + 1)
    n.tick()
    assert n.store.deferred_presses() == []


# -- an incident lost long ago ----------------------------------------------------------------------------

DAY = 86400.0


def lose_for(days: float, n: SlackNotifier, clock: FakeClock) -> None:
    """Let `days` pass with the background thread ticking every hour, as it does."""
    for _ in range(round(days * 24)):
        clock.advance(3600)
        n.tick()


def test_a_replica_forgets_what_it_recorded_of_an_incident_it_lost_long_ago(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A's brand moved to B and never came back: B resolved the incident, A never heard of it. A month
    later A holds nothing of it its background thread would scan again and again (the escalation due,
    the note and the refresh it must not make), only where the root is."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    click(a, clock, "crisisd.volunteer", "U0ANA")  # applied on A; its note and refresh never go out
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    assert b.send(note(3, type="incident.resolved", severity="sev2")).ok

    lose_for(31, a, clock)

    assert a.store.escalation(IID) is None and a.store.due_escalations(clock.now() + 1e9) == []
    assert a.store.volunteer_summary(IID).count == 0
    assert a.store.unposted_notes() == [] and a.store.dirty_roots() == []
    kept = a.store.root(IID)
    assert kept is not None and kept.root_ts == root(slack)["ts"] and kept.channel_id
    assert kept.body is None
    clock.advance(RETAIN_ROOT_ADDRESS_SECONDS)
    a.tick()
    assert a.store.root(IID) is None, "the address goes too, a year on"


def test_a_replica_forgets_nothing_of_an_incident_it_runs(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """An incident A runs is kept however long nothing happens to it, and so is one A did not run for
    a while only (it waited for its partitions after a restart, say): the count starts again."""
    a, _, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    click(a, clock, "crisisd.ack", "U0MARKO")
    a.tick()
    own.holder = "nobody"  # for a day: the hourly passes see A not run it
    lose_for(1, a, clock)
    own.move("a")

    lose_for(40, a, clock)

    assert a.store.escalation(IID).acked_by == "U0MARKO"
    assert a.store.root(IID).body is not None


def test_an_incident_back_after_its_record_was_forgotten_goes_on_from_the_root(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A lost the incident to B for a month and forgot its record but the root's address; B paged level
    2, a volunteer signed up on B. Back on A, a press applies on top of the root; the next notification
    updates the same root with B's state; nothing is paged again."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    clock.advance(601)
    b.tick()
    click(b, clock, "crisisd.volunteer", "U0LI")
    b.tick()
    assert len(pages(slack)) == 2
    lose_for(31, a, clock)
    assert a.store.escalation(IID) is None
    own.move("a")

    click(a, clock, "crisisd.ack", "U0MARKO")
    a.tick()
    assert a.store.escalation(IID).acked_by == "U0MARKO" and a.store.escalation(IID).pages == 2
    assert a.send(note(4, type="incident.updated", severity="sev2")).ok

    assert len(slack.messages("#crisis")) == 1, "one root"
    payload = carried(slack)
    assert payload["acked_by"] == "U0MARKO" and payload["level"] == 1 and payload["pages"] == 2
    assert payload["volunteers"] == 1 and "Acknowledged by <@U0MARKO>" in shown(slack)
    lose_for(1, a, clock)
    assert len(pages(slack)) == 2


def test_an_incident_back_after_its_record_was_forgotten_is_paged_on_without_a_press(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """Back on A, nobody presses and no notification comes: within the hour A reads the root and pages
    the next level B's page left due, not "New"."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    lose_for(31, a, clock)
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    b.tick()  # level 2, long due
    assert a.store.escalation(IID) is None and len(pages(slack)) == 2
    own.move("a")

    clock.advance(3600)
    a.tick()  # the hourly look reads the root
    a.tick()

    assert len(pages(slack)) == 3 and pages(slack)[2].startswith("<@U0HEAD> Not acknowledged")


# -- an incident taken over by a replica that never ran it ------------------------------------------------


def test_a_replica_taking_over_an_incident_it_never_ran_pages_on_without_a_notification(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """A paged level 1, then the partition moved to B (a deploy, a scale-out), which never ran the
    incident. A steady crisis sends no notification for a while: B paged nobody until one came. The
    runner names the open incidents of what it restored (`adopt`): B finds the root, takes its
    escalation over, and pages level 2 when level 1's time is up."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    assert len(pages(slack)) == 1
    own.move("b")
    # as the runner does once it restored the partition: each open incident with its last notification
    # (bol's incident never got a root: nothing to take over)
    b.adopt([note(1, severity="sev2"), note(1, incident_id="bol-20100416T0740Z-volume")])
    b.tick()
    assert len(pages(slack)) == 1 and carried(slack)["pages"] == 1
    clock.advance(601)
    b.tick()
    assert len(pages(slack)) == 2 and carried(slack)["level"] == 1
    assert not pages(slack)[1].startswith("<@U0HEAD> New"), "not paged as new: it was paged at level 1 by A"


def test_a_press_on_a_replica_that_never_ran_the_incident_applies(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """The partition moved to B, which has no record of the incident; someone presses Acknowledge on its
    root. B ignored the press (nothing changed, the pages went on); it now finds the root and applies it."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    b.adopt([note(1, severity="sev2")])
    click(b, clock, "crisisd.ack", "U0MARKO")
    b.tick()
    assert carried(slack)["acked_by"] == "U0MARKO"
    assert "Acknowledged by <@U0MARKO>" in shown(slack)
    assert any("Acknowledged by" in t for t in thread(slack))
    clock.advance(3600)
    b.tick()
    a.tick()
    assert len(pages(slack)) == 1, "acknowledged: nobody pages on"


# -- a press just before the partition goes ------------------------------------------------------------


def holding_klm(n: SlackNotifier, clock: FakeClock, state: Any) -> tuple[Any, Any]:
    """A runner for `n` that holds klm's partition (restored); (runner, partition)."""
    from kafka import TopicPartition

    from config.settings import load_settings
    from daemon.kafka.runner import PartitionTask, Runner
    from daemon.pipeline import BrandState, Pipeline

    settings = load_settings(env={"CRISISD_STATE_DIR": str(state)})
    runner = Runner(settings, n, clock=clock)
    runner._checkpoint = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no Kafka here
    pipeline = Pipeline(settings)
    pipeline.brands["klm"] = BrandState("klm", settings)
    tp = TopicPartition("mentions", 0)
    runner._tasks[tp] = PartitionTask(tp, pipeline, 0, checkpointed=0)
    return runner, tp


def test_a_press_applied_just_before_a_rebalance_reaches_the_root_before_the_partition_goes(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    """An acknowledgement reaches A and the partition is revoked before A's background thread has shown
    it. A writes the root and the note before it lets the partition go (the runner's rebalance
    listener), so B, which gets the partition only then, goes on from the acknowledgement: nobody is
    paged, and the thread says who acknowledged."""
    a = make_notifier(state="replica-a")
    b = make_notifier(state="replica-b")
    runner, tp = holding_klm(a, clock, tmp_path / "daemon")
    b.owns = lambda iid: not runner.owns_incident(iid)  # B gets the partition once A let it go
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    assert len(pages(slack)) == 1
    click(a, clock, "crisisd.ack", "U0MARKO")

    runner._on_revoked({tp})

    assert carried(slack)["acked_by"] == "U0MARKO" and "Acknowledged by <@U0MARKO>" in shown(slack)
    assert "Acknowledged by <@U0MARKO>; escalation stopped." in thread(slack)
    b.reassigned()
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    clock.advance(100_000)
    a.tick()
    b.tick()
    assert len(pages(slack)) == 1 and carried(slack)["acked_by"] == "U0MARKO"


def test_a_refresh_that_failed_is_retried_before_the_partition_goes(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    """A's refresh after a sign-up failed (Slack 500) and waits for the next tick when the partition is
    revoked: A retries it first, so the volunteer is still counted on the root B takes over."""
    a = make_notifier(state="replica-a", languages_for=lambda u: ROSTER.get(u, []))
    runner, tp = holding_klm(a, clock, tmp_path / "daemon")
    assert a.send(note(1, severity="sev2")).ok
    slack.fail("500", "chat.update")
    click(a, clock, "crisisd.volunteer", "U0ANA")
    a.tick()
    assert "volunteers" not in carried(slack)

    runner._on_revoked({tp})

    assert carried(slack)["volunteers"] == 1 and "Volunteers signed up: 1 (nl)" in shown(slack)


def test_a_lost_incident_with_a_press_waiting_is_not_cut_down(tmp_path) -> None:
    """A press kept for the incident (`deferred_presses`) holds its record whole."""
    from notifiers.slack.store import SlackStore

    store = SlackStore(tmp_path)
    store.ensure_root(IID, 0.0)
    store.start_escalation(IID, "sev2", 10.0)
    store.defer_press(IID, "crisisd.ack", "U0MARKO", 5.0)
    assert not store.keep_address(IID) and store.escalation(IID) is not None
    store.press_done(store.deferred_presses()[0][0])
    assert store.keep_address(IID) and store.escalation(IID) is None and store.root(IID) is not None
    store.close()


# -- a replica cut off from Kafka ------------------------------------------------------------------------


def cut_off_holding_klm(n: SlackNotifier, clock: FakeClock, state: Any) -> Any:
    """A runner for `n` that ran klm's incidents until Kafka went out of its reach and the group
    session ended (`_on_lost`): it runs them on, provisionally."""
    runner, tp = holding_klm(n, clock, state)
    n.owns = runner.owns_incident
    runner._unreachable = None  # the broker probe had an answer
    runner._caught_up = frozenset({tp})  # the incidents are known to be open now: paged at once
    runner._attach_standing()
    assert n.provisional == runner.runs_provisionally
    assert not runner.runs_provisionally(IID)
    return runner, tp


def test_a_replica_cut_off_from_kafka_leaves_the_incident_to_the_one_that_took_it_over(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    """A lost its group session (cut off alone from Kafka, Slack still in reach) and runs its incidents
    on; the group gave the partition to B, which took the incident over. A paged each level beside B
    until it reached the group again. Now B claims the root as it takes over, A reads the root before
    its next page and leaves the incident to B: one page per level."""
    a = make_notifier(state="replica-a")
    b = make_notifier(state="replica-b")
    runner, tp = cut_off_holding_klm(a, clock, tmp_path / "daemon")
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    assert len(pages(slack)) == 1

    runner._on_lost({tp})
    assert runner.owns_incident(IID) and runner.runs_provisionally(IID)
    b.owns = lambda iid: True
    b.reassigned()
    b.adopt([note(1, severity="sev2")])
    b.tick()
    assert carried(slack)["by"] != a._writer, "B claimed the root"
    click(b, clock, "crisisd.volunteer", "U0ANA")
    b.tick()
    # A's outbox still held a notification: delivered on top of what B wrote, not over it
    assert a.send(note(2, type="incident.updated", severity="sev2")).ok
    assert carried(slack)["volunteers"] == 1 and carried(slack)["pages"] == 1

    clock.advance(601)
    a.tick()
    b.tick()
    a.tick()
    assert len(pages(slack)) == 2 and carried(slack)["level"] == 1
    clock.advance(100_000)
    for _ in range(3):
        a.tick()
    assert len(pages(slack)) == 2, "A paged an incident B runs"
    b.tick()
    assert len(pages(slack)) == 3


def test_a_replica_cut_off_from_kafka_pages_on_while_nobody_else_runs_the_incident(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    """Kafka itself is down: nobody took the partition over, nobody wrote the root. A reads it before
    each page, finds only its own writes, and pages on."""
    a = make_notifier(state="replica-a")
    runner, tp = cut_off_holding_klm(a, clock, tmp_path / "daemon")
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    runner._unreachable = "KafkaTimeoutError"  # the broker probe's last answer; the session not over yet
    assert runner.runs_provisionally(IID)
    reads = len(slack.method_calls("conversations.replies"))
    clock.advance(601)
    a.tick()
    assert len(pages(slack)) == 2 and carried(slack)["level"] == 1
    assert len(slack.method_calls("conversations.replies")) > reads, "the root was read before the page"
    runner._on_lost({tp})
    clock.advance(100_000)
    a.tick()
    assert len(pages(slack)) == 3
    runner._unreachable = None
    runner._on_assigned(set())  # the group again: what the replica holds is certain
    assert not runner.runs_provisionally(IID) and not runner.owns_incident(IID)


def test_a_press_on_a_replica_cut_off_from_kafka_goes_to_the_one_that_took_the_incident_over(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    """An Acknowledge reaches A, cut off from Kafka, after B took the incident over and claimed its
    root. A applied it to its own record, then found B's write before showing it, and the press was
    lost: B paged on. A reads the root first now, and passes the press on to B."""
    a = make_notifier(state="replica-a")
    b = make_notifier(state="replica-b")
    runner, tp = cut_off_holding_klm(a, clock, tmp_path / "daemon")
    relayed: list[tuple[str, str, str]] = []
    a.relay = lambda action, iid, user: relayed.append((action, iid, user))
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    runner._on_lost({tp})
    b.owns = lambda iid: True
    b.reassigned()
    b.adopt([note(1, severity="sev2")])
    b.tick()

    click(a, clock, "crisisd.ack", "U0MARKO")
    a.tick()
    a.tick()

    assert relayed == [("crisisd.ack", IID, "U0MARKO")]
    assert not carried(slack).get("acked_by"), "A wrote to a root B runs"


def test_a_press_on_a_replica_cut_off_from_kafka_applies_while_nobody_else_runs_the_incident(
    slack: SlackEmulator, make_notifier, clock: FakeClock, tmp_path
) -> None:
    a = make_notifier(state="replica-a")
    runner, tp = cut_off_holding_klm(a, clock, tmp_path / "daemon")
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    runner._on_lost({tp})
    click(a, clock, "crisisd.ack", "U0MARKO")
    a.tick()
    assert carried(slack)["acked_by"] == "U0MARKO" and "Acknowledged by <@U0MARKO>" in shown(slack)
    clock.advance(100_000)
    a.tick()
    assert len(pages(slack)) == 1


def test_a_replica_taking_over_finds_a_root_far_back_in_a_busy_channel(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """People coordinate the response in the incident channel: A's root is 2,500 messages back when B
    takes the incident over. B scanned the channel's last 2,000 messages for it, did not find it, paged
    nobody, and posted a second root with the next notification. The shared notification log says
    where A put it (`root_hint`, from `address`): one read."""
    from notifiers.slack.notifier import ROOT_EVENT

    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    slack.chatter("#crisis", 2500)
    own.move("b")
    b.root_hint = lambda iid: a.address(iid)  # what a's delivery recorded in the notification log
    b.adopt([note(1, severity="sev2")])
    b.tick()
    assert not slack.method_calls("conversations.history"), "the channel was scanned"
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    roots = [m for m in slack.messages("#crisis") if (m.get("metadata") or {}).get("event_type") == ROOT_EVENT]
    assert len(roots) == 1
    clock.advance(601)
    b.tick()
    assert len(pages(slack)) == 2 and carried(slack)["level"] == 1


def test_a_root_hint_that_leads_nowhere_falls_back_to_the_scan(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    b.root_hint = lambda iid: "C0GONE 1700000001.000001"  # a channel out of reach, say
    b.adopt([note(1, severity="sev2")])
    b.tick()
    assert slack.method_calls("conversations.history")
    clock.advance(601)
    b.tick()
    assert len(pages(slack)) == 2


def test_the_runner_hands_the_notifier_the_notification_logs_addresses(
    make_notifier, clock: FakeClock, tmp_path
) -> None:
    n = make_notifier()
    runner, _ = holding_klm(n, clock, tmp_path / "daemon")

    class Log:
        """The notification log: read to its end past the last takeover once `read` is set."""

        read = False

        def sync(self, timeout: float) -> bool:
            return self.read

        def where(self, incident_id: str) -> str | None:
            return "C0CRISIS 1700000001.000001" if incident_id == IID else None

    log = runner._nflog = Log()  # type: ignore[assignment]
    runner._attach_standing()
    assert n.root_hint is not None
    with pytest.raises(LookupError):
        n.root_hint(IID)  # not "not recorded": not known yet
    log.read = True
    assert n.root_hint(IID) == "C0CRISIS 1700000001.000001" and n.root_hint("bol-1") is None


def test_a_takeover_waits_for_the_notification_log_before_it_scans_the_channel(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """B got the partition a moment ago and its notification log is still being read: B asks again a
    tick later instead of scanning the channel's history for a root the log is about to place."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    read: list[bool] = [False]

    def hint(iid: str) -> str | None:
        if not read[0]:
            raise LookupError("the notification log is not read to its end yet")
        return a.address(iid)

    b.root_hint = hint
    b.adopt([note(1, severity="sev2")])
    b.tick()
    assert b.store.root(IID) is None
    read[0] = True
    b.tick()
    assert b.store.root(IID) is not None
    assert not [c for c in slack.method_calls("conversations.history") if c.payload.get("include_all_metadata")]


def test_a_takeover_claims_only_the_roots_whose_ladder_still_runs(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """Claiming a root is a write, and every write takes a slot of the channel's rate that pages need in
    a crisis: an acknowledged incident, which pages nobody, is left as it is until its next change."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    assert a.send(note(1, severity="sev2", incident_id="bol-20100416T0740Z-volume", brand="bol")).ok
    a.tick()
    click(a, clock, "crisisd.ack", "U0MARKO")  # klm's (the press helper's incident)
    a.tick()
    own.move("b")
    updates = len(slack.method_calls("chat.update"))
    b.adopt([note(1, severity="sev2"), note(1, severity="sev2", incident_id="bol-20100416T0740Z-volume", brand="bol")])
    b.tick()
    claimed = slack.method_calls("chat.update")[updates:]
    assert [c.payload["metadata"]["event_payload"]["incident_id"] for c in claimed] == ["bol-20100416T0740Z-volume"]


class FlakyRelay:
    """The interactions topic out of reach for the first `failures` presses passed on."""

    def __init__(self, to: SlackNotifier, failures: int) -> None:
        self.to, self.failures, self.calls = to, failures, 0

    def __call__(self, action: str, iid: str, user: str) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            return False
        self.to.relayed(action, iid, user)
        return True


def test_a_press_that_could_not_be_passed_on_is_passed_on_again(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    """Slack gave A a press for an incident B runs while Kafka was out of A's reach for a moment: the
    relay failed and the press was lost (the manager saw nothing change). A keeps it and passes it on
    again every 10 seconds."""
    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    a.tick()
    own.move("b")
    assert b.send(note(2, type="incident.updated", severity="sev2")).ok
    a.relay = relay = FlakyRelay(b, failures=2)
    body, headers = signed(press("crisisd.ack", "U0MARKO"), clock.now())
    assert a.handle_interaction(body, headers) == (200, b"")
    a.tick()  # tried at once on the request, and not again within 10 s
    assert relay.calls == 1 and len(a.store.deferred_presses()) == 1
    clock.advance(10)
    a.tick()  # fails again
    clock.advance(10)
    a.tick()  # taken
    assert relay.calls == 3 and a.store.deferred_presses() == []
    b.tick()
    assert carried(slack)["acked_by"] == "U0MARKO"


def test_a_press_that_cannot_be_passed_on_for_ten_minutes_is_dropped_saying_so(
    slack: SlackEmulator, make_notifier, clock: FakeClock
) -> None:
    from structlog.testing import capture_logs

    a, b, own = replicas(make_notifier)
    assert a.send(note(1, severity="sev2")).ok
    own.move("b")
    a.relay = relay = FlakyRelay(b, failures=1_000)
    a.handle_payload(press("crisisd.ack", "U0MARKO"))
    with capture_logs() as logs:
        for _ in range(61):
            clock.advance(10)
            a.tick()
    assert a.store.deferred_presses() == [] and 55 <= relay.calls <= 62
    assert [r["event"] for r in logs if r["log_level"] == "warning"] == ["slack.action_dropped"]
