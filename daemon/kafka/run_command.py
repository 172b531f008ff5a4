"""`crisisd run [--config FILE] [--json]`: the daemon (Kafka in, Slack out, as configured).

Runs until SIGTERM/SIGINT, then finishes the batch in hand, checkpoints, commits, drains the
outbox for at most `kafka.shutdown_timeout_seconds` and exits 0. Exit 2 when Kafka is not
configured, 1 when the dead-letter budget stops consumption.

The notifier: Slack when `slack.bot_token` is set (checked at start: a token or channel Slack refuses
exits 2, Slack unreachable is a warning), else the console (stdout); `--notify-file FILE`
appends each delivered notification to FILE as one JSON line instead (scripts, audits, tests).

`--json` is for programs: stdout carries only notification objects, and stderr only log records,
JSON unless `log.format: console` says otherwise (`auto` means JSON here, terminal or not). The
console notifier's message becomes a log record (`notification delivered`), and so do the final
counts and a failure; a configuration error before the start stays the plain exit-2 line.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from daemon.cli import UsageError, describe, probe_writable
from daemon.notification import Notification, to_json
from notifiers.base import Delivery, Notifier


class _Key(msgspec.Struct):
    incident_id: str
    seq: int = 1


class FileNotifier:
    """Appends each notification to a JSONL file and fsyncs it. Several processes may share the
    file (appends of one line never interleave). `delivered(n)` answers from the file itself,
    which lets the notification log settle a send interrupted by a crash (daemon/kafka/nflog.py).

    >>> import tempfile, os
    >>> from daemon.notification import NegativityFigures, VolumeFigures
    >>> path = os.path.join(tempfile.mkdtemp(), "notified.jsonl")
    >>> n = Notification(type="incident.opened", incident_id="i1", brand="klm", severity="sev2",
    ...     signals=["volume"], started_at="t0", detected_at="t1",
    ...     volume=VolumeFigures(900, 300, 3.0), negativity=NegativityFigures(0.5, 0.2))
    >>> f = FileNotifier(path); f.send(n).ok; f.close()
    True
    >>> open(path).read().count('"incident_id":"i1"')
    1
    >>> FileNotifier(path).delivered(n), FileNotifier(path).delivered(msgspec.structs.replace(n, seq=2))
    (True, False)
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._seen: set[tuple[str, int]] = set()
        self._read_to = 0

    def send(self, notification: Notification) -> Delivery:
        line = to_json(notification) + b"\n"
        with self._lock:
            os.write(self._fd, line)  # one append: lines of concurrent writers never interleave
            os.fsync(self._fd)
        return Delivery.done()

    def delivered(self, notification: Notification) -> bool:
        """Is (incident_id, seq) in the file? Reads what was appended since the last call."""
        with self._lock, open(self.path, "rb") as fh:
            fh.seek(self._read_to)
            data = fh.read()
            end = data.rfind(b"\n") + 1  # a torn last line (a crash mid-write) is not delivered
            for line in data[:end].splitlines():
                try:
                    k = _decode_key(line)
                except msgspec.DecodeError:
                    continue
                self._seen.add((k.incident_id, k.seq))
            self._read_to += end
        return (notification.incident_id, notification.seq) in self._seen

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


_decode_key = msgspec.json.Decoder(_Key).decode


def check_notifier(settings: Any) -> None:
    """UsageError for what `run` refuses in the notifier's settings at start (Slack, when a bot
    token turns it on: `build_slack_notifier` runs the same `check_startup`), or in its Kafka client,
    found without contacting anything; for `crisisd check-config`."""
    if settings.kafka.client == "confluent":
        try:
            import confluent_kafka  # noqa: F401
        except ImportError:
            raise UsageError(
                "kafka.client: confluent needs the confluent-kafka package (pip install 'crisisd[confluent]')"
            ) from None
    if getattr(settings.slack, "bot_token", None):
        from notifiers.slack.settings import check_startup

        try:
            check_startup(settings.slack)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def slack_left_off(settings: Any) -> str | None:
    """Why Slack looks meant but is off (no bot token beside Slack settings), for a warning: a
    forgotten SLACK_BOT_TOKEN_FILE must not quietly page nobody."""
    slack = settings.slack
    if getattr(slack, "bot_token", None):
        return None
    hints = [name for name in ("channel", "signing_secret", "app_token") if getattr(slack, name, None)]
    if not hints:
        return None
    return (
        f"slack.{hints[0]} is set but slack.bot_token (SLACK_BOT_TOKEN) is not: "
        "notifications go to the console, and nobody is paged"
    )


def check_state_dir(path: str) -> None:
    """UsageError unless the state directory can be made and written (a root-owned volume mounted
    for a non-root user is the common case): found at start, naming the setting."""
    where = Path(path)
    try:
        where.mkdir(parents=True, exist_ok=True)
        probe_writable(where)
    except OSError as exc:
        raise UsageError(
            f"state_dir: {path}: cannot write there ({exc.strerror or exc}); set CRISISD_STATE_DIR "
            "or give the directory to the user crisisd runs as"
        ) from None


