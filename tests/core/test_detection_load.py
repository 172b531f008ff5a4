"""The staffing load of a brand's detection: what it keeps of closed buckets, and old checkpoints."""

from __future__ import annotations

import pickle

from config.settings import load_settings
from daemon.detection import BrandDetection
from daemon.incidents import IncidentChange
from daemon.windows import Bucket


def _bucket(start: float, twitter: int, facebook: int) -> Bucket:
    return Bucket(
        "klm",
        start,
        60,
        mentions=twitter + facebook,
        by_platform={"twitter": twitter, "facebook": facebook},
        by_intent={"complaint": twitter, "praise": facebook},
        terms={"ash": 3},
    )


def _change(at: float) -> IncidentChange:
    return IncidentChange(
        type="opened",
        incident_id="klm-1",
        brand="klm",
        seq=1,
        severity="sev2",
        signals=("volume",),
        flags=(),
        started_at=at - 600,
        detected_at=at,
        at=at,
        observed_per_hour=900.0,
        expected_per_hour=100.0,
        upper_per_hour=200.0,
        ratio=9.0,
        negativity_share=0.7,
        baseline_share=0.25,
        top_terms=("ash",),
        languages={"en": 0.8, "nl": 0.2},
        samples=(),
        peak_per_hour=900.0,
        mentions=150,
        negative=105,
        replies=0,
    )


def test_recent_mix_keeps_counts_not_terms() -> None:
    d = BrandDetection("klm", load_settings(env={}))
    for i in range(20):
        d.on_bucket(_bucket(60.0 * i, twitter=i, facebook=2))
    assert len(d.recent) == 15
    last = d.recent[-1]
    assert last.by_platform == {"twitter": 19, "facebook": 2} and last.seconds == 60
    assert not hasattr(last, "terms")  # a closed bucket's terms and samples are not kept
    load = d._load(_change(1200.0), d.responses.figures(1200.0))
    assert sum(load.mentions_per_hour.values()) == 900.0


def test_checkpoint_with_old_bucket_mixes_gives_the_same_load() -> None:
    """Checkpoints written before `_Mix` hold sealed Buckets in `recent`: they still work."""
    settings = load_settings(env={})
    d = BrandDetection("klm", settings)
    for i in range(20):
        d.on_bucket(_bucket(60.0 * i, twitter=i, facebook=2))
    expected = d._load(_change(1200.0), d.responses.figures(1200.0))
    old = pickle.loads(pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL))
    old.recent.clear()
    for i in range(5, 20):
        b = _bucket(60.0 * i, twitter=i, facebook=2)
        old.recent.append(Bucket(b.brand, b.start, b.seconds, by_platform=b.by_platform, by_intent=b.by_intent))
    assert old._load(_change(1200.0), d.responses.figures(1200.0)) == expected
    again = pickle.loads(pickle.dumps(d, protocol=pickle.HIGHEST_PROTOCOL))  # _Mix pickles
    assert again._load(_change(1200.0), again.responses.figures(1200.0)) == expected
