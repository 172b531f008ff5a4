"""How button presses reach the notifier: a tiny HTTP endpoint, or Socket Mode.

`SlackNotifier.handle_interaction(body, headers) -> (status, body)` works from any HTTP server
(the daemon's own serves it at `slack.interactions_path`). For deployments without one,
`serve_interactions` runs a standalone `ThreadingHTTPServer`; for deployments without inbound
HTTP at all, `connect_socket_mode` opens a Socket Mode connection (slack-sdk's builtin client)
with the app-level token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from slack_sdk import WebClient

from notifiers.slack.notifier import SlackNotifier
from notifiers.slack.settings import SlackSettings

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024  # Slack's interactive payloads are a few KB


def serve_interactions(
    notifier: SlackNotifier, host: str = "127.0.0.1", port: int = 0, path: str = "/slack/interactions"
) -> ThreadingHTTPServer:
    """Start a standalone HTTP server for Slack's interactivity Request URL (in a daemon
    thread); `server.server_address` tells the port; `server.shutdown()` stops it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are logged by the notifier, without bodies

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path.split("?")[0] != path:
                return self._answer(404, b"not found")
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return self._answer(400, b"bad length")
            if length > MAX_BODY:
                return self._answer(413, b"too large")
            body = self.rfile.read(length)
            status, answer = notifier.handle_interaction(body, dict(self.headers.items()))
            self._answer(status, answer)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="crisisd-slack-http", daemon=True).start()
    return server


def socket_mode_listener(notifier: SlackNotifier) -> Callable[[Any, Any], None]:
    """The Socket Mode listener: acknowledge the envelope at once, then apply the payload."""
    from slack_sdk.socket_mode.response import SocketModeResponse

    def listener(client: Any, req: Any) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if req.type == "interactive":
            notifier.handle_payload(req.payload or {})

    return listener


def connect_socket_mode(notifier: SlackNotifier, app_token: str, web_client: WebClient | None = None) -> Any:
    """Connect to Slack over Socket Mode (outbound WebSocket) and route button presses to
    `notifier`; returns the `SocketModeClient` (call `.close()` to stop)."""
    from slack_sdk.socket_mode import SocketModeClient

    client = SocketModeClient(app_token=app_token, web_client=web_client or notifier.client)
    client.socket_mode_request_listeners.append(socket_mode_listener(notifier))
    client.connect()
    log.info("slack.socket_mode_connected")
    return client


def start_interactivity(notifier: SlackNotifier, settings: SlackSettings) -> Callable[[], None]:
    """Start what `settings.interactivity` asks for besides the daemon's own HTTP endpoint
    (which calls `notifier.handle_interaction` itself), plus the notifier's background thread
    (escalation, notes, root refreshes). Returns a function that stops them."""
    notifier.start()
    client: Any = None
    if settings.interactivity == "socket":
        if not settings.app_token:
            raise ValueError("slack.app_token: needed for slack.interactivity: socket (SLACK_APP_TOKEN)")
        client = connect_socket_mode(notifier, settings.app_token.reveal())

    def stop() -> None:
        if client is not None:
            client.close()
        notifier.stop()

    return stop
