"""The processing pipeline for one stream (a replay file or one Kafka partition).

    source -> decode -> dedup -> enrich -> window -> detect -> incident -> staffing -> notification

Everything here runs in event time, so a replay of the same input gives byte-identical
notifications. All state lives in this object and pickles: `snapshot()` is the checkpoint that
the Kafka runner writes to its changelog, `restore()` brings it back on another replica.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from config.settings import Settings
from daemon import detection
from daemon.dedup import RecentIds
from daemon.enrich import TextScore, TextScorer
from daemon.enrich.language import SOUTH_SLAVIC, SouthSlavicMix, normalise
from daemon.events import InvalidEvent, Mention, decode
from daemon.notification import Notification
from daemon.windows import BrandWindows, Bucket

SNAPSHOT_VERSION = 1


@dataclass(slots=True)
class PipelineStats:
    consumed: int = 0
    valid: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    duplicate: int = 0
    late: int = 0
    replies: int = 0
    buckets: int = 0
    notifications: int = 0

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())


class Processed(msgspec.Struct):
    """What became of one message. A struct, not a dataclass: one is made per message, and its
    constructor runs in C."""

    notifications: list[Notification]
    invalid: InvalidEvent | None = None


class BrandState:
    """Everything the pipeline knows about one brand."""

    __slots__ = ("brand", "detection", "mentions", "replies", "scorer", "south_slavic", "windows")

    def __init__(self, brand: str, settings: Settings) -> None:
        self.brand = brand
        self.windows = BrandWindows(brand, settings.windows)
        self.detection = detection.BrandDetection(brand, settings)
        self.mentions = 0
        self.replies = 0
        self.scorer: TextScorer | None = None  # the brand's own learning scorer, once it sends sentiment
        self.south_slavic = SouthSlavicMix()  # which of sr/hr/bs the brand's tagged events are

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        """Checkpoints from before `south_slavic` restore with an empty mix."""
        self.south_slavic = SouthSlavicMix()
        for name, value in state[1].items():
            setattr(self, name, value)


class Pipeline:
    def __init__(
        self, settings: Settings, scorer: TextScorer | None = None, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.wall_clock = wall_clock  # only to refuse events from the future: detection runs in event time
        self.scorer = scorer or TextScorer()
        self.stats = PipelineStats()
        self.brands: dict[str, BrandState] = {}
        self.recent = RecentIds(settings.pipeline.dedup_capacity)
        self.max_ts: float | None = None  # the stream's newest event time

    # -- input -------------------------------------------------------------------------------
    def process(self, raw: bytes | str | None) -> Processed:
        """Decode and process one message; invalid input is reported, never raised."""
        self.stats.consumed += 1
        event = decode(raw)
        if isinstance(event, InvalidEvent):
            return self._invalid(event)
        p = self.settings.pipeline
        ts = event.ts
        limit = p.max_future_seconds
        max_ts = self.max_ts
        if max_ts is not None and ts > max_ts + limit:
            # reported like a decoding failure, so the runner dead-letters it with the reason
            detail = f"created_at is more than {limit}s ahead of the stream"
            return self._invalid(InvalidEvent("too_far_in_future", detail))
        ahead = p.max_ahead_of_clock_seconds
        if ahead and ts > self.wall_clock() + ahead:
            detail = f"created_at is more than {ahead}s ahead of this machine's clock"
            return self._invalid(InvalidEvent("too_far_in_future", detail))
        brands = self.brands
        if event.brand not in brands and len(brands) >= p.max_brands:
            detail = f"brand {event.brand[:60]!r} would be one more than the {p.max_brands} of pipeline.max_brands"
            return self._invalid(InvalidEvent("too_many_brands", detail))
        return Processed(self.process_mention(event))

    def reject(self, event: InvalidEvent) -> Processed:
        """A message refused before decoding (a replay line too long to read): counted like one
        the decoder refused."""
        self.stats.consumed += 1
        return self._invalid(event)

    def process_mention(self, m: Mention) -> list[Notification]:
        """A decoded event already within the future limit (`process` checks it)."""
        stats = self.stats
        if self.recent.seen(m.id):
            stats.duplicate += 1
            return []
        stats.valid += 1
        ts = m.ts
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        state = self.brands.get(m.brand)
        if state is None:
            state = self.brands[m.brand] = BrandState(m.brand, self.settings)
        if m.is_brand:
            stats.replies += 1
            state.replies += 1
            score = _REPLY_SCORE
            terms: list[str] = []
            state.detection.observe_reply(m)
        else:
            state.mentions += 1
            score, terms = self._enrich(state, m)
            state.detection.observe_mention(m, score)
        windows = state.windows
        counted = windows.stats
        late_before = counted.late
        closed = windows.add(m, score, terms)
        if counted.late != late_before:
            stats.late += 1
        return self._detect(state, closed) if closed else []

    def flush(self) -> list[Notification]:
        """End of a finite stream: close every open bucket and detect over it."""
        out: list[Notification] = []
        for brand in sorted(self.brands):
            state = self.brands[brand]
            out.extend(self._detect(state, state.windows.flush()))
        return out

    # -- stages ------------------------------------------------------------------------------
    def _invalid(self, event: InvalidEvent) -> Processed:
        self.stats.invalid[event.reason] = self.stats.invalid.get(event.reason, 0) + 1
        return Processed([], event)

    def _enrich(self, state: BrandState, m: Mention) -> tuple[TextScore, list[str]]:
        if m.sentiment is not None and state.scorer is None:
            # this brand's stream carries upstream scores: give it a scorer of its own that learns
            # its vocabulary (per brand, so replay and any partitioning learn the same thing)
            state.scorer = TextScorer()
        scorer = state.scorer or self.scorer
        mix = state.south_slavic
        score, terms = scorer.analyze(m.text, m.lang, mix.prior())  # the prior serves detection only
        if m.lang and score.lang in SOUTH_SLAVIC and normalise(m.lang) == score.lang:
            mix.observe(score.lang)  # the source said so: the brand's mix for its untagged texts
        if m.sentiment is not None:
            # an upstream score wins, and teaches the brand's scorer
            scorer.learn(m.text, score.lang, m.sentiment)
            score = TextScore(score.lang, (1.0 - m.sentiment) / 2.0, m.sentiment < 0, score.intent)
        return score, terms

    def _detect(self, state: BrandState, closed: list[Bucket]) -> list[Notification]:
        out: list[Notification] = []
        for bucket in closed:
            self.stats.buckets += 1
            out.extend(state.detection.on_bucket(bucket))
        self.stats.notifications += len(out)
        return out

    # -- checkpoints -------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        state = (SNAPSHOT_VERSION, self.scorer, self.stats, self.brands, self.recent, self.max_ts)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, settings: Settings, blob: bytes, wall_clock: Callable[[], float] = time.time) -> Pipeline:
        version, scorer, stats, brands, recent, max_ts = pickle.loads(blob)
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"checkpoint version {version} is not {SNAPSHOT_VERSION}")
        p = cls(settings, scorer, wall_clock)
        p.stats, p.brands, p.recent, p.max_ts = stats, brands, recent, max_ts
        for state in brands.values():
            state.detection.reconfigure(settings)
        return p


_REPLY_SCORE = TextScore("und", 0.0, False, "other")
