"""The per-brand timeline history: a bounded ring of rows that pickles, keeps the starts exact and
the figures in float32, and reads old checkpoints."""

from __future__ import annotations

import pickle
import random
from array import array
from collections import deque

import numpy as np

from config.settings import Settings
from daemon.detection import BrandDetection, History


def row(i: int) -> tuple[float, ...]:
    """A row whose figures float32 holds exactly."""
    return (1_271_396_400.0 + 60 * i, 10.5 * i, 3.25, 7.0, 0.125, 0.375)


def test_keeps_the_newest_rows_in_order_and_round_trips() -> None:
    h = History(3)
    for i in range(5):
        h.append(row(i))
    assert len(h) == 3
    assert h.last(2) == [row(3), row(4)]
    assert h.last(10) == [row(2), row(3), row(4)]
    back = pickle.loads(pickle.dumps(h))
    assert back.maxlen == 3 and back.last(3) == h.last(3)
    assert History(5).last(5) == []


def test_figures_are_float32_and_a_regular_timeline_keeps_one_run() -> None:
    h = History(180)
    for i in range(500):
        h.append((1_700_000_000.0 + 60 * i, 1234.5678 * i, 0.1, 1e6 / 7, 1 / 3, 0.2))
    got = np.array(h.last(180))
    want = np.array([(1_700_000_000.0 + 60 * i, 1234.5678 * i, 0.1, 1e6 / 7, 1 / 3, 0.2) for i in range(320, 500)])
    assert np.array_equal(got[:, 0], want[:, 0])  # starts exact
    assert np.array_equal(got[:, 1:], want[:, 1:].astype(np.float32).astype(np.float64))
    assert h.values.typecode == "f" and len(h.runs) == 3  # one run: first row, start, step


def test_starts_stay_exact_through_gaps_new_steps_and_odd_values() -> None:
    rng = random.Random(3)
    for maxlen in (1, 2, 7, 40):
        h, want = History(maxlen), deque[float](maxlen=maxlen)
        t, step = 1_271_396_400.0, 60.0
        for k in range(600):
            r = rng.random()
            if r < 0.03:
                t += rng.choice([8 * 86400.0, 1e-3, -120.0, 0.1])  # a gap, a tiny one, back, inexact
            elif r < 0.06:
                step = rng.choice([60.0, 300.0, 0.1, 1 / 3])
            t += step
            h.append((t, float(k), 0.0, 0.0, 0.0, 0.0))
            want.append(t)
            assert [x[0] for x in h.last(maxlen)] == list(want)
            assert [x[1] for x in h.last(maxlen)] == [float(x) for x in range(k - len(want) + 1, k + 1)]
            if k % 50 == 0:
                h = pickle.loads(pickle.dumps(h))
        assert len(h.runs) <= 3 * maxlen


def test_a_checkpoint_with_six_doubles_per_row_still_restores() -> None:
    rows = [(1_271_396_400.0 + 60 * i, 1000.1 * i, 3.3, 7.7, 0.1234, 0.1) for i in range(200)]
    old = array("d", [x for r in rows[-180:] for x in r])  # the layout before float32 and runs
    h = History.__new__(History)
    h.__setstate__((180, old.tobytes()))
    assert h.maxlen == 180 and len(h) == 180
    got = h.last(180)
    assert [r[0] for r in got] == [r[0] for r in rows[-180:]]
    assert np.array_equal(np.array(got)[:, 1:], np.array(rows[-180:])[:, 1:].astype(np.float32).astype(np.float64))
    h.append(row(0))
    assert len(h) == 180 and h.last(1) == [row(0)]


def test_a_checkpoint_with_the_old_deque_of_tuples_still_restores() -> None:
    old = BrandDetection("klm", Settings())
    state = dict(old.__dict__)
    state["history"] = deque([row(0), row(1)], maxlen=180)
    restored = BrandDetection.__new__(BrandDetection)
    restored.__setstate__(state)
    assert isinstance(restored.history, History)
    assert restored.history.maxlen == 180 and restored.history.last(5) == [row(0), row(1)]
