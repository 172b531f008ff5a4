"""Per-brand glue: bucket -> detectors -> incident tracker -> staffing -> notification objects.

The detectors (`detectors/`) and the incident state machine (`daemon/incidents.py`) decide *whether*
and *how bad*; this module turns their verdicts into the public notification object, with the
staffing suggestion and the recent timeline attached.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from daemon.events import Mention
from daemon.notification import (
    NegativityFigures,
    Notification,
    SampleMention,
    Timeline,
    VolumeFigures,
)
from daemon.windows import Bucket

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.enrich import TextScore


def iso(ts: float) -> str:
    """Event time as RFC 3339 UTC, minute precision or finer.

    >>> iso(1271403600.0)
    '2010-04-16T07:40:00Z'
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _ProvisionalIncident:
    __slots__ = ("calm", "id", "opened_at", "peak", "seq", "severity", "started")

    def __init__(self, brand: str, started: float, opened_at: float) -> None:
        self.id = f"{brand}-{datetime.fromtimestamp(started, UTC).strftime('%Y%m%dT%H%MZ')}-volume"
        self.started = started
        self.opened_at = opened_at
        self.seq = 0
        self.calm = 0
        self.peak = 0.0
        self.severity = "sev2"


class BrandDetection:
    """PROVISIONAL detector stand-in until `detectors/` lands: EWMA baseline and a Poisson test."""

    def __init__(self, brand: str, settings: Settings) -> None:
        self.brand = brand
        self.settings = settings
        self.level = 0.0
        self.neg_share = 0.25
        self.n = 0
        self.hot = 0
        self.incident: _ProvisionalIncident | None = None
        self.history: deque[tuple[float, float, float, float, float, float]] = deque(
            maxlen=settings.pipeline.timeline_buckets
        )

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings

    def observe_mention(self, m: Mention, score: TextScore) -> None:
        pass

    def observe_reply(self, m: Mention) -> None:
        pass

    def on_bucket(self, b: Bucket) -> list[Notification]:
        per_hour = 3600.0 / b.seconds
        expected = max(self.level, 0.05)
        upper = expected + 4 * math.sqrt(expected) + 3
        share = b.negative_share
        self.history.append(
            (b.start, b.mentions * per_hour, expected * per_hour, upper * per_hour, share, self.neg_share)
        )
        fire = self.n > 600 and b.mentions > upper and b.mentions >= 10 and b.mentions > 4 * expected
        self.hot = self.hot + 1 if fire else 0
        out: list[Notification] = []
        inc = self.incident
        if inc is None and self.hot >= 2:
            inc = self.incident = _ProvisionalIncident(self.brand, b.start - b.seconds, b.end)
            out.append(self._note("incident.opened", inc, b, expected))
        elif inc is not None:
            inc.peak = max(inc.peak, b.mentions * per_hour)
            inc.calm = 0 if b.mentions > 2 * expected else inc.calm + 1
            if inc.calm >= 60:
                out.append(self._note("incident.resolved", inc, b, expected))
                self.incident = None
        if self.incident is None or not fire:
            self.level = b.mentions if self.n == 0 else self.level + 0.02 * (b.mentions - self.level)
            if b.mentions:
                self.neg_share += 0.01 * (share - self.neg_share)
        self.n += 1
        return out

    def _note(self, kind: str, inc: _ProvisionalIncident, b: Bucket, expected: float) -> Notification:
        per_hour = 3600.0 / b.seconds
        inc.seq += 1
        total = sum(b.by_lang.values()) or 1
        return Notification(
            type=kind,  # type: ignore[arg-type]
            incident_id=inc.id,
            brand=self.brand,
            severity="sev2",
            signals=["volume"],
            started_at=iso(inc.started),
            detected_at=iso(b.end),
            volume=VolumeFigures(
                round(b.mentions * per_hour, 1),
                round(expected * per_hour, 1),
                round(b.mentions / max(expected, 1e-9), 2),
            ),
            negativity=NegativityFigures(round(b.negative_share, 3), round(self.neg_share, 3)),
            top_terms=sorted(b.terms, key=lambda t: (-b.terms[t], t))[:5],
            languages={k: round(v / total, 3) for k, v in sorted(b.by_lang.items())},
            sample_mentions=[SampleMention(s.id, s.text, s.url, s.lang, s.platform) for s in b.samples[:3]],
            seq=inc.seq,
            timeline=self._timeline(b),
        )

    def _timeline(self, b: Bucket) -> Timeline:
        h = list(self.history)
        return Timeline(
            start=iso(h[0][0]),
            bucket_seconds=b.seconds,
            observed_per_hour=[round(x[1], 1) for x in h],
            expected_per_hour=[round(x[2], 1) for x in h],
            upper_per_hour=[round(x[3], 1) for x in h],
            negativity_share=[round(x[4], 3) for x in h],
            baseline_negativity_share=[round(x[5], 3) for x in h],
        )
