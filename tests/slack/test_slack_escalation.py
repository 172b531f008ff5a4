"""Escalation on the injected wall clock: timeouts, urgency, acknowledge, snooze, escalate, resolve, volunteers."""

from __future__ import annotations

import json

from slack_helpers import POLICY, T0, note, press, signed

from daemon.clock import FakeClock
from notifiers.slack.testing import SlackEmulator

IID = "klm-20100416T0740Z-volume"
POLICY_LEVELS = POLICY.levels


def pages(slack: SlackEmulator) -> list[str]:
    root = slack.messages("#crisis")[0]
    return [m["text"] for m in slack.replies("#crisis", root["ts"]) if "Escalation level" in m.get("text", "")]


def click(n, clock: FakeClock, action: str, user: str = "U0MANAGER") -> None:
    body, headers = signed(press(action, user), clock.now())
    assert n.handle_interaction(body, headers) == (200, b"")
    n.tick()


def test_escalates_on_timeout_and_repeats_the_last_level(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    assert n.send(note(1, severity="sev2")).ok
    n.tick()
    assert len(pages(slack)) == 1 and pages(slack)[0].startswith("<!subteam^S0ONCALL> New SEV2 incident on klm")
    clock.advance(599)
    n.tick()
    assert len(pages(slack)) == 1, "level 1 still has time"
    clock.advance(2)
    n.tick()
    assert pages(slack)[1].startswith("<@U0LEAD1> <@U0LEAD2> Not acknowledged after 10 min")
    clock.advance(900)
    n.tick()
    assert pages(slack)[2].startswith("<@U0HEAD>")
    clock.advance(1800)
    n.tick()
    assert len(pages(slack)) == 4 and pages(slack)[3].startswith("<@U0HEAD>"), "repeats the last level"
    root = slack.messages("#crisis")[0]
    assert "Escalated to level 3" in json.dumps(root["blocks"])


def test_severity_decides_urgency(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    n.send(note(1, severity="sev1"))
    n.tick()
    clock.advance(301)  # sev1: 600 s x 0.5
    n.tick()
    assert len(pages(slack)) == 2
    root = slack.messages("#crisis")[0]
    assert [m.get("subtype") for m in slack.replies("#crisis", root["ts"]) if "Escalation" in m["text"]] == [
        "thread_broadcast"
    ] * 2, "sev1 pages are broadcast to the channel"


def test_acknowledge_stops_escalation(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    n.send(note(1, severity="sev2"))
    n.tick()
    clock.advance(60)
    click(n, clock, "crisisd.ack")
    clock.advance(100_000)
    n.tick()
    assert len(pages(slack)) == 1
    root = slack.messages("#crisis")[0]
    assert "Acknowledged by <@U0MANAGER>" in json.dumps(root["blocks"])
    assert any(m["text"].startswith("Acknowledged by <@U0MANAGER>") for m in slack.replies("#crisis", root["ts"]))
    # an update after the acknowledgement keeps it on the root
    n.send(note(2, type="incident.updated", severity="sev1"))
    n.tick()
    assert len(pages(slack)) == 1 and "Acknowledged by" in json.dumps(slack.messages("#crisis")[0]["blocks"])


def test_snooze_pauses_and_escalate_jumps(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier()
    n.send(note(1, severity="sev2"))
    n.tick()
    click(n, clock, "crisisd.snooze")
    clock.advance(1799)
    n.tick()
    assert len(pages(slack)) == 1, "snoozed for 30 minutes"
    assert "Escalation snoozed until" in json.dumps(slack.messages("#crisis")[0]["blocks"])
    clock.advance(2)
    n.tick()
    assert len(pages(slack)) == 2
    click(n, clock, "crisisd.escalate")
    assert len(pages(slack)) == 3 and pages(slack)[2].startswith("<@U0HEAD>")


def test_resolve_calls_back_and_stops_escalation(slack: SlackEmulator, make_notifier, clock) -> None:
    resolved: list[tuple[str, str]] = []
    n = make_notifier(on_resolve=lambda iid, user: resolved.append((iid, user)))
    n.send(note(1, severity="sev2"))
    n.tick()
    click(n, clock, "crisisd.resolve", user="U0BOSS")
    assert resolved == [(IID, "U0BOSS")]
    clock.advance(100_000)
    n.tick()
    assert len(pages(slack)) == 1
    assert "Resolve requested by <@U0BOSS>" in json.dumps(slack.messages("#crisis")[0]["blocks"])


def test_volunteers_are_counted_with_their_languages(slack: SlackEmulator, make_notifier, clock) -> None:
    roster = {"U0ANA": ["nl", "en"], "U0MARKO": ["sr", "hr", "bs"]}
    n = make_notifier(languages_for=lambda user: roster.get(user, []))
    n.send(note(1))
    click(n, clock, "crisisd.volunteer", "U0ANA")
    click(n, clock, "crisisd.volunteer", "U0ANA")  # twice: counted once
    click(n, clock, "crisisd.volunteer", "U0MARKO")
    blocks = json.dumps(slack.messages("#crisis")[0]["blocks"], ensure_ascii=False)
    # note(1) asks to call in 36: the two volunteers leave 34 to find
    assert "Volunteers signed up: 2 (bs, en, hr, nl, sr); 34 of the 36 to call in still to find" in blocks
    thread = [m["text"] for m in slack.replies("#crisis", slack.messages("#crisis")[0]["ts"])]
    assert "<@U0ANA> can help (nl, en)." in thread and sum("can help" in t for t in thread) == 2
    # the count survives the next notification (its staffing block is rebuilt from the record)
    n.send(note(2, type="incident.updated"))
    assert "Volunteers signed up: 2" in json.dumps(slack.messages("#crisis")[0]["blocks"])


def test_a_restart_continues_the_policy(slack: SlackEmulator, make_notifier, clock) -> None:
    first = make_notifier()
    first.send(note(1, severity="sev2"))
    first.tick()
    first.close()
    clock.advance(601)
    second = make_notifier()
    second.tick()
    assert len(pages(slack)) == 2 and pages(slack)[1].startswith("<@U0LEAD1>"), "level 2 next, not level 1 again"


def test_less_severe_incidents_are_not_paged(slack: SlackEmulator, make_notifier, clock) -> None:
    from slack_helpers import POLICY

    from notifiers.slack.settings import EscalationSettings

    policy = EscalationSettings(levels=POLICY.levels, min_severity="sev2")
    n = make_notifier(escalation=policy)
    n.send(note(1, severity="sev3"))
    n.tick()
    assert pages(slack) == []
    n.send(note(2, type="incident.updated", severity="sev2"))
    n.tick()
    assert len(pages(slack)) == 1, "paged once it became severe enough"


def test_start_runs_ticks_in_the_background(slack: SlackEmulator, make_notifier, clock) -> None:
    import time

    n = make_notifier()
    n.send(note(1, severity="sev2"))
    n.start()
    body, headers = signed(press("crisisd.ack"), T0)
    assert n.handle_interaction(body, headers)[0] == 200
    for _ in range(200):  # the press wakes the thread; wait (wall time) for its Slack calls
        if any(
            "Acknowledged" in m.get("text", "") for m in slack.replies("#crisis", slack.messages("#crisis")[0]["ts"])
        ):
            break
        time.sleep(0.02)
    n.stop()
    assert "Acknowledged by <@U0MANAGER>" in json.dumps(slack.messages("#crisis")[0]["blocks"])


def test_cycle_starts_over_and_none_stops(slack: SlackEmulator, make_notifier, clock) -> None:
    from slack_helpers import POLICY

    from notifiers.slack.settings import EscalationSettings

    n = make_notifier(escalation=EscalationSettings(levels=POLICY.levels[:2], repeat="cycle"))
    n.send(note(1, severity="sev2"))
    for _ in range(4):
        n.tick()
        clock.advance(2000)
    assert [p.split(" ")[0] for p in pages(slack)] == [
        "<!subteam^S0ONCALL>",
        "<@U0LEAD1>",
        "<!subteam^S0ONCALL>",
        "<@U0LEAD1>",
    ]


def test_by_default_a_watch_is_posted_not_paged(slack: SlackEmulator, make_notifier, clock) -> None:
    from notifiers.slack.settings import EscalationSettings

    n = make_notifier(escalation=EscalationSettings(levels=POLICY_LEVELS))
    n.send(note(1, severity="sev3"))
    clock.advance(100_000)
    n.tick()
    assert pages(slack) == [], "sev3: posted, not escalated (README)"
    n.send(note(2, type="incident.updated", severity="sev2"))
    n.tick()
    assert len(pages(slack)) == 1


def test_worse_after_escalation_stood_down_pages_again(slack: SlackEmulator, make_notifier, clock) -> None:
    """An acknowledgement of a watch does not answer for the sev1 it becomes, nor does a Resolve
    pressed in Slack while the incident goes on getting worse; an acknowledged page holds."""
    from notifiers.slack.settings import EscalationSettings

    n = make_notifier(escalation=EscalationSettings(levels=POLICY_LEVELS, min_severity="sev2"))
    n.send(note(1, severity="sev3"))
    n.tick()
    click(n, clock, "crisisd.ack")
    n.send(note(2, type="incident.updated", severity="sev1"))
    n.tick()
    assert len(pages(slack)) == 1 and pages(slack)[0].startswith("<!subteam^S0ONCALL> New SEV1 incident")
    assert "Acknowledged by" not in json.dumps(slack.messages("#crisis")[0]["blocks"])

    other = "klm-20100416T1100Z-volume"
    n.send(note(1, incident_id=other, severity="sev2"))
    n.tick()
    body, headers = signed(press("crisisd.resolve", "U0BOSS", incident_id=other), clock.now())
    assert n.handle_interaction(body, headers) == (200, b"")
    n.tick()
    clock.advance(100_000)
    n.tick()
    root = next(m for m in slack.messages("#crisis") if other in json.dumps(m.get("metadata")))
    thread = [m["text"] for m in slack.replies("#crisis", root["ts"]) if "Escalation level" in m["text"]]
    assert len(thread) == 1, "resolved in Slack: no more pages"
    n.send(note(2, incident_id=other, type="incident.updated", severity="sev1"))
    n.tick()
    thread = [m["text"] for m in slack.replies("#crisis", root["ts"]) if "Escalation level" in m["text"]]
    assert len(thread) == 2 and thread[1].startswith("<!subteam^S0ONCALL> Worse since escalation stopped: SEV1")
    assert "Resolve requested" not in json.dumps(slack.messages("#crisis")[-1]["blocks"])


def test_a_failing_page_channel_holds_up_no_other_escalation(slack: SlackEmulator, make_notifier, clock) -> None:
    """Level 1 also posts in a channel the bot is not in: logged and skipped, the ladder goes on;
    and one incident whose page fails holds up no other incident's page."""
    from notifiers.slack.settings import EscalationLevel, EscalationSettings

    levels = (EscalationLevel(name="on-call", user_groups=["S0ONCALL"], timeout_seconds=600, channel="#leads"),
              *POLICY_LEVELS[1:])  # fmt: skip
    n = make_notifier(escalation=EscalationSettings(levels=levels))
    slack.fail("error:not_in_channel", "chat.postMessage", times=100, channel="#leads")
    n.send(note(1, severity="sev2"))
    n.tick()
    assert len(pages(slack)) == 1
    clock.advance(601)
    n.tick()
    assert len(pages(slack)) == 2 and pages(slack)[1].startswith("<@U0LEAD1>"), "level 2 came on time"

    other = "klm-20100416T1100Z-volume"
    root_ts = slack.messages("#crisis")[0]["ts"]
    slack.fail("error:channel_not_found", "chat.postMessage", times=1_000)  # every post fails now
    n.send(note(1, incident_id=other, severity="sev2"))  # fails: its root cannot be posted
    slack._faults.clear()
    assert n.send(note(1, incident_id=other, severity="sev2")).ok
    slack.fail("error:is_archived", "chat.postMessage", times=1, channel=slack.channel_id("#crisis"))
    clock.advance(900)
    n.tick()  # the first due page (the new incident's) fails; the first incident's level 3 still goes out
    assert len(pages(slack)) == 3 and pages(slack)[2].startswith("<@U0HEAD>")
    root = next(m for m in slack.messages("#crisis") if m["ts"] != root_ts)
    assert not [m for m in slack.replies("#crisis", root["ts"]) if "Escalation level" in m["text"]]
    n.tick()  # and it is retried on the next tick
    assert [m["text"][:35] for m in slack.replies("#crisis", root["ts"]) if "Escalation level" in m["text"]] == [
        "<!subteam^S0ONCALL> New SEV2 incide"
    ]


def test_a_page_in_a_level_channel_whose_answer_was_lost_is_not_posted_twice(
    slack: SlackEmulator, make_notifier, clock
) -> None:
    from notifiers.slack.settings import EscalationLevel, EscalationSettings

    slack.add_channel("leads", "C0LEADS")
    levels = (EscalationLevel(name="on-call", user_groups=["S0ONCALL"], timeout_seconds=600, channel="#leads"),
              *POLICY_LEVELS[1:])  # fmt: skip
    n = make_notifier(escalation=EscalationSettings(levels=levels))
    assert n.send(note(1, severity="sev2")).ok
    slack.fail("lost", "chat.postMessage", channel="#leads")  # posted in #leads, the answer never arrives
    n.tick()
    n.tick()  # the page is retried: it looks in #leads first
    n.tick()
    assert [m["text"][:45] for m in slack.messages("#leads")] == ["<!subteam^S0ONCALL> New SEV2 incident on klm."]
    assert len(pages(slack)) == 1
    clock.advance(601)
    n.tick()  # the ladder went on: level 2 (no channel of its own) comes on time
    assert len(pages(slack)) == 2 and len(slack.messages("#leads")) == 1


def test_a_replica_taking_an_incident_over_goes_on_with_its_escalation(
    slack: SlackEmulator, make_notifier, clock
) -> None:
    """A partition moves: the new owner finds the root and the escalation state it carries, so it
    neither pages "New" again nor forgets the acknowledgement; the ladder goes on where it was."""
    first = make_notifier(state="first")
    first.send(note(1, severity="sev2"))
    first.tick()
    assert len(pages(slack)) == 1
    clock.advance(120)
    second = make_notifier(state="second")  # took the brand's partition over
    first.owns = lambda iid: False
    assert second.send(note(2, type="incident.updated", severity="sev2")).ok
    second.tick()
    assert len(pages(slack)) == 1, "no second 'New' page"
    clock.advance(481)  # 601 s after level 1
    second.tick()
    first.tick()
    assert len(pages(slack)) == 2 and pages(slack)[1].startswith("<@U0LEAD1> <@U0LEAD2> Not acknowledged after 10 min")

    click(second, clock, "crisisd.ack", "U0ANA")
    second.tick()  # the root now carries the acknowledgement
    third = make_notifier(state="third")
    second.owns = lambda iid: False
    assert third.send(note(3, type="incident.updated", severity="sev1")).ok
    clock.advance(100_000)
    third.tick()
    assert len(pages(slack)) == 2, "acknowledged before the move: still acknowledged"
    assert "Acknowledged by <@U0ANA>" in json.dumps(slack.messages("#crisis")[0]["blocks"])


def test_volunteers_who_signed_up_survive_a_takeover(slack: SlackEmulator, make_notifier, clock) -> None:
    """A partition moves: the new owner's root still counts the volunteers who signed up on the
    previous owner, with their languages; one of them pressing "I can help" again there is not
    counted twice; and the count goes on to the owner after that."""
    roster = {"U0ANA": ["nl", "en"], "U0MARKO": ["sr", "hr", "bs"], "U0LI": ["zh"]}
    first = make_notifier(state="first", languages_for=lambda user: roster.get(user, []))
    first.send(note(1))
    click(first, clock, "crisisd.volunteer", "U0ANA")
    click(first, clock, "crisisd.volunteer", "U0MARKO")

    second = make_notifier(state="second", languages_for=lambda user: roster.get(user, []))
    first.owns = lambda iid: False
    assert second.send(note(2, type="incident.updated")).ok
    blocks = json.dumps(slack.messages("#crisis")[0]["blocks"], ensure_ascii=False)
    assert "Volunteers signed up: 2 (bs, en, hr, nl, sr); 34 of the 36 to call in still to find" in blocks
    click(second, clock, "crisisd.volunteer", "U0ANA")  # signed up on the first owner already
    click(second, clock, "crisisd.volunteer", "U0LI")
    blocks = json.dumps(slack.messages("#crisis")[0]["blocks"], ensure_ascii=False)
    assert "Volunteers signed up: 3 (bs, en, hr, nl, sr, zh); 33 of the 36 to call in still to find" in blocks
    thread = [m["text"] for m in slack.replies("#crisis", slack.messages("#crisis")[0]["ts"])]
    assert sum("can help" in t for t in thread) == 3, "no second 'can help' line for U0ANA"

    third = make_notifier(state="third", languages_for=lambda user: roster.get(user, []))
    second.owns = lambda iid: False
    assert third.send(note(3, type="incident.updated")).ok
    blocks = json.dumps(slack.messages("#crisis")[0]["blocks"], ensure_ascii=False)
    assert "Volunteers signed up: 3 (bs, en, hr, nl, sr, zh)" in blocks


def test_the_volunteers_a_root_carries_are_bounded(slack: SlackEmulator, make_notifier, clock) -> None:
    """A surge of sign-ups, each with ten long language codes: the root's metadata stays small (counts,
    the most spoken languages, the first 50 ids), and the new owner still counts all of them."""
    from notifiers.slack.notifier import MAX_CARRIED_LANGUAGES, MAX_CARRIED_VOLUNTEER_IDS

    def languages_for(user: str) -> list[str]:
        k = int(user[2:])
        return [f"x-{(k + i) % 40:02d}-long-lang-code-cut" for i in range(10)]

    first = make_notifier(state="first", languages_for=languages_for)
    first.send(note(1, severity="sev2"))
    first.tick()
    click(first, clock, "crisisd.ack", "U0ANA")
    for k in range(300):
        assert first.handle_payload(press("crisisd.volunteer", f"U0{k:09d}")) == (200, b"")
    first.tick()
    metadata = slack.messages("#crisis")[0]["metadata"]
    payload = metadata["event_payload"]
    assert len(json.dumps(metadata)) < 2000, len(json.dumps(metadata))
    assert payload["volunteers"] == 300
    assert payload["volunteer_ids"].split(",") == [f"U0{k:09d}" for k in range(MAX_CARRIED_VOLUNTEER_IDS)]
    assert len(payload["volunteer_languages"]) == MAX_CARRIED_LANGUAGES
    # only the shapes Slack's metadata takes: scalars, and an object of scalars
    assert all(isinstance(v, str | int | float | bool | dict) for v in payload.values())
    assert all(isinstance(v, int) for v in payload["volunteer_languages"].values())

    second = make_notifier(state="second", languages_for=languages_for)
    first.owns = lambda iid: False
    assert second.send(note(2, type="incident.updated", severity="sev2")).ok
    assert "Volunteers signed up: 300 (" in json.dumps(slack.messages("#crisis")[0]["blocks"])
    second.handle_payload(press("crisisd.volunteer", "U0000000007"))  # among the ids carried: counted once
    second.handle_payload(press("crisisd.volunteer", "U0000000299"))  # past them: counted again
    second.tick()
    assert "Volunteers signed up: 301 (" in json.dumps(slack.messages("#crisis")[0]["blocks"])
    assert "Acknowledged by <@U0ANA>" in json.dumps(slack.messages("#crisis")[0]["blocks"])
