"""structlog set-up: readable on a terminal, JSON in containers, secrets redacted everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class RedactSecrets:
    """A processor that replaces every configured secret value, wherever it appears in an event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for s in self.secrets:
                if s in value:
                    value = value.replace(s, "***")
            return value
        if isinstance(value, dict):
            return {k: self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.clean(v) for v in value)
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        return {k: self.clean(v) for k, v in event.items()}


def secret_values(obj: Any) -> list[str]:
    """Every `Secret` value set anywhere in a settings object (for `RedactSecrets`).

    >>> from config.settings import load_settings
    >>> secret_values(load_settings(env={"SLACK_BOT_TOKEN": "xoxb-1", "CRISISD_KAFKA_SASL_PLAIN_PASSWORD": "pw"}))
    ['pw', 'xoxb-1']
    """
    import msgspec

    from config.secrets import Secret

    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Secret):
            if value:
                found.append(value.reveal())
        elif isinstance(value, msgspec.Struct):
            for name in value.__struct_fields__:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    walk(obj)
    return found


_HANDLER_MARK = "_crisisd_handler"


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of writing, not at configuration: a stream
    swapped out and closed later (test capture, a redirect) never breaks a background thread's log."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(fmt: str = "auto", level: str = "info", secrets: Iterable[str] = (), stream: Any = None) -> None:
    """Logs go to stderr so stdout stays for command output (`--json` lines).

    Standard-library records (kafka-python, the runner, the outbox) go through the same chain:
    context variables (partition, brand, incident) merged, secrets redacted, one renderer.
    """
    if level.lower() not in _LEVELS:  # not quietly `info`
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(_LEVELS)}")
    stream = stream or _CurrentStderr()
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer()
    )
    redact = RedactSecrets(secrets)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level.lower()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),  # log.info(..., extra={"partition": 3}) becomes a field
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level.lower()])
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))  # chatty at INFO
