"""A local Slack Web API emulator for tests and benchmarks (loopback only, never the internet).

A real `ThreadingHTTPServer` on 127.0.0.1 (port 0) that slack-sdk's `WebClient` talks to through
`base_url`. It checks the Bearer token and the payload shapes slack-sdk sends (JSON for
chat.postMessage / chat.update, form data elsewhere), keeps channels, messages and threads,
records every call, and injects trouble: 429 with Retry-After, 500, slow answers, outages
(connection reset, or refused while `refuse()`), and 'lost response after commit' (the call takes
effect, the answer never arrives).

>>> from slack_sdk import WebClient
>>> with SlackEmulator(token="xoxb-test") as slack:
...     client = WebClient(token="xoxb-test", base_url=slack.base_url)
...     r = client.chat_postMessage(channel="#crisis", text="hello")
...     [m["text"] for m in slack.messages("#crisis")], r["channel"] == slack.channel_id("#crisis")
(['hello'], True)
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from daemon.clock import Clock

# Limits Slack enforces on Block Kit (answering `invalid_blocks` above them).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_MESSAGE_TEXT = 40000

JSON_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral"}
# The bot scopes each emulated method needs (any one of them; the history and read scopes differ for a
# private channel, which the emulator does not tell apart). Slack answers `missing_scope` without one,
# and names the token's scopes in the `x-oauth-scopes` header of every answer.
METHOD_SCOPES = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "conversations.list": ("channels:read", "groups:read"),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}
# What a token of the app config/slack-app-manifest.yaml describes has.
APP_SCOPES = ("chat:write", "files:write", "channels:history", "groups:history", "channels:read", "groups:read")


@dataclass
class Call:
    method: str
    payload: dict[str, Any]
    content_type: str
    authorized: bool
    outcome: str = "ok"  # ok | error:<code> | 429 | 500 | reset | lost | slow


@dataclass
class Fault:
    kind: str  # "429" | "500" | "slow" | "reset" | "lost" | "error:<name>"
    method: str = "*"
    times: int = 1
    retry_after: str = "1"
    delay: float = 0.0
    channel: str | None = None  # only calls naming this channel (None: any)


@dataclass
class Channel:
    id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)  # every message, in post order


class SlackEmulator:
    """The emulator; use as a context manager or call `start()` / `stop()`.

    `clock` only drives `outage(seconds)`: requests are reset while `clock.now()` is inside it,
    so a test with a `FakeClock` has a 30-second outage without waiting 30 seconds. `scopes` are the
    token's (a test may take some away).
    """

    def __init__(
        self, token: str = "xoxb-test", clock: Clock | None = None, scopes: tuple[str, ...] = APP_SCOPES
    ) -> None:
        self.token = token
        self.clock = clock
        self.scopes = scopes
        self.calls: list[Call] = []
        self.uploads: dict[str, bytes] = {}
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self._channels: dict[str, Channel] = {}
        self._faults: list[Fault] = []
        self._outage_until: float | None = None
        self._lock = threading.RLock()
        self._ts = 0
        self._files = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.add_channel("crisis", "C0CRISIS")

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> SlackEmulator:
        self._serve(self.port)
        return self

    def _serve(self, port: int) -> None:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        """A press's `response_url` (Slack's is on hooks.slack.com): what is posted to it lands in
        `responses`, as (name, the JSON body)."""
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # -- trouble -----------------------------------------------------------------------------
    def fail(
        self,
        kind: str,
        method: str = "*",
        times: int = 1,
        retry_after: str = "1",
        delay: float = 0.0,
        channel: str | None = None,
    ) -> None:
        """Inject `kind` into the next `times` calls of `method` ("*": any method), of those naming
        `channel` if given: "reset", "500", "429", "slow", "lost" (done, the answer dropped) or
        "error:<name>" (an ok=false answer)."""
        with self._lock:
            self._faults.append(Fault(kind, method, times, retry_after, delay, channel))

    def outage(self, seconds: float) -> None:
        """Reset every connection for `seconds` of the injected clock from now."""
        assert self.clock is not None, "outage() needs the emulator's clock"
        with self._lock:
            self._outage_until = self.clock.now() + seconds

    def refuse(self) -> None:
        """Close the listening socket: connections are refused until `resume()`."""
        self.stop()

    def resume(self) -> None:
        self._serve(self.port)

    def _take_fault(self, method: str, channel: object = None) -> Fault | None:
        with self._lock:
            if self._outage_until is not None and self.clock is not None:
                if self.clock.now() < self._outage_until:
                    return Fault("reset", method)
                self._outage_until = None
            for f in self._faults:
                if f.method in ("*", method) and f.times > 0 and f.channel in (None, channel):
                    f.times -= 1
                    if f.times == 0:
                        self._faults.remove(f)
                    return f
        return None

    # -- state ---------------------------------------------------------------------------
    def add_channel(self, name: str, channel_id: str) -> None:
        with self._lock:
            self._channels[channel_id] = Channel(channel_id, name.lstrip("#"))

    def channel_id(self, ref: str) -> str | None:
        with self._lock:
            if ref in self._channels:
                return ref
            for c in self._channels.values():
                if c.name == ref.lstrip("#"):
                    return c.id
        return None

    def _channel(self, ref: str, create: bool = False) -> Channel | None:
        with self._lock:
            cid = self.channel_id(ref)
            if cid is None:
                if not create or not ref:
                    return None
                cid = f"C{len(self._channels) + 1:08d}"
                self._channels[cid] = Channel(cid, ref.lstrip("#"))
            return self._channels[cid]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel, oldest first (what people see in the channel)."""
        c = self._channel(channel)
        if c is None:
            return []
        with self._lock:
            return [m for m in c.messages if "thread_ts" not in m or m["thread_ts"] == m["ts"]]

    def replies(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The thread under `ts`, replies only, oldest first."""
        c = self._channel(channel)
        if c is None:
            return []
        with self._lock:
            return [m for m in c.messages if m.get("thread_ts") == ts and m["ts"] != ts]

    def chatter(self, channel: str, count: int) -> None:
        """`count` top-level messages from people in the channel (a busy incident channel)."""
        c = self._channel(channel)
        assert c is not None, channel
        with self._lock:
            for i in range(count):
                c.messages.append({"type": "message", "ts": self._next_ts(), "text": f"update {i}", "user": "U0PEOPLE"})

    def method_calls(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _next_ts(self) -> str:
        self._ts += 1
        return f"{1700000000 + self._ts}.{self._ts:06d}"

    # -- the API ---------------------------------------------------------------------------
    def handle(self, method: str, p: dict[str, Any]) -> dict[str, Any]:
        fn: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(self, "_api_" + method.replace(".", "_"), None)
        if fn is None:
            return {"ok": False, "error": "unknown_method"}
        with self._lock:
            return fn(p)

    def _api_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://emulator.invalid/",
            "team": "Emulated",
            "user": "crisisd",
            "team_id": "T0EMULATED",
            "user_id": "U0CRISISD",
            "bot_id": "B0CRISISD",
        }

    def _api_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        bad = _check_message(p)
        if bad:
            return {"ok": False, "error": bad}
        c = self._channel(str(p["channel"]), create=True)
        assert c is not None
        ts = self._next_ts()
        msg: dict[str, Any] = {
            "type": "message",
            "user": "U0CRISISD",
            "bot_id": "B0CRISISD",
            "ts": ts,
            "text": p.get("text", ""),
        }
        for k in ("blocks", "metadata"):
            if k in p:
                msg[k] = p[k]
        thread_ts = p.get("thread_ts")
        if thread_ts:
            parent = next((m for m in c.messages if m["ts"] == thread_ts), None)
            msg["thread_ts"] = thread_ts
            if parent is None:
                msg["orphan"] = True  # Slack accepts it and nobody ever sees it
            else:
                parent.setdefault("thread_ts", thread_ts)
                parent["reply_count"] = parent.get("reply_count", 0) + 1
            if p.get("reply_broadcast"):
                msg["subtype"] = "thread_broadcast"
        c.messages.append(msg)
        return {"ok": True, "channel": c.id, "ts": ts, "message": msg}

    def _api_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._channel(str(p.get("channel", "")))
        if c is None:
            return {"ok": False, "error": "channel_not_found"}
        bad = _check_message(p)
        if bad:
            return {"ok": False, "error": bad}
        msg = next((m for m in c.messages if m["ts"] == p.get("ts")), None)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        for k in ("text", "blocks", "metadata"):
            if k in p:
                msg[k] = p[k]
        msg["edited"] = {"user": "U0CRISISD", "ts": self._next_ts()}
        return {"ok": True, "channel": c.id, "ts": msg["ts"], "text": msg.get("text", "")}

    def _visible(self, m: dict[str, Any], metadata: bool) -> dict[str, Any]:
        out = {k: v for k, v in m.items() if k != "orphan" and (metadata or k != "metadata")}
        return out

    def _page(self, items: list[dict[str, Any]], p: dict[str, Any], key: str) -> dict[str, Any]:
        limit = int(p.get("limit") or 100)
        start = int(p.get("cursor") or 0)
        page = items[start : start + limit]
        nxt = str(start + limit) if start + limit < len(items) else ""
        return {"ok": True, key: page, "has_more": bool(nxt), "response_metadata": {"next_cursor": nxt}}

    def _api_conversations_history(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if channel not in self._channels:  # the real API wants an id, not a name
            return {"ok": False, "error": "channel_not_found"}
        metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        msgs = [self._visible(m, metadata) for m in self.messages(channel)]
        msgs += [
            self._visible(m, metadata)
            for m in self._channels[channel].messages
            if m.get("subtype") == "thread_broadcast"
        ]
        msgs.sort(key=lambda m: m["ts"], reverse=True)
        return self._page(msgs, p, "messages")

    def _api_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel", ""))
        if channel not in self._channels:
            return {"ok": False, "error": "channel_not_found"}
        ts = str(p.get("ts", ""))
        c = self._channels[channel]
        parent = next((m for m in c.messages if m["ts"] == ts), None)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        metadata = str(p.get("include_all_metadata", "")).lower() in ("1", "true")
        items = [self._visible(parent, metadata)] + [self._visible(m, metadata) for m in self.replies(channel, ts)]
        return self._page(items, p, "messages")

    def _api_conversations_list(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [{"id": c.id, "name": c.name, "is_channel": True} for c in self._channels.values()]
        return self._page(items, p, "channels")

    def _api_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        self._files += 1
        file_id = f"F{self._files:08d}"
        return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}

    def _api_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(str(p.get("files", "")))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files or any(f.get("id") not in self.uploads for f in files):
            return {"ok": False, "error": "file_not_found"}
        shared = [
            {
                "id": f["id"],
                "title": f.get("title") or "",
                "name": f.get("title") or f["id"],
                "size": len(self.uploads[f["id"]]),
            }
            for f in files
        ]
        channel = p.get("channel_id")
        if channel:
            post = {"channel": channel, "text": p.get("initial_comment") or ""}
            if p.get("thread_ts"):
                post["thread_ts"] = p["thread_ts"]
            c = self._channel(str(channel))
            if c is None:
                return {"ok": False, "error": "channel_not_found"}
            ts = self._next_ts()
            msg = {"type": "message", "subtype": "file_share", "ts": ts, "text": post["text"], "files": shared}
            if "thread_ts" in post:
                msg["thread_ts"] = post["thread_ts"]
            c.messages.append(msg)
        return {"ok": True, "files": shared}


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def _check_message(p: dict[str, Any]) -> str:
    """The error code Slack would answer for this payload's size, or ''."""
    if len(str(p.get("text", ""))) > MAX_MESSAGE_TEXT:
        return "msg_too_long"
    blocks = p.get("blocks")
    if blocks is None:
        return ""
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format"
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for b in blocks:
        kind = b.get("type")
        if kind == "header" and _text_len(b.get("text")) > MAX_HEADER_TEXT:
            return "invalid_blocks"
        if kind == "section":
            if _text_len(b.get("text")) > MAX_SECTION_TEXT:
                return "invalid_blocks"
            fields = b.get("fields", [])
            if len(fields) > MAX_FIELDS or any(_text_len(f) > MAX_FIELD_TEXT for f in fields):
                return "invalid_blocks"
        if kind == "context" and len(b.get("elements", [])) > MAX_CONTEXT_ELEMENTS:
            return "invalid_blocks"
        if kind == "actions":
            for e in b.get("elements", []):
                if _text_len(e.get("text")) > MAX_BUTTON_TEXT or len(e.get("action_id", "")) > MAX_ACTION_ID:
                    return "invalid_blocks"
                if len(e.get("value", "")) > MAX_BUTTON_VALUE:
                    return "invalid_blocks"
    return ""


class _Handler(BaseHTTPRequestHandler):
    emulator: SlackEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeouts)
            self.wfile.write(body)

    def _drop(self) -> None:
        # An abortive close (RST): the client sees a reset, never an answer.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def do_GET(self) -> None:
        self._reply(405, b'{"ok": false, "error": "method_not_allowed"}')

    def do_POST(self) -> None:
        em = self.emulator
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if self.path.startswith("/upload/"):
            file_id = self.path.rsplit("/", 1)[-1]
            fault = em._take_fault("upload")
            call = Call("upload", {"file_id": file_id, "bytes": len(raw)}, ctype, True)
            with em._lock:
                em.calls.append(call)
            if fault is not None and fault.kind in ("reset", "500", "429"):
                call.outcome = fault.kind
                if fault.kind == "reset":
                    return self._drop()
                return self._reply(int(fault.kind), b"error")
            with em._lock:
                em.uploads[file_id] = raw
            return self._reply(200, f"OK - {len(raw)}".encode(), {"Content-Type": "text/plain"})
        if self.path.startswith("/response/"):
            with em._lock:
                em.responses.append((self.path.rsplit("/", 1)[-1], json.loads(raw or b"{}")))
            return self._reply(200, b"ok", {"Content-Type": "text/plain"})
        if not self.path.startswith("/api/"):
            return self._reply(404, b'{"ok": false, "error": "not_found"}')
        method = self.path[len("/api/") :].split("?")[0]
        if ctype == "application/json":
            try:
                payload = json.loads(raw or b"{}")
            except ValueError:
                payload = {}
        else:
            payload = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        authorized = self.headers.get("Authorization") == f"Bearer {em.token}"
        call = Call(method, payload, ctype, authorized)
        with em._lock:
            em.calls.append(call)
        fault = em._take_fault(method, payload.get("channel"))
        if fault is not None:
            call.outcome = fault.kind
            if fault.kind == "reset":
                return self._drop()
            if fault.kind == "429":
                return self._reply(429, b'{"ok": false, "error": "ratelimited"}', {"Retry-After": fault.retry_after})
            if fault.kind == "500":
                return self._reply(500, b"<html>Internal Server Error</html>", {"Content-Type": "text/html"})
            if fault.kind == "slow":
                time.sleep(fault.delay)
            if fault.kind.startswith("error:"):  # a Slack error answer, e.g. "error:not_in_channel"
                return self._reply(200, json.dumps({"ok": False, "error": fault.kind[6:]}).encode())
        if not authorized:
            call.outcome = "error:not_authed"
            return self._reply(200, b'{"ok": false, "error": "invalid_auth"}')
        granted = {"x-oauth-scopes": ",".join(em.scopes)}
        needed = METHOD_SCOPES.get(method, ())
        if needed and not set(needed) & set(em.scopes):
            call.outcome = "error:missing_scope"
            answer = {"ok": False, "error": "missing_scope", "needed": needed[0], "provided": ",".join(em.scopes)}
            return self._reply(200, json.dumps(answer).encode(), granted)
        if method in JSON_METHODS and ctype != "application/json":
            call.outcome = "error:json_expected"
            return self._reply(200, b'{"ok": false, "error": "invalid_form_data"}', granted)
        result = em.handle(method, payload)
        if not result.get("ok"):
            call.outcome = "error:" + str(result.get("error"))
        if fault is not None and fault.kind == "lost":
            return self._drop()  # committed, but the answer is lost
        self._reply(200, json.dumps(result).encode(), granted)
