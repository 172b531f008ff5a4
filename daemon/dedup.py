"""Bounded memory of recent event ids, to drop duplicate deliveries."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """The last `capacity` distinct ids seen; older ids are forgotten first.

    >>> r = RecentIds(capacity=2)
    >>> r.seen("a"), r.seen("a"), r.seen("b"), r.seen("c"), r.seen("a")
    (False, True, False, False, False)
    """

    __slots__ = ("_ids", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, event_id: str) -> bool:
        """True when `event_id` was seen before; otherwise remember it and return False."""
        ids = self._ids
        if event_id in ids:
            return True
        ids[event_id] = None
        if len(ids) > self.capacity:
            ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)
