"""`crisisd staffing`: the staffing suggestion for one given load (docs/cli.md), or for several
platforms answered by one team from one queue (`--platform`, as the daemon staffs an incident)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NamedTuple

import msgspec

from daemon.staffing.erlang import PooledAnswer, QueueClass, StaffingAnswer, StaffingQuestion, solve, solve_pooled
from daemon.staffing.settings import StaffingSettings, format_duration, format_target, parse_duration, parse_target

_DEFAULTS = StaffingSettings()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "staffing",
        help="staffing suggestion for a given load (Erlang C / A with occupancy cap and backlog)",
        description=(
            "How many people must answer at once to meet a service-level target, how many to schedule "
            "after shrinkage and how many to call in."
        ),
    )
    p.add_argument("--arrivals-per-hour", metavar="N", help="mentions needing a reply per hour")
    p.add_argument("--aht-minutes", metavar="M", help="average handle time of one reply, minutes")
    p.add_argument("--target", metavar="P/DURATION", help="e.g. 80/15m: 80 %% answered within 15 minutes")
    p.add_argument(
        "--platform",
        action="append",
        metavar="NAME:N:M:P/DURATION[:W]",
        help=(
            "instead of the three above, one platform answered from one queue by one team with the others "
            "(repeat it): its mentions per hour, handle time in minutes, target and, optionally, its "
            "customers' mean patience in minutes, e.g. twitter:300:3:80/15m whatsapp:100:6:80/5m:10"
        ),
    )
    p.add_argument(
        "--shrinkage", default=str(_DEFAULTS.shrinkage), metavar="S", help="share of paid time off the queue [0, 1)"
    )
    p.add_argument("--max-occupancy", default=str(_DEFAULTS.max_occupancy), metavar="O", help="busy share cap (0, 1]")
    p.add_argument("--backlog", default="0", metavar="B", help="unanswered mentions to clear within the target")
    p.add_argument(
        "--backlog-within", default=None, metavar="DURATION", help="clear the backlog in this time (default: target)"
    )
    p.add_argument("--on-shift", default="0", metavar="K", help="people on shift now")
    p.add_argument("--patience-minutes", default=None, metavar="W", help="mean customer patience: staff with Erlang A")
    p.add_argument(
        "--range-spread",
        default=str(_DEFAULTS.range_spread),
        metavar="R",
        help="relative arrival-rate uncertainty for the range",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


def _number(
    args: argparse.Namespace, attr: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    return _parse_number(getattr(args, attr), "--" + attr.replace("_", "-"), lo, hi, lo_open=lo_open, hi_open=hi_open)


def _parse_number(
    raw: str, option: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> float:
    from daemon.cli import UsageError

    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise UsageError(f"{option}: {raw!r} is not a number") from None
    low_ok = v > lo if lo_open else v >= lo
    high_ok = v < hi if hi_open else v <= hi
    if not (math.isfinite(v) and low_ok and high_ok):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise UsageError(f"{option}: {raw} is outside {lb}{lo:g}, {hi:g}{rb}")
    return v


def _count(args: argparse.Namespace, attr: str) -> int:
    from daemon.cli import UsageError

    v = _number(args, attr, 0, 1e9)
    if v != int(v):
        raise UsageError(f"--{attr.replace('_', '-')}: {getattr(args, attr)} is not a whole number")
    return int(v)


class _Team(NamedTuple):
    """The options that shape the team whatever the load: shrinkage, the occupancy cap, the backlog and
    when to clear it (None: within the target), who is on shift, the range's spread."""

    shrinkage: float
    occupancy: float
    backlog: int
    backlog_seconds: float | None
    on_shift: int
    spread: float


