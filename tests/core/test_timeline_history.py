"""The per-brand timeline history: a bounded ring of rows that pickles, and reads old checkpoints."""

from __future__ import annotations

import pickle
from collections import deque

from config.settings import Settings
from daemon.detection import BrandDetection, History


def row(i: int) -> tuple[float, ...]:
    return (1_271_396_400.0 + 60 * i, 10.5 * i, 3.25, 7.0, 0.125, 0.1)


def test_keeps_the_newest_rows_in_order_and_round_trips() -> None:
    h = History(3)
    for i in range(5):
        h.append(row(i))
    assert len(h) == 3
    assert h.last(2) == [row(3), row(4)]
    assert h.last(10) == [row(2), row(3), row(4)]
    back = pickle.loads(pickle.dumps(h))
    assert back.maxlen == 3 and back.last(3) == h.last(3)


def test_a_checkpoint_with_the_old_deque_of_tuples_still_restores() -> None:
    old = BrandDetection("klm", Settings())
    state = dict(old.__dict__)
    state["history"] = deque([row(0), row(1)], maxlen=180)
    restored = BrandDetection.__new__(BrandDetection)
    restored.__setstate__(state)
    assert isinstance(restored.history, History)
    assert restored.history.maxlen == 180 and restored.history.last(5) == [row(0), row(1)]
