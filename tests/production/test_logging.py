"""Logs: one chain for structlog and standard-library records; secrets never appear; context is bound."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from config.settings import load_settings
from daemon.log import configure_logging, secret_values
from daemon.notification import NegativityFigures, Notification, VolumeFigures

ROOT = Path(__file__).resolve().parents[2]

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-abcdefSECRET",
    "SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
    "CRISISD_KAFKA_SASL_PLAIN_PASSWORD": "hunter2-sasl-password",
}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    settings = load_settings(env=SECRETS)
    configure_logging("json", "debug", secrets=secret_values(settings), stream=buf)
    yield buf
    configure_logging("console", "warning", stream=io.StringIO())  # leave nothing pointing at buf
    structlog.reset_defaults()


def test_every_configured_secret_is_collected() -> None:
    assert sorted(secret_values(load_settings(env=SECRETS))) == sorted(SECRETS.values())


def test_secrets_are_redacted_from_structlog_stdlib_and_tracebacks(stream: io.StringIO) -> None:
    token, signing, password = SECRETS.values()
    structlog.get_logger("t").info("posting", headers={"Authorization": f"Bearer {token}"})
    logging.getLogger("kafka.conn").warning("sasl auth as user with %s failed", password)
    try:
        raise RuntimeError(f"signature check with {signing} failed")
    except RuntimeError:
        logging.getLogger("notifiers.slack").exception("interaction failed")
    text = stream.getvalue()
    assert text.count("***") >= 3
    for secret in SECRETS.values():
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["level"] for line in lines] == ["info", "warning", "error"]
    assert "RuntimeError" in lines[2]["exception"]


def test_context_is_bound_on_stdlib_records_too(stream: io.StringIO) -> None:
    with structlog.contextvars.bound_contextvars(partition=4, brand="klm", incident_id="klm-1"):
        logging.getLogger("daemon.kafka.runner").info("restored %s", "mentions:4")
    line = json.loads(stream.getvalue())
    assert (line["partition"], line["brand"], line["incident_id"]) == (4, "klm", "klm-1")
    assert line["event"] == "restored mentions:4" and line["logger"] == "daemon.kafka.runner"


def test_reconfiguring_replaces_the_handler() -> None:
    before = len(logging.getLogger().handlers)
    configure_logging("json", "info", stream=io.StringIO())
    configure_logging("json", "info", stream=io.StringIO())
    assert len(logging.getLogger().handlers) <= before + 1
    structlog.reset_defaults()


def test_a_level_in_capitals_works_and_an_unknown_one_is_refused() -> None:
    buf = io.StringIO()
    configure_logging("json", "DEBUG", stream=buf)
    structlog.get_logger("t").debug("seen")
    assert json.loads(buf.getvalue())["event"] == "seen"
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        configure_logging("json", "verbose", stream=io.StringIO())


def _note() -> Notification:
    return Notification(type="incident.opened", incident_id="klm-1", brand="klm", severity="sev2",
                        signals=["volume"], started_at="t0", detected_at="t1",
                        volume=VolumeFigures(900, 300, 3.0), negativity=NegativityFigures(0.5, 0.2))  # fmt: skip


def test_run_json_console_notifier_writes_log_records_not_text(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --json` without Slack: the console notifier's message is a log record on stderr (the
    notification object itself is on stdout), nothing else; without `--json`, text on stdout."""
    from daemon.kafka.run_command import build_notifier

    settings = load_settings(env={})
    buf = io.StringIO()
    configure_logging("json", "info", stream=buf)
    notifier = build_notifier(settings, json_out=True, notify_file=None)
    assert notifier.send(_note()).ok
    [record] = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert record["event"] == "notification delivered" and record["level"] == "info"
    assert [record[k] for k in ("type", "incident_id", "seq", "severity")] == ["incident.opened", "klm-1", 1, "sev2"]
    assert record["message"].startswith("[") and "klm" in record["message"]
    assert capsys.readouterr() == ("", "")
    assert build_notifier(settings, json_out=False, notify_file=None).send(_note()).ok
    assert capsys.readouterr().out.startswith("== incident.opened klm-1 #1 ==")


def _no_broker_env(tmp_path: Path) -> tuple[dict[str, str], int]:
    """The environment of a `crisisd run` whose broker never answers (given up after 1 s), and the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    env.update(
        CRISISD_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
        CRISISD_KAFKA_CONNECT_TIMEOUT_SECONDS="1",
        CRISISD_HTTP_ENABLED="false",
        CRISISD_STATE_DIR=str(tmp_path / "state"),
    )
    return env, port


def test_run_json_writes_only_json_lines_to_stderr_even_on_a_terminal(tmp_path: Path) -> None:
    """`log.format: auto` would pick readable text for a terminal; with `--json` it is JSON, and a
    failure (here: no broker answers) is a record too, not a bare `crisisd: failed` line."""
    env, _ = _no_broker_env(tmp_path)
    primary, secondary = pty.openpty()  # stderr is a terminal
    with os.fdopen(primary, "rb", buffering=0) as terminal:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--json"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary,
        )  # fmt: skip
        os.close(secondary)
        err = b""
        while True:
            try:
                chunk = terminal.read(65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            err += chunk
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert out == b""
    records = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert records, err
    assert records[-1]["event"] == "failed" and records[-1]["error"].startswith("KafkaUnreachable: ")


def test_run_names_its_notifier_and_masks_secrets_in_its_last_line(tmp_path: Path) -> None:
    """At start one line says which version runs and where notifications go, with a warning when
    Slack settings are there without a bot token (nobody would be paged); the failure line at the
    end is a log record with secrets masked (here a signing secret equal to the broker's address)."""
    env, port = _no_broker_env(tmp_path)
    env.update(CRISISD_LOG_FORMAT="json", CRISISD_SLACK_CHANNEL="C0CRISIS", SLACK_SIGNING_SECRET=f"127.0.0.1:{port}")
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "run"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )  # fmt: skip
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stderr.decode().splitlines()]
    start = next(r for r in records if r["event"] == "starting")
    assert start["notifier"] == "console" and start["version"]
    assert any("slack.bot_token (SLACK_BOT_TOKEN) is not" in r["event"] for r in records)
    assert records[-1]["event"] == "failed" and "***" in records[-1]["error"]
    assert f"127.0.0.1:{port}" not in proc.stderr.decode()


def test_run_refuses_a_state_dir_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    env.update(CRISISD_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9", CRISISD_STATE_DIR=str(blocker / "state"))
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "run"], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith(f"crisisd: error: state_dir: {blocker / 'state'}: cannot write there")


def test_the_confluent_client_without_its_package_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import msgspec

    from config.settings import load_settings
    from daemon.cli import UsageError
    from daemon.kafka.run_command import check_notifier

    settings = load_settings(env={"CRISISD_KAFKA_CLIENT": "confluent"})
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # not installed
    with pytest.raises(UsageError, match=r"kafka.client: confluent needs the confluent-kafka package"):
        check_notifier(settings)
    check_notifier(
        msgspec.structs.replace(settings, kafka=msgspec.structs.replace(settings.kafka, client="kafka-python"))
    )
