"""The console notifier: prints what the Slack message will say, as plain text.

It shares `notifiers.render` with the Slack notifier, so `crisisd demo` shows the manager's view.

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
