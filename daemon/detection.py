"""Per-brand glue: bucket -> detectors -> incident tracker -> staffing -> notification objects.

The detectors (`detectors/`) and the incident state machine (`daemon/incidents.py`) decide whether
and how bad; the staffing planner (`daemon/staffing/`) says how many people; this module turns
their verdicts into the public notification object (docs: README "Notification objects"), with the
response figures and the recent timeline attached.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from daemon.events import Mention
from daemon.incidents import IncidentChange, IncidentTracker, iso_minute, moved
from daemon.notification import (
    NegativityFigures,
    Notification,
    ResponseFigures,
    SampleMention,
    StaffingFigures,
    Timeline,
    VolumeFigures,
    human_duration,
    per_hour_text,
    share_text,
)
from daemon.staffing.planner import StaffingPlanner, SurgeLoad, backlog_breaches_target
from daemon.staffing.responses import ResponseTracker
from daemon.windows import Bucket
from detectors.brand import Assessment, BrandDetector

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.enrich import TextScore
    from daemon.staffing.settings import StaffingSettings

# Buckets over which the current load mix (platforms, intents) is measured for staffing.
_LOAD_SPAN = 15
# The load trend (the staffing forecast's growth or decay) is the least-squares slope of the last
# hour of buckets, taken as flat unless it is this many standard errors from flat: the difference of
# two one-minute counts swung between "decaying: 34 needed in 3 h" and "growing: 4,583 needed in 3 h"
# from one update to the next in the middle of a crisis.
_TREND_SECONDS = 3600.0
_TREND_Z = 2.0
# ... and checked against the last half hour's (`BrandDetection._trend`): after a surge's peak the
# hour still holds the ramp.
_RECENT_TREND_SECONDS = 1800.0
_CHANGE_TYPES = {"opened": "incident.opened", "updated": "incident.updated", "resolved": "incident.resolved"}


class BrandDetection:
    """Detection, incidents, response tracking and recent history of one brand. Pickles."""

    def __init__(self, brand: str, settings: Settings) -> None:
        self.brand = brand
        self.detector = BrandDetector(settings.detection, seed=0, brand=brand)
        self.tracker = IncidentTracker(settings.detection)
        self.responses = ResponseTracker(settings.staffing)
        self.planner, self.actionable_intents = _staffing(settings.staffing)
        self.history = History(settings.pipeline.timeline_buckets)
        self.recent = Mixes(_LOAD_SPAN)  # recent buckets' platform and intent counts, for the staffing load
        # agents needed in the last notification (0 when it had none; None: unknown, from a checkpoint
        # of an older version)
        self.notified_agents: int | None = 0
        self.staffing_checked = -math.inf  # event time the staffing was last looked at for an update
        # people the open incident's suggestions called in, net of those sent home (None: unknown,
        # the incident began before a restore from an older checkpoint); the next suggestion counts
        # them as available, and the resolution stands them down
        self.called_in: int | None = 0
        # the backlog as the open incident began: the brand's everyday one, left out of the surge's
        self.usual_backlog = 0
        # what the open incident's root shows (its last notification): a replica taking the partition
        # over from another one redraws the root from it (`Runner._restore_assigned`, `adopt`)
        self.last_notification: Notification | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        h = state.get("history")
        if isinstance(h, deque):  # checkpoints before `History` hold a deque of tuples
            state["history"] = History(h.maxlen or len(h), h)
        r = state.get("recent")
        if isinstance(r, deque):  # checkpoints before `Mixes` hold a deque of `_Mix` (or of sealed Buckets)
            state["recent"] = Mixes(r.maxlen or _LOAD_SPAN, r)
        state.setdefault("notified_agents", None)  # older checkpoints: measured from the next look
        state.setdefault("staffing_checked", -math.inf)
        state.setdefault("called_in", None)
        state.setdefault("usual_backlog", 0)  # older checkpoints: the whole backlog is the surge's
        state.setdefault("last_notification", None)  # older checkpoints: redrawn from the next one
        self.__dict__.update(state)

    def reconfigure(self, settings: Settings) -> None:
        """Apply reloaded thresholds, escalation and roster; learned state stays."""
        self.detector.base_settings = settings.detection
        if self.detector.settings is not None:
            self.detector.settings = settings.detection.for_brand(self.brand)
        self.tracker.settings = settings.detection
        self.tracker._effective.clear()
        self.planner, self.actionable_intents = _staffing(settings.staffing)
        self.responses.settings = settings.staffing

    def observe_mention(self, m: Mention, score: TextScore) -> None:
        if score.intent in self.actionable_intents and not m.is_share:  # only these wait for a reply
            self.responses.observe_mention(m.id, m.ts, m.platform)

    def observe_reply(self, m: Mention) -> None:
        if m.in_reply_to:
            self.responses.observe_reply(m.in_reply_to, m.ts)

    def on_bucket(self, b: Bucket) -> list[Notification]:
        a = self.detector.update(b)
        self.recent.append(b)
        per_hour = 3600.0 / b.seconds
        self.history.append(
            (
                b.start,
                b.mentions * per_hour,
                a.expected_per_hour,
                a.upper_per_hour,
                b.negative_share,
                a.negativity.baseline,
            )
        )
        changes = self.tracker.step(b, a)
        out = [self._notification(c, a) for c in changes] if changes else self._staffing_update(a)
        for n in out:
            self.last_notification = None if n.type == "incident.resolved" else n
            self.notified_agents = n.staffing.agents_needed if n.staffing is not None else 0
            if n.type == "incident.resolved":
                self.called_in = 0
                self.usual_backlog = 0
            elif n.staffing is not None and self.called_in is not None:
                s = n.staffing  # as asked: those called in more, those sent home (called in first) less
                self.called_in += s.call_in - min(self.called_in, s.stand_down)
        return out

    def _staffing_update(self, a: Assessment) -> list[Notification]:
        """An update when the staffing suggestion moved by `load_change` since the last notification
        while the load did not: a backlog that builds for hours under a steady volume needs people
        called in as surely as a spike does."""
        # looked at once per `min_update_minutes` (the response figures and Erlang solves of a busy
        # brand cost milliseconds: not every bucket)
        settings = self.tracker.incident_settings(self.brand)
        if a.end - self.staffing_checked < settings.min_update_minutes * 60:
            return []
        c = self.tracker.pending_update(a, "staffing")
        if c is None:
            return []
        self.staffing_checked = a.end
        figures = self.responses.figures(c.at)
        s = self._staffing(c, figures)
        needed = s.agents_needed if s is not None else 0
        if self.notified_agents is None:
            self.notified_agents = needed
        if not moved(self.notified_agents, needed, settings.load_change):
            return []
        self.tracker.sent(c)
        return [self._notification(c, a, (figures, s))]

    # -- notification object -------------------------------------------------------------------
    def _notification(
        self, c: IncidentChange, a: Assessment, computed: tuple[ResponseFigures, StaffingFigures | None] | None = None
    ) -> Notification:
        """`computed`: the response figures and staffing of `c` when the caller has them already."""
        if computed is None:
            now = self.responses.figures(c.at)
            if c.type == "opened":
                self.usual_backlog = now.backlog
            computed = now, self._staffing(c, now)
        figures, staffing = computed
        return Notification(
            type=_CHANGE_TYPES[c.type],  # type: ignore[arg-type]
            incident_id=c.incident_id,
            brand=c.brand,
            severity=c.severity,
            signals=list(c.signals),
            started_at=iso_minute(c.started_at),
            detected_at=iso_minute(c.detected_at),
            volume=VolumeFigures(
                observed_per_hour=round(c.observed_per_hour, 1),
                expected_per_hour=round(c.expected_per_hour, 1),
                ratio=round(c.ratio, 2),
            ),
            negativity=NegativityFigures(share=round(c.negativity_share, 3), baseline_share=round(c.baseline_share, 3)),
            top_terms=list(c.top_terms),
            # a language at 0.0 % after rounding says nothing (one `und` mention among thousands)
            languages={k: r for k, v in sorted(c.languages.items()) if (r := round(v, 3)) > 0},
            sample_mentions=[SampleMention(s.id, s.text, s.url, s.lang, s.platform) for s in c.samples[:3]],
            staffing=staffing,
            seq=c.seq,
            summary=_summary(c, figures.backlog, easing=c.type == "updated" and self._trend() < 0),
            peak_per_hour=round(c.peak_per_hour, 1),
            mentions=c.mentions,
            replies=c.replies,
            resolved_at=iso_minute(c.resolved_at) if c.resolved_at is not None else None,
            updated_at=iso_minute(c.at),
            flags=list(c.flags),
            responses=figures,
            timeline=self._timeline(a.seconds) if c.type != "updated" else None,
            reason=c.reason,
            called_in=self.called_in if c.type == "resolved" else None,
        )

    def _staffing(self, c: IncidentChange, figures: ResponseFigures) -> StaffingFigures | None:
        """The suggestion for now; once resolved, only while it still asks for something: the volume
        is back to normal but a backlog needs people to clear it, or people can stand down."""
        s = self.planner.suggest(self._load(c, figures))
        if c.type == "resolved" and self.called_in:
            # the surge is over: those called in beyond what the load and backlog still need go home,
            # but none while its backlog waits past the response target (the JSON says what the text
            # does: notifiers/render.stand_down_text)
            need = max(0, s.to_schedule - s.on_shift)
            waiting = backlog_breaches_target(s.backlog, figures.replies_per_hour, s.sla_target)
            s = msgspec.structs.replace(s, stand_down=0 if waiting else max(0, self.called_in - need))
        # a watch asked nothing of anyone, so its resolution has nothing to ask either
        if c.type == "resolved" and (c.severity == "sev3" or not (s.backlog_agents or s.stand_down)):
            return None
        return s

    def _load(self, c: IncidentChange, figures: ResponseFigures) -> SurgeLoad:
        platforms, intents = self.recent.totals()
        total = sum(platforms.values())
        # spread the current load (the detector's smoothed rate) over the recent platform mix
        rate = c.observed_per_hour
        by_platform = {k: rate * v / total for k, v in sorted(platforms.items())} if total else {"other": rate}
        n_intents = sum(intents.values())
        return SurgeLoad(
            mentions_per_hour=by_platform,
            intents={k: v / n_intents for k, v in sorted(intents.items())} if n_intents else {},
            languages=dict(c.languages),
            backlog=figures.backlog,
            backlog_by_platform=dict(figures.backlog_by_platform),
            usual_backlog=self.usual_backlog,
            trend_per_hour=self._trend(),
            baseline_per_hour=c.expected_per_hour,
            peak_per_hour=c.peak_per_hour,
            at=c.at,
            watch=c.severity == "sev3",
            escalating=c.type == "opened" or c.reason == "severity",
            called_in=self.called_in or 0,
            replies_per_hour=figures.replies_per_hour,
        )

    def _trend(self) -> float:
        """The load's change per hour over the last hour (0 unless clear: `load_trend`), unless the
        last half hour disagrees."""
        rows = self.history.last(len(self.history))
        if not rows:
            return 0.0
        end = rows[-1][0]
        points = [(t, per_hour) for t, per_hour, *_ in rows if end - t < _TREND_SECONDS]
        hour = load_trend(points)
        recent = load_trend([(t, per_hour) for t, per_hour in points if end - t < _RECENT_TREND_SECONDS])
        # The hour's slope stays positive long after a surge peaks, for the ramp is still in it: the
        # demo's forecast grew by 2,152/h per hour (669 people in 3 h) while the load had fallen
        # from 5,940/h to 4,724/h over the last half hour. A growth is carried on only while the
        # last half hour still rises; flat, it is no clear trend; falling, its decay is the trend
        # (the forecast follows the decay, not the peak). A decay that the last half hour turns up
        # from is no clear trend either: not "easing", and no one is sent home on it.
        if hour > 0 and recent <= 0:
            return recent
        if hour < 0 and recent > 0:
            return 0.0
        return hour

    def _timeline(self, seconds: int) -> Timeline:
        h = self.history.last(len(self.history))
        return Timeline(
            start=iso_minute(h[0][0]),
            bucket_seconds=seconds,
            observed_per_hour=[round(x[1], 1) for x in h],
            expected_per_hour=[round(x[2], 1) for x in h],
            upper_per_hour=[round(x[3], 1) for x in h],
            negativity_share=[round(x[4], 3) for x in h],
            baseline_negativity_share=[round(x[5], 3) for x in h],
        )


_STAFFING: dict[int, tuple[StaffingSettings, StaffingPlanner, frozenset[str]]] = {}


def _staffing(settings: StaffingSettings) -> tuple[StaffingPlanner, frozenset[str]]:
    """The planner and the actionable intents of these settings, one pair shared by every brand
    (the planner keeps nothing but its settings)."""
    hit = _STAFFING.get(id(settings))
    if hit is None or hit[0] is not settings:
        if len(_STAFFING) >= 8:  # reloads replace the settings: keep the latest few
            _STAFFING.clear()
        hit = _STAFFING[id(settings)] = (settings, StaffingPlanner(settings), frozenset(settings.actionable_intents))
    return hit[1], hit[2]


def load_trend(points: list[tuple[float, float]]) -> float:
    """Mentions per hour gained per hour: the least-squares slope of (time, rate) points, or 0.0
    unless it is `_TREND_Z` standard errors from flat (noise is not a trend).

    >>> load_trend([(60.0 * i, 1000.0 + 10.0 * i) for i in range(60)])  # +10/h every minute
    600.0
    >>> load_trend([(60.0 * i, 1000.0 + (300.0 if i % 2 else -300.0)) for i in range(60)])
    0.0
    """
    n = len(points)
    if n < 3:
        return 0.0
    hours = [t / 3600.0 for t, _ in points]
    t_mean = math.fsum(hours) / n
    y_mean = math.fsum(y for _, y in points) / n
    sxx = math.fsum((t - t_mean) ** 2 for t in hours)
    if sxx <= 0:
        return 0.0
    slope = math.fsum((t - t_mean) * (y - y_mean) for t, (_, y) in zip(hours, points, strict=True)) / sxx
    residuals = math.fsum((y - y_mean - slope * (t - t_mean)) ** 2 for t, (_, y) in zip(hours, points, strict=True))
    se = math.sqrt(residuals / (n - 2) / sxx)
    return round(slope, 6) if abs(slope) > _TREND_Z * se else 0.0


class History:
    """The last `maxlen` buckets' (start, observed/h, expected/h, upper/h, negative share, baseline
    share), for charts and the load trend. Pickles.

    The five figures are float32 (7 significant digits, more than a chart or a trend shows), in one
    flat array. The starts stay exact, but take no room per row: buckets follow each other at a
    fixed step, so `runs` holds (first row, its start, step) per run of rows, and a new run begins
    only where a start breaks the pattern (a silence over a week, a new bucket length). About
    3.9 KB per brand at 180 buckets, where 6 doubles per row took 9.0 KB (and a deque of tuples
    about 45 KB).

    >>> h = History(3)
    >>> for start in (0.0, 60.0, 120.0, 7200.0):
    ...     h.append((start, 1.0, 2.0, 3.0, 0.25, 0.1))
    >>> [row[0] for row in h.last(3)], h.last(1)[0][1:]
    ([60.0, 120.0, 7200.0], (1.0, 2.0, 3.0, 0.25, 0.10000000149011612))
    """

    FIGURES = 5  # the columns after the start
    __slots__ = ("maxlen", "runs", "values")

    def __init__(self, maxlen: int, rows: Iterable[tuple[float, ...]] = ()) -> None:
        self.maxlen = max(1, maxlen)
        self.values = array("f")  # FIGURES per row, oldest row first
        self.runs = array("d")  # (first row, its start, step) per run; rows count from the oldest kept
        for row in rows:
            self.append(row)

    def __len__(self) -> int:
        return len(self.values) // self.FIGURES

    def append(self, row: tuple[float, ...]) -> None:
        n = len(self)
        full = n >= self.maxlen
        if full:
            del self.values[: self.FIGURES]  # a memmove of a few KB, once per closed bucket
            self._forget_first_row()
            n -= 1
        self._add_start(n, row[0])
        self.values.extend(row[1:])
        if not full and n + 1 == self.maxlen:  # the ring just filled: its room to grow (~7 %) goes
            self.values = array("f", self.values)

    def last(self, n: int) -> list[tuple[float, ...]]:
        """The newest `n` rows, oldest first."""
        w, v, count = self.FIGURES, self.values, len(self)
        first = max(0, count - n)
        starts = self._starts(first, count)
        return [(t, *v[i * w : (i + 1) * w]) for i, t in zip(range(first, count), starts, strict=True)]

    # -- starts ---------------------------------------------------------------------------------

    def _add_start(self, row: int, start: float) -> None:
        runs = self.runs
        if runs:
            first, origin, step = runs[-3:]
            if math.isnan(step):  # the run's second row sets its step
                step = start - origin
                if _run_start(first, origin, step, row) == start:
                    runs[-1] = step
                    return
            elif _run_start(first, origin, step, row) == start:
                return
        runs.extend((row, start, math.nan))

    def _forget_first_row(self) -> None:
        runs = self.runs
        for i in range(0, len(runs), 3):
            runs[i] -= 1
        while len(runs) > 3 and runs[3] <= 0:  # the second run starts at row 0: the first is gone
            del runs[:3]
        if not self.values:  # no row left (maxlen 1): neither is any run
            del runs[:]

    def _starts(self, lo: int, hi: int) -> list[float]:
        """The starts of rows lo..hi-1."""
        runs, out, j = self.runs, [], 0
        for row in range(lo, hi):
            while j + 3 < len(runs) and runs[j + 3] <= row:
                j += 3
            out.append(_run_start(runs[j], runs[j + 1], runs[j + 2], row))
        return out

    # -- checkpoints ----------------------------------------------------------------------------

    def __getstate__(self) -> tuple[int, bytes, bytes]:
        return self.maxlen, self.values.tobytes(), self.runs.tobytes()

    def __setstate__(self, state: tuple[int, bytes, bytes] | tuple[int, bytes]) -> None:
        self.maxlen = state[0]
        self.values = array("f")
        self.runs = array("d")
        if len(state) == 2:  # checkpoints before float32 figures and runs: 6 doubles per row
            old = array("d")
            old.frombytes(state[1])
            for i in range(0, len(old), self.FIGURES + 1):
                self.append(tuple(old[i : i + self.FIGURES + 1]))
            return
        self.values.frombytes(state[1])
        self.runs.frombytes(state[2])


def _run_start(first: float, origin: float, step: float, row: float) -> float:
    """The start of `row` in the run whose row `first` starts at `origin` (one expression, so that
    what `_add_start` checked is what `_starts` reads back)."""
    return origin if row == first else origin + (row - first) * step


class Mixes:
    """The platform and intent counts of the last `maxlen` closed buckets, for the staffing load
    (not their terms and samples): one flat array of counts, a row per bucket and a column per
    platform or intent name seen in the rows kept (about 0.8 KB per brand, where a deque of two
    dicts per bucket took 7.6 KB). Pickles."""

    __slots__ = ("counts", "intents", "maxlen", "platforms", "rows")

    def __init__(self, maxlen: int, buckets: Iterable[Bucket | _Mix] = ()) -> None:
        self.maxlen = max(1, maxlen)
        self.platforms: list[str] = []  # column names: the platforms, then the intents
        self.intents: list[str] = []
        self.counts = array("q")  # rows x (platforms + intents), oldest row first
        self.rows = 0
        for b in buckets:
            self.append(b)

    def __len__(self) -> int:
        return self.rows

    def append(self, b: Bucket | _Mix) -> None:
        """Keep the bucket's counts (a full ring forgets its oldest row)."""
        bp, bi = b.by_platform, b.by_intent
        platforms, intents = self.platforms, self.intents
        if any(k not in platforms for k in bp) or any(k not in intents for k in bi):
            self._columns(bp, bi)
            platforms, intents = self.platforms, self.intents
        width = len(platforms) + len(intents)
        if self.rows >= self.maxlen:
            del self.counts[:width]
        else:
            self.rows += 1
        self.counts.extend([bp.get(k, 0) for k in platforms] + [bi.get(k, 0) for k in intents])

    def _columns(self, bp: dict[str, int], bi: dict[str, int]) -> None:
        """Re-lay the rows for the names of a new bucket; names no row kept counts any more leave."""
        width = len(self.platforms) + len(self.intents)
        first = 1 if self.rows >= self.maxlen else 0  # the row the new bucket pushes out is left out
        rows = [self.counts[i * width : (i + 1) * width] for i in range(first, self.rows)]
        old = [*self.platforms, *self.intents]
        kept = [j for j in range(width) if any(r[j] for r in rows)]
        np_ = len(self.platforms)
        platforms = [old[j] for j in kept if j < np_]
        intents = [old[j] for j in kept if j >= np_]
        platforms += [k for k in bp if k not in platforms]
        intents += [k for k in bi if k not in intents]
        index = {("p", old[j]) if j < np_ else ("i", old[j]): j for j in kept}
        cols = [index.get(("p", k)) for k in platforms] + [index.get(("i", k)) for k in intents]
        counts = array("q")
        for r in rows:
            counts.extend([0 if j is None else r[j] for j in cols])
        if self.rows >= self.maxlen:  # the pushed-out row is gone already
            self.rows -= 1
        self.platforms, self.intents, self.counts = platforms, intents, counts

    def totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """Mentions per platform and per intent over the rows kept (names with a count only)."""
        np_ = len(self.platforms)
        width = np_ + len(self.intents)
        sums = [sum(self.counts[j::width]) for j in range(width)] if width else []
        platforms = {k: v for k, v in zip(self.platforms, sums[:np_], strict=True) if v}
        intents = {k: v for k, v in zip(self.intents, sums[np_:], strict=True) if v}
        return platforms, intents

    def __getstate__(self) -> tuple[int, int, list[str], list[str], bytes]:
        return self.maxlen, self.rows, self.platforms, self.intents, self.counts.tobytes()

    def __setstate__(self, state: tuple[int, int, list[str], list[str], bytes]) -> None:
        self.maxlen, self.rows, self.platforms, self.intents = state[:4]
        self.counts = array("q")
        self.counts.frombytes(state[4])


