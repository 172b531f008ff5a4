"""The incident state machine: open -> updated -> resolved, per brand, in event time.

One crisis is one incident:

- *open* when a signal has fired for `open_buckets` consecutive buckets (two by default: a burst
  gone by the next bucket is not a crisis) and is either corroborated by a second firing signal
  (volume with negativity or an emerging topic) or has stayed elevated `confirm_minutes` of event
  time after it first fired (a lone signal: one viral repost or a bot's flush is gone within
  minutes, whatever the bucket width), or at once when a signal's surprise reaches `instant_factor` times its
  firing level;
  the incident combines every signal that fires while it is open (volume, negativity, topic) and
  its id names the first: ``<brand>-<YYYYMMDDTHHMM>Z-<signal>`` from `started_at`;
- *updated* only when something a responder acts on changes: severity escalates (never
  de-escalates while open: no flapping), a new signal joins, or the hourly load moved by
  `load_change` since the last notification, and so (found downstream, `pending_update`) has the
  staffing suggestion: at most every `min_update_minutes`, and every `watch_update_minutes` for a
  sev3 watch;
- *resolved* after `quiet_minutes` in which every signal stayed below its hysteresis level
  (`close_fraction` of its threshold: firing and quiet are different levels);
- *cool-down*: for `cooldown_minutes` after the brand's last anomaly, a relapse is the tail of the
  same trouble and extends the cool-down, unless it is more severe than the incident resolved (opens
  at once), as severe and lasting `confirm_minutes` (the crisis is back), or lasting `cooldown_minutes`
  whatever its severity (no tail lasts that long).

`started_at` is the start of the run of elevated buckets the incident grew from, `detected_at` the
close (event time) of the bucket that opened it, so a replay gives the same ids and times.

>>> from daemon.windows import Bucket
>>> from detectors.brand import BrandDetector
>>> det, tr = BrandDetector(seed=0), IncidentTracker()
>>> changes = []
>>> for i in range(2000):
...     n = 30 if 1500 <= i < 1530 else 5
...     b = Bucket("acme", i * 60.0, 60, mentions=n, negative=n // 5)
...     changes += tr.step(b, det.update(b))
>>> [(c.type, c.incident_id, c.severity) for c in changes if c.reason != "load"]  # doctest: +NORMALIZE_WHITESPACE
[('opened', 'acme-19700102T0100Z-volume', 'sev2'), ('resolved', 'acme-19700102T0100Z-volume', 'sev2')]
>>> round(changes[0].ratio, 1), changes[0].detected_at - changes[0].started_at  # volume alone: 15 minutes
(3.5, 900.0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.windows import Bucket, Sample, sample_weight
from detectors.brand import SIGNALS, Assessment, severity_rank
from detectors.settings import DetectionSettings, IncidentSettings, Severity

ChangeType = Literal["opened", "updated", "resolved"]
MAX_SAMPLES = 5
_POOL = 24


def iso_minute(t: float) -> str:
    """ISO 8601 UTC, as in notifications.

    >>> iso_minute(1271396400.0)
    '2010-04-16T05:40:00Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass(slots=True, frozen=True)
class IncidentChange:
    """One step of an incident's life: everything a notification needs (times are epoch seconds)."""

    type: ChangeType
    incident_id: str
    brand: str
    seq: int  # 1 = opened, then 2, 3 ... (unique with incident_id)
    severity: Severity
    signals: tuple[str, ...]  # every signal seen while open, in SIGNALS order
    flags: tuple[str, ...]  # distractor flags seen while open
    started_at: float  # start of the bucket where the anomaly began
    detected_at: float  # close of the bucket that opened the incident
    at: float  # close of the bucket of this change
    observed_per_hour: float  # current load (over the most surprising span)
    expected_per_hour: float
    upper_per_hour: float
    ratio: float
    negativity_share: float  # negative share of the incident's mentions so far
    baseline_share: float
    top_terms: tuple[str, ...]
    languages: dict[str, float]  # share of the incident's mentions per language
    samples: tuple[Sample, ...]
    peak_per_hour: float
    mentions: int  # customer mentions since started_at
    negative: int
    replies: int  # brand replies since started_at
    resolved_at: float | None = None
    previous_severity: Severity | None = None
    reason: str = ""  # why an update was sent: "severity", "signals", "load", "staffing"
    firing: tuple[str, ...] = ()  # the signals firing in this change's bucket, in SIGNALS order
    recent_negativity_share: float | None = None  # over the negativity detector's most surprising span now

    @property
    def alert(self) -> bool:
        """True when this change pages: an incident opened or escalated (score-series' alert=1)."""
        if self.type == "opened":
            return True
        return (
            self.type == "updated"
            and self.previous_severity is not None
            and severity_rank(self.severity) > severity_rank(self.previous_severity)
        )


