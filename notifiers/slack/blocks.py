"""Block Kit for the incident root message, from the neutral `notifiers.render.Message`.

Every string that may come from outside (brand, terms, mention texts, URLs, languages) is
escaped for mrkdwn (`&`, `<`, `>`), so `<!channel>` or `<https://evil|click>` in a tweet pings
and links no one; every size is clipped under Slack's limits (truncate, never fail).

>>> escape("<!channel> & <@U123>")
'&lt;!channel&gt; &amp; &lt;@U123&gt;'
>>> clip("a&b" * 3, 8)
'a&amp;b…'
>>> link("https://evil.example/x|<click>", "see")
'<https://evil.example/x%7C&lt;click&gt;|see>'
>>> link("javascript:alert(1)", "see")
''
"""

from __future__ import annotations

import re
from typing import Any

from notifiers.render import Message

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_MESSAGE_TEXT = 40000
SAMPLE_CHARS = 280

_ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Only ids we validated ourselves become mentions (user ids from Slack's signed payloads).
_MENTION = re.compile(r"(?<![\w&;])@([UW][A-Z0-9]{2,})\b")


def escape(text: str) -> str:
    return "".join(_ESC.get(c, c) for c in text)


def clip(text: str, limit: int) -> str:
    """Escape `text` and cut it to at most `limit` characters, never inside an `&...;` entity."""
    out: list[str] = []
    used = 0
    for c in text:
        piece = _ESC.get(c, c)
        if used + len(piece) > limit - 1:
            out.append("…")
            return "".join(out)
        out.append(piece)
        used += len(piece)
    return "".join(out)


def plain(text: str, limit: int) -> str:
    """Cut plain_text (not parsed for mentions by Slack, so not escaped) to `limit`."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link(url: str | None, label: str) -> str:
    """A mrkdwn link to an http(s) URL, or '' for anything else (no javascript:, no mailto:)."""
    if not url or not re.match(r"^https?://[^\s]+$", url) or len(url) > 1000:
        return ""
    safe = escape(url.replace("|", "%7C"))
    return f"<{safe}|{escape(label)}>"


def mentions(escaped: str) -> str:
    """Turn the `@U123` the renderer writes for known user ids into Slack mentions."""
    return _MENTION.sub(r"<@\1>", escaped)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]}}


def _join_clipped(lines: list[str], limit: int) -> str:
    """Join already-escaped lines, dropping whole lines past `limit`."""
    out: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > limit:
            out.append("…")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def root_blocks(m: Message) -> list[dict[str, Any]]:
    """The root message's blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": plain(m.title, MAX_HEADER_TEXT), "emoji": True}},
        _section(clip(m.headline, MAX_SECTION_TEXT)),
    ]
    fields = [{"type": "mrkdwn", "text": "*" + clip(k, 100) + "*\n" + clip(v, 1500)} for k, v in m.figures[:MAX_FIELDS]]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if m.terms:
        terms = " · ".join(t[:80] for t in m.terms)
        blocks.append(_section("*Emerging terms:* " + clip(terms, MAX_SECTION_TEXT - 30)))
    if m.samples:
        lines = ["*What people say:*"]
        for s in m.samples:
            one = " ".join(s.text.split())
            where = " · ".join(x for x in (s.platform or "", s.lang or "") if x)
            line = "> " + clip(one, SAMPLE_CHARS)
            extra = [escape(where)] if where else []
            url = link(s.url, "open")
            if url:
                extra.append(url)
            if extra:
                line += "  _(" + ", ".join(extra) + ")_"
            lines.append(line)
        blocks.append(_section(_join_clipped(lines, MAX_SECTION_TEXT)))
    if m.staffing:
        staffing = ["*Staffing*"] + [clip(line, 500) for line in m.staffing]
        blocks.append(_section(_join_clipped(staffing, MAX_SECTION_TEXT)))
    if m.status:
        status = [mentions(clip(line, 300)) for line in m.status][:MAX_CONTEXT_ELEMENTS]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": s} for s in status]})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": clip(c, 300)} for c in m.context][:MAX_CONTEXT_ELEMENTS],
        }
    )
    if m.actions:
        buttons = []
        for action_id, label, style in m.actions:
            b: dict[str, Any] = {
                "type": "button",
                "action_id": action_id[:MAX_ACTION_ID],
                "text": {"type": "plain_text", "text": plain(label, MAX_BUTTON_TEXT)},
                "value": m.incident_id[:MAX_BUTTON_VALUE],
            }
            if style:
                b["style"] = style
            buttons.append(b)
        blocks.append({"type": "actions", "block_id": "crisisd.actions", "elements": buttons})
    return blocks[:MAX_BLOCKS]


def fallback_text(m: Message) -> str:
    """The notification text (shown in pushes and by screen readers)."""
    return clip(f"{m.title}: {m.headline}", 3000)


def thread_blocks_text(text: str) -> str:
    """A thread note crisisd wrote itself: escaped, with its `@U...` (ids from Slack's signed
    payloads) turned into mentions, within limits. Never for text from outside."""
    return mentions(clip(text, MAX_SECTION_TEXT))
