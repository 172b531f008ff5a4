"""Injection strings neutralised, Block Kit limits respected, secrets never logged."""

from __future__ import annotations

import json
import logging
import re

import structlog
from slack_helpers import SECRET, TOKEN, note, press, signed

from daemon.notification import ResponseFigures, SampleMention, StaffingFigures
from notifiers.slack.testing import SlackEmulator

INJECTIONS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<https://evil.example|click>",
    "<!subteam^S123|@team>",
    "<#C123>",
    "<!date^1392734382^{date}|x>",
    "@U0ADMIN1",
]
ALLOWED_LINK = re.compile(r"^<https?://[^|<>\s]*\|open>$")  # our own "open" link to a mention URL


def special_tokens(text: str) -> list[str]:
    """Every `<...>` Slack would parse as a mention, channel, command or link."""
    return re.findall(r"<[^<>]*>", text)


def evil_notification(seq: int = 1, **extra):
    bad = " ".join(INJECTIONS)
    return note(
        seq,
        top_terms=[*INJECTIONS, "refund"],
        summary=f"Ash cloud {bad}",
        languages={"en": 0.9, "<!channel>": 0.1},
        flags=["<!here>"],
        sample_mentions=[
            SampleMention(id="t:1", text=f"help {bad}", url="https://twitter.com/x/status/1", lang="<!here>"),
            SampleMention(id="t:2", text="<@U123> look", url="https://evil.example/a|<!channel>"),
            SampleMention(id="t:3", text="x", url="javascript:alert(1)", platform="<!channel>"),
        ],
        staffing=StaffingFigures(
            agents_needed=3,
            to_schedule=4,
            on_shift=1,
            call_in=3,
            by_language={"<!here>": 3},
            advice=bad,
            ask_first=[bad],
        ),
        responses=ResponseFigures(breach_forecast=bad),
        **extra,
    )


def all_text(slack: SlackEmulator) -> list[str]:
    out = []
    for call in slack.calls:
        if call.method in ("chat.postMessage", "chat.update"):
            out.append(str(call.payload.get("text", "")))
            for block in call.payload.get("blocks") or []:
                out.append(json.dumps(block, ensure_ascii=False))
    return out


def test_every_injection_string_is_neutralised(slack: SlackEmulator, make_notifier) -> None:
    n = make_notifier()
    assert n.send(evil_notification(1)).ok
    assert n.send(evil_notification(2, type="incident.updated")).ok
    assert n.send(evil_notification(3, type="incident.resolved")).ok
    texts = all_text(slack)
    assert texts
    for text in texts:
        for token in special_tokens(text):
            assert ALLOWED_LINK.match(token), f"{token!r} would ping or link"
        for s in INJECTIONS:
            assert s not in text or s.startswith("@")
        assert "<@U0ADMIN1>" not in text
    joined = "\n".join(texts)
    assert "&lt;!channel&gt;" in joined, "shown, escaped, not dropped"


def test_block_kit_limits_truncate_never_fail(slack: SlackEmulator, make_notifier) -> None:
    huge = "ä&<" * 20_000
    n = make_notifier()
    big = note(
        1,
        summary=huge,
        top_terms=[huge[:300]] * 500,
        languages={f"l{i}": 0.001 for i in range(300)},
        flags=[huge[:100]] * 50,
        sample_mentions=[
            SampleMention(id=str(i), text=huge, url="https://twitter.com/" + "a" * 3000) for i in range(10)
        ],
        staffing=StaffingFigures(
            agents_needed=1,
            to_schedule=1,
            on_shift=1,
            call_in=1,
            by_language={f"l{i}": i for i in range(500)},
            advice=huge,
            ask_first=[huge[:200]] * 100,
        ),
        signals=["volume"] * 100,
    )
    assert n.send(big).ok, [c.outcome for c in slack.calls]
    assert n.send(note(2, type="incident.updated", summary=huge)).ok
    assert all(c.outcome == "ok" for c in slack.calls)
    root = slack.messages("#crisis")[0]
    assert len(root["blocks"]) <= 50 and len(root["blocks"][0]["text"]["text"]) <= 150


def test_tokens_and_signing_secrets_are_never_logged(slack: SlackEmulator, make_notifier, clock, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as events:
        n = make_notifier()
        slack.fail("429", "chat.postMessage", retry_after="3")
        assert n.send(note(1)).retry_after == 3.0
        clock.advance(3)  # the 429 holds chat.postMessage for its Retry-After
        slack.fail("500", "chat.postMessage")
        assert n.send(note(1)).retry
        assert n.send(note(1)).ok
        body, headers = signed(press("crisisd.ack"), clock.now())
        n.handle_interaction(body, headers)
        n.handle_interaction(body, dict(headers, **{"X-Slack-Signature": "v0=bad"}))
        n.tick()
        from config.secrets import Secret

        wrong = make_notifier(bot_token=Secret(TOKEN + "-wrong"))
        wrong.send(note(1, incident_id="other"))
    logged = "\n".join(r.getMessage() for r in caplog.records) + "\n" + "\n".join(map(str, events))
    assert logged.strip()
    assert TOKEN not in logged and SECRET not in logged
