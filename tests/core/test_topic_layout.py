"""The topic detector's heavy-hitter table (a list of terms and an array of doubles, where it was a
dict of floats, then a dict from term to position and the array): checkpoints of both older layouts
restore and resume exactly, and pickles round-trip."""

from __future__ import annotations

import pickle
import random
import sys
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from daemon.windows import Bucket
from detectors.settings import TopicSettings
from detectors.topic import TopicDetector


def _buckets(seed: int, n: int, vocabulary: int, per_bucket: int) -> list[Bucket]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(0, per_bucket)
        terms = {f"w{rng.randrange(vocabulary)}": rng.randint(1, 4) for _ in range(k)}
        if i % 97 > 90:  # bursts of one term: a topic to find
            terms["ash"] = 12
        out.append(Bucket("acme", i * 60.0, 60, mentions=sum(terms.values()) + rng.randint(0, 3), terms=terms))
    return out


def _dict_layout(det: TopicDetector) -> dict[str, Any]:
    """The oldest layout: `_recent`, term -> stored value."""
    state = dict(det.__dict__)
    state["_recent"] = dict(det._recent)
    del state["_terms"], state["_values"]
    return state


def _index_layout(det: TopicDetector) -> dict[str, Any]:
    """The layout before the list of terms: `_index`, term -> position in `_values` (built in
    reverse order, so that only the positions say where each term's value is)."""
    state = dict(det.__dict__)
    terms = state.pop("_terms")
    state["_index"] = {t: i for i, t in reversed(list(enumerate(terms)))}
    state["_values"] = array("d", det._values)
    return state


@pytest.mark.parametrize("layout", [_dict_layout, _index_layout])
def test_a_checkpoint_of_an_older_table_resumes_exactly(layout: Callable[[TopicDetector], dict[str, Any]]) -> None:
    # candidates 16: the table is pruned to the heaviest (> 32 terms) and of faded terms once per
    # window; 700 buckets rescale the stored values (every 400 minutes with a 10-minute window)
    settings = TopicSettings(grace_hours=1, sketch_width=512, candidates=16)
    buckets = _buckets(5, 700, 500, 20)
    det = TopicDetector(settings, seed=0)
    for b in buckets[:150]:
        det.update(b)
    old = TopicDetector.__new__(TopicDetector)
    old.__setstate__(pickle.loads(pickle.dumps(layout(det))))  # unpickled terms are copies
    assert old._recent == det._recent and list(old._recent) == list(det._recent)
    assert all(a is b for a, b in zip(old._terms, det._terms, strict=True))  # interned again
    fired = 0
    for k, b in enumerate(buckets[150:]):
        r = det.read(b)
        assert old.read(b) == r
        fired += r.firing
        det.update(b)
        old.update(b)
        if k % 100 == 0:
            det = pickle.loads(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
    assert old._sketch is not None and det._sketch is not None
    assert fired and old._recent == det._recent and np.array_equal(old._sketch, det._sketch)
    assert len(det._terms) == len(det._values) <= 2 * settings.candidates


def test_the_table_holds_no_float_object_and_no_dict() -> None:
    det = TopicDetector(TopicSettings(), seed=0)
    det.update(Bucket("acme", 0.0, 60, mentions=3, terms={"ash": 2, "cloud": 1}))
    det.update(Bucket("acme", 60.0, 60, mentions=3, terms={"ash": 1, "volcano": 1}))
    assert det._values.typecode == "d" and det._terms == ["ash", "cloud", "volcano"]
    assert det._recent["ash"] > det._recent["cloud"] > 0
    assert not any(isinstance(v, dict) for v in vars(det).values())  # no per-brand dict kept
    assert all(t is sys.intern(t) for t in det._terms)
