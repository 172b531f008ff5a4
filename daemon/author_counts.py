"""Mentions per author in one event-time hour, for the per-author cap: exact and compact.

A brand with a hundred authors an hour held a dict of a hundred int keys (~4 KB, a quarter of it
the table's slack); at 10,000 brands that is 40 MB for a count that is 1 for nearly everyone.
Here the authors live in two parts: the few seen since the last merge in a small dict, the rest
in a sorted array of 32-bit keys with an array of counts beside it (8 bytes an author), found by
binary search. The dict is merged into the arrays when it outgrows a quarter of them (at least
`_FRESH_MAX` authors), so lookups stay O(log n) and the amortised merge cost O(log n) per author.

>>> c = AuthorCounts()
>>> [c.add(k) for k in (7, 7, 9, 7)]
[1, 2, 1, 3]
>>> len(c), c.get(7), c.get(8)
(2, 3, 0)
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

import numpy as np

_FRESH_MAX = 16  # authors kept in the dict before a merge, at least


class AuthorCounts:
    """Author key (a 32-bit int) -> mentions counted; `add` counts one more and returns the total.

    Counts stop growing at `limit` (what the cap needs to know is only "over it"); once `capacity`
    authors are tracked, new authors are not (bounded memory) and `add` returns 1 for them.
    Pickles as (keys, counts) bytes.
    """

    __slots__ = ("_counts", "_fresh", "_keys")

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self._keys = array("I")  # sorted
        self._counts = array("I")
        self._fresh: dict[int, int] = dict(counts or {})
        if len(self._fresh) > _FRESH_MAX:
            self._merge()

    def __len__(self) -> int:
        return len(self._keys) + len(self._fresh)

    def get(self, key: int) -> int:
        n = self._fresh.get(key)
        if n is not None:
            return n
        keys = self._keys
        i = bisect_left(keys, key)
        return self._counts[i] if i < len(keys) and keys[i] == key else 0

    def add(self, key: int, limit: int = 1 << 31, capacity: int = 1 << 31) -> int:
        """Count one more mention of `key` (kept up to `limit`); the new total."""
        fresh = self._fresh
        n = fresh.get(key)
        if n is not None:
            n += 1
            if n <= limit:
                fresh[key] = n
            return n
        keys = self._keys
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            n = self._counts[i] + 1
            if n <= limit:
                self._counts[i] = n
            return n
        if len(keys) + len(fresh) < capacity:
            fresh[key] = 1
            if len(fresh) > max(_FRESH_MAX, len(keys) // 4):
                self._merge()
        return 1

    def _merge(self) -> None:
        """Fold the dict into the sorted arrays (its keys are not in them: `add` checks first)."""
        fresh = self._fresh
        if not fresh:
            return
        keys = np.concatenate((np.frombuffer(self._keys, np.uint32), np.fromiter(fresh, np.uint32, len(fresh))))
        counts = np.concatenate(
            (np.frombuffer(self._counts, np.uint32), np.fromiter(fresh.values(), np.uint32, len(fresh)))
        )
        order = np.argsort(keys, kind="stable")
        self._keys = array("I", keys[order].tobytes())
        self._counts = array("I", counts[order].tobytes())
        self._fresh = {}

    def __getstate__(self) -> tuple[bytes, bytes]:
        self._merge()
        return self._keys.tobytes(), self._counts.tobytes()

    def __setstate__(self, state: Any) -> None:
        self._keys, self._counts, self._fresh = array("I"), array("I"), {}
        self._keys.frombytes(state[0])
        self._counts.frombytes(state[1])
