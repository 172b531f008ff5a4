"""What an incident message says, independent of where it goes.

`render` turns a `Notification` (plus what the Slack side knows: acknowledgement, snooze,
volunteers) into a neutral `Message` of plain, unescaped strings. The console notifier prints
it; the Slack notifier formats it as Block Kit (escaping every string there). One renderer
means the console shows exactly what Slack will say.

>>> from daemon.notification import Notification, NegativityFigures, VolumeFigures
>>> n = Notification(type="incident.opened", incident_id="klm-1", brand="klm", severity="sev1",
...     signals=["volume", "negativity"], started_at="2010-04-16T05:40:00Z",
...     detected_at="2010-04-16T05:43:00Z", top_terms=["ash", "cancelled"],
...     volume=VolumeFigures(5400, 310, 17.4), negativity=NegativityFigures(0.71, 0.24))
>>> m = render(n)
>>> m.title
'SEV1 · klm · volume + negativity'
>>> m.headline
'Mentions of klm are at 17.4× the usual volume and 71% are negative (usually 24%), about: ash, cancelled.'
>>> m.figures[0]
('Volume', '5,400/h vs 310/h expected (17.4×)')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from daemon.notification import (
    Notification,
    ResponseFigures,
    SampleMention,
    human_duration,
    largest_first,
    per_hour_text,
    share_text,
)
from daemon.staffing.planner import backlog_breaches_target, backlog_said, sla_text, watch_advice

ACTIONS: tuple[tuple[str, str, str], ...] = (
    # (action_id, label, style); the style is Slack's button style ("" = default)
    ("crisisd.ack", "Acknowledge", "primary"),
    ("crisisd.escalate", "Escalate", "danger"),
    ("crisisd.resolve", "Resolve", ""),
    ("crisisd.snooze", "Snooze", ""),
    ("crisisd.volunteer", "I can help", ""),
)


@dataclass(frozen=True)
class IncidentStatus:
    """What the notifier knows about an incident beyond its last notification."""

    acknowledged_by: str = ""
    snoozed_until: str = ""
    escalation_level: int = 0
    volunteers: int = 0
    volunteer_languages: tuple[str, ...] = ()
    resolve_requested_by: str = ""
    # posted while crisisd was catching up (a backlog after an outage): how long after the fact
    # ("2h 14m"); whether nobody has been paged for it although its severity pages, and whether that
    # page waits because crisisd is still replaying the incident's stream
    posted_late: str = ""
    unpaged: bool = False
    waiting: bool = False


@dataclass(frozen=True)
class Message:
    incident_id: str
    severity: str
    brand: str
    resolved: bool
    title: str
    headline: str
    figures: list[tuple[str, str]]
    terms: list[str]
    samples: list[SampleMention]
    staffing: list[str]
    status: list[str]
    context: list[str]
    actions: tuple[tuple[str, str, str], ...] = field(default=ACTIONS)


def _parse(ts: str) -> datetime | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_text(start: str, end: str | None) -> str:
    """How long from `start` to `end` (ISO times), for people.

    >>> duration_text("2010-04-16T05:40:00Z", "2010-04-16T08:05:00Z")
    '2h 25m'
    """
    a, b = _parse(start), _parse(end or "")
    if a is None or b is None:
        return "unknown"
    return human_duration((b - a).total_seconds())


def headline(n: Notification) -> str:
    if n.type == "incident.resolved":  # the summary says how long, the peak and the totals
        return n.summary or f"The incident on {n.brand} is resolved after {duration_text(n.started_at, n.resolved_at)}."
    if n.summary:
        return n.summary
    text = f"Mentions of {n.brand} are at {n.volume.ratio:.1f}× the usual volume"
    text += f" and {share_text(n.negativity.share)} are negative (usually {share_text(n.negativity.baseline_share)})"
    if n.top_terms:
        text += ", about: " + ", ".join(n.top_terms[:3])
    return text + "."


def backlog_text(r: ResponseFigures) -> str:
    """The backlog with the mentions that left it unanswered in the last day (it forgets them by
    age or past its memory bound), so a backlog that shrinks does not read as answered; '' when
    none left it.

    >>> backlog_text(ResponseFigures(backlog=8681, dropped_old=11633, max_age_minutes=360))
    'Backlog: 8,681 waiting (+11,633 older than 6 h dropped unanswered in the last 24 h)'
    >>> backlog_text(ResponseFigures(backlog=99709, dropped_old=5, dropped_untracked=40000, max_age_minutes=90))
    ... # doctest: +NORMALIZE_WHITESPACE
    'Backlog: 99,709 waiting (+40,005 dropped unanswered in the last 24 h: 40,000 past the tracking limit,
     5 older than 90 min)'
    """
    old, untracked = r.dropped_old, r.dropped_untracked
    if not (old or untracked):
        return ""
    minutes = r.max_age_minutes or 0
    age = f"older than {minutes // 60} h" if minutes % 60 == 0 else f"older than {minutes} min"
    if not untracked:
        dropped = f"+{old:,} {age} dropped unanswered in the last 24 h"
    else:
        why = f"{untracked:,} past the tracking limit" + (f", {old:,} {age}" if old else "")
        dropped = f"+{old + untracked:,} dropped unanswered in the last 24 h: {why}"
    return f"Backlog: {r.backlog:,} waiting ({dropped})"


def stand_down_text(n: Notification) -> str:
    """What a resolution asks of the people the incident called in: they stand down, but for
    those the backlog still needs beside the shift; never more people ('' for other notifications).

    >>> import msgspec
    >>> from daemon.notification import NegativityFigures, StaffingFigures, VolumeFigures
    >>> n = Notification(type="incident.resolved", incident_id="i", brand="b", severity="sev1", signals=[],
    ...     started_at="", detected_at="", volume=VolumeFigures(440, 390, 1.1), negativity=NegativityFigures(0.5, 0.5),
    ...     staffing=StaffingFigures(agents_needed=496, to_schedule=709, on_shift=0, call_in=0, backlog=8681))
    >>> stand_down_text(msgspec.structs.replace(n, called_in=1279))
    'Stand down 570 of the 1,279 called in; keep 709 until the backlog of 8,681 is cleared.'
    >>> stand_down_text(msgspec.structs.replace(n, called_in=125))  # the shift ended: still no one more
    'Keep the 125 called in until the backlog of 8,681 is cleared.'
    >>> stand_down_text(msgspec.structs.replace(n, called_in=1279, staffing=None))
    'Stand down the 1,279 called in.'
    """
    if n.type != "incident.resolved":
        return ""
    s, called = n.staffing, n.called_in
    # what the load still needs beyond the shift; the surge is over, so it is asked of those
    # called in, never of more people
    need = max(0, s.to_schedule - s.on_shift) if s is not None else 0
    until = "for the load now"
    if s is not None and s.backlog and s.usual_backlog:
        until = f"until {backlog_said(s.backlog, s.usual_backlog)} are answered"
    elif s is not None and s.backlog:
        until = f"until the backlog of {s.backlog:,} is cleared"
    # no one goes home while the surge's backlog waits past the response target (as the figures'
    # stand_down: daemon.detection)
    rate = n.responses.replies_per_hour if n.responses is not None else None
    waiting = s is not None and backlog_breaches_target(s.backlog, rate, s.sla_target)
    if called is None:  # the incident began before a restore from an older checkpoint
        if waiting:
            return f"Keep those called in for the surge {until}."
        but = f" but {need:,}, {until}" if need else ""
        return f"Stand down those called in for the surge{but}."
    if called == 0:
        return ""
    if waiting:
        return f"Keep the {called:,} called in {until}."
    if need == 0:
        return f"Stand down the {called:,} called in."
    if need < called:
        return f"Stand down {called - need:,} of the {called:,} called in; keep {need:,} {until}."
    return f"Keep the {called:,} called in {until}."


def watch_text(n: Notification) -> str:
    """A sev3 watch calls no one in (`daemon.staffing.planner.watch_advice`), in this notification's figures."""
    s = n.staffing
    return "" if s is None else watch_advice(s.above_normal, n.volume.expected_per_hour, s.backlog + s.usual_backlog)


