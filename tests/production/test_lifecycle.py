"""Signals around the consumer loop, in-process: SIGHUP reloads, SIGTERM drains, a watchdog bounds it."""

from __future__ import annotations

import doctest
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import daemon.lifecycle
import daemon.log
from config.settings import Settings, load_settings
from daemon.http_server import Heartbeat, HttpServer
from daemon.lifecycle import Lifecycle

WAIT = 20.0  # generous bound for a helper thread to act; never a speed assertion


class FakeRunner:
    heartbeat: Any = None

    def __init__(self) -> None:
        self.reloaded: list[Settings] = []
        self.stopped = threading.Event()
        self.changed = threading.Event()

    def readiness(self) -> dict[str, Any]:
        return {"group_joined": True, "outbox": {"ok": True, "pending": 0}}

    def request_stop(self) -> None:
        self.stopped.set()

    def reload(self, settings: Settings) -> list[str]:
        self.reloaded.append(settings)
        self.changed.set()
        return []


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "crisisd.yaml"
    path.write_text("http: {port: 0, host: 127.0.0.1}\ndetection: {sensitivity: 1.0}\n", encoding="utf-8")
    return path


@pytest.fixture
def life(config_file: Path) -> Iterator[tuple[Lifecycle, FakeRunner, list[int]]]:
    runner = FakeRunner()
    exits: list[int] = []
    settings = load_settings(config_file, env={})
    with Lifecycle(runner, settings, config_file, env={}, exit=exits.append, watchdog_grace=0.05) as lc:
        yield lc, runner, exits


def replace(path: Path, text: str) -> None:
    """Write a configuration as operators should: atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("module", [daemon.lifecycle, daemon.log])
def test_doctests(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_sighup_rereads_validates_and_hands_over(life: Any, config_file: Path) -> None:
    lc, runner, _ = life
    replace(config_file, "http: {port: 0}\ndetection: {sensitivity: 2.5}\n")
    os.kill(os.getpid(), signal.SIGHUP)
    assert runner.changed.wait(WAIT)
    assert runner.reloaded[-1].detection.sensitivity == 2.5
    assert lc.settings.detection.sensitivity == 2.5


def test_an_invalid_file_on_sighup_is_logged_and_ignored(life: Any, config_file: Path) -> None:
    lc, runner, _ = life
    replace(config_file, "detection: {sensitivity: -1}\n")
    with capture_logs() as logs:
        assert lc.reload_now() is False
        lc.request_reload()  # through the helper thread as well
        replace(config_file, "detection: {sensitivity: 3}\n")
        lc.request_reload()
        assert runner.changed.wait(WAIT)
    rejected = [e for e in logs if e["event"].startswith("configuration reload rejected")]
    assert rejected and rejected[0]["error"].startswith("detection.sensitivity:")
    assert runner.reloaded and {s.detection.sensitivity for s in runner.reloaded} == {3.0}


def test_sigterm_stops_the_runner_and_readyz_turns_503(life: Any) -> None:
    lc, runner, _exits = life
    url = lc.http.url
    assert get(url + "/readyz")[0] == 200
    os.kill(os.getpid(), signal.SIGTERM)
    assert runner.stopped.wait(WAIT)
    status, body = get(url + "/readyz")
    assert status == 503 and body["failing"] == ["draining"]
    assert get(url + "/healthz")[0] == 200  # still alive while draining


def test_the_watchdog_ends_an_overrunning_drain(config_file: Path) -> None:
    runner = FakeRunner()
    exits: list[int] = []
    fired = threading.Event()
    settings = load_settings(config_file, env={"CRISISD_KAFKA_SHUTDOWN_TIMEOUT_SECONDS": "0.05"})

    def exit_(code: int) -> None:
        exits.append(code)
        fired.set()

    with Lifecycle(runner, settings, config_file, env={}, exit=exit_, watchdog_grace=0.05) as lc:
        lc.request_stop()
        assert fired.wait(WAIT)
    assert exits == [1]


def test_a_clean_exit_cancels_the_watchdog_and_a_second_signal_forces_exit(life: Any) -> None:
    lc, _runner, exits = life
    lc.watchdog_grace = 3600
    lc.request_stop()
    lc.request_stop()
    assert exits == [130]


def test_handlers_are_restored_and_heartbeat_installed(config_file: Path) -> None:
    before = signal.getsignal(signal.SIGHUP)
    runner = FakeRunner()
    with Lifecycle(runner, load_settings(config_file, env={}), config_file, env={}):
        assert signal.getsignal(signal.SIGHUP) != before
        assert isinstance(runner.heartbeat, Heartbeat)
    assert signal.getsignal(signal.SIGHUP) == before


def test_http_disabled_starts_no_server(config_file: Path) -> None:
    settings = load_settings(config_file, env={"CRISISD_HTTP_ENABLED": "false"})
    with Lifecycle(FakeRunner(), settings, config_file, env={}) as lc:
        assert lc.http is None


def test_reload_keeps_restart_only_sections_and_reconfigures_the_notifier(config_file: Path) -> None:
    class Notifier:
        def __init__(self) -> None:
            self.slack: list[Any] = []

        def reconfigure(self, slack: Any) -> None:
            self.slack.append(slack)

    runner, notifier = FakeRunner(), Notifier()
    settings = load_settings(config_file, env={})
    lc = Lifecycle(runner, settings, config_file, env={}, notifier=notifier)
    replace(
        config_file,
        "http: {port: 9999, host: 127.0.0.1}\nwindows: {bucket_seconds: 30}\n"
        "slack: {channel: C0OTHER, escalation: {levels: [{users: [U0LEAD], timeout_seconds: 60}]}}\n",
    )
    with capture_logs() as logs:
        assert lc.reload_now()
    applied = runner.reloaded[-1]
    assert applied.windows == settings.windows and applied.http == settings.http
    assert applied.slack.channel == settings.slack.channel
    assert applied.slack.escalation.levels[0].users == ["U0LEAD"]
    assert notifier.slack[-1].escalation.levels[0].users == ["U0LEAD"]
    assert logs[-1]["restart_needed"] == ["http.port", "slack.channel", "windows.bucket_seconds"]


def test_a_taken_port_fails_naming_the_field_and_leaves_no_handlers(config_file: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with HttpServer("127.0.0.1", 0, readiness=dict) as taken:
        env = {"CRISISD_HTTP_PORT": str(taken.port), "CRISISD_HTTP_HOST": "127.0.0.1"}
        settings = load_settings(config_file, env=env)
        with pytest.raises(RuntimeError, match=rf"^http.port: cannot listen on 127.0.0.1:{taken.port}"):
            Lifecycle(FakeRunner(), settings, config_file, env=env).__enter__()
    assert signal.getsignal(signal.SIGTERM) == before
