"""The HTTP endpoints on their own: probes, metrics, Slack interactivity routing, no blocking."""

from __future__ import annotations

import doctest
import gzip
import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

import daemon.http_server
from daemon.clock import FakeClock
from daemon.http_server import Heartbeat, HttpServer


def request(server: HttpServer, path: str, method: str = "GET", body: bytes | None = None,
            headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    req = urllib.request.Request(server.url + path, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers.items()), e.read()


@pytest.fixture
def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    c = Counter("crisisd_events_consumed", "Messages read", registry=reg)
    c.inc(42)
    return reg


@pytest.fixture
def make_server(registry: CollectorRegistry) -> Iterator[Any]:
    started: list[HttpServer] = []

    def make(**kw: Any) -> HttpServer:
        kw.setdefault("readiness", lambda: {"partitions_assigned": True})
        server = HttpServer("127.0.0.1", 0, registry=registry, **kw).start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


def test_doctests() -> None:
    result = doctest.testmod(daemon.http_server, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_port_zero_binds_a_free_port_and_reports_it(make_server: Any) -> None:
    a, b = make_server(), make_server()
    assert a.port > 0 and b.port > 0 and a.port != b.port
    assert request(a, "/healthz")[0] == 200


def test_readyz_names_the_failing_checks() -> None:
    checks: dict[str, Any] = {"partitions_assigned": True, "broker_reachable": True, "outbox_bounded": True}
    with HttpServer("127.0.0.1", 0, readiness=lambda: checks) as server:
        status, headers, body = request(server, "/readyz")
        assert status == 200 and json.loads(body)["ready"] is True
        assert headers["Content-Type"] == "application/json"
        checks["outbox_bounded"] = {"ok": False, "pending": 5000, "limit": 1000}
        checks["broker_reachable"] = False
        status, _, body = request(server, "/readyz")
        answer = json.loads(body)
        assert status == 503
        assert answer["failing"] == ["broker_reachable", "outbox_bounded"]
        assert answer["checks"]["outbox_bounded"] == {"ok": False, "pending": 5000, "limit": 1000}


def test_readyz_is_503_with_no_checks_a_raising_check_or_while_draining(make_server: Any) -> None:
    assert request(make_server(readiness=lambda: {}), "/readyz")[0] == 503

    def broken() -> dict[str, bool]:
        raise RuntimeError("consumer gone")

    status, _, body = request(make_server(readiness=broken), "/readyz")
    assert status == 503 and "consumer gone" in json.loads(body)["checks"]["check_failed"]["error"]
    server = make_server()
    assert request(server, "/readyz")[0] == 200
    server.draining = True
    status, _, body = request(server, "/readyz")
    assert status == 503 and json.loads(body)["failing"] == ["draining"]


def test_a_hung_readiness_check_still_gets_an_answer(make_server: Any) -> None:
    release = threading.Event()

    def hung() -> dict[str, bool]:
        release.wait(30)
        return {"ok": True}

    server = make_server(readiness=hung, readiness_timeout=0.2)
    try:
        status, _, body = request(server, "/readyz")
        assert status == 503 and json.loads(body)["failing"] == ["check_timed_out"]
        # the hung check holds no server-wide lock: other endpoints answer meanwhile
        assert request(server, "/healthz")[0] == 200
    finally:
        release.set()


def test_healthz_follows_the_loop_heartbeat(make_server: Any) -> None:
    clock = FakeClock(50.0)
    beat = Heartbeat(stall_seconds=15, clock=clock)
    server = make_server(liveness=beat)
    assert request(server, "/healthz")[0] == 200
    clock.advance(16)
    status, _, body = request(server, "/healthz")
    assert status == 503 and json.loads(body)["alive"] is False
    beat.beat()
    assert request(server, "/healthz")[0] == 200
    assert request(server, "/healthz", method="HEAD")[0] == 200


def test_metrics_exposition_text_openmetrics_and_gzip(make_server: Any) -> None:
    refreshed = []
    server = make_server(on_scrape=lambda: refreshed.append(1))
    status, headers, body = request(server, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"crisisd_events_consumed_total 42.0" in body and refreshed == [1]
    status, headers, body = request(server, "/metrics", headers={"Accept": "application/openmetrics-text"})
    assert headers["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    status, headers, body = request(server, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip" and b"crisisd_events_consumed" in gzip.decompress(body)


def test_a_failing_scrape_hook_does_not_break_metrics(make_server: Any) -> None:
    def boom() -> None:
        raise RuntimeError("lag unknown")

    assert request(make_server(on_scrape=boom), "/metrics")[0] == 200


def test_the_daemon_registry_is_served_by_default() -> None:
    from daemon import metrics

    with HttpServer("127.0.0.1", 0, readiness=lambda: {"ok": True}) as server:
        body = request(server, "/metrics")[2].decode()
    for metric in (metrics.EVENTS_CONSUMED, metrics.EVENTS_INVALID, metrics.EVENTS_LATE, metrics.EVENTS_DUPLICATE,
                   metrics.NOTIFICATIONS_SENT, metrics.NOTIFICATIONS_RETRIED, metrics.NOTIFICATIONS_FAILED,
                   metrics.CHECKPOINT_AGE, metrics.OUTBOX_PENDING):  # fmt: skip
        assert f"# HELP {metric._name}" in body


def test_slack_interactions_are_delegated_or_404(make_server: Any) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    def handler(body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        seen.append((body, dict(headers)))
        return 200, b""

    off = make_server()
    assert request(off, "/slack/interactions", "POST", b"payload=%7B%7D")[0] == 404
    on = make_server(interactions=handler, interactions_path="/slack/actions")
    sig = {"X-Slack-Signature": "v0=abc", "X-Slack-Request-Timestamp": "1700000000"}
    assert request(on, "/slack/actions", "POST", b"payload=%7B%7D", sig)[0] == 200
    assert seen[0][0] == b"payload=%7B%7D" and seen[0][1]["x-slack-signature"] == "v0=abc"
    assert request(on, "/slack/other", "POST", b"x")[0] == 404
    assert request(on, "/nothing")[0] == 404


def test_interaction_handler_errors_and_oversized_bodies(make_server: Any) -> None:
    def fails(body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        raise ValueError("bad")

    server = make_server(interactions=fails, interactions_path="/slack/interactions")
    assert request(server, "/slack/interactions", "POST", b"x")[0] == 500
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.putrequest("POST", "/slack/interactions")
    conn.putheader("Content-Length", str(daemon.http_server.MAX_BODY_BYTES + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()


def test_stop_releases_the_port() -> None:
    server = HttpServer("127.0.0.1", 0, readiness=lambda: {"ok": True}).start()
    port = server.port
    server.stop()
    again = HttpServer("127.0.0.1", port, readiness=lambda: {"ok": True}).start()
    assert again.port == port
    again.stop()
