"""The console notifier: prints what the Slack message will say, as plain text.

It shares `notifiers.render` with the Slack notifier, so `crisisd demo` shows the manager's view.
`LogNotifier` says the same as one log record, for `crisisd run --json`, whose stderr is read by
a log shipper that expects one JSON object per line.

>>> import io
>>> from daemon.notification import Notification, NegativityFigures, VolumeFigures
>>> out = io.StringIO()
>>> ConsoleNotifier(out).send(Notification(type="incident.opened", incident_id="i1", brand="klm",
...     severity="sev2", signals=["volume"], started_at="t0", detected_at="t1",
...     volume=VolumeFigures(900, 300, 3.0), negativity=NegativityFigures(0.5, 0.2))).ok
True
>>> print(out.getvalue().splitlines()[0])
== incident.opened i1 #1 ==
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

import structlog

from daemon.notification import Notification
from notifiers.base import Delivery
from notifiers.render import as_text, render, thread_text


class ConsoleNotifier:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> Delivery:
        n = notification
        text = f"== {n.type} {n.incident_id} #{n.seq} ==\n{as_text(render(n))}\n  thread: {thread_text(n)}\n"
        with self._lock:
            self._stream.write(text)
            self._stream.flush()
        return Delivery.done()

    def close(self) -> None:
        with self._lock:
            self._stream.flush()


class LogNotifier:
    """Each message as one `notification delivered` log record (the text in `message`), rendered
    like every other log line: JSON in a container, readable on a terminal."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("notifiers.console")

    def send(self, notification: Notification) -> Delivery:
        n = notification
        self._log.info(
            "notification delivered",
            type=n.type,
            incident_id=n.incident_id,
            seq=n.seq,
            brand=n.brand,
            severity=n.severity,
            message=as_text(render(n)),
            thread=thread_text(n),
        )
        return Delivery.done()

    def close(self) -> None:
        pass
