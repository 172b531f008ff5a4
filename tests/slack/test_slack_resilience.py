"""Outages, 429 bursts, lost answers and restarts: every notification delivered, in order, exactly once."""

from __future__ import annotations

import json
from pathlib import Path

from slack_helpers import TOKEN, note, timeline

from daemon.clock import FakeClock
from daemon.outbox import BackoffPolicy, Outbox
from notifiers.slack.testing import SlackEmulator

INCIDENTS = ["klm-a", "klm-b", "tui-c"]


def drive(box: Outbox, clock: FakeClock, limit: int = 20_000) -> None:
    for _ in range(limit):
        wait = box.run_once()
        if wait is None:
            return
        if wait > 0:
            clock.advance(wait)
    raise AssertionError("outbox did not drain")


def crisis(per_incident: int = 6) -> list:
    out = []
    for seq in range(1, per_incident + 1):
        for iid in INCIDENTS:
            kind = "incident.opened" if seq == 1 else "incident.updated"
            if seq == per_incident:
                kind = "incident.resolved"
            out.append(note(seq, type=kind, incident_id=iid, timeline=timeline() if seq in (1, per_incident) else None))
    return out


def assert_exactly_once_in_order(slack: SlackEmulator, per_incident: int) -> None:
    roots = slack.messages("#crisis")
    by_incident = {m["metadata"]["event_payload"]["incident_id"]: m for m in roots}
    assert len(roots) == len(INCIDENTS) == len(by_incident), "one root per incident"
    for iid, root in by_incident.items():
        assert root["text"].startswith("RESOLVED"), "the root shows the last notification"
        thread = slack.replies("#crisis", root["ts"])
        seqs = [
            m["metadata"]["event_payload"]["seq"]
            for m in thread
            if m.get("metadata", {}).get("event_payload", {}).get("step") == "thread"
        ]
        assert seqs == list(range(1, per_incident + 1)), (iid, seqs)
        charts = [f["title"] for m in thread for f in m.get("files", [])]
        assert charts == [f"crisisd chart {iid} #1", f"crisisd chart {iid} #{per_incident}"]


def test_outage_and_429_bursts_during_a_crisis(slack: SlackEmulator, make_notifier, clock, tmp_path: Path) -> None:
    notifier = make_notifier(rate_per_second=1.0, burst=3)  # Slack's real per-channel pace
    box = Outbox(tmp_path / "outbox", notifier, clock=clock, backoff=BackoffPolicy(base=1, cap=30), seed=7)
    notes = crisis()
    box.put_many(notes[:6])
    drive(box, clock)
    # Slack goes away for 30 seconds in the middle of the crisis, then answers with bursts of 429s,
    # 500s and answers lost after the post was committed.
    slack.outage(30)
    box.put_many(notes[6:])
    slack.fail("429", "chat.postMessage", times=4, retry_after="2")
    slack.fail("lost", "chat.postMessage", times=3)
    slack.fail("500", "chat.update", times=2)
    slack.fail("429", "files.getUploadURLExternal", times=2, retry_after="1")
    slack.fail("reset", "upload", times=1)
    slack.fail("lost", "files.completeUploadExternal", times=1)
    drive(box, clock)
    counters = box.counters()
    assert counters["sent"] == len(notes) and counters["failed"] == 0 and counters["retried"] > 10
    assert any(c.outcome == "reset" for c in slack.calls) and any(c.outcome == "lost" for c in slack.calls)
    assert_exactly_once_in_order(slack, 6)
    box.stop()


def test_restart_mid_incident_posts_no_duplicate_root(
    slack: SlackEmulator, make_notifier, clock, tmp_path: Path
) -> None:
    first = make_notifier()
    slack.fail("lost", "chat.postMessage", times=1)  # Slack posts the root, the answer never arrives
    assert first.send(note(1, incident_id="klm-a")).retry
    first.close()  # ... and the daemon dies
    second = make_notifier()
    assert second.send(note(1, incident_id="klm-a")).ok
    slack.fail("lost", "chat.postMessage", times=1)  # now the thread line of #2 is lost the same way
    assert second.send(note(2, type="incident.updated", incident_id="klm-a")).retry
    second.close()
    third = make_notifier()
    for seq in (2, 3):
        assert third.send(note(seq, type="incident.updated", incident_id="klm-a")).ok
    assert len(slack.messages("#crisis")) == 1
    thread = slack.replies("#crisis", slack.messages("#crisis")[0]["ts"])
    assert [m["metadata"]["event_payload"]["seq"] for m in thread] == [1, 2, 3]


