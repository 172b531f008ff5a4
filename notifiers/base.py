"""The notifier interface.

A notifier receives every notification of every incident, in order per incident. `send`
returns a `Delivery`: done, retry later (with a hint), or failed for good: the caller
(an outbox) owns retries, so a notifier never sleeps on the caller's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from daemon.notification import Notification

CAUGHT_UP_SECONDS = 1800.0
"""How far behind the wall clock crisisd may be and still be current. A Kafka partition is caught up
when everything in it has been read, or when the newest event read from it is at most this old (a
busy partition is rarely read to its very last message); until then crisisd is replaying history and
an incident's first page waits. Half an hour, not minutes: a crisis that puts crisisd a few minutes
behind (its volume outruns the replicas) is hours long and still on, and its page must not wait for
the backlog it causes; a backlog of hours after an outage is history."""

LATE_POST_SECONDS = 600.0
"""A notification that reaches Slack more than this long after its event time says so."""

Standing = Literal["open", "behind", "over"]
"""What the daemon knows of an incident now (`Runner.incident_standing`): `open` (its stream is read
up to the present and its resolution has not come), `behind` (crisisd is still catching up with
its stream: the incident may be over already), `over` (its resolution has been handed in)."""


@dataclass(frozen=True)
class Delivery:
    ok: bool
    retry: bool = False
    retry_after: float | None = None
    error: str = ""
    paced: bool = False
    """Held back to keep to a rate (the notifier's own pacing, or a wait the receiver asked for and
    that is still running): expected in a burst, so logged as information, not as a failure."""

    @classmethod
    def done(cls) -> Delivery:
        return cls(ok=True)


class Notifier(Protocol):
    def send(self, notification: Notification) -> Delivery: ...

    def close(self) -> None: ...