def build_notifier(settings: Any, json_out: bool, notify_file: str | None) -> Notifier:
    if notify_file:
        return FileNotifier(notify_file)
    slack = settings.slack
    if getattr(slack, "bot_token", None):
        from notifiers.slack import build_slack_notifier

        roster = settings.staffing.roster
        speaks = {p.slack_user: list(p.languages) for p in [*roster.agents, *roster.volunteers] if p.slack_user}
        try:
            return build_slack_notifier(
                slack, settings.state_dir, on_resolve=_resolved_in_slack, languages_for=lambda u: speaks.get(u, [])
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    from notifiers.console import ConsoleNotifier, LogNotifier

    if json_out:  # stdout is for notification objects; its human text would break stderr's log lines
        return LogNotifier()
    return ConsoleNotifier(sys.stdout)


def check_slack(notifier: Notifier) -> None:
    """Once at start: a token or channel Slack refuses is a usage error (exit 2, one line naming the
    setting) instead of the first sev1 failing; Slack down or slow (connection, 5xx, 429) or another
    error is a warning, and the daemon goes on (the outbox retries)."""
    from notifiers.slack.notifier import SlackConfigError, SlackNotifier, classify

    if not isinstance(notifier, SlackNotifier):
        return
    try:
        notifier.verify()
    except SlackConfigError as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:
        import structlog

        structlog.get_logger("crisisd.slack").warning("slack check at start failed", error=classify(exc).error)


def _resolved_in_slack(incident_id: str, user: str) -> None:
    """A manager pressed Resolve: Slack stops escalating it at once; the detectors keep their own
    view (event time), so the incident resolves in the data when the surge is over."""
    import structlog

    structlog.get_logger("crisisd.slack").info("incident resolved from Slack", incident_id=incident_id, user=user)


def main(args: argparse.Namespace) -> int:
    from config.settings import ConfigError, load_settings
    from daemon.log import RedactSecrets, configure_logging, secret_values

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if not settings.kafka.bootstrap_servers:
        raise UsageError("kafka.bootstrap_servers: not configured")
    check_notifier(settings)
    check_state_dir(settings.state_dir)
    fmt = "json" if args.json and settings.log.format == "auto" else settings.log.format
    secrets = secret_values(settings)
    configure_logging(fmt, settings.log.level, secrets=secrets)
    _stdlib_logging(settings.log.level)
    import structlog

    from daemon import __version__

    log = structlog.get_logger("crisisd")
    notifier = "file" if args.notify_file else "slack" if settings.slack.bot_token else "console"
    log.info("starting", version=__version__, config=str(args.config or ""), notifier=notifier)
    if (off := slack_left_off(settings)) is not None and not args.notify_file:
        log.warning(off)
    try:
        return _run(settings, args, log if args.json else None)
    except (UsageError, BrokenPipeError):  # exit 2, and 0 for a closed stdout, as for every command
        raise
    except Exception as exc:  # a log shipper reads stderr: the last line must be a record too
        log.error("failed", error=RedactSecrets(secrets).clean(describe(exc)))
        return 1


def _run(settings: Any, args: argparse.Namespace, log: Any = None) -> int:
    """The daemon until it stops; the counts at the end on stderr, as a log record when `log`."""
    from daemon.kafka.runner import Runner
    from daemon.lifecycle import Lifecycle

    notifier = build_notifier(settings, args.json, args.notify_file)
    try:
        check_slack(notifier)
    except UsageError:
        notifier.close()
        raise
    runner = Runner(settings, notifier, json_out=sys.stdout.buffer if args.json else None)
    # HTTP endpoints, SIGTERM/SIGINT drain, SIGHUP reload: daemon/lifecycle.py
    interactions = getattr(notifier, "handle_interaction", None) if settings.slack.interactivity == "http" else None
    stop_slack = _start_slack(notifier, settings)
    try:
        with Lifecycle(runner, settings, args.config, interactions=interactions, notifier=notifier):
            code = runner.run()
    finally:
        stop_slack()
    c = runner.counters
    counts = {
        "consumed": c.consumed,
        "dead_lettered": c.dead_lettered,
        "notifications_handed": c.notifications_new,
        "checkpoints": c.checkpoints,
        "restores": c.restores,
    }
    if log is not None:
        log.info("stopped", exit_code=code, **counts)
    else:
        print(
            f"crisisd: consumed {c.consumed} messages, {c.dead_lettered} dead-lettered, "
            f"{c.notifications_new} notifications handed, {c.checkpoints} checkpoints, {c.restores} restores",
            file=sys.stderr,
        )
    return code


def _start_slack(notifier: Notifier, settings: Any) -> Callable[[], None]:
    """Escalation timers, note refreshes and (with `interactivity: socket`) Socket Mode."""
    from notifiers.slack.notifier import SlackNotifier

    if not isinstance(notifier, SlackNotifier):
        return lambda: None
    from notifiers.slack.interactions import start_interactivity

    try:
        return start_interactivity(notifier, settings.slack)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _stdlib_logging(level: str) -> None:
    """The Kafka code logs through the standard library: one line per record on stderr."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.captureWarnings(True)  # a library's warnings as log records too, not bare stderr lines
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # librdkafka (kafka.client: confluent) reports every reconnection of an idle link at INFO
    logging.getLogger("daemon.kafka.librdkafka").setLevel(logging.WARNING)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the daemon: consume the mentions topic, notify incidents")
    p.add_argument("--config", help="YAML configuration file (default: $CRISISD_CONFIG)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print every notification object to stdout; stderr then holds only log records, JSON (log.format auto)",
    )
    p.add_argument("--notify-file", metavar="FILE", help="append delivered notifications to FILE (JSONL)")
    p.set_defaults(func=main)