def test_another_replica_continues_the_root_and_can_tell_what_was_delivered(
    slack: SlackEmulator, make_notifier
) -> None:
    first = make_notifier(state="replica-a")
    for seq in (1, 2):
        assert first.send(note(seq, type="incident.opened" if seq == 1 else "incident.updated")).ok
    first.close()  # the partition moves to a replica with its own state directory
    second = make_notifier(state="replica-b")
    assert second.send(note(3, type="incident.updated")).ok
    roots = slack.messages("#crisis")
    assert len(roots) == 1, "the new owner updates the existing root instead of posting a second one"
    thread = slack.replies("#crisis", roots[0]["ts"])
    assert [m["metadata"]["event_payload"]["seq"] for m in thread] == [1, 2, 3]
    # The notification log's bare-claim probe, from a third replica: what is in Slack is found.
    third = make_notifier(state="replica-c")
    assert third.delivered(note(3, type="incident.updated")) is True
    assert third.delivered(note(4, type="incident.updated")) is False
    assert third.delivered(note(1, incident_id="tui-never-posted")) is False
    slack.refuse()
    assert third.delivered(note(1, incident_id="klm-other")) is None


def test_restart_with_the_outbox_redelivers_pending(slack: SlackEmulator, make_notifier, clock, tmp_path: Path) -> None:
    notifier = make_notifier()
    box = Outbox(tmp_path / "outbox", notifier, clock=clock)
    notes = crisis(3)
    box.put_many(notes)
    slack.fail("lost", "chat.postMessage", times=1)
    for _ in range(4):
        box.run_once()
    box.stop()
    notifier.close()
    notifier = make_notifier()
    box = Outbox(tmp_path / "outbox", notifier, clock=clock)
    assert box.pending() > 0
    box.put_many(notes)  # the consumer re-hands everything after the crash
    drive(box, clock)
    assert_exactly_once_in_order(slack, 3)
    box.stop()


