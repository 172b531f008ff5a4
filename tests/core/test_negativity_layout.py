"""The negativity detector's recent buckets (running totals in two int64 rings, where they were a
deque of (negative, mentions) pairs): readings match the plain sums, and checkpoints of the deque
layout restore and resume exactly."""

from __future__ import annotations

import pickle
import random
from collections import deque

from daemon.windows import Bucket
from detectors.negativity import NegativityDetector
from detectors.settings import NegativitySettings


def _buckets(seed: int, n: int) -> list[Bucket]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        mentions = rng.randint(0, 40)
        negative = rng.randint(0, mentions) if i % 211 > 200 else rng.randint(0, mentions // 4)
        out.append(Bucket("acme", i * 60.0, 60, mentions=mentions, negative=negative))
    return out


def test_span_sums_are_the_plain_sums_of_the_last_buckets() -> None:
    det = NegativityDetector(NegativitySettings(grace_mentions=50))
    pairs: list[tuple[int, int]] = []
    for b in _buckets(1, 300):
        det.update(b)
        pairs.append((b.negative, b.mentions))
        for m in (1, 5, 30, 60, 500):
            tail = pairs[-min(m, max(det._spans)) :]
            assert det._last(m) == (sum(k for k, _ in tail), sum(n for _, n in tail))


def test_a_checkpoint_of_the_deque_layout_resumes_exactly() -> None:
    buckets = _buckets(7, 900)
    det = NegativityDetector(NegativitySettings(grace_mentions=50))
    for b in buckets[:400]:
        det.update(b)
    longest = max(det._spans)
    state = {k: v for k, v in det.__getstate__().items() if not k.startswith(("_ring", "_cum", "_head", "_stored"))}
    state["_recent"] = deque(((b.negative, b.mentions) for b in buckets[400 - longest : 400]), maxlen=longest)
    old = NegativityDetector.__new__(NegativityDetector)
    old.__setstate__(state)
    fired = False
    for b in buckets[400:]:
        a, o = det.read(b), old.read(b)
        assert a == o
        fired |= a.firing
        det.update(b)
        old.update(b)
    assert fired  # the comparison covered firing readings too
    back = pickle.loads(pickle.dumps(det))
    assert back.read(buckets[-1]) == det.read(buckets[-1])
