"""The shared check suite, applied to every detector (as river does for its estimators)."""

from __future__ import annotations

import pickle

import pytest
from detector_streams import stream

from detectors.brand import BrandDetector
from detectors.negativity import NegativityDetector
from detectors.settings import DetectionSettings, NegativitySettings, TopicSettings, VolumeSettings
from detectors.topic import TopicDetector
from detectors.volume import VolumeDetector

FACTORIES = {
    "volume": lambda: VolumeDetector(VolumeSettings(grace_hours=2), seed=1),
    "negativity": lambda: NegativityDetector(NegativitySettings(grace_mentions=200), seed=1),
    "topic": lambda: TopicDetector(TopicSettings(grace_hours=1), seed=1),
}


def _buckets(n: int = 600):
    out = []
    for i, b in enumerate(stream(7, n)):
        b.terms = {"flight": max(1, b.mentions // 4), "bag": 1}
        if i > n - 60:  # a crisis at the end: scores must rise and stay in range
            b.mentions *= 5
            b.negative = int(b.mentions * 0.7)
            b.terms["ash"] = 12
        out.append(b)
    return out


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_scores_in_range_and_warm_up(name: str) -> None:
    det = FACTORIES[name]()
    scores = [det.update(b) for b in _buckets()]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == 0.0  # grace period
    assert max(scores[-60:]) > 0.5  # the crisis fires


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_pickle_round_trip_continues_identically(name: str) -> None:
    bs = _buckets()
    det = FACTORIES[name]()
    for b in bs[:400]:
        det.update(b)
    clone = pickle.loads(pickle.dumps(det))
    assert [det.update(b) for b in bs[400:]] == [clone.update(b) for b in bs[400:]]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_deterministic(name: str) -> None:
    a, b = FACTORIES[name](), FACTORIES[name]()
    assert [a.update(x) for x in _buckets()] == [b.update(x) for x in _buckets()]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_score_one_has_no_side_effect(name: str) -> None:
    bs = _buckets()
    det = FACTORIES[name]()
    for b in bs[:300]:
        det.update(b)
    before = pickle.dumps(det)
    det.score_one(bs[300])
    assert pickle.dumps(det) == before


def test_brand_detector_pickles_mid_stream() -> None:
    bs = _buckets()
    det = BrandDetector(DetectionSettings(), seed=3)
    for b in bs[:500]:
        det.update(b)
    clone = pickle.loads(pickle.dumps(det))
    assert [det.update(b) for b in bs[500:]] == [clone.update(b) for b in bs[500:]]


def test_brand_detector_resumes_a_checkpoint_with_the_deque_of_duplicates_a_set_of_flags_and_no_mood() -> None:
    from collections import deque

    bs = _buckets()
    det = BrandDetector(DetectionSettings(), seed=3)
    for b in bs[:500]:
        det.update(b)
    old = pickle.loads(pickle.dumps(det))
    flat = list(old._dups)
    old._dups = deque((tuple(flat[i : i + 3]) for i in range(0, len(flat), 3)), maxlen=5)  # the earlier layout
    old._sticky = set(old._sticky)
    del old._run_mentions, old._run_negative  # before the anomaly's mood was counted (quiet here: 0)
    clone = pickle.loads(pickle.dumps(old))
    assert [det.update(b) for b in bs[500:]] == [clone.update(b) for b in bs[500:]]
