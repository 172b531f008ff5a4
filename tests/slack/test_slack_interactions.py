"""Interactive requests: signatures verified on the injected clock, forgeries and replays rejected, fast answers."""

from __future__ import annotations

import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from slack_helpers import SECRET, T0, note, press, signed

from notifiers.slack.interactions import serve_interactions, socket_mode_listener
from notifiers.slack.testing import SlackEmulator


@pytest.fixture
def opened(slack: SlackEmulator, make_notifier):
    n = make_notifier()
    assert n.send(note(1, severity="sev2")).ok
    return n


def acked(n) -> str:
    esc = n.store.escalation("klm-20100416T0740Z-volume")
    return esc.acked_by


def test_a_signed_press_is_accepted(opened, clock) -> None:
    body, headers = signed(press("crisisd.ack"), clock.now())
    assert opened.handle_interaction(body, headers) == (200, b"")
    assert acked(opened) == "U0MANAGER"


@pytest.mark.parametrize(
    "forge",
    [
        "wrong secret",
        "tampered body",
        "no signature",
        "garbage timestamp",
        "signature of another timestamp",
    ],
)
def test_forged_requests_are_rejected(opened, clock, forge: str) -> None:
    body, headers = signed(press("crisisd.ack"), clock.now(), secret=SECRET if forge != "wrong secret" else "nope")
    if forge == "tampered body":
        body = body.replace(b"U0MANAGER", b"U0MALLORY")
    elif forge == "no signature":
        del headers["X-Slack-Signature"]
    elif forge == "garbage timestamp":
        headers["X-Slack-Request-Timestamp"] = "soon"
    elif forge == "signature of another timestamp":
        headers["X-Slack-Request-Timestamp"] = str(int(clock.now()) + 1)
    status, _ = opened.handle_interaction(body, headers)
    assert status == 401 and acked(opened) == ""


def test_replayed_requests_are_rejected(opened, clock) -> None:
    body, headers = signed(press("crisisd.snooze"), clock.now())
    assert opened.handle_interaction(body, headers)[0] == 200
    assert opened.handle_interaction(body, headers)[0] == 401, "the same request again"
    old_body, old_headers = signed(press("crisisd.ack"), clock.now())
    clock.advance(301)
    assert opened.handle_interaction(old_body, old_headers)[0] == 401, "outside the 5-minute window"
    early_body, early_headers = signed(press("crisisd.ack"), clock.now() + 301)
    assert opened.handle_interaction(early_body, early_headers)[0] == 401, "from the future"
    assert acked(opened) == ""


def test_unknown_actions_and_incidents_are_ignored(opened, clock) -> None:
    for payload in (
        press("crisisd.ack", incident_id="nope"),
        press("delete_everything"),
        {"type": "view_submission", "user": {"id": "U0X"}},
    ):
        body, headers = signed(payload, clock.now())
        assert opened.handle_interaction(body, headers) == (200, b"")
    body, headers = signed(press("crisisd.ack", user="<!channel>"), clock.now())
    assert opened.handle_interaction(body, headers)[0] == 400
    assert acked(opened) == ""


def test_without_a_signing_secret_nothing_is_accepted(slack: SlackEmulator, make_notifier, clock) -> None:
    n = make_notifier(signing_secret=None)
    n.send(note(1))
    body, headers = signed(press("crisisd.ack"), clock.now())
    assert n.handle_interaction(body, headers)[0] == 503


def test_standalone_http_server(opened, clock) -> None:
    server = serve_interactions(opened, "127.0.0.1", 0, "/slack/interactions")
    url = f"http://127.0.0.1:{server.server_address[1]}/slack/interactions"
    try:
        body, headers = signed(press("crisisd.ack"), T0)
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=5) as r:
            assert r.status == 200
        forged = dict(headers, **{"X-Slack-Signature": "v0=" + "0" * 64})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(url, data=body, headers=forged), timeout=5)
        assert err.value.code == 401
    finally:
        server.shutdown()
        server.server_close()
    assert acked(opened) == "U0MANAGER"


def test_socket_mode_listener_acknowledges_the_envelope_then_applies(opened) -> None:
    sent = []
    client = SimpleNamespace(send_socket_mode_response=sent.append)
    listener = socket_mode_listener(opened)
    listener(client, SimpleNamespace(type="interactive", envelope_id="env-1", payload=press("crisisd.ack")))
    listener(client, SimpleNamespace(type="events_api", envelope_id="env-2", payload={}))
    assert [r.envelope_id for r in sent] == ["env-1", "env-2"]
    assert acked(opened) == "U0MANAGER"


