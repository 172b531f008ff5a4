"""The negativity detector's running totals are kept modulo 2^32 in its rings: span sums stay exact
when the totals pass 2^32, and checkpoints with int64 rings (any totals) restore into them."""

from __future__ import annotations

import pickle
from array import array

from detector_streams import stream

from daemon.windows import Bucket
from detectors.negativity import NegativityDetector, NegativityReading
from detectors.settings import NegativitySettings

_SETTINGS = NegativitySettings(grace_mentions=50)
_PAST_2_32 = 5_000_000_000


def _buckets() -> list[Bucket]:
    bs = list(stream(9, 600, 30.0, neg_share=0.25))
    for b in bs[450:480]:  # a negative burst: the comparisons cover firing readings
        b.negative = int(b.mentions * 0.7)
    return bs


def _run(det: NegativityDetector, bs: list[Bucket]) -> list[tuple[NegativityReading, list[tuple[int, int]]]]:
    out = []
    for b in bs:
        r = det.read(b)
        det.after_score(b, r.score)
        out.append((r, [det._last(m) for m in (1, 7, 60, 500)]))
    return out


def test_span_sums_are_exact_when_the_running_totals_pass_2_32() -> None:
    bs = _buckets()
    ref, big = NegativityDetector(_SETTINGS), NegativityDetector(_SETTINGS)
    ref.read(bs[0])  # configured: the rings exist
    big.read(bs[0])
    # as if 2^32 - 1000 mentions, all negative, had come before: wraps within a few minutes
    big._cum_k = big._cum_n = big._ring_k[big._head] = big._ring_n[big._head] = 2**32 - 1000
    out = _run(big, bs)
    assert big._cum_n > 2**32
    assert out == _run(ref, bs)
    assert any(r.firing for r, _ in out)


def test_a_checkpoint_with_int64_rings_past_2_32_restores_exactly() -> None:
    bs = _buckets()
    ref = NegativityDetector(_SETTINGS)
    _run(ref, bs[:400])
    old = ref.__getstate__()  # the layout before: int64 rings of the plain totals, lists of floats
    old["_cum_k"] += _PAST_2_32
    old["_cum_n"] += _PAST_2_32
    for name in ("_ring_k", "_ring_n"):
        old[name] = array("q", [v + _PAST_2_32 for v in old[name]])
    for name in ("_v1", "_v2", "_spans"):
        old[name] = list(old[name])
    restored = NegativityDetector.__new__(NegativityDetector)
    restored.__setstate__(old)
    assert restored._ring_k.itemsize == 4
    assert _run(restored, bs[400:]) == _run(ref, bs[400:])
    back = pickle.loads(pickle.dumps(restored))
    assert back.__getstate__() == restored.__getstate__()