class _Mix:
    """What the staffing load kept of a closed bucket before `Mixes` (checkpoints still hold them)."""

    __slots__ = ("by_intent", "by_platform", "seconds")

    def __init__(self, b: Bucket) -> None:
        self.seconds = b.seconds
        self.by_platform = b.by_platform
        self.by_intent = b.by_intent


_HAPPENING = {
    "negativity": "anger rising",
    "topic": "a new topic emerging",
}
# why a watch is only a watch: the distractor flags, said where the on-call manager reads first
_FLAGS_SAID = {
    "coordinated": "likely a coordinated campaign (one message copied by many accounts)",
    "positive": "a happy spike, likely a campaign",
    "viral": "after one post went viral",
    "troll": "mostly one author's flood",
}


def _volume_phrase(ratio: float, easing: bool = False) -> str | None:
    """Volume as the sentence's own figures show it: the detector may still fire on an hours-long
    excess when the current load is back to normal, and "spiking" beside "421/h against 433/h"
    misleads; so does "spiking" while the load is measured to fall.

    >>> _volume_phrase(3.0), _volume_phrase(3.0, easing=True), _volume_phrase(1.5, easing=True)
    ('mentions spiking', 'mentions high but easing', 'mentions above normal')
    """
    if ratio >= 2.0:
        return "mentions high but easing" if easing else "mentions spiking"
    if ratio >= 1.2:
        return "mentions above normal"
    return None


