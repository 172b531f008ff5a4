"""The volume detector's flat state (ring and seasonal factors as arrays of doubles) pickles, and
checkpoints of the older layout (a list of tuples, lists of floats) restore and continue identically."""

from __future__ import annotations

import pickle
from array import array
from typing import Any

from detector_streams import stream

from daemon.windows import Bucket
from detectors.volume import VolumeDetector

_SEASONAL = ("hod", "dow", "_hod_num", "_hod_den", "_dow_num", "_dow_den")


def _buckets() -> list[Bucket]:
    bs = list(stream(5, 2 * 24 * 60, 20.0, dispersion=0.05))
    for b in bs[700:760]:  # a burst: clipped into the ring, firing, protected from learning
        b.mentions *= 4
    return bs


def _run(det: VolumeDetector, bs: list[Bucket]) -> list[Any]:
    out = []
    for b in bs:
        r = det.read(b)
        det.after_score(b, r.score, r)
        out.append((r, det.level, det._sum_o[:], det._sum_e[:]))
    return out


def _old_layout(det: VolumeDetector) -> VolumeDetector:
    """A copy of `det` whose state is in the layout of checkpoints before the arrays."""
    old = object.__new__(VolumeDetector)
    state = dict(det.__dict__)
    ring = state["_ring"]
    state["_ring"] = [(ring[i], ring[i + 1]) for i in range(0, len(ring), 2)]
    for name in _SEASONAL:
        state[name] = list(state[name])
    old.__dict__.update(state)
    return old


def test_ring_is_flat_and_pickle_round_trip_continues_identically() -> None:
    bs = _buckets()
    det = VolumeDetector(seed=0)
    _run(det, bs[:800])
    assert isinstance(det._ring, array) and len(det._ring) == 2 * (max(det._spans) - 1)
    assert all(isinstance(getattr(det, name), array) for name in _SEASONAL)
    clone = pickle.loads(pickle.dumps(det))
    assert clone._ring == det._ring
    # past the running sums' periodic re-summing (every 4096 pushes) too
    assert _run(clone, bs[800:]) == _run(det, bs[800:])


def test_old_layout_checkpoint_restores_and_continues_identically() -> None:
    bs = _buckets()
    ref, det = VolumeDetector(seed=0), VolumeDetector(seed=0)
    _run(ref, bs[:800])
    _run(det, bs[:800])
    old = _old_layout(det)
    assert isinstance(old._ring, list) and isinstance(old._ring[0], tuple)
    restored = pickle.loads(pickle.dumps(old))
    assert isinstance(restored._ring, array) and restored._ring == ref._ring
    assert all(isinstance(getattr(restored, name), array) for name in _SEASONAL)
    assert restored.__dict__ == ref.__dict__  # same doubles everywhere
    assert _run(restored, bs[800:]) == _run(ref, bs[800:])


def test_unconfigured_old_layout_restores() -> None:
    old = _old_layout(VolumeDetector(seed=0))
    assert old._ring == []
    restored = pickle.loads(pickle.dumps(old))
    bs = _buckets()[:300]
    assert _run(restored, bs) == _run(VolumeDetector(seed=0), bs)
