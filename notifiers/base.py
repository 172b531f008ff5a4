"""The notifier interface.

A notifier receives every notification of every incident, in order per incident. `send`
returns a `Delivery`: done, retry later (with a hint), or failed for good: the caller
(an outbox) owns retries, so a notifier never sleeps on the caller's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from daemon.notification import Notification


@dataclass(frozen=True)
class Delivery:
    ok: bool
    retry: bool = False
    retry_after: float | None = None
    error: str = ""

    @classmethod
    def done(cls) -> Delivery:
        return cls(ok=True)


class Notifier(Protocol):
    def send(self, notification: Notification) -> Delivery: ...

    def close(self) -> None: ...
