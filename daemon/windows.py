"""Event-time tumbling windows per brand, with a watermark and allowed lateness.

Each brand has its own watermark (the largest event time seen for it, minus the allowed lateness),
so a brand's buckets close the same way however brands are spread over Kafka partitions: a replay
and a consumer group produce the same incidents. A bucket [start, start + width) closes once the
watermark passes its end; an event older than the oldest open bucket is *late*: counted, not added.

Brand replies (`author.is_brand`) are not customer mentions: they are counted as `replies` and feed
response figures, never volume or negativity.
"""

from __future__ import annotations

import re
import zlib
from collections import _count_elements  # type: ignore[attr-defined]
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from daemon.author_counts import AuthorCounts
from daemon.enrich import TextScore
from daemon.events import Mention

SAMPLE_CANDIDATES = 8  # per bucket, kept for incident messages
MIN_BUCKET_SECONDS, MAX_BUCKET_SECONDS = 10, 3600  # `windows.bucket_seconds`; `score-series --bucket` too
MAX_SILENCE_SECONDS = 7 * 24 * 3600  # empty buckets emitted for a gap at most this long
# A copy is a text another author posted within the last 5 to 10 event-time minutes: a campaign
# of a few copies a minute spreads over several buckets, and per bucket it would go unseen.
COPY_PERIOD_SECONDS = 300
COPY_MAX_TEXTS = 5_000  # texts remembered per brand and period (bounded memory)
COPY_MIN_WORDS = 3  # "thanks @klm" from many people is not a copy-paste campaign
_AUTHOR_BITS = 0xFFFFFFFF  # an author key is a CRC-32
_HASHTAG = re.compile(r"#([^\W_]+)")


@dataclass(slots=True)
class Sample:
    id: str
    text: str
    url: str | None
    lang: str
    platform: str
    negativity: float
    reach: int
    author_id: str


@dataclass(slots=True)
class Bucket:
    """What one brand did in one window. Counts are customer mentions unless named otherwise."""

    brand: str
    start: float
    seconds: int
    mentions: int = 0  # customer mentions after the per-author cap
    raw_mentions: int = 0  # before the cap
    capped: int = 0  # mentions dropped by the per-author cap (floods, trolls)
    negative: int = 0
    positive: int = 0  # mentions with negativity <= 0.25
    negativity_sum: float = 0.0
    replies: int = 0  # the brand's own replies
    authors: int = 0  # distinct authors in the bucket
    max_author: int = 0  # the most mentions one author made in the bucket (before the cap)
    max_reach: int = 0  # the largest followers + shares among the bucket's mentions
    near_duplicates: int = 0  # mentions whose text another author posted in the last 5-10 minutes (copies)
    top_copies: int = 0  # the most copies one of those texts has had in its 5-minute copy period
    copy_sample: Sample | None = None  # the mention that made them: a campaign's message, to show
    by_lang: dict[str, int] = field(default_factory=dict)
    by_platform: dict[str, int] = field(default_factory=dict)
    by_intent: dict[str, int] = field(default_factory=dict)
    terms: dict[str, int] = field(default_factory=dict)  # counted once per author
    samples: list[Sample] = field(default_factory=list)
    # working set, dropped when the bucket closes
    _authors: dict[str, int] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def negative_share(self) -> float:
        return self.negative / self.mentions if self.mentions else 0.0

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        # by name (a slotted object's pickle); checkpoints before 2026-12 also hold `actionable`,
        # a count nothing read (staffing counts `staffing.actionable_intents` itself), and `_texts`,
        # the bucket's own copy detection (now the brand's, over several buckets)
        self.top_copies, self.copy_sample = 0, None  # not in checkpoints before 2026-12
        for name, value in state[1].items():
            if name not in ("actionable", "_texts"):
                setattr(self, name, value)

    def seal(self) -> Bucket:
        self.authors = len(self._authors)
        self._authors = {}
        return self


class WindowSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `windows:` section of the configuration."""

    bucket_seconds: Annotated[int, msgspec.Meta(ge=MIN_BUCKET_SECONDS, le=MAX_BUCKET_SECONDS)] = 60
    """Width of the event-time buckets every detector sees."""
    allowed_lateness_seconds: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 120
    """How far behind a brand's newest event an event may be and still count; older ones are counted as late."""
    author_cap_per_hour: Annotated[int, msgspec.Meta(ge=1)] = 5
    """One author counts at most this many mentions per brand and event-time hour (troll floods)."""
    max_tracked_authors: Annotated[int, msgspec.Meta(ge=1000)] = 50_000
    """Authors tracked per brand and hour for the cap; beyond it new authors are not capped (bounded memory)."""
    max_terms_per_bucket: Annotated[int, msgspec.Meta(ge=10)] = 2_000
    """Distinct terms kept per bucket for the emerging-topic detector."""


@dataclass(slots=True)
class WindowStats:
    accepted: int = 0
    late: int = 0
    replies: int = 0