def _team(args: argparse.Namespace) -> _Team:
    from daemon.cli import UsageError

    backlog_seconds = None
    if args.backlog_within is not None:
        try:
            backlog_seconds = parse_duration(args.backlog_within)
        except ValueError as exc:
            raise UsageError(f"--backlog-within: {exc}") from None
        if backlog_seconds <= 0:
            raise UsageError("--backlog-within: must be above 0")
    return _Team(
        shrinkage=_number(args, "shrinkage", 0, 1, hi_open=True),
        occupancy=_number(args, "max_occupancy", 0, 1, lo_open=True),
        backlog=_count(args, "backlog"),
        backlog_seconds=backlog_seconds,
        on_shift=_count(args, "on_shift"),
        spread=_number(args, "range_spread", 0, 1, hi_open=True),
    )


def _fields(ans: StaffingAnswer, team: _Team, lo: int, hi: int, *, patient: bool) -> dict[str, object]:
    """The JSON object's fields whatever the load (docs/cli.md names the first six)."""
    to_schedule = _to_schedule(ans, team)
    out: dict[str, object] = {
        "agents_needed": ans.agents_needed,
        "to_schedule": to_schedule,
        "on_shift": team.on_shift,
        "call_in": max(0, to_schedule - team.on_shift),
        "stand_down": max(0, team.on_shift - to_schedule),
        "service_level": round(ans.service_level, 6),
        "occupancy": round(ans.occupancy, 6),
        "range": [lo, hi],
        "erlangs": round(ans.erlangs, 6),
        "queue_agents": ans.queue_agents,
        "backlog": team.backlog,
        "backlog_agents": ans.backlog_agents,
        "wait_probability": round(ans.wait_probability, 6),
        "mean_wait_seconds": round(ans.mean_wait_seconds, 3),
        "binding": ans.binding,
        "model": "erlang_a" if patient else "erlang_c",
        "shrinkage": team.shrinkage,
        "max_occupancy": team.occupancy,
    }
    if patient:
        out["abandonment"] = round(ans.abandonment, 6)
    return out


def _to_schedule(ans: StaffingAnswer, team: _Team) -> int:
    return math.ceil(ans.agents_needed / (1.0 - team.shrinkage) - 1e-9)


def _roster_lines(ans: StaffingAnswer, team: _Team) -> list[str]:
    to_schedule = _to_schedule(ans, team)
    return [
        f"to schedule    {to_schedule} ({team.shrinkage * 100:g} % shrinkage)",
        f"on shift       {team.on_shift}",
        f"call in        {max(0, to_schedule - team.on_shift)}",
    ]


def _occupancy(ans: StaffingAnswer, team: _Team) -> str:
    binding = "no new arrivals" if ans.binding == "none" else f"set by the {ans.binding.replace('_', ' ')}"
    return f"occupancy {ans.occupancy:.3f} (cap {team.occupancy:g}, {binding})"


def _waiting(ans: StaffingAnswer) -> str:
    return f"waiting        {ans.wait_probability:.3f} wait at all, mean wait {ans.mean_wait_seconds:.0f} s"


def _closing_lines(ans: StaffingAnswer, team: _Team, within: float) -> list[str]:
    """The backlog (cleared `within` seconds) and who may go home."""
    lines = []
    if team.backlog:
        clear = f"{ans.backlog_agents} of the agents clear it within {format_duration(within)}"
        lines.append(f"backlog        {team.backlog}: {clear}")
    to_schedule = _to_schedule(ans, team)
    if team.on_shift > to_schedule:
        lines.append(f"stand down     {team.on_shift - to_schedule}")
    return lines


def _write(args: argparse.Namespace, out: dict[str, object], lines: list[str]) -> int:
    text = msgspec.json.encode(out).decode() if args.json else "\n".join(lines)
    sys.stdout.write(text + "\n")
    return 0


