"""Around a running consumer loop: the HTTP server, SIGTERM/SIGINT draining, SIGHUP reloading.

`crisisd run` wraps `runner.run()` in a `Lifecycle`:

- SIGTERM or SIGINT: `/readyz` turns 503 (draining), `runner.request_stop()` lets the loop finish
  the batch in hand, checkpoint, commit and drain the outbox within `kafka.shutdown_timeout_seconds`.
  A watchdog ends the process (exit 1) if the drain overruns that bound by `WATCHDOG_GRACE_SECONDS`,
  so an orchestrator's stop never hangs on a stuck broker; a second signal exits at once.
- SIGHUP: the configuration file is read again (same file, same environment), validated and handed
  to `runner.reload(new)`; thresholds, escalation and roster change without a restart. An invalid
  file is logged with the field it names, and the running configuration stays.

Signal handlers only set flags; the work happens on a helper thread, never inside a handler that
may interrupt the consumer loop mid-batch.

>>> from structlog.testing import capture_logs
>>> class FakeRunner:
...     heartbeat = None
...     def __init__(self): self.reloaded, self.stopped = [], False
...     def readiness(self): return {"group_joined": True}
...     def request_stop(self): self.stopped = True
...     def reload(self, settings): self.reloaded.append(settings); return ["kafka.topic"]
>>> from config.settings import Settings
>>> runner = FakeRunner()
>>> life = Lifecycle(runner, Settings(), None, env={"CRISISD_KAFKA_TOPIC": "v2"})
>>> with capture_logs() as logs:
...     life.reload_now()
True
>>> runner.reloaded[0].kafka.topic, logs[-1]["restart_needed"]
('v2', ['kafka.topic'])
>>> life.env = {"CRISISD_DETECTION_SENSITIVITY": "-1"}
>>> with capture_logs() as logs:
...     life.reload_now()
False
>>> logs[-1]["event"], logs[-1]["error"].startswith("detection.sensitivity:"), len(runner.reloaded)
('configuration reload rejected; keeping the running configuration', True, 1)
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType, TracebackType
from typing import Any, Protocol

import structlog

from config.settings import ConfigError, Settings, load_settings
from daemon.http_server import Heartbeat, HttpServer, InteractionHandler

log = structlog.get_logger(__name__)

WATCHDOG_GRACE_SECONDS = 10.0  # beyond kafka.shutdown_timeout_seconds, before the process is ended


class Runnable(Protocol):
    heartbeat: Any

    def readiness(self) -> Mapping[str, Any]: ...

    def request_stop(self) -> None: ...

    def reload(self, settings: Settings) -> Any: ...


# Sections a reload applies live; everything else (and most of `kafka`, which the runner sorts out) needs
# a restart, and is kept as it was until then.
LIVE_SECTIONS = ("detection", "staffing", "kafka")
LIVE_SLACK_FIELDS = ("escalation",)


def _diff(a: Any, b: Any, path: str) -> list[str]:
    """The dotted names of the fields that differ between two settings (sections)."""
    import msgspec

    if isinstance(a, msgspec.Struct) and type(a) is type(b):
        return [d for f in a.__struct_fields__ for d in _diff(getattr(a, f), getattr(b, f), f"{path}.{f}")]
    return [] if a == b else [path]


def changed_fields(old: Settings, new: Settings) -> list[str]:
    """Every setting a reload changes, by name (`detection.sensitivity`, ...), for the log."""
    return [d for name in Settings.__struct_fields__ for d in _diff(getattr(old, name), getattr(new, name), name)]


def reloadable(old: Settings, new: Settings) -> tuple[Settings, list[str]]:
    """(what a reload may apply, the changed fields that wait for a restart).

    >>> import msgspec
    >>> old = Settings()
    >>> new = msgspec.convert({"windows": {"bucket_seconds": 30}, "detection": {"sensitivity": 2.0},
    ...                        "slack": {"channel": "C0NEW", "escalation": {"repeat": "cycle"}}}, Settings)
    >>> applied, waiting = reloadable(old, new)
    >>> applied.detection.sensitivity, applied.slack.escalation.repeat, applied.windows.bucket_seconds, waiting
    (2.0, 'cycle', 60, ['slack.channel', 'windows.bucket_seconds'])
    """
    import msgspec

    diff = _diff
    waiting: list[str] = []
    kept: dict[str, Any] = {}
    for name in Settings.__struct_fields__:
        if name in LIVE_SECTIONS:
            continue
        before, after = getattr(old, name), getattr(new, name)
        if name == "slack":
            live = {f: getattr(after, f) for f in LIVE_SLACK_FIELDS}
            kept["slack"] = msgspec.structs.replace(before, **live)
            after = msgspec.structs.replace(after, **{f: getattr(before, f) for f in LIVE_SLACK_FIELDS})
        else:
            kept[name] = before
        waiting += diff(before, after, name)
    return msgspec.structs.replace(new, **kept), sorted(waiting)


class Lifecycle:
    """Starts the HTTP server and installs the signal handlers on enter; undoes both on exit.

    `config_path` is the file `crisisd run` was started with (None: `CRISISD_CONFIG` or defaults);
    `env` is the environment a reload reads (default `os.environ`). `interactions` is the Slack
    interactivity handler, or None (the endpoint then answers 404). A `notifier` with a
    `reconfigure(slack_settings)` method gets the new escalation ladder on reload.
    """

    def __init__(
        self,
        runner: Runnable,
        settings: Settings,
        config_path: str | os.PathLike[str] | None,
        *,
        interactions: InteractionHandler | None = None,
        notifier: Any = None,
        env: Mapping[str, str] | None = None,
        on_scrape: Callable[[], None] | None = None,
        exit: Callable[[int], Any] = os._exit,
        watchdog_grace: float = WATCHDOG_GRACE_SECONDS,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier
        self.env = env
        self.exit = exit
        self.watchdog_grace = watchdog_grace
        self.http: HttpServer | None = None
        if getattr(runner, "heartbeat", None) is None:
            runner.heartbeat = Heartbeat(settings.http.liveness_timeout_seconds)
        if settings.http.enabled:
            self.http = HttpServer(
                settings.http.host,
                settings.http.port,
                readiness=runner.readiness,
                liveness=runner.heartbeat if isinstance(runner.heartbeat, Heartbeat) else None,
                interactions=interactions,
                interactions_path=settings.slack.interactions_path,
                on_scrape=on_scrape,
            )
        self._wake = threading.Event()
        self._reload_wanted = False
        self._stop_wanted = False
        self._closed = False
        self._signals = 0
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None
        self._previous: dict[int, Any] = {}

    # -- requests (signal-safe: set flags, wake the helper thread) ------------------------------
    def request_reload(self) -> None:
        self._reload_wanted = True
        self._wake.set()

    def request_stop(self) -> None:
        self._signals += 1
        if self._signals > 1:
            self.exit(130)  # a second signal: the operator insists
            return
        if self.http is not None:
            self.http.draining = True
        self.runner.request_stop()
        self._stop_wanted = True
        self._wake.set()

    # -- work ---------------------------------------------------------------------------------
    def reload_now(self) -> bool:
        """Read, validate and hand over the configuration; False (and the old one kept) if invalid."""
        try:
            loaded = load_settings(self.config_path, env=self.env)
        except ConfigError as exc:
            log.error("configuration reload rejected; keeping the running configuration", error=str(exc))
            return False
        changed = changed_fields(self.settings, loaded)
        new, fixed = reloadable(self.settings, loaded)
        restart_needed = [*fixed, *(self.runner.reload(new) or [])]
        if self.notifier is not None and hasattr(self.notifier, "reconfigure"):
            self.notifier.reconfigure(new.slack)
        self.settings = new
        log.info(
            "configuration reloaded" if changed else "configuration reloaded: nothing changed",
            file=str(self.config_path or ""),
            changed=changed,
            restart_needed=restart_needed,
        )
        return True

    def _arm_watchdog(self) -> None:
        bound = self.settings.kafka.shutdown_timeout_seconds + self.watchdog_grace

        def overrun() -> None:
            log.error("shutdown overran its bound; exiting", bound_seconds=bound)
            sys.stderr.flush()
            self.exit(1)

        self._watchdog = threading.Timer(bound, overrun)
        self._watchdog.daemon = True
        self._watchdog.start()
        log.info("stopping: draining", bound_seconds=self.settings.kafka.shutdown_timeout_seconds)

    def _serve(self) -> None:
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            if self._stop_wanted and self._watchdog is None:
                self._arm_watchdog()
            if self._reload_wanted:
                self._reload_wanted = False
                try:
                    self.reload_now()
                except Exception:
                    log.exception("configuration reload failed; keeping the running configuration")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.request_reload()
        else:
            self.request_stop()

    # -- enter/exit ---------------------------------------------------------------------------
    def __enter__(self) -> Lifecycle:
        # handlers first: a SIGTERM as soon as the probes answer must drain, not kill
        self._thread = threading.Thread(target=self._serve, name="crisisd-lifecycle", daemon=True)
        self._thread.start()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        if self.http is not None:
            try:
                self.http.start()
            except OSError as exc:
                self.__exit__(None, None, None)
                where = f"{self.http.host}:{self.http.requested_port}"
                raise RuntimeError(f"http.port: cannot listen on {where}: {exc.strerror or exc}") from None
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.http is not None:
            self.http.stop()