@dataclass(slots=True)
class Incident:
    id: str
    brand: str
    severity: Severity
    signals: set[str]
    flags: set[str]
    started_at: float
    detected_at: float
    seq: int = 1
    peak_per_hour: float = 0.0
    last_load: float = 0.0
    last_notified: float = 0.0
    quiet_seconds: float = 0.0
    top_terms: dict[str, float] = field(default_factory=dict)
    notified_signals: tuple[str, ...] = ()


@dataclass(slots=True)
class _Run:
    """Totals since the brand's current elevated run began (or the incident opened)."""

    mentions: int = 0
    negative: int = 0
    replies: int = 0
    by_lang: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    copies: int = 0  # the run's most-copied text: its copies in a copy period, and one of them
    copy_sample: Sample | None = None

    def __setstate__(self, state: tuple[None, dict[str, Any]]) -> None:
        self.copies, self.copy_sample = 0, None  # not in checkpoints before 2026-12
        for name, value in state[1].items():
            setattr(self, name, value)

    def add(self, b: Bucket | Assessment) -> None:
        self.mentions += b.mentions
        self.negative += b.negative
        self.replies += b.replies
        for k, v in b.by_lang.items():
            self.by_lang[k] = self.by_lang.get(k, 0) + v
        if b.top_copies > self.copies and b.copy_sample is not None:
            self.copies, self.copy_sample = b.top_copies, b.copy_sample
        if b.samples:
            seen = {s.id for s in self.samples}
            # the newest first, so that among equals (a sort is stable) what is said now is kept
            self.samples[:0] = [s for s in b.samples if s.id not in seen]
            self.samples.sort(key=sample_weight, reverse=True)
            del self.samples[_POOL:]


@dataclass(slots=True)
class _BrandState:
    incident: Incident | None = None
    streak: int = 0  # consecutive elevated (not quiet) buckets while idle
    since: float | None = None  # where the streak's anomaly began
    peak: Severity | None = None  # the streak's highest severity so far
    fired: float | None = None  # streak's first bucket: start of its longest firing span, else its own start
    run: _Run = field(default_factory=_Run)
    last_activity: float = float("-inf")  # end of the last non-quiet bucket after a resolution
    last_severity: Severity | None = None  # of the last resolved incident
    count: int = 0


