"""Invalid events: the dead-letter record and the budget that stops a consumer gone wrong.

An invalid event is never retried: it goes to the dead-letter topic with its original key and
bytes, and headers saying why and where it came from (for a re-keyed record, where its producer
sent it and where the re-keyer put it). When *everything* starts failing (the
wrong topic, a new upstream format), dead-lettering the whole topic would hide the problem, so
a budget stops consumption loudly instead: more than `max_ratio` invalid over the last
`window` messages (once `min_messages` are in the window), or `max_consecutive` in a row.

>>> b = DeadLetterBudget(window=10, max_ratio=0.5, min_messages=4, max_consecutive=100)
>>> for ok in (True, False, True, False):
...     b.record(ok)
>>> b.exceeded() is None
True
>>> b.record(False); b.exceeded()
'3 of the last 5 messages invalid (limit 50%)'
>>> c = DeadLetterBudget(window=1000, max_ratio=1.0, min_messages=1000, max_consecutive=3)
>>> for ok in (False, False, False):
...     c.record(ok)
>>> c.exceeded()
'3 invalid messages in a row (limit 3)'
"""

from __future__ import annotations

from collections import deque

HEADER_REASON = "crisisd.reason"
HEADER_DETAIL = "crisisd.detail"
HEADER_TOPIC = "crisisd.source.topic"
HEADER_PARTITION = "crisisd.source.partition"
HEADER_OFFSET = "crisisd.source.offset"
HEADER_TIMESTAMP = "crisisd.source.timestamp"
HEADER_REKEY_TOPIC = "crisisd.rekey.topic"
HEADER_REKEY_PARTITION = "crisisd.rekey.partition"
HEADER_REKEY_OFFSET = "crisisd.rekey.offset"
HEADER_OMITTED = "crisisd.omitted"
"""On a dead letter without the original key and value (its value empty: the dead-letter topic
refused the whole record too): their sizes, e.g. `value 20971520 bytes, key 3 bytes`."""
MAX_DETAIL = 512


def dead_letter_headers(
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp: int | None,
    rekeyed_at: tuple[str, int, int] | None = None,
) -> list[tuple[str, bytes]]:
    """Headers of a dead-letter record; the value and key are the original ones. `topic`,
    `partition`, `offset` (`crisisd.source.*`): the record as its producer sent it; for one read
    from the rekey topic, where the re-keyer read it, and `rekeyed_at` the rekey topic's record
    (`crisisd.rekey.*`).

    >>> dict(dead_letter_headers("not_json", "bad", "mentions", 3, 42, None))["crisisd.source.offset"]
    b'42'
    >>> h = dict(dead_letter_headers("not_json", "bad", "mentions", 3, 42, None, ("by-brand", 1, 7)))
    >>> h["crisisd.source.offset"], h["crisisd.rekey.offset"]
    (b'42', b'7')
    """
    headers = [
        (HEADER_REASON, reason.encode()),
        (HEADER_DETAIL, detail[:MAX_DETAIL].encode("utf-8", "replace")),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
    ]
    if timestamp is not None:
        headers.append((HEADER_TIMESTAMP, str(timestamp).encode()))
    if rekeyed_at is not None:
        rekey_topic, rekey_partition, rekey_offset = rekeyed_at
        headers += [
            (HEADER_REKEY_TOPIC, rekey_topic.encode()),
            (HEADER_REKEY_PARTITION, str(rekey_partition).encode()),
            (HEADER_REKEY_OFFSET, str(rekey_offset).encode()),
        ]
    return headers


class DeadLetterBudget:
    """Sliding-window ratio and consecutive count of invalid messages (memory: `window` flags)."""

    def __init__(self, *, window: int, max_ratio: float, min_messages: int, max_consecutive: int) -> None:
        self.window = window
        self.max_ratio = max_ratio
        self.min_messages = min(min_messages, window)
        self.max_consecutive = max_consecutive
        self._flags: deque[bool] = deque(maxlen=window)
        self._invalid = 0
        self._consecutive = 0

    def record(self, ok: bool) -> None:
        flags = self._flags
        if len(flags) == flags.maxlen and not flags[0]:
            self._invalid -= 1
        flags.append(ok)
        if ok:
            self._consecutive = 0
        else:
            self._invalid += 1
            self._consecutive += 1

    def record_valid(self, n: int) -> None:
        """`n` valid messages at once (the hot path when nothing is wrong)."""
        if n <= 0:
            return
        if self._invalid == 0:
            self._flags.extend([True] * min(n, self.window))
            self._consecutive = 0
            return
        for _ in range(n):
            self.record(True)

    def exceeded(self) -> str | None:
        """Why consumption must stop, or None."""
        if self._consecutive >= self.max_consecutive:
            return f"{self._consecutive} invalid messages in a row (limit {self.max_consecutive})"
        seen = len(self._flags)
        if seen >= self.min_messages and self._invalid > self.max_ratio * seen:
            return f"{self._invalid} of the last {seen} messages invalid (limit {self.max_ratio:.0%})"
        return None