class BrandWindows:
    """Open buckets of one brand; `add` returns the buckets its event closed, oldest first.

    Every bucket from the brand's first event on is emitted, empty ones included: a silent minute
    is data for the detectors.
    """

    __slots__ = (
        "_author_hour",
        "_author_hour_start",
        "_copies",
        "_copies_before",
        "_copy_period",
        "_frontier",
        "_open",
        "brand",
        "max_ts",
        "settings",
        "stats",
    )

    def __init__(self, brand: str, settings: WindowSettings) -> None:
        self.brand = brand
        self.settings = settings
        self._open: dict[float, Bucket] = {}
        self._frontier: float | None = None  # start of the oldest bucket not yet closed
        self.max_ts: float | None = None
        self.stats = WindowStats()
        # author -> mentions this event-time hour, keyed by the id's CRC-32 (not the id's string:
        # 8 bytes an author in `AuthorCounts`; the same in every process, so a checkpoint resumes
        # the caps; two authors sharing a key share a cap, rarely and mildly)
        self._author_hour = AuthorCounts()
        self._author_hour_start = 0.0
        # copy detection, this copy period and the one before: text key -> its first author's key
        # and its copies in the period (`_copies_of`)
        self._copies: dict[int, int] = {}
        self._copies_before: dict[int, int] = {}
        self._copy_period = 0.0

    def __setstate__(self, state: tuple[None, dict[str, object]]) -> None:
        """Checkpoints from when the hourly caps were a dict (keyed by the author's id string, later
        by its CRC-32) resume them."""
        self._copies, self._copies_before, self._copy_period = {}, {}, 0.0  # not in checkpoints before 2026-12
        for name, value in state[1].items():
            setattr(self, name, value)
        caps: Any = self._author_hour
        if isinstance(caps, dict):
            self._author_hour = AuthorCounts({_author_key(k) if isinstance(k, str) else k: n for k, n in caps.items()})

    @property
    def watermark(self) -> float | None:
        if self.max_ts is None:
            return None
        return self.max_ts - self.settings.allowed_lateness_seconds

    def add(self, m: Mention, score: TextScore, terms: list[str]) -> list[Bucket]:
        w = self.settings.bucket_seconds
        ts = m.ts
        start = (ts // w) * w
        frontier = self._frontier
        if frontier is None:
            frontier = self._frontier = start
        elif start < frontier:
            self.stats.late += 1
            return []
        b = self._open.get(start)
        if b is None:
            b = self._open[start] = Bucket(self.brand, start, w)
        stats = self.stats
        if m.is_brand:
            stats.replies += 1
            b.replies += 1
        else:
            self._count(b, m, score, terms)
        stats.accepted += 1
        max_ts = self.max_ts
        if max_ts is None or ts > max_ts:
            self.max_ts = ts
            watermark = ts - self.settings.allowed_lateness_seconds
            if frontier + w <= watermark:  # else `close_until` would close nothing
                return self.close_until(watermark)
        return []

    def close_until(self, watermark: float) -> list[Bucket]:
        """Close every bucket that ends at or before `watermark`."""
        out: list[Bucket] = []
        if self._frontier is None:
            return out
        w = self.settings.bucket_seconds
        t = self._frontier
        skip_to = (watermark - MAX_SILENCE_SECONDS) // w * w
        if t < skip_to:
            # A silence longer than a week (or a first event from long ago): emit what was counted,
            # then only the last week of empty buckets, so one event never builds millions of them.
            for start in sorted(k for k in self._open if k < skip_to):
                out.append(self._open.pop(start).seal())
            t = skip_to
        while t + w <= watermark:
            b = self._open.pop(t, None)
            out.append(b.seal() if b is not None else Bucket(self.brand, t, w))
            t += w
        self._frontier = t
        return out

    def flush(self) -> list[Bucket]:
        """End of stream: close everything still open."""
        if not self._open:
            return []
        return self.close_until(max(self._open) + self.settings.bucket_seconds)

    def _count(self, b: Bucket, m: Mention, score: TextScore, terms: list[str]) -> None:
        s = self.settings
        b.raw_mentions += 1
        ts = m.ts
        hour = (ts // 3600) * 3600
        if hour > self._author_hour_start:  # a new event-time hour: caps start again
            self._author_hour = AuthorCounts()
            self._author_hour_start = hour
        cap = s.author_cap_per_hour
        author_id = m.author_id
        author = _author_key(author_id)
        n_hour = self._author_hour.add(author, cap * 4, s.max_tracked_authors)
        in_bucket = b._authors
        n_bucket = in_bucket.get(author_id, 0) + 1
        in_bucket[author_id] = n_bucket
        if n_bucket > b.max_author:
            b.max_author = n_bucket
        if n_hour > cap:
            b.capped += 1
            return
        b.mentions += 1
        negativity = score.negativity
        b.negativity_sum += negativity
        if score.negative:
            b.negative += 1
        elif negativity <= 0.25:
            b.positive += 1
        # A share (retweet) adds to the volume and the mood, but it waits for no reply and is not
        # a copy: in a real crisis half the mentions can be retweets, and counted as near-duplicates
        # they would flag the crisis as a coordinated campaign and cap its severity.
        share = m.is_share
        intent = "share" if share else score.intent
        lang = score.lang
        by = b.by_lang
        by[lang] = by.get(lang, 0) + 1
        by = b.by_platform
        by[m.platform] = by.get(m.platform, 0) + 1
        by = b.by_intent
        by[intent] = by.get(intent, 0) + 1
        reach = (m.followers or 0) + (m.shares or 0)
        if reach > b.max_reach:
            b.max_reach = reach
        key = _copy_key(self.brand, m.text, terms) if terms and not share else 0
        if key:
            copies = self._copies_of(key, author, ts)
            if copies:
                b.near_duplicates += 1
                if copies > b.top_copies:
                    b.top_copies = copies
                    b.copy_sample = _sample(m, score, reach)
        if n_bucket == 1:  # a term counts once per author and bucket: repetition is not a topic
            bt = b.terms
            limit = s.max_terms_per_bucket
            if len(bt) + len(terms) <= limit:
                _count_elements(bt, terms)  # in C, and the same counts: no new term can meet the limit
            else:
                for t in terms:
                    if t in bt:
                        bt[t] += 1
                    elif len(bt) < limit:
                        bt[t] = 1
        _offer_sample(b, m, score, reach)

    def _copies_of(self, key: int, author: int, ts: float) -> int:
        """How many copies of the text of `key` this one makes in the current copy period, 0 when it
        is no copy: nobody else posted it in this period or the one before. Each text remembers its
        first author and this period's copies, as one int (`author | copies << 32`)."""
        period = ts // COPY_PERIOD_SECONDS
        if period > self._copy_period:
            self._copies_before = self._copies if period == self._copy_period + 1 else {}
            self._copies = {}
            self._copy_period = period
        seen = self._copies.get(key)
        if seen is None:
            seen = self._copies_before.get(key)
            if seen is None:
                if len(self._copies) < COPY_MAX_TEXTS:
                    self._copies[key] = author
                return 0
            seen &= _AUTHOR_BITS  # carried into this period with its first author, its copies from 0
        if (seen & _AUTHOR_BITS) == author:
            return 0
        seen += 1 << 32
        if len(self._copies) < COPY_MAX_TEXTS or key in self._copies:
            self._copies[key] = seen
        return seen >> 32


def _copy_key(brand: str, text: str, terms: list[str]) -> int:
    """A text's words (hashtags, handles, links and the brand's own name left out, as copies vary
    those), as a CRC-32; 0 for a text too short to tell a copy from a coincidence.

    >>> words = ["exploits", "crew", "stop", "flying", "klm"]
    >>> a = _copy_key("klm", "@KLM exploits its crew. Stop flying KLM! #boycott", [*words, "boycott"])
    >>> a == _copy_key("klm", "#KLM exploits its crew, stop flying #KLM #fairpay", [*words, "fairpay"]) != 0
    True
    >>> _copy_key("klm", "Thanks @KLM!", ["thanks"])
    0
    """
    tags = set(_HASHTAG.findall(text.lower())) if "#" in text else ()
    words = []
    for t in terms:
        if " " in t:  # the bigrams follow the words
            break
        if t != brand and t not in tags:
            words.append(t)
    if len(words) < COPY_MIN_WORDS:
        return 0
    return zlib.crc32(" ".join(words).encode("utf-8", "surrogatepass"))


def _author_key(author_id: str) -> int:
    return zlib.crc32(author_id.encode("utf-8", "surrogatepass"))


def _offer_sample(b: Bucket, m: Mention, score: TextScore, reach: int) -> None:
    """Keep the bucket's most telling mentions: negative, with reach, one per author."""
    if not m.text:
        return
    weight = _telling(score.negativity, reach)
    samples = b.samples
    if len(samples) >= SAMPLE_CANDIDATES and weight <= sample_weight(samples[-1]):  # the least telling kept
        return
    author_id = m.author_id
    if author_id in [x.author_id for x in samples]:
        return
    samples.append(_sample(m, score, reach))
    samples.sort(key=sample_weight, reverse=True)
    del samples[SAMPLE_CANDIDATES:]


def _sample(m: Mention, score: TextScore, reach: int) -> Sample:
    return Sample(m.id, m.text[:500], m.url, score.lang, m.platform, score.negativity, reach, m.author_id)


def _telling(negativity: float, reach: int) -> float:
    return negativity * (1.0 + min(reach, 100_000) ** 0.25)


def sample_weight(s: Sample) -> float:
    """How telling a sample mention is: negative, and read by many (reach damped)."""
    return _telling(s.negativity, s.reach)
