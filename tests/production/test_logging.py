"""Logs: one chain for structlog and standard-library records; secrets never appear; context is bound."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from config.settings import load_settings
from daemon.log import configure_logging, secret_values

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