def staffing_lines(n: Notification, status: IncidentStatus) -> list[str]:
    s = n.staffing
    volunteers = max(status.volunteers, s.volunteers_signed_up if s else 0)
    backlog = backlog_text(n.responses) if n.responses is not None else ""
    resolved = n.type == "incident.resolved"
    stand_down = stand_down_text(n)
    lines: list[str] = [stand_down] if stand_down else []
    # a sev3 watch says what the load above normal adds, and neither a call-in nor the advice
    # (which staffs a surge: "Call in 503: ...")
    watch = n.severity == "sev3" and not resolved
    if s is not None and watch:
        lines.append(watch_text(n))
    elif s is not None:
        # once resolved, the sentence above says whom to keep: no "call in" beside it
        called = f"; called in {s.called_in:,}" if s.called_in else ""
        call_in = "" if resolved else f"; call in {s.call_in:,}" + (" more" if s.called_in else "")
        lines.append(
            f"Agents needed: {s.agents_needed:,} (schedule {s.to_schedule:,}; on shift {s.on_shift:,}{called}{call_in})"
        )
        if s.range is not None:
            lines.append(f"Range: {s.range[0]:,}–{s.range[1]:,} agents")
        if s.by_language:
            lines.append("By language: " + largest_first(s.by_language, " · "))
        if s.by_skill:
            lines.append("By skill: " + largest_first(s.by_skill, " · "))
    targets = sla_text(s) if s is not None else ""
    if s is not None and targets:
        extra = ""
        if s.service_level is not None and not watch:
            extra = f" (service level once staffed {share_text(s.service_level)})"
        lines.append(f"SLA target: {targets}{extra}")
    if s is not None and s.ask_first and not watch:
        lines.append("Ask first: " + ", ".join(s.ask_first))
    if backlog:
        lines.append(backlog)
    if s is not None and not watch:
        # the planner's paragraph staffs a surge ("Call in 709: ..."); once resolved, the
        # stand-down sentence above replaces it and its stand-down
        advice = "" if resolved else s.advice
        if s.stand_down and not resolved:  # the planner offers none as the incident opens or escalates
            first = ", those called in first" if s.called_in else ""
            advice += f" {s.stand_down:,} can stand down now{first}."
        if advice.strip():
            lines.append(advice.strip())
    if s is None and volunteers == 0:
        return lines  # nothing more to say (e.g. a resolved incident)
    vol = f"Volunteers signed up: {volunteers}"
    if status.volunteer_languages:
        vol += " (" + ", ".join(status.volunteer_languages) + ")"
    if s is not None and s.call_in and volunteers and not watch:
        # the suggestion does not know who pressed "I can help": say what is left to find
        vol += f"; {max(0, s.call_in - volunteers):,} of the {s.call_in:,} to call in still to find"
    lines.append(vol)
    return lines


