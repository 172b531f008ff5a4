"""First-response figures from brand replies in the stream, in event time and bounded memory.

The pipeline tells the tracker about each customer mention that needs a reply and about each brand
reply (`in_reply_to`); `figures(now)` then gives the response rate, the median and p90 first-response
time, the target attainment, the backlog and a breach forecast. First-response times of mentions
still waiting are censored (we only know they exceed their age), so the quantiles come from a
Kaplan-Meier estimate rather than from the answered ones alone, which would look too good in a surge.

>>> from daemon.staffing.settings import StaffingSettings
>>> t = ResponseTracker(StaffingSettings())
>>> for i in range(10):
...     t.observe_mention(f"m{i}", 60.0 * i, "facebook")
>>> for i in range(6):
...     t.observe_reply(f"m{i}", 60.0 * i + 300.0)
>>> f = t.figures(now=900.0)
>>> f.response_rate, f.median_first_response_minutes, f.backlog
(0.6, 5.0, 4)
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import numpy as np

from daemon.events import Mention
from daemon.notification import ResponseFigures
from daemon.staffing.settings import StaffingSettings, parse_duration, parse_target

_RATE_WINDOW = 1800.0  # recent arrival and reply rates are measured over the last half hour
_MAX_PLATFORMS = 1 << 16  # distinct platform names per brand; beyond, a mention gets the default target
_FRESH_MIN = 32  # ids kept in a dict before the sorted index is rebuilt (more: 1/_FRESH_SHARE of the rows)
_FRESH_SHARE = 16
_MIN_ROWS = 16  # columns of a brand's first mentions; they grow by half as needed
_DROP_HOURS = 24  # mentions dropped unanswered are said over the last day, counted by the hour


def _shared_empty(dtype: type[np.generic]) -> np.ndarray:
    """A column of a brand that never tracked a mention: one for all brands, replaced when written."""
    column = np.empty(0, dtype=dtype)
    column.flags.writeable = False
    return column


_NO_TIMES = _shared_empty(np.float64)
_NO_DELAYS = _shared_empty(np.float32)
_NO_CODES = _shared_empty(np.uint8)
_NO_KEYS = _shared_empty(np.uint64)
_NO_SEQS = _shared_empty(np.int32)


def _id_key(mention_id: str) -> int:
    """A mention id's 64-bit key: blake2b, the same in every process (never Python's `hash`)."""
    d = hashlib.blake2b(mention_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(d, "little")


def _code_type(platforms: int) -> type[np.unsignedinteger[Any]]:
    """The platform codes' type for a brand with this many platform names."""
    return np.uint8 if platforms <= 256 else np.uint16


