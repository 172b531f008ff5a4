"""The topic detector's readings on a replayed stream are those recorded before its heavy-hitter
table changed layout: firing, top terms and their order, and the table exactly; scores and
surprises within 1 % (or 0.01 and 0.05), since the sketch's cells became 16-bit steps rounded
at random (float32 cells gave the recorded figures).

The stream has a recurring vocabulary, new terms arriving all along, two bursts of new words and
a burst of a usual word; with `candidates` 16 the table is pruned to its heaviest terms, and 600
buckets rescale the stored values (every 400 minutes with a 10-minute window).

To re-record (only for an intended change of the readings): `python tests/detectors/test_topic_replay.py`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from daemon.windows import Bucket
from detectors.settings import TopicSettings
from detectors.topic import TopicDetector

EXPECTED = Path(__file__).with_name("topic_replay_expected.json")
SETTINGS = {
    "default": TopicSettings(grace_hours=1),
    "pruned": TopicSettings(grace_hours=1, sketch_width=256, candidates=16),
}


def _stream(seed: int, n: int) -> list[Bucket]:
    rng = random.Random(seed)
    usual = [f"u{i}" for i in range(40)]
    out = []
    for i in range(n):
        terms: dict[str, int] = {}
        for _ in range(rng.randint(0, 12)):
            term = usual[min(int(rng.expovariate(0.15)), len(usual) - 1)]  # a few frequent words
            terms[term] = terms.get(term, 0) + 1
        for _ in range(rng.randint(0, 3)):  # new words all along, most never seen again
            terms[f"n{rng.randrange(3000)}"] = rng.randint(1, 2)
        if 200 <= i < 212:  # a new topic
            terms.update(volcano=6 + i % 5, ash=4 + i % 3, cloud=3)
        if 330 <= i < 336:  # a usual word surges
            terms["u3"] = 25
        if 450 <= i < 470:  # another new topic, slower
            terms.update(strike=2 + (i - 450) // 2, pilots=1 + (i - 450) // 3)
        authors = sum(terms.values()) + rng.randint(0, 5)
        out.append(Bucket("acme", 1_700_000_000.0 + i * 60.0, 60, mentions=authors, authors=authors, terms=terms))
    return out


def _replay(settings: TopicSettings) -> dict[str, Any]:
    det = TopicDetector(settings, seed=0)
    readings = []
    for b in _stream(7, 600):
        r = det.read(b)
        readings.append([r.score, r.surprise, r.firing, list(r.top_terms), r.warm])
        det.after_score(b, r.score)
    return {"readings": readings, "table": sorted(det._recent.items())}


def test_readings_are_those_recorded() -> None:
    expected = json.loads(EXPECTED.read_text())
    for name, settings in SETTINGS.items():
        got = json.loads(json.dumps(_replay(settings)))  # the same float -> text round trip
        assert len(got["readings"]) == len(expected[name]["readings"])
        for k, (g, e) in enumerate(zip(got["readings"], expected[name]["readings"], strict=True)):
            assert g[2:] == e[2:], (name, k)  # firing, top terms, warm
            assert g[0] == pytest.approx(e[0], rel=0.01, abs=0.01), (name, k)
            assert g[1] == pytest.approx(e[1], rel=0.01, abs=0.05), (name, k)
        assert got["table"] == expected[name]["table"], name
    # the stream exercises what it should: topics fire, and terms are reported
    assert any(r[2] for r in expected["pruned"]["readings"])
    assert any(r[3] for r in expected["default"]["readings"])


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps({name: _replay(s) for name, s in SETTINGS.items()}, separators=(",", ":")) + "\n")
