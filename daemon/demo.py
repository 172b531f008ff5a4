"""`crisisd demo`: the whole pipeline on a built-in ash-crisis scenario, console notifier, no Kafka or Slack.

Simulates a few days of multilingual mentions for several brands (with distractors: a troll, a viral
post, a marketing campaign, a growing brand, a quiet brand) ending in the April 2010 ash-cloud crisis,
replays it in event time, prints every notification as the Slack message would read, then a verdict:
when the crisis was detected (event-time minutes after onset), the staffing suggestion, and whether
any distractor raised an incident.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from daemon.notification import Notification, largest_first, to_json

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.simulate import Truth

DEMO_SCALE = 0.1  # of the full simulated volume: a mid-sized airline, and a demo well under a minute


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_demo(seed: int = 7, days: int = 4, json_out: bool = False, scale: float = DEMO_SCALE) -> int:
    from config.settings import load_settings
    from daemon.log import configure_logging
    from daemon.pipeline import Pipeline
    from daemon.replay_command import run_stream, summary
    from daemon.simulate import simulate
    from notifiers.console import ConsoleNotifier

    sim = simulate("ash-crisis", days=days, seed=seed, scale=scale)
    truth = sim.truth
    settings = _settings_for(load_settings(env={}), truth)
    configure_logging(settings.log.format, "warning")
    out = sys.stdout
    if not json_out:
        out.write(
            f"crisisd demo: {days} simulated days, {len(truth.brands)} brands, seed {seed}; "
            f"replaying in event time...\n\n"
        )
    notes: list[Notification] = []
    console = ConsoleNotifier(out)

    def emit(note: Notification) -> None:
        notes.append(note)
        if json_out:
            out.write(to_json(note).decode() + "\n")
        else:
            console.send(note)

    pipeline = Pipeline(settings)
    started = time.perf_counter()
    run_stream(pipeline, sim.lines(), emit)
    elapsed = time.perf_counter() - started
    verdict = _verdict(truth, notes)
    if json_out:
        sys.stderr.write(verdict)
    else:
        out.write("\n" + verdict)
    print(summary(pipeline, elapsed), file=sys.stderr)
    return 0


def _settings_for(settings: Settings, truth: Truth) -> Settings:
    """Each simulated brand's daily curve in its own time zone, as a deployment would configure it."""
    from detectors.settings import DetectionSettings

    base = msgspec.to_builtins(settings.detection)
    base["brands"] = {b.brand: {"volume": {"timezone": b.tz}} for b in truth.brands}
    return msgspec.structs.replace(settings, detection=msgspec.convert(base, DetectionSettings))


def _verdict(truth: Truth, notes: list[Notification]) -> str:
    from daemon.staffing.planner import sla_text

    crisis = truth.crisis
    lines = ["== verdict =="]
    opened = [n for n in notes if n.type == "incident.opened"]
    hit = None
    if crisis is not None:
        onset = _ts(crisis.onset)
        for n in opened:
            if n.brand == crisis.brand and _ts(n.started_at) <= _ts(crisis.end) and _ts(n.detected_at) >= onset - 3600:
                hit = n
                break
        if hit is None:
            lines.append(f"crisis ({crisis.brand}, onset {crisis.onset}): NOT DETECTED")
        else:
            delay = (_ts(hit.detected_at) - onset) / 60.0
            lines.append(
                f"crisis: {hit.incident_id} {hit.severity} opened at {hit.detected_at}, "
                f"{delay:.0f} event-time minutes after onset ({crisis.onset})"
            )
            peak = [n for n in notes if n.incident_id == hit.incident_id and n.staffing is not None]
            if peak:
                s = max(peak, key=lambda n: n.staffing.agents_needed if n.staffing else 0).staffing
                assert s is not None
                langs = largest_first(s.by_language)
                lines.append(
                    f"staffing at peak: {s.agents_needed:,} agents on the queue, {s.to_schedule:,} to schedule, "
                    f"{s.on_shift:,} on shift, {s.called_in + s.call_in:,} called in by then ({langs}); "
                    f"target {sla_text(s)}"
                )
    for d in truth.distractors:
        lo, hi = _ts(d.start) - 3600, _ts(d.end) + 3600
        raised = [n for n in opened if n.brand == d.brand and lo <= _ts(n.detected_at) <= hi and n is not hit]
        worst = ", ".join(f"{n.incident_id} {n.severity}" for n in raised) or "no incident"
        lines.append(f"distractor {d.kind} ({d.brand}, {d.start}): {worst}")
    others = [n for n in opened if n is not hit and not any(n.brand == d.brand for d in truth.distractors)]
    lines.append(f"other incidents: {', '.join(n.incident_id + ' ' + n.severity for n in others) or 'none'}")
    return "\n".join(lines) + "\n"
