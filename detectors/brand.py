"""Per-brand composite: volume + negativity + topic, the distractor flags and a severity.

`BrandDetector(settings, seed).update(bucket) -> Assessment` once per closed bucket of the brand, in
event-time order. Severity rules (see `detectors.settings.SeveritySettings` for their meaning):

- volume with negativity (or with an emerging topic while the negative share is up): sev1 when the
  volume ratio reaches `sev1_ratio`, else sev2;
- volume alone: sev2 when the ratio reaches `sev2_volume_ratio` and the negative share is not
  below baseline, else sev3;
- negativity alone (flat volume): sev2 when the share rose by `sev2_negativity_delta`, else sev3;
- topic alone: sev3;
- flagged distractors are capped at `flags.flag_max_severity`: a positive spike (negative share
  well below baseline: a campaign), a coordinated campaign (near-identical texts from many
  accounts), a viral post (one mention with huge reach in the last hour) unless negativity follows.

>>> from daemon.windows import Bucket
>>> det = BrandDetector(DetectionSettings(), seed=1)
>>> a = det.update(Bucket("klm", 0.0, 60, mentions=10, negative=2))
>>> a.severity is None, a.signals, a.warm
(True, (), False)
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any

from daemon.windows import Bucket, Sample
from detectors.negativity import NegativityDetector, NegativityReading
from detectors.settings import DetectionSettings, Severity
from detectors.topic import TopicDetector, TopicReading
from detectors.volume import VolumeDetector, VolumeReading

SIGNALS = ("volume", "negativity", "topic")
_MIN_DUPLICATES = 10
_NO_FLAGS: frozenset[str] = frozenset()  # one object for every brand without a sticky flag (216 bytes each)
_LOAD_SECONDS = 900  # the load is averaged over a quarter hour (a staffing interval)...
_LOAD_RISE_SECONDS = 180  # ...or over the last three minutes when those are busier
_DUP_BUCKETS = 5  # buckets over which near duplicates are weighed against the excess volume
_ONE_TEXT_SHARE = 0.4  # a campaign is one message: its most-copied text makes this share of the copies
# ...and its anomaly's elevated buckets are mostly copies: a campaign's measure 0.5-0.8 of their
# excess (the first post of each text in each copy period is no copy), the simulated ash crisis's
# alike texts 0.30-0.32
_RUN_COPY_SHARE = 0.4
_LASTING_SECONDS = 1800  # an anomaly that brought this much of the usual volume is counted through quiet minutes
_COPY_DECAY = 0.999  # per quiet bucket: the usual copy rate remembers about the last 1,000 (17 h of minutes)
_SEV_RANK = {"sev3": 1, "sev2": 2, "sev1": 3}
_POSITIVE_Z = 2.0  # standard errors by which an anomaly's negative share must fall short to be "positive"


def severity_rank(sev: Severity | None) -> int:
    """0 for none, 1 for sev3 ... 3 for sev1 (higher = more severe)."""
    return _SEV_RANK.get(sev, 0) if sev else 0


@dataclass(slots=True, frozen=True)
class Assessment:
    """What the brand's detectors concluded about one closed bucket."""

    brand: str
    start: float  # bucket start, epoch seconds (event time)
    end: float  # bucket end = when the assessment was possible
    seconds: int
    volume: VolumeReading
    negativity: NegativityReading
    topic: TopicReading
    signals: tuple[str, ...]  # firing signals, in SIGNALS order
    severity: Severity | None  # None when no signal fires
    flags: tuple[str, ...]  # "positive", "coordinated", "viral", "troll"
    score: float  # the strongest signal's score in [0, 1] (0.5 = firing)
    quiet: bool  # every signal below its hysteresis level (close_fraction x threshold)
    elevated_since: float | None  # start of the run of elevated buckets this one belongs to
    mentions: int
    negative: int
    replies: int
    observed_per_hour: float = 0.0  # current load: mentions per hour, smoothed over a few buckets
    by_lang: dict[str, int] = field(default_factory=dict)
    samples: tuple[Sample, ...] = ()
    top_copies: int = 0  # the bucket's most-copied text: its copies in its copy period, and one of them
    copy_sample: Sample | None = None

    @property
    def warm(self) -> bool:
        return self.volume.warm

    @property
    def expected_per_hour(self) -> float:
        """This bucket's expectation, per hour."""
        return self.volume.expected / self.seconds * 3600

    @property
    def upper_per_hour(self) -> float:
        return self.volume.upper / self.seconds * 3600

    @property
    def ratio(self) -> float:
        """Current load over expectation."""
        return self.observed_per_hour / self.expected_per_hour if self.expected_per_hour > 0 else 0.0

    @property
    def top_terms(self) -> tuple[str, ...]:
        return self.topic.top_terms