class IncidentTracker:
    """Turns each brand's assessments into incident changes. Pickles (checkpoints)."""

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self._brands: dict[str, _BrandState] = {}
        self._effective: dict[str, DetectionSettings] = {}

    def open_incidents(self) -> list[Incident]:
        return [st.incident for st in self._brands.values() if st.incident is not None]

    def incident_settings(self, brand: str) -> IncidentSettings:
        return self._settings(brand).incidents

    def _settings(self, brand: str) -> DetectionSettings:
        s = self._effective.get(brand)
        if s is None:
            s = self._effective[brand] = self.settings.for_brand(brand)
        return s

    def step(self, bucket: Bucket, a: Assessment) -> list[IncidentChange]:
        """Advance the brand's state machine by one closed bucket and its assessment."""
        st = self._brands.get(a.brand)
        if st is None:
            st = self._brands[a.brand] = _BrandState()
        s = self._settings(a.brand).incidents
        inc = st.incident
        if inc is None:
            return self._idle(st, bucket, a, s)
        st.run.add(a)
        if not a.quiet:
            inc.quiet_seconds = 0.0
        else:
            inc.quiet_seconds += a.seconds
        for name in a.signals:
            inc.signals.add(name)
        if a.top_terms:  # the terms of the last half hour or so weigh most: what the crisis is about now
            weights = inc.top_terms
            for term in list(weights):
                weights[term] *= _TERM_DECAY
                if weights[term] < _TERM_FORGET:
                    del weights[term]
            for term in a.top_terms:
                weights[term] = weights.get(term, 0.0) + 1.0
        inc.flags.update(a.flags)
        if severity_rank(inc.severity) > severity_rank("sev3"):
            # a paging incident is a customer crisis: the flags that called it a campaign go, unless
            # the detector still says so (a happy spike turned angry kept "positive" to the end)
            inc.flags -= _NOT_A_CRISIS - set(a.flags)
        load = a.observed_per_hour
        inc.peak_per_hour = max(inc.peak_per_hour, load)
        if inc.quiet_seconds >= s.quiet_minutes * 60:
            inc.seq += 1
            change = self._change("resolved", inc, st, a, resolved_at=a.end)
            st.incident = None
            st.last_activity = a.end - inc.quiet_seconds
            st.last_severity = inc.severity
            st.run = _Run()
            st.streak = 0
            st.since = st.peak = st.fired = None
            return [change]
        reason = ""
        previous = inc.severity
        if a.severity and severity_rank(a.severity) > severity_rank(inc.severity):
            inc.severity = a.severity
            reason = "severity"
        elif len(inc.signals) > len(inc.notified_signals):
            reason = "signals"
        elif (
            moved(inc.last_load, load, s.load_change)
            and max(inc.last_load, load) >= _NOTEWORTHY_LOAD * a.expected_per_hour
            and _may_update(inc, a, s)
            and not a.quiet
        ):
            reason = "load"  # (between figures both near the usual load, a move is no news)
        if not reason:
            return []
        return [self._updated(inc, st, a, previous, reason)]

    def pending_update(self, a: Assessment, reason: str) -> IncidentChange | None:
        """The update the brand's open incident would send now for a reason found downstream (its
        staffing moved, say), if one may be sent now; nothing changes until `sent` is called with it.
        Call it after `step` of the same assessment, when `step` returned nothing."""
        st = self._brands.get(a.brand)
        inc = st.incident if st is not None else None
        if st is None or inc is None or not _may_update(inc, a, self._settings(a.brand).incidents):
            return None
        return self._change("updated", inc, st, a, previous=inc.severity, reason=reason, seq=inc.seq + 1)

    def sent(self, c: IncidentChange) -> None:
        """Record a `pending_update` as sent."""
        st = self._brands.get(c.brand)
        inc = st.incident if st is not None else None
        if inc is not None and inc.id == c.incident_id and c.seq == inc.seq + 1:
            self._mark_sent(inc, c.seq, c.observed_per_hour, c.at)

    def _updated(
        self, inc: Incident, st: _BrandState, a: Assessment, previous: Severity, reason: str
    ) -> IncidentChange:
        change = self._change("updated", inc, st, a, previous=previous, reason=reason, seq=inc.seq + 1)
        self._mark_sent(inc, change.seq, a.observed_per_hour, a.end)
        return change

    @staticmethod
    def _mark_sent(inc: Incident, seq: int, load: float, at: float) -> None:
        inc.seq = seq
        inc.last_load = load
        inc.last_notified = at
        inc.notified_signals = tuple(sorted(inc.signals))

    def _idle(
        self,
        st: _BrandState,
        bucket: Bucket,
        a: Assessment,
        s: IncidentSettings,
    ) -> list[IncidentChange]:
        if a.quiet:
            st.streak = 0
            st.since = st.peak = st.fired = None
            st.run = _Run()
            return []
        st.run.add(a)
        in_cooldown = a.end - st.last_activity < s.cooldown_minutes * 60
        st.streak += 1
        began = a.elevated_since if a.elevated_since is not None else a.start
        st.since = began if st.since is None else min(st.since, began)
        if a.severity is None:
            return []
        if severity_rank(a.severity) > severity_rank(st.peak):
            st.peak = a.severity
        severity: Severity = st.peak or a.severity
        fired = getattr(st, "fired", None)  # (absent from checkpoints of older versions)
        if fired is None:
            st.fired = fired = _firing_since(a)
        started = st.since if st.since is not None else a.start
        # score = surprise / (surprise + level): at least instant_factor x level opens at once
        instant = a.score >= s.instant_factor / (s.instant_factor + 1.0)
        # otherwise the anomaly must persist (open_buckets), and be corroborated by a second signal
        # or have been significant for confirm_minutes of event time (a lone signal's burst is
        # gone by then): counted from where the span that first fired began, so a long span
        # firing is evidence of a long excess already
        # (two signals, one of them past its own threshold: a pair made significant only by
        # Fisher's combination is one test of two weak hints, which must last like a lone signal)
        corroborated = len(a.signals) >= 2 and bool(_own_firing(a))
        lasted = a.end - fired >= s.confirm_minutes * 60
        if not instant and (st.streak < s.open_buckets or not (corroborated or lasted)):
            return []
        if in_cooldown and a.end - started < self._relapse_seconds(severity, st.last_severity, s):
            st.last_activity = a.end  # the same trouble: the cool-down goes on
            return []
        primary = next(s for s in SIGNALS if s in a.signals)
        stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(started))
        st.count += 1
        inc = Incident(
            id=f"{a.brand}-{stamp}-{primary}",
            brand=a.brand,
            severity=severity,
            signals=set(a.signals),
            flags=set(a.flags),
            started_at=started,
            detected_at=a.end,
            peak_per_hour=a.observed_per_hour,
            last_load=a.observed_per_hour,
            last_notified=a.end,
        )
        for term in a.top_terms:
            inc.top_terms[term] = 1.0
        st.incident = inc
        st.last_severity = None
        inc.notified_signals = tuple(sorted(inc.signals))
        return [self._change("opened", inc, st, a)]

    @staticmethod
    def _relapse_seconds(severity: Severity, last: Severity | None, s: IncidentSettings) -> float:
        """How long an anomaly in the cool-down must last to be a new incident: a more severe one at
        once; as severe a one (the crisis back) as long as a lone signal must to be believed; a
        lesser one, or a watch after a watch, as long as the cool-down itself (no tail lasts that long)."""
        rank, last_rank = severity_rank(severity), severity_rank(last)
        if rank > last_rank:
            return 0.0
        if rank == last_rank and severity != "sev3":
            return s.confirm_minutes * 60
        return s.cooldown_minutes * 60

    def _change(
        self,
        kind: ChangeType,
        inc: Incident,
        st: _BrandState,
        a: Assessment,
        previous: Severity | None = None,
        reason: str = "",
        resolved_at: float | None = None,
        seq: int | None = None,
    ) -> IncidentChange:
        run = st.run
        terms = sorted(inc.top_terms.items(), key=lambda kv: (-kv[1], kv[0]))
        top = tuple(t for t, _ in terms[: self._settings(inc.brand).topic.top_terms])
        langs = {k: round(v / run.mentions, 3) for k, v in sorted(run.by_lang.items())} if run.mentions else {}
        return IncidentChange(
            type=kind,
            incident_id=inc.id,
            brand=inc.brand,
            seq=inc.seq if seq is None else seq,
            severity=inc.severity,
            signals=tuple(s for s in SIGNALS if s in inc.signals),
            flags=tuple(sorted(inc.flags)),
            started_at=inc.started_at,
            detected_at=inc.detected_at,
            at=a.end,
            observed_per_hour=a.observed_per_hour,
            expected_per_hour=a.expected_per_hour,
            upper_per_hour=a.upper_per_hour,
            ratio=a.ratio,
            negativity_share=run.negative / run.mentions if run.mentions else 0.0,
            recent_negativity_share=a.negativity.share,
            baseline_share=a.negativity.baseline,
            top_terms=top,
            languages=langs,
            samples=_pick_samples(run.samples, top, run.copy_sample if "coordinated" in inc.flags else None),
            peak_per_hour=inc.peak_per_hour,
            mentions=run.mentions,
            negative=run.negative,
            replies=run.replies,
            resolved_at=resolved_at,
            previous_severity=previous,
            reason=reason,
            firing=a.signals,
        )