def render(n: Notification, status: IncidentStatus | None = None) -> Message:
    status = status or IncidentStatus()
    resolved = n.type == "incident.resolved"
    signals = " + ".join(n.signals) if n.signals else "anomaly"
    title = f"{n.severity.upper()} · {n.brand} · {signals}"
    if resolved:
        title = f"RESOLVED · {title}"
    figures = [
        (
            "Volume",
            f"{per_hour_text(n.volume.observed_per_hour)}/h vs {per_hour_text(n.volume.expected_per_hour)}/h expected"
            f" ({n.volume.ratio:.1f}×)",
        ),
        # of the incident's mentions so far, unlike the volume beside it (the current load): a
        # resolved incident's 89% is the incident's mood, not today's
        (
            "Negativity",
            f"{share_text(n.negativity.share)} of the incident's mentions"
            f" vs {share_text(n.negativity.baseline_share)} usually",
        ),
    ]
    if n.languages:
        top = sorted(n.languages.items(), key=lambda kv: -kv[1])[:5]
        figures.append(("Languages", " · ".join(f"{k} {share_text(v)}" for k, v in top)))
    r = n.responses
    if r is not None:
        parts = []
        if r.response_rate is not None:
            # the rate is of recent mentions, not of the incident's: say which
            within = f" in the last {human_duration(r.window_minutes * 60)}" if r.window_minutes else ""
            counts = f" ({r.answered:,} of {r.mentions:,} answered)" if r.mentions else ""
            parts.append(f"response rate {share_text(r.response_rate)}{within}{counts}")
        if r.median_first_response_minutes is not None:
            parts.append(f"median first response {r.median_first_response_minutes:.0f} min")
        if r.backlog:
            parts.append(f"backlog {r.backlog:,}")
        if r.breach_forecast:
            parts.append(r.breach_forecast)
        if parts:
            figures.append(("Replies", ", ".join(parts)))
    if resolved:
        figures.append(("Duration", duration_text(n.started_at, n.resolved_at)))
        if n.peak_per_hour is not None:
            figures.append(("Peak", f"{per_hour_text(n.peak_per_hour)}/h"))
        if n.mentions is not None:
            figures.append(("Mentions", f"{n.mentions:,}"))
        if n.replies is not None:
            figures.append(("Brand replies", f"{n.replies:,}"))
    state: list[str] = []
    if status.acknowledged_by:
        state.append(f"Acknowledged by {status.acknowledged_by}")
    elif status.snoozed_until:
        state.append(f"Escalation snoozed until {status.snoozed_until}")
    if status.resolve_requested_by and not resolved:
        state.append(f"Resolve requested by {status.resolve_requested_by}")
    if status.escalation_level > 0 and not status.acknowledged_by and not resolved:
        state.append(f"Escalated to level {status.escalation_level + 1}")
    if status.posted_late:
        late = f"Posted during catch-up, {status.posted_late} after the fact"
        if status.unpaged and resolved:
            late += ": over by then, nobody was paged"
        elif status.unpaged and status.waiting:
            late += ": paged only if still open once crisisd has caught up"
        state.append(late)
    context = [f"Incident {n.incident_id}", f"started {n.started_at}", f"detected {n.detected_at}"]
    if resolved and n.resolved_at:
        context.append(f"resolved {n.resolved_at}")
    elif n.updated_at and n.updated_at != n.detected_at:
        context.append(f"updated {n.updated_at}")
    if n.flags:
        context.append("flags: " + ", ".join(n.flags))
    return Message(
        incident_id=n.incident_id,
        severity=n.severity,
        brand=n.brand,
        resolved=resolved,
        title=title,
        headline=headline(n),
        figures=figures,
        terms=list(n.top_terms[:10]),
        samples=list(n.sample_mentions[:3]),
        staffing=staffing_lines(n, status),
        status=state,
        context=context,
        actions=() if resolved else ACTIONS,
    )


