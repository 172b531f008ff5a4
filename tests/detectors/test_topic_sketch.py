"""The topic detector's count-min sketch: lazy, small for a small vocabulary, never underestimating."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from daemon.windows import Bucket
from detectors.settings import TopicSettings
from detectors.topic import TopicDetector, _start_width, _term_hash


def _bucket(i: int, terms: dict[str, int]) -> Bucket:
    return Bucket("acme", i * 60.0, 60, mentions=max(1, sum(terms.values())), terms=terms)


def test_no_sketch_until_terms_and_a_small_one_for_a_small_vocabulary() -> None:
    det = TopicDetector(TopicSettings(), seed=0)
    for i in range(30):
        det.update(Bucket("acme", i * 60.0, 60, mentions=3))
    assert det._sketch is None  # a brand without text costs no sketch
    for i in range(30, 200):
        det.update(_bucket(i, {"flight": 2, "bag": 1, "refund": 1}))
    assert det._sketch is not None and det._sketch.dtype == np.uint16
    assert det._sketch.shape == (TopicSettings().sketch_depth, 64)


def test_the_sketch_doubles_with_the_vocabulary_and_never_underestimates() -> None:
    det = TopicDetector(TopicSettings(sketch_width=1024, baseline_half_life_hours=1e6), seed=0)
    truth: dict[str, int] = {}
    widths = []
    for i in range(300):
        terms = {f"w{(i * 7 + k) % 900}": 1 + k % 3 for k in range(6)}
        for t, n in terms.items():
            truth[t] = truth.get(t, 0) + n
        det.learn_one(_bucket(i, terms))
        assert det._sketch is not None
        widths.append(det._sketch.shape[1])
    assert widths[0] == 64 and widths[-1] == 1024 and widths == sorted(widths)
    names = sorted(truth)
    est = det._estimates(names)
    scale = np.exp((299 * 60.0 - det._t_ref) / det._tau)  # values are stored scaled by exp(t / tau)
    assert np.all(est >= np.array([truth[t] for t in names]) * scale * (1 - 1e-5))


def test_start_width() -> None:
    assert _start_width(1024) == 64 and _start_width(128) == 64 and _start_width(100) == 100
    assert _start_width(96) == 96 and _start_width(192) == 96


def test_term_hashes_are_the_same_in_every_process() -> None:
    # keyed blake2b, never Python's randomised hash(): a replay elsewhere learns the same sketch
    assert _term_hash((0).to_bytes(8, "little", signed=True), "volcano") == 11577767611321514464


def test_a_checkpoint_of_the_older_full_float64_sketch_still_reads() -> None:
    det = TopicDetector(TopicSettings(grace_hours=1), seed=0)
    for i in range(180):
        det.update(_bucket(i, {"flight": 3, "bag": 1}))
    state = dict(det.__dict__)
    old = np.zeros((len(det._sketch), 1024))  # the older layout: float64, full width from the start
    old[:, :64] = det._sketch
    for k in range(1, 16):
        old[:, 64 * k : 64 * (k + 1)] = det._sketch
    state["_sketch"] = old
    del state["_pruned_at"]
    restored = TopicDetector.__new__(TopicDetector)
    restored.__setstate__(state)
    b = _bucket(181, {"flight": 3, "ash": 8, "volcano": 6})
    assert restored.read(b).top_terms == det.read(b).top_terms
    assert pickle.loads(pickle.dumps(restored)).read(b) == restored.read(b)


def test_sixteen_bit_cells_follow_counts_far_beyond_65535_steps() -> None:
    det = TopicDetector(TopicSettings(baseline_half_life_hours=1e6), seed=0)
    truth = {"the": 0, "flight": 0, "rare": 0}
    for i in range(400):
        terms = {"the": 5_000, "flight": 700 + i % 7, "rare": 1 if i % 10 == 0 else 0}
        terms = {t: n for t, n in terms.items() if n}
        for t, n in terms.items():
            truth[t] += n
        det.learn_one(_bucket(i, terms))
    assert det._sketch is not None and det._sketch.dtype == np.uint16
    assert det._unit > 1.0  # coarsened many times over: 2 million authors of "the"
    est = dict(zip(truth, det._estimates(list(truth)).tolist(), strict=True))
    assert est["the"] == pytest.approx(truth["the"], rel=1e-3)
    assert est["flight"] == pytest.approx(truth["flight"], rel=1e-2)
    assert est["rare"] <= truth["rare"] + 2 * det._unit  # a step or two of rounding, no more
    again = TopicDetector(TopicSettings(baseline_half_life_hours=1e6), seed=0)
    again.__setstate__(pickle.loads(pickle.dumps(det)).__getstate__())
    assert np.array_equal(again._sketch, det._sketch) and again._unit == det._unit