class BrandDetector:
    """All detectors of one brand, their flags and severity. Pickles (checkpoints)."""

    def __init__(self, settings: DetectionSettings | None = None, seed: int = 0, brand: str | None = None) -> None:
        self.base_settings = settings or DetectionSettings()
        self.seed = seed
        self.brand = brand
        self.settings: DetectionSettings | None = None
        self.volume: VolumeDetector | None = None
        self.negativity: NegativityDetector | None = None
        self.topic: TopicDetector | None = None
        # the last `_DUP_BUCKETS` buckets' (near duplicates, mentions, expected), oldest first, as
        # one flat array of doubles (~180 bytes, where a deque of tuples took ~1 KB a brand)
        self._dups = array("d")
        self._tops = array("d")  # the same buckets' `top_copies`
        # copies and mentions of quiet buckets, decayed: the brand's usual copy rate (quotes,
        # templates, its own customers' stock phrases), which a campaign must exceed
        self._usual_copies = 0.0
        self._usual_mentions = 0.0
        self._viral_until = float("-inf")
        self._elevated_since: float | None = None
        self._counts = array("d")  # the last quarter hour's bucket counts, oldest first: the load
        self._sticky = _NO_FLAGS
        # mentions and negative ones of the current anomaly's buckets (0 while quiet): its mood
        self._run_mentions = 0
        self._run_negative = 0
        # copies beyond the usual ones and mentions over expectation in the anomaly's elevated
        # buckets: is the anomaly as a whole made of copies? Once it has brought half an hour's
        # worth of the brand's usual mentions (`_LASTING_SECONDS`) they are kept through quiet
        # buckets until the brand has been quiet as long as an incident takes to resolve
        # (`_quiet_buckets` in a row): a crisis's tail has quiet minutes, and counted afresh after
        # each its copies would be judged by minutes. A smaller anomaly starts afresh after a quiet
        # bucket, as the mood does, and quiet buckets add nothing: a morning's scattered busy
        # minutes are not part of the campaign that follows them.
        self._run_copies = 0.0
        self._run_excess = 0.0
        self._quiet_buckets = 0
        if brand is not None:
            self._build(brand)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints from when `_dups` was a deque of (duplicates, mentions, expected) and the
        sticky flags a set resume them."""
        dups = state.get("_dups")
        if not isinstance(dups, array):
            state["_dups"] = array("d", [float(x) for row in dups or () for x in row])
        state["_sticky"] = frozenset(state.get("_sticky", ())) or _NO_FLAGS  # a set before
        state.setdefault("_run_mentions", 0)  # older checkpoints: the mood is counted from here on
        state.setdefault("_run_negative", 0)
        state.setdefault("_run_copies", 0.0)  # older checkpoints: the anomaly's copies are counted from here on
        state.setdefault("_run_excess", 0.0)
        state.setdefault("_quiet_buckets", 0)
        state.pop("_load", None)  # the load was an EWMA before; it starts afresh from the counts
        state.setdefault("_counts", array("d"))
        state.setdefault("_tops", array("d"))  # older checkpoints: from here on
        state.setdefault("_usual_copies", 0.0)  # older checkpoints: the usual copy rate is learned from here on
        state.setdefault("_usual_mentions", 0.0)
        self.__dict__.update(state)

    @property
    def _neg_threshold(self) -> float:
        return self.negativity.threshold if self.negativity else 0.0

    @property
    def _topic_threshold(self) -> float:
        return self.topic.threshold if self.topic else 0.0

    def _build(self, brand: str) -> None:
        self.brand = brand
        s = self.settings = self.base_settings.for_brand(brand)
        self.volume = VolumeDetector(s.volume, s.sensitivity, self.seed)
        self.negativity = NegativityDetector(s.negativity, s.sensitivity, self.seed)
        self.topic = TopicDetector(s.topic, s.sensitivity, self.seed)

    def update(self, bucket: Bucket) -> Assessment:
        """Score the bucket, learn from it (anomalies kept out), and assess it."""
        if self.settings is None:
            self._build(bucket.brand)
        s, vol, neg, top = self.settings, self.volume, self.negativity, self.topic
        assert s is not None and vol is not None and neg is not None and top is not None
        v = vol.read(bucket)
        n = neg.read(bucket)
        t = top.read(bucket)
        vol.after_score(bucket, v.score, v)
        # a burst of mentions (a crisis, a campaign, a viral share) is not the brand's usual mix of
        # moods either: a praise campaign learned into the baseline made ordinary days look angry
        neg.after_score(bucket, max(n.score, v.score))
        top.after_score(bucket, t.score)
        return self._assess(bucket, v, n, t)

    def _assess(self, b: Bucket, v: VolumeReading, n: NegativityReading, t: TopicReading) -> Assessment:
        s = self.settings
        assert s is not None
        f = s.flags
        sev_s = s.severity
        firing = {"volume": v.firing, "negativity": n.firing, "topic": t.firing}
        # Two signals each short of their threshold can be jointly significant (Fisher's method):
        # more mentions *and* a higher negative share is stronger evidence than either alone.
        pairs = (("volume", v.surprise, v.threshold), ("negativity", n.surprise, self._neg_threshold),
                 ("topic", t.surprise, self._topic_threshold))  # fmt: skip
        for i, (a_name, a_sur, a_thr) in enumerate(pairs):
            for b_name, b_sur, b_thr in pairs[i + 1 :]:
                if a_sur >= a_thr / 3 and b_sur >= b_thr / 3 and fisher(a_sur, b_sur) >= max(a_thr, b_thr):
                    firing[a_name] = firing[b_name] = True
        signals = tuple(name for name in SIGNALS if firing[name])
        v_fire, n_fire, t_fire = firing["volume"], firing["negativity"], firing["topic"]
        close = s.incidents.close_fraction
        quiet = (
            v.surprise < close * v.threshold
            and n.surprise < close * self._neg_threshold
            and t.surprise < close * self._topic_threshold
        )
        # flags
        dups = self._dups
        if len(dups) >= 3 * _DUP_BUCKETS:
            del dups[:3]
        dups.extend((b.near_duplicates, b.mentions, v.expected))
        tops = self._tops
        if len(tops) >= _DUP_BUCKETS:
            del tops[0]
        tops.append(b.top_copies)
        dup = sum(dups[0::3])
        total = sum(dups[1::3])
        excess = total - sum(dups[2::3])
        if b.max_reach >= f.viral_reach:
            self._viral_until = b.start + 3600
        share = b.negative_share if b.mentions else 0.0
        self._run_mentions += b.mentions
        self._run_negative += b.negative
        usual = self._usual_copies / self._usual_mentions if self._usual_mentions else 0.0
        if not quiet:
            self._run_copies += b.near_duplicates - usual * b.mentions
            self._run_excess += b.mentions - v.expected
        # more mentions, or a new topic, in a happier mood: a campaign. The mood is the whole
        # anomaly's, and its shortfall must be significant: one calm minute of a crisis (3 of 8
        # negative) is noise, and the flag would silence the crisis for the rest of its run.
        happy = self._happier(n.baseline, f.positive_margin)
        found: set[str] = set()
        if (v_fire or t_fire) and happy:
            found.add("positive")
        # copies beyond the brand's usual ones, the spike mostly made of them, and they are copies of
        # one message (a few variants at most): a crisis's alike texts spread over many. The whole
        # anomaly must be mostly copies too: hours into a crisis, when its volume is back near
        # normal, five minutes of its stock phrases ("all flights cancelled") can pass the first
        # three by chance, and the flag would then say "campaign" about a customer crisis.
        copies = dup - usual * total
        run_is_copies = self._run_copies >= _RUN_COPY_SHARE * self._run_excess
        if (
            excess >= _MIN_DUPLICATES
            and copies >= f.coordinated_share * excess
            and max(tops) >= _ONE_TEXT_SHARE * copies
            and run_is_copies
        ):
            found.add("coordinated")
        if b.start <= self._viral_until:
            found.add("viral")
        if b.capped and b.capped >= b.mentions:
            found.add("troll")
        # a flag holds for the rest of the anomaly it explained (its long spans fire on)
        if found - self._sticky and not quiet:  # a quiet bucket explains no anomaly (its flags would say so)
            self._sticky = self._sticky | found
        if "coordinated" in self._sticky and not run_is_copies:
            self._sticky = self._sticky - {"coordinated"}  # the anomaly outgrew its copies: not a campaign
        if n_fire and "viral" in self._sticky:
            self._sticky = self._sticky - {"viral"}  # negativity followed the viral post: a real problem
        if not happy and "positive" in self._sticky:
            self._sticky = self._sticky - {"positive"}  # the anomaly's mood turned: not a campaign after all
        flags = sorted(self._sticky & {"positive", "coordinated", "viral", "troll"})
        # severity
        sev: Severity | None = None
        neg_up = share >= n.baseline + s.negativity.min_delta / 2
        if v_fire and (n_fire or (t_fire and neg_up)):
            sev = "sev1" if v.ratio >= sev_s.sev1_ratio else "sev2"
        elif v_fire:
            positive = "positive" in flags
            sev = "sev2" if v.ratio >= sev_s.sev2_volume_ratio and not positive else "sev3"
        elif n_fire:
            sev = "sev2" if n.share - n.baseline >= sev_s.sev2_negativity_delta else "sev3"
        elif t_fire:
            sev = "sev3"
        # each flag caps the severity, and the strictest cap holds: the brand's own promotion is
        # positive *and* near-identical posts, and must not page as a coordinated campaign just
        # because a bucket's raw severity happened to pass the coordinated cap
        caps: list[Severity | None] = []
        if "coordinated" in flags:
            caps.append(f.flag_max_severity)
        if {"positive", "viral"}.intersection(flags):
            caps.append(None if f.campaign_max_severity == "none" else f.campaign_max_severity)
        if sev and caps:
            cap = min(caps, key=severity_rank)
            if severity_rank(sev) > severity_rank(cap):
                sev = cap
        score = max(v.score, n.score, t.score)
        if quiet:
            self._usual_copies = self._usual_copies * _COPY_DECAY + b.near_duplicates
            self._usual_mentions = self._usual_mentions * _COPY_DECAY + b.mentions
            self._elevated_since = None
            self._sticky = _NO_FLAGS
            self._run_mentions = self._run_negative = 0
            self._quiet_buckets += 1
            lasting = self._run_excess >= v.expected * _LASTING_SECONDS / b.seconds
            if not lasting or self._quiet_buckets * b.seconds >= s.incidents.quiet_minutes * 60:
                self._run_copies = self._run_excess = 0.0
        else:
            self._quiet_buckets = 0
            if self._elevated_since is None:
                # the anomaly began where the firing span began
                span = max(v.span_buckets if v.surprise > 0 else 1, 1)
                self._elevated_since = b.start - (span - 1) * b.seconds
        load = self._observe_load(b)
        return Assessment(
            brand=b.brand,
            start=b.start,
            end=b.end,
            seconds=b.seconds,
            volume=v,
            negativity=n,
            topic=t,
            signals=signals,
            severity=sev,
            flags=tuple(flags),
            score=score,
            quiet=quiet,
            elevated_since=self._elevated_since,
            mentions=b.mentions,
            negative=b.negative,
            replies=b.replies,
            observed_per_hour=load,
            by_lang=dict(b.by_lang),
            samples=tuple(b.samples),
            top_copies=b.top_copies,
            copy_sample=b.copy_sample,
        )

    def _observe_load(self, b: Bucket) -> float:
        """The current load in mentions per hour: the last quarter hour's mean, or the last three
        minutes' when higher. A surge shows within three minutes (staffing must see it at once), and
        the figure people read, staff for and are updated on does not swing with each minute of a
        crisis's bursts (minutes at 3,000-9,000/h around a 5,500/h plateau) nor drop with one calm one.
        """
        counts = self._counts
        keep = max(1, round(_LOAD_SECONDS / b.seconds))
        if len(counts) >= keep:
            del counts[: len(counts) - keep + 1]
        counts.append(b.mentions)
        fast = counts[-max(1, round(_LOAD_RISE_SECONDS / b.seconds)) :]
        return max(sum(counts) / len(counts), sum(fast) / len(fast)) / b.seconds * 3600

    def _happier(self, baseline: float, margin: float) -> bool:
        """Is the current anomaly's negative share `margin` below baseline, beyond chance?"""
        n = self._run_mentions
        if not n:
            return False
        short = baseline - self._run_negative / n
        return short >= margin and short >= _POSITIVE_Z * math.sqrt(baseline * (1.0 - baseline) / n)


def fisher(s1: float, s2: float) -> float:
    """Surprise of two independent surprises combined (Fisher: -2 sum ln p ~ chi2 with 4 df).

    >>> round(fisher(4.0, 4.0), 2), round(fisher(6.0, 0.0), 2)
    (6.71, 4.83)
    """
    x = (s1 + s2) * math.log(10)  # = chi2 / 2
    return max(0.0, (s1 + s2) - math.log10(1.0 + x))
