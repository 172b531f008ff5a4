"""The daemon's HTTP side: health, readiness, Prometheus metrics and the Slack interactivity endpoint.

A stdlib `ThreadingHTTPServer` on its own thread: every request runs in a thread of its own, reads
only what the run loop already published (a heartbeat, a readiness callable, metric objects), and
never takes a lock the consumer loop holds for long, so a slow scraper cannot stall consumption and a
stalled loop still gets a fast, truthful answer.

- `GET /healthz`: 200 while the loop has ticked within `stall_seconds` (liveness: restart me if not).
- `GET /readyz`: 200 when every readiness check passes, else 503; the JSON body names each check.
- `GET /metrics`: the Prometheus exposition of `daemon.metrics.REGISTRY` (OpenMetrics or gzip when
  the scraper asks for them).
- `POST <interactions_path>`: Slack's interactivity Request URL, handed to a handler callable; 404
  when Slack interactivity is not configured.

>>> import json, urllib.request
>>> from structlog.testing import capture_logs
>>> from daemon.clock import FakeClock
>>> clock = FakeClock(1000.0)
>>> beat = Heartbeat(stall_seconds=30, clock=clock)
>>> server = HttpServer("127.0.0.1", 0, liveness=beat, readiness=lambda: {"partitions_assigned": False})
>>> with capture_logs() as logs:
...     port = server.start().port
>>> logs[0]["event"], logs[0]["port"] == port > 0
('http server listening', True)
>>> def get(path):
...     try:
...         with urllib.request.urlopen(server.url + path, timeout=5) as r:
...             return r.status, json.loads(r.read())
...     except urllib.error.HTTPError as e:
...         return e.code, json.loads(e.read())
>>> get("/healthz")[0], get("/readyz")
(200, (503, {'ready': False, 'failing': ['partitions_assigned'], 'checks': {'partitions_assigned': False}}))
>>> clock.advance(31); get("/healthz")
(503, {'alive': False, 'last_tick_age_seconds': 31.0, 'stall_seconds': 30.0})
>>> server.stop()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from daemon.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

# A readiness callable returns {check name: passed}; a value may also be a mapping with an "ok" key and
# details (e.g. {"ok": False, "pending": 12000, "limit": 10000}), shown as is in the /readyz body.
Readiness = Callable[[], Mapping[str, Any]]
Liveness = Callable[[], Mapping[str, Any]]
# Slack interactivity: (raw body, request headers) -> (HTTP status, response body).
InteractionHandler = Callable[[bytes, Mapping[str, str]], tuple[int, bytes]]

MAX_BODY_BYTES = 1 << 20  # Slack's interactivity payloads are a few KiB
READINESS_TIMEOUT_SECONDS = 2.0  # a probe must answer even if a check hangs
REQUEST_TIMEOUT_SECONDS = 10.0  # a client that stops sending mid-request loses its thread after this


class Heartbeat:
    """Liveness from the run loop: `beat()` once per loop iteration; calling it says whether it stalled.

    >>> from daemon.clock import FakeClock
    >>> clock = FakeClock(0.0)
    >>> hb = Heartbeat(stall_seconds=10, clock=clock)
    >>> hb()["alive"]
    True
    >>> clock.advance(11); hb()["alive"]
    False
    >>> hb.beat(); hb()["alive"]
    True
    """

    def __init__(self, stall_seconds: float = 60.0, clock: Clock | None = None) -> None:
        self.stall_seconds = float(stall_seconds)
        self.clock = clock or SystemClock()
        self._last = self.clock.monotonic()  # start-up counts as a tick: probes get a grace period

    def beat(self) -> None:
        self._last = self.clock.monotonic()  # one float store: atomic, no lock needed

    def __call__(self) -> dict[str, Any]:
        age = max(0.0, self.clock.monotonic() - self._last)
        return {"alive": age <= self.stall_seconds, "last_tick_age_seconds": round(age, 3),
                "stall_seconds": self.stall_seconds}  # fmt: skip


def _passed(value: Any) -> bool:
    if isinstance(value, Mapping):
        return bool(value.get("ok", False))
    return bool(value)


def readiness_report(checks: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(ready, JSON body) from a readiness callable's answer; no checks at all means not ready.

    >>> ready, body = readiness_report({"broker_reachable": True, "outbox_bounded": {"ok": False, "pending": 9}})
    >>> ready, body["failing"], body["checks"]["outbox_bounded"]
    (False, ['outbox_bounded'], {'ok': False, 'pending': 9})
    >>> readiness_report({})[0]
    False
    """
    failing = [name for name, value in checks.items() if not _passed(value)]
    ready = bool(checks) and not failing
    return ready, {"ready": ready, "failing": failing, "checks": dict(checks)}