def test_start_interactivity_runs_the_background_thread(opened) -> None:
    from notifiers.slack.interactions import start_interactivity
    from notifiers.slack.settings import SlackSettings

    stop = start_interactivity(opened, SlackSettings(interactivity="http"))
    assert opened._thread is not None
    stop()
    assert opened._thread is None
    with pytest.raises(ValueError, match="app_token"):
        start_interactivity(opened, SlackSettings(interactivity="socket"))
    opened.stop()


def test_a_press_slack_gave_another_replica_is_applied_by_the_one_running_the_incident(
    slack: SlackEmulator, make_notifier, clock
) -> None:
    """Two replicas: A delivered the incident and runs its escalation; Slack hands the press to B
    (which ran it before a partition move, so it still holds a stale escalation). B passes the
    press on (daemon/kafka/relay.py between processes) and does not page what it no longer runs."""
    import json

    iid = "klm-20100416T0740Z-volume"
    b = make_notifier(state="b")
    assert b.send(note(1, severity="sev2")).ok  # B ran it first
    a = make_notifier(state="a")
    assert a.send(note(2, type="incident.updated", severity="sev2")).ok  # A took it over
    a.owns, b.owns = (lambda i: i == iid), (lambda i: False)
    b.relay = a.relayed
    clock.advance(60)
    body, headers = signed(press("crisisd.ack", "U0ANA"), clock.now())
    assert b.handle_interaction(body, headers) == (200, b"")
    assert a.store.escalation(iid).acked_by == "U0ANA"
    assert b.store.escalation(iid).acked_by == ""  # not applied on B
    a.tick()
    clock.advance(100_000)
    a.tick()
    b.tick()
    root = slack.messages("#crisis")[0]
    thread = [m["text"] for m in slack.replies("#crisis", root["ts"])]
    assert sum("Acknowledged by <@U0ANA>" in t for t in thread) == 1
    assert not [t for t in thread if "Not acknowledged" in t], "B no longer pages it, A stopped when acknowledged"
    assert "Acknowledged by <@U0ANA>" in json.dumps(slack.messages("#crisis")[0]["blocks"])


# -- the person who pressed is told at once -----------------------------------------------------------


def test_whoever_presses_is_told_at_once_and_only_they(slack: SlackEmulator, make_notifier, clock) -> None:
    """A press changed nothing anyone could see until the background thread redrew the incident message,
    and a volunteer never learnt that they were counted. Each press is confirmed to the person who
    pressed, through the press's response_url, as an ephemeral message (it replaces nothing)."""
    n = make_notifier(languages_for=lambda user: ["nl", "en"] if user == "U0ANA" else [])
    assert n.send(note(1, severity="sev2")).ok
    for action, user in (("crisisd.ack", "U0MANAGER"), ("crisisd.volunteer", "U0ANA")):
        body, headers = signed(press(action, user, response_url=slack.response_url(user)), clock.now())
        assert n.handle_interaction(body, headers) == (200, b"")
    assert slack.responses == []  # not on Slack's 3-second answer: on the background thread
    n.tick()
    told = {name: body for name, body in slack.responses}
    assert set(told) == {"U0MANAGER", "U0ANA"}
    assert all(b["response_type"] == "ephemeral" and b["replace_original"] is False for b in told.values())
    assert told["U0MANAGER"]["text"].startswith("You acknowledged klm-20100416T0740Z-volume: escalation stops.")
    assert "you are counted as a volunteer (nl, en)" in told["U0ANA"]["text"]
    n.tick()
    assert len(slack.responses) == 2, "told once"


def test_a_confirmation_goes_only_to_slack_and_only_while_it_means_something(
    slack: SlackEmulator, make_notifier, clock
) -> None:
    n = make_notifier()
    assert n.send(note(1, severity="sev2")).ok
    elsewhere = "http://127.0.0.1:9/response/x"  # not Slack's host, nor the configured API's
    for url in (elsewhere, "https://example.com/response/x", "ftp://hooks.slack.com/x"):
        n.handle_payload(press("crisisd.snooze", response_url=url))
    n.tick()
    assert slack.responses == []
    n.handle_payload(press("crisisd.snooze", response_url=slack.response_url("late")))
    clock.advance(61)  # the incident message shows the press by then
    n.tick()
    assert slack.responses == []
    n.handle_payload(press("crisisd.snooze", response_url=slack.response_url("now")))
    n.tick()
    assert [name for name, _ in slack.responses] == ["now"]
    assert slack.responses[0][1]["text"] == "Escalation of klm-20100416T0740Z-volume snoozed for 30 min."