def main(args: argparse.Namespace) -> int:
    from daemon.cli import UsageError

    single = [o for o in ("arrivals_per_hour", "aht_minutes", "target") if getattr(args, o) is not None]
    if args.platform:
        if single:
            raise UsageError(f"--{single[0].replace('_', '-')}: give the load either so or as --platform, not both")
        return _pooled(args)
    for option in ("arrivals_per_hour", "aht_minutes", "target"):
        if getattr(args, option) is None:
            raise UsageError(f"--{option.replace('_', '-')} is required (or give the load as --platform)")
    arrivals = _number(args, "arrivals_per_hour", 0, 1e7)
    aht = _number(args, "aht_minutes", 0, 600, lo_open=True)
    try:
        target, target_seconds = parse_target(args.target)
    except ValueError as exc:
        raise UsageError(f"--target: {exc}") from None
    team = _team(args)
    patience = None if args.patience_minutes is None else _number(args, "patience_minutes", 0, 1e6, lo_open=True)

    q = StaffingQuestion(
        arrivals_per_hour=arrivals,
        aht_seconds=aht * 60.0,
        target=target,
        target_seconds=target_seconds,
        max_occupancy=team.occupancy,
        backlog=team.backlog,
        backlog_seconds=team.backlog_seconds,
        backlog_confidence=_DEFAULTS.backlog_confidence,
        patience_seconds=None if patience is None else patience * 60.0,
    )
    try:
        ans = solve(q)
        lo = solve(msgspec.structs.replace(q, arrivals_per_hour=arrivals * (1 - team.spread))).agents_needed
        hi = solve(msgspec.structs.replace(q, arrivals_per_hour=arrivals * (1 + team.spread))).agents_needed
    except ValueError as exc:  # e.g. a load beyond the guard
        raise UsageError(f"--arrivals-per-hour: {exc}") from None
    sla = format_target(target, target_seconds)
    out = _fields(ans, team, lo, hi, patient=patience is not None)
    out.update(sla_target=sla, arrivals_per_hour=arrivals, aht_minutes=aht)
    model = "Erlang A" if patience is not None else "Erlang C"
    lines = [
        f"load           {arrivals:g}/h x {aht:g} min = {ans.erlangs:.1f} Erlang; target {sla} ({model})",
        f"agents needed  {ans.agents_needed} answering at once (range {lo}-{hi})",
        *_roster_lines(ans, team),
        f"service level  {ans.service_level:.3f} within {format_duration(target_seconds)}; {_occupancy(ans, team)}",
        _waiting(ans),
    ]
    if patience is not None:
        lines.append(f"abandonment    {ans.abandonment:.3f} give up (mean patience {patience:g} min)")
    lines += _closing_lines(ans, team, target_seconds if team.backlog_seconds is None else team.backlog_seconds)
    return _write(args, out, lines)


def _platform(spec: str) -> tuple[str, QueueClass]:
    """`NAME:N:M:P/DURATION[:W]` -> (name, its class)."""
    from daemon.cli import UsageError

    parts = spec.split(":")
    if len(parts) not in (4, 5) or not parts[0]:
        raise UsageError(f"--platform: {spec!r} is not NAME:N:M:P/DURATION[:W] (e.g. twitter:300:3:80/15m)")
    name = parts[0]
    option = f"--platform {name}"
    arrivals = _parse_number(parts[1], f"{option}: mentions per hour", 0, 1e7)
    aht = _parse_number(parts[2], f"{option}: handle time in minutes", 0, 600, lo_open=True)
    try:
        target, target_seconds = parse_target(parts[3])
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    patience = None
    if len(parts) == 5:
        patience = _parse_number(parts[4], f"{option}: patience in minutes", 0, 1e6, lo_open=True) * 60.0
    return name, QueueClass(
        arrivals_per_hour=arrivals,
        aht_seconds=aht * 60.0,
        target=target,
        target_seconds=target_seconds,
        patience_seconds=patience,
    )


