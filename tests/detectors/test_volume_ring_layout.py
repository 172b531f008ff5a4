"""The volume detector's flat state (ring, seasonal factors and per-span figures as arrays) pickles,
and checkpoints of the older layouts (an instance dict; a list of tuples, lists of floats, the
scored sums as a tuple) restore and continue identically."""

from __future__ import annotations

import math
import pickle
import sys
from array import array
from typing import Any

from detector_streams import stream
from old_pickles import OldCheckpoint

from daemon.windows import Bucket
from detectors.volume import VolumeDetector

_SEASONAL = ("dow", "_hod_num", "_hod_den", "_dow_num", "_dow_den")


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


def _old_layout(det: VolumeDetector) -> dict[str, Any]:
    """The state of `det` in the layout of checkpoints before the arrays (an instance dict)."""
    state = det.__getstate__()
    ring = state["_ring"]
    state["_ring"] = [(ring[i], ring[i + 1]) for i in range(0, len(ring), 2)]
    for name in (*_SEASONAL, "_e2", "_m2", "_sum_o", "_sum_e", "_spans"):
        state[name] = list(state[name])
    state["hod"] = [det._hour_factor(h) for h in range(24)]  # stored then
    totals = state.pop("_totals")
    if len(totals) and not math.isnan(totals[0]):
        state["_totals"] = (totals[0], [(totals[i], totals[i + 1]) for i in range(1, len(totals), 2)])
    else:
        state["_totals"] = None
    if not det.bucket_seconds:
        del state["max_protect_buckets"]  # the class default until configured
    return state


def _restore(state: dict[str, Any]) -> VolumeDetector:
    det = pickle.loads(pickle.dumps(OldCheckpoint(VolumeDetector, state)))
    assert isinstance(det, VolumeDetector)
    return det


def test_ring_is_flat_and_pickle_round_trip_continues_identically() -> None:
    bs = _buckets()
    det = VolumeDetector(seed=0)
    _run(det, bs[:800])
    assert isinstance(det._ring, array) and len(det._ring) == 2 * (max(det._spans) - 1)
    assert all(isinstance(getattr(det, name), array) for name in _SEASONAL)
    clone = pickle.loads(pickle.dumps(det))
    assert clone._ring == det._ring
    assert sys.getsizeof(clone._ring) == sys.getsizeof(det._ring)  # restored without spare room
    # past the running sums' periodic re-summing (every 4096 pushes) too
    assert _run(clone, bs[800:]) == _run(det, bs[800:])


def test_old_layout_checkpoint_restores_and_continues_identically() -> None:
    bs = _buckets()
    ref, det = VolumeDetector(seed=0), VolumeDetector(seed=0)
    _run(ref, bs[:800])
    _run(det, bs[:800])
    old = _old_layout(det)
    assert isinstance(old["_ring"], list) and isinstance(old["_ring"][0], tuple)
    restored = _restore(old)
    assert isinstance(restored._ring, array) and restored._ring == ref._ring
    assert all(isinstance(getattr(restored, name), array) for name in _SEASONAL)
    assert restored.__getstate__() == ref.__getstate__()  # same doubles everywhere
    assert _run(restored, bs[800:]) == _run(ref, bs[800:])


def test_unconfigured_old_layout_restores() -> None:
    old = _old_layout(VolumeDetector(seed=0))
    assert old["_ring"] == [] and old["_totals"] is None and "max_protect_buckets" not in old
    restored = _restore(old)
    bs = _buckets()[:300]
    assert _run(restored, bs) == _run(VolumeDetector(seed=0), bs)


def _ring_sums(det: VolumeDetector) -> list[tuple[float, float]]:
    """Each span's sums of its stored (observed, expected), exactly (fsum)."""
    ring, size = det._ring, len(det._ring) // 2
    out = []
    for span in det._spans:
        slots = [2 * ((det._head - 1 - i) % size) for i in range(min(span - 1, det._filled))]
        out.append((math.fsum(ring[i] for i in slots), math.fsum(ring[i + 1] for i in slots)))
    return out


def test_float32_ring_and_its_running_sums_do_not_drift_apart() -> None:
    det = VolumeDetector(seed=0)
    for n, b in enumerate(_buckets()):
        r = det.read(b)
        det.after_score(b, r.score, r)
        if n % 97 == 0 or 700 <= n < 760:
            assert list(zip(det._sum_o, det._sum_e, strict=True)) == _ring_sums(det)
    assert det._ring.typecode == "f" and det._pushes < 4096  # the periodic re-summing never ran