_REASONS = {
    "severity": "escalated",
    "signals": "a new signal",
    "load": "the load moved",
    "staffing": "the staffing need moved",
}


def thread_text(n: Notification) -> str:
    """One timeline line for the incident's thread (plain text).

    >>> from daemon.notification import Notification, NegativityFigures, VolumeFigures
    >>> thread_text(Notification(type="incident.updated", incident_id="i", brand="b",
    ...     severity="sev2", signals=["volume"], started_at="", detected_at="2010-04-16T06:00:00Z",
    ...     seq=3, updated_at="2010-04-16T07:15:00Z", volume=VolumeFigures(900, 300, 3.0),
    ...     negativity=NegativityFigures(0.5, 0.2)))  # doctest: +ELLIPSIS
    'Update 3 at 2010-04-16T07:15:00Z: SEV2, volume 900/h (3.0× expected), negativity 50% (usually 20%), signals...'
    """
    if n.type == "incident.resolved":
        m = render(n)
        figs = ", ".join(
            f"{k.lower()} {v}" for k, v in m.figures if k in ("Duration", "Peak", "Mentions", "Brand replies")
        )
        # the figures are the summary's, so it is not repeated
        text = f"Resolved at {n.resolved_at or n.detected_at}: {figs}." if figs else f"Resolved. {n.summary}".strip()
        # in the staffing block's own words and numbers (people on the schedule, not those answering at once)
        stand_down = stand_down_text(n)
        return f"{text} {stand_down}" if stand_down else text
    kind = "Opened" if n.type == "incident.opened" else f"Update {n.seq}"
    why = f" ({_REASONS[n.reason]})" if n.reason in _REASONS else ""
    text = (
        f"{kind} at {n.updated_at or n.detected_at}{why}: {n.severity.upper()},"
        f" volume {per_hour_text(n.volume.observed_per_hour)}/h"
        f" ({n.volume.ratio:.1f}× expected), negativity {share_text(n.negativity.share)}"
        f" (usually {share_text(n.negativity.baseline_share)}), signals: {', '.join(n.signals) or 'none'}"
    )
    st = n.staffing
    if st is not None and n.severity == "sev3":
        text += f"; staffing: a watch, no call-in ({st.above_normal:,} more than the normal load needs, if it holds)"
    elif st is not None:
        ask = f"call in {st.call_in:,}"
        if st.called_in:
            ask = f"{ask} more" if st.call_in else "no more to call in"
            ask += f" ({st.called_in:,} called in)"
        text += f"; staffing: {st.agents_needed:,} agents needed, {ask}"
    return text


def as_text(m: Message) -> str:
    """The message as plain text (the console notifier's output)."""
    out = [f"[{m.title}]", m.headline]
    out += [f"  {k}: {v}" for k, v in m.figures]
    if m.terms:
        out.append("  Emerging terms: " + ", ".join(m.terms))
    for s in m.samples:
        one = " ".join(s.text.split())
        out.append(f"  > {one}" + (f" ({s.url})" if s.url else ""))
    if m.staffing:
        out.append("  Staffing:")
        out += [f"    {line}" for line in m.staffing]
    out += [f"  {line}" for line in m.status]
    out.append("  " + " | ".join(m.context))
    if m.actions:
        out.append("  " + " ".join(f"[{label}]" for _, label, _ in m.actions))
    return "\n".join(out)