def _pooled(args: argparse.Namespace) -> int:
    """Several platforms, one team, one queue (first come, first served): the smallest team that meets
    every platform's own target under the occupancy cap (`solve_pooled`), beside a queue per platform."""
    from daemon.cli import UsageError

    platforms = [_platform(spec) for spec in args.platform]
    names = [name for name, _ in platforms]
    if len(set(names)) != len(names):
        raise UsageError(f"--platform: {sorted({n for n in names if names.count(n) > 1})[0]} is given twice")
    classes = [c for _, c in platforms]
    team = _team(args)
    if args.patience_minutes is not None:
        raise UsageError("--patience-minutes: give each platform's patience in its --platform (NAME:N:M:P/DURATION:W)")

    def pooled_team(of: list[QueueClass]) -> PooledAnswer:
        return solve_pooled(
            of,
            max_occupancy=team.occupancy,
            backlog=team.backlog,
            backlog_seconds=team.backlog_seconds,
            backlog_confidence=_DEFAULTS.backlog_confidence,
        )

    def scaled(scale: float) -> list[QueueClass]:
        return [msgspec.structs.replace(c, arrivals_per_hour=c.arrivals_per_hour * scale) for c in classes]

    try:
        pooled = pooled_team(classes)
        lo, hi = (pooled_team(scaled(x)).answer.agents_needed for x in (1 - team.spread, 1 + team.spread))
        apart = [solve(c.alone(team.occupancy)).agents_needed for c in classes]
    except ValueError as exc:  # e.g. a load beyond the guard
        raise UsageError(f"--platform: {exc}") from None
    ans = pooled.answer
    patient = any(c.patience_seconds is not None for c in classes)
    rows = [
        {
            "platform": name,
            "arrivals_per_hour": c.arrivals_per_hour,
            "aht_minutes": c.aht_seconds / 60.0,
            "sla_target": format_target(c.target, c.target_seconds),
            "patience_minutes": None if c.patience_seconds is None else c.patience_seconds / 60.0,
            "service_level": round(level, 6),
            "agents_if_apart": alone,
        }
        for (name, c), level, alone in zip(platforms, pooled.service_levels, apart, strict=True)
    ]
    out = _fields(ans, team, lo, hi, patient=patient)
    out.update(
        sla_target="; ".join(f"{r['platform']} {r['sla_target']}" for r in rows),
        platforms=rows,
        agents_if_apart=sum(apart),
    )
    total = sum(c.arrivals_per_hour for c in classes)
    model = "Erlang A" if patient else "Erlang C"
    width = max(len(n) for n in names)
    lines = [
        f"load           {len(classes)} platforms, one queue: {total:g}/h, {ans.erlangs:.1f} Erlang ({model})",
        f"agents needed  {ans.agents_needed} answering at once, one team for all (range {lo}-{hi}); "
        f"a queue per platform: {sum(apart)}",
        *_roster_lines(ans, team),
    ]
    for (name, c), level, alone in zip(platforms, pooled.service_levels, apart, strict=True):
        patience = "" if c.patience_seconds is None else f", patience {c.patience_seconds / 60.0:g} min"
        lines.append(
            f"  {name:<{width}}  {c.arrivals_per_hour:g}/h x {c.aht_seconds / 60.0:g} min{patience}: {level:.3f} "
            f"within {format_duration(c.target_seconds)} (target {format_target(c.target, c.target_seconds)}; "
            f"alone it would need {alone})"
        )
    lines.append(f"{_occupancy(ans, team).replace('occupancy ', 'occupancy      ', 1)}")
    lines.append(_waiting(ans))
    if patient:
        lines.append(f"abandonment    {ans.abandonment:.3f} give up")
        if ans.queue_agents > sum(apart):  # the occupancy cap counts the work of those who stay
            lines.append("               (one team keeps more of those who would give up in a queue of their own)")
    within = min(c.target_seconds for c in classes) if team.backlog_seconds is None else team.backlog_seconds
    lines += _closing_lines(ans, team, within)
    return _write(args, out, lines)
