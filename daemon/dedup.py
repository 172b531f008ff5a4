"""Bounded memory of recent event ids, to drop duplicate deliveries."""

from __future__ import annotations

from collections import deque
from typing import Any


class RecentIds:
    """The last `capacity` distinct ids seen; older ids are forgotten first.

    A set answers "seen?" and a deque remembers the order to forget in: faster per event and about
    half the memory of an ordered dict. Pickles (checkpoints) as the ids in order, so a snapshot's
    bytes do not depend on the string hash seed; checkpoints of the ordered-dict form still load.

    >>> r = RecentIds(capacity=2)
    >>> r.seen("a"), r.seen("a"), r.seen("b"), r.seen("c"), r.seen("a")
    (False, True, False, False, False)
    """

    __slots__ = ("_ids", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def seen(self, event_id: str) -> bool:
        """True when `event_id` was seen before; otherwise remember it and return False."""
        ids = self._ids
        if event_id in ids:
            return True
        ids.add(event_id)
        order = self._order
        order.append(event_id)
        if len(order) > self.capacity:
            ids.discard(order.popleft())
        return False

    def __len__(self) -> int:
        return len(self._order)

    def __getstate__(self) -> tuple[int, list[str]]:
        return self.capacity, list(self._order)

    def __setstate__(self, state: Any) -> None:
        if state[0] is None:  # the earlier form: (None, {"capacity": n, "_ids": OrderedDict})
            slots = state[1]
            capacity, ordered = slots["capacity"], list(slots["_ids"])
        else:
            capacity, ordered = state
        self.capacity = capacity
        self._order = deque(ordered)
        self._ids = set(ordered)