def _call_with_timeout(fn: Callable[[], Mapping[str, Any]], timeout: float) -> Mapping[str, Any]:
    """Run a check on a helper thread so a hung check costs the probe `timeout`, not forever."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(fn())
        except Exception as exc:  # reported as a failed check, never a 500
            result.append(exc)

    t = threading.Thread(target=target, name="crisisd-readiness", daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        return {"check_timed_out": {"ok": False, "timeout_seconds": timeout}}
    value = result[0]
    if isinstance(value, Exception):
        return {"check_failed": {"ok": False, "error": f"{type(value).__name__}: {value}"}}
    return value


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS
    server_version = "crisisd"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stdlib's default writes every probe to stderr: noise, and not structured

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data, separators=(",", ":"), default=str).encode() + b"\n")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        app = self.server.app
        if path == "/healthz":
            info = dict(app.liveness())
            self._json(200 if info.get("alive", True) else 503, info)
        elif path == "/readyz":
            if app.draining:
                self._json(503, {"ready": False, "failing": ["draining"], "checks": {"draining": False}})
                return
            ready, body = readiness_report(_call_with_timeout(app.readiness, app.readiness_timeout))
            self._json(200 if ready else 503, body)
        elif path == "/metrics":
            self._metrics()
        else:
            self._json(404, {"error": "not found", "path": path})

    do_HEAD = do_GET

    def _metrics(self) -> None:
        app = self.server.app
        if app.on_scrape is not None:
            try:
                app.on_scrape()  # refresh gauges computed at read time (lag, checkpoint age)
            except Exception:
                log.exception("metrics refresh failed")
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        body = encoder(app.registry)
        extra: dict[str, str] = {}
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            import gzip

            body = gzip.compress(body, compresslevel=6)
            extra["Content_Encoding"] = "gzip"
        self._send(200, body, content_type, **extra)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        app = self.server.app
        if app.interactions is None or path != app.interactions_path:
            self._json(404, {"error": "not found", "path": path})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(411, {"error": "Content-Length required"})
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, {"error": "body too large", "limit": MAX_BODY_BYTES})
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, answer = app.interactions(body, headers)
        except Exception:
            log.exception("slack interaction handler failed")
            status, answer = 500, b""
        content_type = "application/json" if answer[:1] in (b"{", b"[") else "text/plain; charset=utf-8"
        self._send(status, answer, content_type)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an open keep-alive connection never holds up shutdown
    allow_reuse_address = True
    app: HttpServer


class HttpServer:
    """The endpoints above on (`host`, `port`); port 0 picks a free one, readable from `port` once started.

    `readiness` and `liveness` are called on request threads: they must only read state the loop
    publishes. `on_scrape` runs before each /metrics answer to refresh read-time gauges.
    """

    def __init__(
        self,
        host: str = "0.0.0.0",
        port: int = 8080,
        *,
        readiness: Readiness,
        liveness: Liveness | None = None,
        interactions: InteractionHandler | None = None,
        interactions_path: str = "/slack/interactions",
        registry: CollectorRegistry | None = None,
        on_scrape: Callable[[], None] | None = None,
        readiness_timeout: float = READINESS_TIMEOUT_SECONDS,
    ) -> None:
        if registry is None:
            from daemon.metrics import REGISTRY

            registry = REGISTRY
        self.host = host
        self.requested_port = port
        self.readiness = readiness
        self.liveness: Liveness = liveness or (lambda: {"alive": True})
        self.interactions = interactions
        self.interactions_path = interactions_path
        self.registry: CollectorRegistry = registry
        self.on_scrape = on_scrape
        self.readiness_timeout = readiness_timeout
        self.draining = False
        """Set when shutdown starts: /readyz answers 503 so load balancers stop sending work."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with port 0)."""
        if self._server is None:
            return self.requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> HttpServer:
        """Bind and serve on a daemon thread; raises OSError when the address is taken."""
        server = _Server((self.host, self.requested_port), _Handler)
        server.app = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="crisisd-http", daemon=True
        )
        self._thread.start()
        log.info("http server listening", host=self.host, port=self.port)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