_NOT_A_CRISIS = frozenset({"positive", "coordinated"})
_TERM_DECAY = 0.95  # per bucket with terms: a term of 15 buckets ago weighs half
_TERM_FORGET = 0.01
_NOTEWORTHY_LOAD = 1.5  # a load change is news while one of the two figures is this far above usual


def moved(before: float, now: float, fraction: float) -> bool:
    """Has a figure moved by `fraction` of its last notified value (either way)?

    >>> moved(100.0, 150.0, 0.5), moved(100.0, 149.0, 0.5), moved(0.0, 1.0, 0.5)
    (True, False, True)
    """
    return abs(now - before) >= fraction * max(before, 1e-9)


def _may_update(inc: Incident, a: Assessment, s: IncidentSettings) -> bool:
    """Has enough event time passed since the incident's last notification for a load or staffing
    update (a sev3 watch waits `watch_update_minutes`)?"""
    wait = s.watch_update_minutes if inc.severity == "sev3" else s.min_update_minutes
    return a.end - inc.last_notified >= wait * 60


def _firing_since(a: Assessment) -> float:
    """Start of the longest span a firing signal of this bucket fired on (the bucket's own start if none fired)."""
    own = _own_firing(a)
    spans = [1]
    if "volume" in own:
        spans.append(a.volume.span_buckets)
    if "negativity" in own:
        spans.append(a.negativity.span_buckets)
    return a.start - (max(spans) - 1) * a.seconds


def _own_firing(a: Assessment) -> list[str]:
    """The firing signals that passed their own threshold (not only through Fisher's combination)."""
    alone = {"volume": a.volume.firing, "negativity": a.negativity.firing, "topic": a.topic.firing}
    return [name for name in a.signals if alone.get(name, False)]


def _pick_samples(pool: list[Sample], terms: tuple[str, ...], lead: Sample | None = None) -> tuple[Sample, ...]:
    """Mentions that explain the incident: those naming its top terms first, one per author; a
    coordinated campaign's copied message (`lead`) before all (its fresh accounts reach few, so the
    pool, which keeps the most telling mentions, seldom holds it)."""
    lowered = [t.lower() for t in terms]

    def names_terms(s: Sample) -> int:
        text = s.text.lower()
        return sum(1 for t in lowered if t in text)

    ranked = sorted(pool, key=lambda s: (-names_terms(s), -sample_weight(s), s.id))
    if lead is not None:
        ranked.insert(0, lead)
    out: list[Sample] = []
    authors: set[str] = set()
    for s in ranked:
        if s.author_id in authors:
            continue
        authors.add(s.author_id)
        out.append(s)
        if len(out) == MAX_SAMPLES:
            break
    return tuple(out)