class ResponseTracker:
    """Customer mentions needing a reply and the brand's first replies to them, for one brand.

    Memory is bounded: at most `responses.max_tracked` mentions are remembered (the oldest go first)
    and mentions older than `responses.max_age` (event time) are forgotten. A tracked mention costs
    13 bytes of columns (time, first-reply delay, platform code) and 12 of index, and the figures
    are computed on those columns without a Python loop. Picklable.
    """

    __slots__ = (
        "_breach_after",
        "_codes",
        "_delay",
        "_dropped",
        "_fresh",
        "_head",
        "_index_base",
        "_latest",
        "_max_age",
        "_offset",
        "_plat",
        "_platforms",
        "_replies",
        "_replies_head",
        "_settings",
        "_sorted_keys",
        "_sorted_seq",
        "_tail",
        "_ts",
        "_window",
        "forgotten",
        "replies_seen",
        "unmatched_replies",
    )

    def __init__(self, settings: StaffingSettings) -> None:
        self.settings = settings
        # Rows [_head, _tail) of the columns are the tracked mentions in arrival order (about time
        # order); a row's sequence number is row + _offset. A mention is found by the 64-bit key of
        # its id: in `_fresh` (key -> sequence number) for the rows added since the index was last
        # built, else by binary search in `_sorted_keys` (rebuilt, without the forgotten rows, when
        # `_fresh` grows). The index holds the only copy of the keys.
        self._fresh: dict[int, int] = {}
        self._sorted_keys = _NO_KEYS
        self._sorted_seq = _NO_SEQS  # sequence number - _index_base of each sorted key
        self._index_base = 0
        self._ts = _NO_TIMES
        # Seconds from the mention to its first reply, nan while waiting. float32: whole seconds
        # exactly up to 194 days, others to 2^-24 of their value (under a millisecond below 4.5 h).
        self._delay = _NO_DELAYS
        self._plat = _NO_CODES  # code into _platforms; uint16 from the 257th platform name on
        self._head = 0
        self._tail = 0
        self._offset = 0
        self._platforms: list[str] = []
        self._codes: dict[str, int] = {}
        self._replies: list[float] = []  # times of all brand replies, arrival order, from _replies_head on
        self._replies_head = 0
        self._latest = -math.inf
        self.replies_seen = 0
        """First replies matched so far (0: the stream carries no brand replies, figures stay empty)."""
        self.forgotten = 0
        """Mentions dropped unanswered because of the memory bound or their age."""
        # The same by the hour they left the backlog (epoch hour -> (older than max_age, past the
        # memory bound)), for the last `_DROP_HOURS`: a backlog that shrinks because mentions aged
        # out must say so, not look answered.
        self._dropped: dict[int, tuple[int, int]] = {}
        self.unmatched_replies = 0
        """Brand replies to mentions the tracker does not know (older, or not needing a reply)."""

    @property
    def settings(self) -> StaffingSettings:
        """Replaceable at any time (configuration reload); the figures follow at once."""
        return self._settings

    @settings.setter
    def settings(self, settings: StaffingSettings) -> None:
        self._settings = settings
        r = settings.responses
        # parse_duration caches: one float for all the brands (they share their settings)
        self._window = parse_duration(r.window)
        self._max_age = parse_duration(r.max_age)
        self._breach_after = parse_duration(r.breach_after)

    @property
    def window(self) -> float:
        return self._window

    @property
    def max_age(self) -> float:
        return self._max_age

    @property
    def breach_after(self) -> float:
        return self._breach_after

    @property
    def max_tracked(self) -> int:
        return self._settings.responses.max_tracked

    def __len__(self) -> int:
        """Mentions tracked now."""
        return self._tail - self._head

    # -- input ------------------------------------------------------------------------------------

    def observe(self, m: Mention, needs_reply: bool) -> None:
        """Route a decoded mention: a brand reply, a customer mention needing one, or nothing."""
        if m.is_brand:
            if m.in_reply_to:
                self.observe_reply(m.in_reply_to, m.ts)
        elif needs_reply:
            self.observe_mention(m.id, m.ts, m.platform)

    def observe_mention(self, mention_id: str, ts: float, platform: str) -> None:
        if not math.isfinite(ts):
            return
        key = _id_key(mention_id)
        if self._find(key) is not None:
            return
        code = self._codes.get(platform)
        if code is None:
            if len(self._platforms) >= _MAX_PLATFORMS - 1:
                platform = ""  # too many names: the default platform's target
            code = self._codes.get(platform)
            if code is None:
                code = self._codes[platform] = len(self._platforms)
                self._platforms.append(platform)
                self._plat = self._plat.astype(_code_type(len(self._platforms)), copy=False)
        row = self._tail
        if row == len(self._ts):
            self._make_room()
            row = self._tail
        self._ts[row] = ts
        self._delay[row] = math.nan
        self._plat[row] = code
        self._tail = row + 1
        fresh = self._fresh
        fresh[key] = row + self._offset
        if len(fresh) > max(_FRESH_MIN, (row + 1 - self._head) // _FRESH_SHARE):
            self._build_index()
        if ts > self._latest:
            self._latest = ts
        self._prune()

    def observe_reply(self, in_reply_to: str, ts: float) -> None:
        # The reply rate is how fast the queue empties: every reply that takes a mention out of it
        # counts, also one to a mention past max_age or the memory bound (a team clearing its
        # backlog oldest first answers those), but not a follow-up to one already answered, which
        # would shorten the predicted wait without shortening the queue.
        row = self._find(_id_key(in_reply_to))
        if row is None:
            self.unmatched_replies += 1
        elif not math.isnan(self._delay[row]):
            return  # a follow-up: only the first reply counts
        else:
            self._delay[row] = max(0.0, ts - float(self._ts[row]))  # stamped before its mention: clock skew, 0
            self.replies_seen += 1
        if math.isfinite(ts):
            self._replies.append(ts)
            self._prune_replies()

    def _find(self, key: int) -> int | None:
        """The row of the tracked mention whose id has this `_id_key`, or None."""
        seq = self._fresh.get(key)
        if seq is None:
            keys = self._sorted_keys
            i = int(keys.searchsorted(np.uint64(key)))
            if i == len(keys) or int(keys[i]) != key:
                return None
            seq = int(self._sorted_seq[i]) + self._index_base
        row = seq - self._offset
        return row if self._head <= row < self._tail else None  # else forgotten since

    def _build_index(self) -> None:
        """Merge the fresh keys into the sorted index, leaving out the rows forgotten since."""
        first = self._offset + self._head  # sequence number of the oldest tracked mention
        old_seq = self._sorted_seq.astype(np.int64) + self._index_base
        fresh_seq = np.fromiter(self._fresh.values(), np.int64, len(self._fresh))
        fresh_keys = np.fromiter(self._fresh.keys(), np.uint64, len(self._fresh))
        kept, fresh = old_seq >= first, fresh_seq >= first
        # Older rows first: equal keys (a 64-bit collision) stay in arrival order, and the stable
        # sort merges the sorted run and the few fresh keys in about linear time.
        keys = np.concatenate((self._sorted_keys[kept], fresh_keys[fresh]))
        seq = np.concatenate((old_seq[kept], fresh_seq[fresh]))
        self._index(keys, seq, first)

    def _index(self, keys: np.ndarray, seq: np.ndarray, base: int) -> None:
        """Sort these keys of tracked rows (sequence numbers `seq`, from `base` on) as the index."""
        order = np.argsort(keys, kind="stable")
        self._sorted_keys = keys[order]
        # Relative to the oldest row, in 32 bits: the index spans at most max_tracked rows and a 16th
        self._sorted_seq = (seq[order] - base).astype(np.int32)
        self._index_base = base
        self._fresh = {}

    def _room(self, live: int) -> int:
        """Rows for columns that hold `live` rows: room for half as many again, but for no more than
        a quarter of the memory bound (a brand at its bound moves its rows every `max_tracked / 4`)."""
        bound = max(live, self.max_tracked)
        return max(_MIN_ROWS, min(live + live // 2, bound + bound // 4))

    def _make_room(self) -> None:
        """Before appending to full columns: move the live rows to the front of new columns."""
        self._compact(self._room(self._tail - self._head))

    def _compact(self, size: int) -> None:
        """Copy the live rows to the front of new columns of `size` rows."""
        live = self._tail - self._head
        rows = slice(self._head, self._tail)
        for name in ("_ts", "_delay", "_plat"):
            old = getattr(self, name)
            col = np.empty(size, dtype=old.dtype)
            col[:live] = old[rows]
            setattr(self, name, col)
        self._offset += self._head
        self._head, self._tail = 0, live

    def _prune(self) -> None:
        horizon = self._latest - max(self._max_age, self._window)
        limit = self._settings.responses.max_tracked
        ts = self._ts
        head, tail = self._head, self._tail
        while tail > head and (tail - head > limit or ts[head] < horizon):
            if math.isnan(self._delay[head]):
                self.forgotten += 1
                self._drop(float(ts[head]))
            head += 1
        self._head = head
        size = len(ts)
        if size > 1024 and head > size // 2:  # over half the columns forgotten: give the memory back
            self._compact(self._room(tail - head))

    def _drop(self, ts: float) -> None:
        """Count an unanswered mention of time `ts` leaving the backlog now (at `_latest`)."""
        aged = ts < self._latest - self._max_age
        hour = int((ts + self._max_age if aged else self._latest) // 3600)
        old, untracked = self._dropped.get(hour, (0, 0))
        if not (old or untracked):  # a new hour: forget those past the last day
            self._dropped = {h: n for h, n in self._dropped.items() if h > hour - _DROP_HOURS}
        self._dropped[hour] = (old + 1, untracked) if aged else (old, untracked + 1)

    def _prune_replies(self) -> None:
        """Reply times only count for the recent reply rate: keep what a figure may still ask for."""
        replies, head = self._replies, self._replies_head
        limit = self._settings.responses.max_tracked
        horizon = self._latest - max(self._max_age, self._window) - _RATE_WINDOW
        while head < len(replies) and (len(replies) - head > limit or replies[head] < horizon):
            head += 1
        if head > 1024 and head > len(replies) // 2:
            del replies[:head]
            head = 0
        self._replies_head = head

    def __getstate__(self) -> dict[str, Any]:
        """The attributes by name: a checkpoint reads as those of the `__dict__` of older versions."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore; checkpoints of the two older layouts are converted (the same figures follow).

        Before the delay column (up to 13ac77c): an id key column `_keys`, a float64 `_reply` column of
        first-reply times and a uint16 `_plat`. Before the columns: `_records`, id -> record. What
        else older versions kept (a per-brand cache of parsed targets, `_targets`) is left out.
        """
        for name in self.__slots__:
            if name in state:
                setattr(self, name, state[name])
        if "_dropped" not in state:  # before the hourly counts: the drops before the restore are unknown
            self._dropped = {}
        settings = state["settings"] if "settings" in state else state["_settings"]  # the records layout's name
        self.settings = settings  # parsed anew, into the floats the other brands hold
        records, keys = state.get("_records"), state.get("_keys")
        if records is not None:
            n = len(records)
            self._ts = np.fromiter((float(r[0]) for r in records.values()), np.float64, n)
            reply = np.fromiter((float(r[2]) for r in records.values()), np.float64, n)
            self._delay = (reply - self._ts).astype(np.float32)
            self._codes = {}
            for r in records.values():
                self._codes.setdefault(str(r[1]), len(self._codes))
            self._platforms = list(self._codes)
            codes = (self._codes[str(r[1])] for r in records.values())
            self._plat = np.fromiter(codes, _code_type(len(self._platforms)), n)
            self._head, self._tail, self._offset = 0, n, 0
            self._replies, self._replies_head = list(self._replies), 0
            keys = np.fromiter((_id_key(k) for k in records), np.uint64, n)
            self._index(keys, np.arange(n), 0)
        elif keys is not None:
            rows = slice(self._head, self._tail)
            self._ts = self._ts[rows].copy()
            self._delay = (state["_reply"][rows] - self._ts).astype(np.float32)
            self._plat = self._plat[rows].astype(_code_type(len(self._platforms)))
            self._offset += self._head
            self._head, self._tail = 0, len(self._ts)
            self._index(keys[rows], np.arange(self._offset, self._offset + self._tail), self._offset)

    # -- output -----------------------------------------------------------------------------------

    def figures(self, now: float) -> ResponseFigures:
        """Figures at event time `now` over the mentions of the last `responses.window`.

        Empty until the stream has carried at least one brand reply to a tracked mention: a stream
        without brand replies says nothing about the backlog (it would look like no one answers).
        """
        if self._tail == self._head or not self.replies_seen:
            return ResponseFigures()
        rows = slice(self._head, self._tail)
        ts, delay = self._ts[rows], self._delay[rows]
        targets = np.array([self._target(p) for p in self._platforms])[self._plat[rows]]
        seen = ts <= now
        age = now - ts
        # In float32, as the delays are stored: a reply stamped at `now` is in whatever the rounding
        # (and so is one stamped less than a float32 step of the mention's age after `now`).
        answered = seen & (delay <= age.astype(np.float32))  # nan compares False: unanswered
        young = ts >= now - self.max_age
        waiting = seen & ~answered & young
        backlog = int(waiting.sum())
        counts = np.bincount(self._plat[rows][waiting], minlength=len(self._platforms)) if backlog else ()
        by_platform = {p: int(n) for p, n in zip(self._platforms, counts, strict=False) if n}
        old, untracked = self._dropped_since(now - _DROP_HOURS * 3600.0, now)
        old += int((seen & ~answered & ~young).sum())  # aged out by `now`, not pruned yet
        max_age = round(self.max_age / 60) if old or untracked else None
        win = seen & (ts >= now - self.window)
        n = int(win.sum())
        n_ans = int((win & answered).sum())
        if n == 0:
            return ResponseFigures(
                backlog=backlog,
                breach_forecast=self._forecast(now, ts, backlog, None),
                # how fast a backlog older than the window is answered (staffing keeps people on
                # while it waits past the target)
                replies_per_hour=round(self._reply_rate(now), 2) if backlog else None,
                dropped_old=old,
                dropped_untracked=untracked,
                max_age_minutes=max_age,
                backlog_by_platform=by_platform,
            )
        frt = np.where(answered, delay, age)[win]
        event = answered[win]
        median = _km_quantile(frt, event, 0.5)
        p90 = _km_quantile(frt, event, 0.9)
        tgt = targets[win]
        decided = event | (frt > tgt)
        met = event & (frt <= tgt)
        attainment = float(met.sum() / decided.sum()) if decided.any() else None
        replies = self._reply_rate(now)
        return ResponseFigures(
            response_rate=round(n_ans / n, 4),
            median_first_response_minutes=None if median is None else round(median / 60.0, 2),
            p90_first_response_minutes=None if p90 is None else round(p90 / 60.0, 2),
            backlog=backlog,
            breach_forecast=self._forecast(now, ts, backlog, median),
            target_attainment=None if attainment is None else round(attainment, 4),
            mentions=n,
            answered=n_ans,
            replies_per_hour=round(replies, 2),
            window_minutes=round(self.window / 60),
            dropped_old=old,
            dropped_untracked=untracked,
            max_age_minutes=max_age,
            backlog_by_platform=by_platform,
        )

    def _dropped_since(self, start: float, now: float) -> tuple[int, int]:
        """Mentions that left the backlog unanswered in the hours of (start, now]: (older than
        max_age, past the memory bound)."""
        first, last = int(start // 3600) + 1, int(now // 3600)
        counts = [n for h, n in self._dropped.items() if first <= h <= last]
        return sum(n[0] for n in counts), sum(n[1] for n in counts)

    def _target(self, platform: str) -> float:
        """The platform's first-response target in seconds (`parse_target` caches, for all brands)."""
        return parse_target(self._settings.platform(platform).target)[1]

    def _reply_rate(self, now: float) -> float:
        span = min(_RATE_WINDOW, self.window)
        n = len(self._replies) - self._replies_head
        if n <= 0:
            return 0.0
        r = np.fromiter(itertools.islice(self._replies, self._replies_head, None), np.float64, n)
        return int(((r > now - span) & (r <= now)).sum()) * 3600.0 / span

    def _forecast(self, now: float, ts: np.ndarray, backlog: int, median: float | None) -> str:
        """When the median first reply passes `breach_after`, from a fluid model of the queue.

        With replies going out at the recent rate and mentions arriving at theirs, a new mention
        waits about backlog / reply rate (FCFS); the backlog grows by the difference of the rates.
        """
        span = min(_RATE_WINDOW, self.window)
        arrivals = float(((ts > now - span) & (ts <= now)).sum()) * 3600.0 / span  # per hour
        replies = self._reply_rate(now)
        limit = self.breach_after / 3600.0  # hours
        label = _minutes_text(self.breach_after / 60.0)
        if backlog == 0 and arrivals == 0:
            return ""
        if replies <= 0:
            if backlog == 0:
                return ""
            return f"no brand replies in the last {_minutes_text(span / 60.0)}; {backlog:,} mentions are waiting"
        wait_now = backlog / replies  # hours
        # What was measured (the median of the window's first replies) and what the queue projects
        # (a new mention's wait at the recent reply rate) are said as such, never one for the other.
        waits = f"at the current reply rate ({replies:,.0f}/h) a new mention waits {_about(wait_now * 60.0)}"
        # beside the backlog line's "older than 6 h dropped unanswered": the two must not disagree
        past = wait_now * 3600.0 > self.max_age
        beyond = f", past the {_minutes_text(self.max_age / 60.0)} after which it counts as dropped unanswered"
        if median is not None and median >= self.breach_after:
            text = f"the median first reply takes {_about(median / 60.0)} (limit {label})"
            return text + f"; {waits}" + (beyond if past else "") if wait_now * 3600.0 > median else text
        if wait_now >= limit:
            return f"{waits} for a first reply (limit {label})" + (beyond if past else "")
        if arrivals > replies:
            hours = (limit * replies - backlog) / (arrivals - replies)
            return f"at current staffing the median first reply passes {label} in {_about(hours * 60.0)}"
        if backlog > 0 and replies > arrivals:
            hours = backlog / (replies - arrivals)
            return f"at current staffing the backlog of {backlog:,} clears in {_about(hours * 60.0)}"
        return ""


def _km_quantile(durations: np.ndarray, event: np.ndarray, q: float) -> float | None:
    """Kaplan-Meier q-quantile of durations with right-censoring (event False = still waiting).

    >>> _km_quantile(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, True, True, True]), 0.5)
    2.0
    >>> _km_quantile(np.array([1.0, 5.0, 5.0, 5.0]), np.array([True, False, False, False]), 0.5) is None
    True
    """
    if len(durations) == 0:
        return None
    order = np.lexsort((~event, durations))  # at equal times, events before censorings
    d = durations[order]
    e = event[order]
    at_risk = len(d) - np.arange(len(d))
    survival = np.cumprod(np.where(e, 1.0 - 1.0 / at_risk, 1.0))
    hit = np.flatnonzero((1.0 - survival >= q - 1e-12) & e)
    return float(d[hit[0]]) if len(hit) else None


_BEYOND_MINUTES = 2880.0  # two days: a longer wait is said as "more than 2 days"


def _about(minutes: float) -> str:
    """'about 40 minutes', or 'more than 2 days' (not 'about more than ...').

    >>> _about(41.0), _about(5e5)
    ('about 40 minutes', 'more than 2 days')
    """
    text = _minutes_text(minutes)
    return text if minutes > _BEYOND_MINUTES else f"about {text}"


def _minutes_text(minutes: float) -> str:
    """Rounded for a sentence: '4 minutes', '40 minutes', '2 hours'; beyond two days a projection
    of the queue says nothing more precise (replies have all but stopped).

    >>> _minutes_text(0.4), _minutes_text(7.2), _minutes_text(41.0), _minutes_text(130.0), _minutes_text(5e5)
    ('1 minute', '7 minutes', '40 minutes', '2 hours', 'more than 2 days')
    """
    if minutes > _BEYOND_MINUTES:
        return "more than 2 days"
    if minutes >= 90:
        hours = round(minutes / 60.0)
        return f"{hours} hours"
    m = max(1, round(minutes) if minutes < 15 else 5 * round(minutes / 5.0))
    return "1 minute" if m == 1 else f"{m} minutes"