def test_error_classes(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    slack.fail("429", "chat.postMessage", retry_after="30")
    d = n.send(note(1))
    assert (d.ok, d.retry, d.retry_after) == (False, True, 30.0)
    clock.advance(30)
    slack.fail("500", "chat.postMessage")
    assert n.send(note(1)).retry
    slack.refuse()
    d = n.send(note(1))
    assert d.retry and "URLError" in d.error
    slack.resume()
    assert n.send(note(1)).ok
    assert len(slack.messages("#crisis")) == 1


def test_slow_answer_times_out_then_is_found(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier(http_timeout_seconds=1.0)
    slack.fail("slow", "chat.postMessage", delay=1.5)
    d = n.send(note(1))
    assert d.retry and "timed out" in d.error.lower()
    assert n.send(note(1)).ok
    assert len(slack.messages("#crisis")) == 1


def test_channel_rate_limit_asks_to_retry_without_sleeping(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier(rate_per_second=1.0, burst=3)
    answers = [n.send(note(s, type="incident.updated" if s > 1 else "incident.opened")) for s in (1, 2)]
    assert answers[0].ok and not answers[1].ok and answers[1].retry and 0 < (answers[1].retry_after or 0) <= 1.0
    clock.advance(answers[1].retry_after or 0)
    assert n.send(note(2, type="incident.updated")).ok  # the root update is not made twice
    posts = slack.method_calls("chat.postMessage") + slack.method_calls("chat.update")
    assert len(posts) == 4, "no call was made without a token, none was repeated"


def test_retry_after_holds_the_method_for_every_caller(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    assert n.send(note(1, incident_id="klm-a")).ok  # a sev1: its first page is due at once
    slack.fail("429", "chat.postMessage", retry_after="30")
    n.tick()  # the page meets the 429
    posts = len(slack.method_calls("chat.postMessage"))
    others = [n.send(note(1, incident_id=f"klm-{x}")) for x in "bcde"]
    assert len(slack.method_calls("chat.postMessage")) == posts, "nothing goes out while Slack said wait"
    assert all(d.retry and 29.0 <= (d.retry_after or 0) <= 30.0 for d in others), others
    for _ in range(5):  # the background tick every 5 s makes no call either
        clock.advance(5)
        n.tick()
    assert len(slack.method_calls("chat.postMessage")) == posts
    assert n.send(note(1, incident_id="klm-b")).retry_after == 5.0
    clock.advance(5)
    n.tick()
    assert n.send(note(1, incident_id="klm-b")).ok
    root = slack.messages("#crisis")[0]
    assert sum("Escalation level" in m["text"] for m in slack.replies("#crisis", root["ts"])) == 1
    assert len(slack.method_calls("chat.postMessage")) == posts + 3  # the page, klm-b's root and thread line


def test_a_client_with_slack_sdks_rate_limit_handler_does_not_sleep(
    slack: SlackEmulator, clock, tmp_path: Path
) -> None:
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    from notifiers.slack import SlackNotifier

    client = WebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[RateLimitErrorRetryHandler(1)])
    n = SlackNotifier(client, "#crisis", tmp_path / "state", clock=clock)
    try:
        slack.fail("429", "chat.postMessage", retry_after="1")
        d = n.send(note(1))
        assert d.retry and d.retry_after == 1.0, "the outbox waits, the handler does not sleep and retry"
        assert len(slack.method_calls("chat.postMessage")) == 1
    finally:
        n.close()


def _roots(slack: SlackEmulator) -> list[str]:
    return [m["text"] for m in slack.messages("#crisis")]


def test_a_failed_root_lookup_never_lets_a_later_notification_post_a_second_root(
    slack: SlackEmulator, make_notifier
) -> None:
    n = make_notifier()
    slack.fail("lost", "chat.postMessage")  # the root is posted, its answer never arrives
    assert n.send(note(1)).retry
    slack.fail("error:missing_scope", "conversations.history", times=2)  # the bot cannot read the channel
    d = n.send(note(1))
    assert not d.ok and d.retry, "the lookup could not tell: the notification is kept and retried"
    assert "conversations.history" in d.error and "missing_scope" in d.error
    d = n.send(note(2, type="incident.updated"))
    assert not d.ok and d.retry and len(_roots(slack)) == 1, "a later notification does not post a second root"
    assert n.send(note(1)).ok and n.send(note(2, type="incident.updated")).ok  # the scope is granted
    roots = slack.messages("#crisis")
    assert len(roots) == 1 and "5,600/h" in json.dumps(roots[0]["blocks"]), "the found root shows #2"
    thread = slack.replies("#crisis", roots[0]["ts"])
    assert [m["metadata"]["event_payload"]["seq"] for m in thread] == [1, 2]


def test_a_failed_channel_lookup_by_name_never_posts_a_second_root(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()  # the channel is configured by name: finding the root needs conversations.list
    slack.fail("lost", "chat.postMessage")
    assert n.send(note(1)).retry
    slack.fail("error:missing_scope", "conversations.list", times=2)
    assert n.send(note(1)).retry
    assert n.send(note(2, type="incident.updated")).retry
    assert len(_roots(slack)) == 1
    assert n.send(note(1)).ok and n.send(note(2, type="incident.updated")).ok
    assert len(_roots(slack)) == 1


def test_another_replicas_root_is_not_duplicated_when_the_lookup_fails(slack: SlackEmulator, make_notifier) -> None:
    first = make_notifier(state="replica-a")
    assert first.send(note(1)).ok
    first.close()
    second = make_notifier(state="replica-b")
    slack.fail("error:missing_scope", "conversations.history")
    assert second.send(note(2, type="incident.updated")).retry
    assert second.send(note(2, type="incident.updated")).ok
    assert len(_roots(slack)) == 1


def test_a_root_in_flight_in_an_older_state_file_is_still_looked_for(
    slack: SlackEmulator, make_notifier, tmp_path: Path
) -> None:
    import sqlite3

    first = make_notifier()
    slack.fail("lost", "chat.postMessage")
    assert first.send(note(1)).retry
    first.close()
    db = sqlite3.connect(tmp_path / "state" / "slack.sqlite3", isolation_level=None)
    db.execute("UPDATE steps SET seq = 1 WHERE step = 'root'")  # how versions before this one kept it
    db.close()
    assert make_notifier().send(note(1)).ok
    assert len(_roots(slack)) == 1


def test_a_burst_kept_to_the_channel_rate_is_not_logged_as_failures(
    slack: SlackEmulator, make_notifier, clock, tmp_path: Path
) -> None:
    """A crisis sends notifications faster than Slack's pace of about one message a second per channel:
    they wait their turn. Each wait was a `slack.send_failed` and an `outbox.retry` warning, dozens a
    minute, just when someone reads the log in a crisis; they are information now (`paced`), and a
    real failure stays a warning."""
    from structlog.testing import capture_logs

    notifier = make_notifier(rate_per_second=1.0, burst=3)
    box = Outbox(tmp_path / "outbox", notifier, clock=clock, backoff=BackoffPolicy(base=1, cap=30), seed=7)
    box.put_many(crisis()[:6])
    with capture_logs() as logs:
        drive(box, clock)
    assert box.counters()["sent"] == 6 and box.counters()["retried"] > 0
    events = [(r["event"], r["log_level"]) for r in logs]
    assert ("slack.send_paced", "info") in events and ("outbox.paced", "info") in events
    assert not [e for e in events if e[1] == "warning"], events

    slack.fail("500", "chat.update", times=1)
    box.put_many(crisis()[6:7])
    with capture_logs() as logs:
        drive(box, clock)
    assert ("slack.send_failed", "warning") in [(r["event"], r["log_level"]) for r in logs]
    box.stop()