def _summary(c: IncidentChange, backlog: int = 0, easing: bool = False) -> str:
    """One sentence on what is happening now, in event time: the signals firing in this change's
    bucket (a signal that fired earlier in the incident and has calmed is not said to be rising).
    A resolution with mentions still unanswered does not say "back to normal": whoever reads only
    the headline must not stand the surge team down."""
    if c.type == "resolved":
        took = human_duration((c.resolved_at or c.at) - c.started_at)
        state = (
            f"the surge is over after {took}, but {backlog:,} mentions still wait for a reply"
            if backlog
            else f"back to normal after {took}"
        )
        peak = per_hour_text(c.peak_per_hour)
        return f"{c.brand}: {state}; peak {peak}/h, {c.mentions:,} mentions, {c.replies:,} replies."
    said = [_volume_phrase(c.ratio, easing) if s == "volume" else _HAPPENING.get(s, s) for s in c.firing]
    phrases = [p for p in said if p]
    if "topic" in c.firing and c.type == "updated" and c.at - c.detected_at >= 3600:  # no longer new
        phrases[-1] = "the topic still trending"
    if "topic" in c.firing and c.top_terms:
        phrases[-1] += f" ({', '.join(c.top_terms[:3])})"
    if not phrases:  # no signal fires in this bucket
        if c.type != "updated":
            happening = "unusual activity"
        else:  # "still elevated" beside "40/h against 74/h normal" misled
            happening = "still elevated" if c.ratio > 1.0 else "still open, the load back to normal"
    elif len(phrases) == 1:
        happening = phrases[0]
    else:
        happening = f"{', '.join(phrases[:-1])} and {phrases[-1]}"
    happening = ", ".join([happening, *(_FLAGS_SAID[f] for f in c.flags if f in _FLAGS_SAID)])
    now, normal = per_hour_text(c.observed_per_hour), per_hour_text(c.expected_per_hour)
    # "anger rising" is said of the minutes it fires on: the share since `started_at` may take in a
    # calm hour before the crisis ("anger rising ... 8% negative (normally 18%)")
    share = c.negativity_share
    if "negativity" in c.firing and c.recent_negativity_share is not None:
        share = c.recent_negativity_share
    return (
        f"{c.brand}: {happening}: {now}/h against {normal}/h normal, "
        f"{share_text(share)} negative (normally {share_text(c.baseline_share)})."
    )
