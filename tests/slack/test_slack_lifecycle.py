"""Open -> update -> resolve against the emulator: one root kept current, the thread, the chart."""

from __future__ import annotations

import json

from slack_helpers import TOKEN, note, timeline

from daemon.notification import StaffingFigures
from notifiers.slack.testing import SlackEmulator


def test_full_lifecycle_keeps_one_root_and_threads_the_timeline(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()
    assert n.send(note(1, timeline=timeline())).ok
    assert n.send(note(2, type="incident.updated", severity="sev1")).ok
    assert n.send(note(3, type="incident.resolved")).ok

    roots = slack.messages("#crisis")
    assert len(roots) == 1, "one root message per incident"
    root = roots[0]
    assert root["metadata"]["event_payload"]["incident_id"] == "klm-20100416T0740Z-volume"
    assert root["text"].startswith("RESOLVED · SEV1 · klm")
    assert not any(b["type"] == "actions" for b in root["blocks"]), "a resolved root has no buttons"
    assert len(slack.method_calls("chat.update")) == 2

    thread = slack.replies("#crisis", root["ts"])
    texts = [m.get("text", "") for m in thread]
    assert texts[0].startswith("Opened at 2010-04-16T05:43:00Z: SEV1")
    assert any(t.startswith("Update 2 at") for t in texts)
    assert texts[-1].startswith("Resolved at 2010-04-16T09:40:00Z: duration 4h 00m, peak 8,000/h")
    charts = [f for m in thread for f in m.get("files", [])]
    assert len(charts) == 1 and slack.uploads[charts[0]["id"]].startswith(b"\x89PNG")

    # slack-sdk's shapes: JSON for chat.*, form data for the file calls; the Bearer token on every API call.
    for call in slack.calls:
        if call.method in ("chat.postMessage", "chat.update"):
            assert call.content_type == "application/json"
        if call.method.startswith("files."):
            assert call.content_type == "application/x-www-form-urlencoded"
        if call.method != "upload":
            assert call.authorized
    complete = slack.method_calls("files.completeUploadExternal")[0].payload
    assert complete["thread_ts"] == root["ts"] and json.loads(complete["files"])[0]["title"].startswith("crisisd chart")


def test_root_message_blocks(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()
    assert n.send(note(1)).ok
    blocks = slack.messages("#crisis")[0]["blocks"]
    kinds = [b["type"] for b in blocks]
    assert kinds[0] == "header" and "actions" in kinds
    text = json.dumps(blocks, ensure_ascii=False)
    for expected in (
        "SEV1",
        "klm",
        "17.4×",
        "71%",
        "ash",
        "All flights cancelled",
        "Agents needed: 34",
        "Volunteers signed up: 0",
        "https://twitter.com/x/status/1",
    ):
        assert expected in text
    labels = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert labels == ["Acknowledge", "Escalate", "Resolve", "Snooze", "I can help"]


def test_wrong_token_is_not_retried(slack: SlackEmulator, make_notifier) -> None:
    from config.secrets import Secret

    n = make_notifier(bot_token=Secret("xoxb-wrong"))
    d = n.send(note(1))
    assert not d.ok and not d.retry and "invalid_auth" in d.error
    assert TOKEN not in d.error


def test_redelivered_notification_is_applied_once(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()
    assert n.send(note(1)).ok and n.send(note(1)).ok and n.send(note(2, type="incident.updated")).ok
    assert n.send(note(1)).ok  # older than what the root shows: ignored
    root = slack.messages("#crisis")[0]
    assert len(slack.messages("#crisis")) == 1
    assert len(slack.replies("#crisis", root["ts"])) == 2


def test_a_deleted_root_is_posted_again(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()
    assert n.send(note(1)).ok
    channel = slack._channel("#crisis")
    assert channel is not None
    channel.messages.clear()  # someone deleted the incident message and its thread
    assert n.send(note(2, type="incident.updated")).ok
    roots = slack.messages("#crisis")
    assert len(roots) == 1 and roots[0]["metadata"]["event_payload"]["incident_id"] == "klm-20100416T0740Z-volume"
    assert [m["text"][:8] for m in slack.replies("#crisis", roots[0]["ts"])] == ["Update 2"]


def test_incidents_get_their_own_roots(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()
    for iid in ("a", "b"):
        assert n.send(note(1, incident_id=iid)).ok
    assert n.send(note(2, type="incident.updated", incident_id="a")).ok
    roots = slack.messages("#crisis")
    assert [r["metadata"]["event_payload"]["incident_id"] for r in roots] == ["a", "b"]
    assert len(slack.replies("#crisis", roots[0]["ts"])) == 2 and len(slack.replies("#crisis", roots[1]["ts"])) == 1


def test_resolved_incidents_are_forgotten_after_30_days(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    n.send(note(1, incident_id="old"))
    n.send(note(2, type="incident.resolved", incident_id="old"))
    n.send(note(1, incident_id="open"))
    clock.advance(31 * 86400)
    n.tick()
    assert n.store.root("old") is None and n.store.root("open") is not None


def test_the_resolution_stands_down_those_called_in(slack: SlackEmulator, make_notifier) -> None:
    """The root and the thread of a resolution say whom to stand down, and a refresh of the root
    later (a button pressed) says it again: the figure is the notification's own."""
    n = make_notifier()
    assert n.send(note(1)).ok
    still = StaffingFigures(agents_needed=496, to_schedule=709, on_shift=0, call_in=709, backlog=8681)
    assert n.send(note(3, type="incident.resolved", staffing=still, called_in=1279)).ok
    said = "Stand down 570 of the 1,279 called in; keep 709 until the backlog of 8,681 is cleared."
    root = slack.messages("#crisis")[0]
    assert said in json.dumps(root["blocks"], ensure_ascii=False)
    assert slack.replies("#crisis", root["ts"])[-1]["text"].endswith(said)
    n.store.mark_dirty("klm-20100416T0740Z-volume")  # a later refresh renders the same
    n.tick()
    assert said in json.dumps(slack.messages("#crisis")[0]["blocks"], ensure_ascii=False)


def test_a_chart_that_will_not_upload_holds_up_no_text(slack: SlackEmulator, make_notifier) -> None:
    """The chart illustrates: an upload Slack refuses is skipped at once, one that keeps failing
    is given up after a few tries; the root and the thread line go out either way."""
    from notifiers.slack.notifier import CHART_ATTEMPTS

    n = make_notifier()
    slack.fail("error:missing_scope", "files.getUploadURLExternal", times=1)
    assert n.send(note(1, timeline=timeline())).ok, "refused: skipped at once"
    slack.fail("500", "upload", times=1_000)
    tries = [n.send(note(2, type="incident.updated", timeline=timeline())) for _ in range(CHART_ATTEMPTS)]
    assert [d.ok for d in tries] == [False] * (CHART_ATTEMPTS - 1) + [True]
    assert all(d.retry for d in tries[:-1])
    root = slack.messages("#crisis")[0]
    assert [m["text"][:8] for m in slack.replies("#crisis", root["ts"])] == ["Opened a", "Update 2"]
    assert not [f for m in slack.replies("#crisis", root["ts"]) for f in m.get("files", [])]
