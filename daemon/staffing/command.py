"""`crisisd staffing`: the staffing suggestion for one given load (docs/cli.md)."""

from __future__ import annotations

import argparse
import math
import sys

import msgspec

from daemon.staffing.erlang import StaffingQuestion, solve
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
    p.add_argument("--arrivals-per-hour", required=True, metavar="N", help="mentions needing a reply per hour")
    p.add_argument("--aht-minutes", required=True, metavar="M", help="average handle time of one reply, minutes")
    p.add_argument(
        "--target", required=True, metavar="P/DURATION", help="e.g. 80/15m: 80 %% answered within 15 minutes"
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
    from daemon.cli import UsageError

    option = "--" + attr.replace("_", "-")
    raw = getattr(args, attr)
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


def main(args: argparse.Namespace) -> int:
    from daemon.cli import UsageError

    arrivals = _number(args, "arrivals_per_hour", 0, 1e7)
    aht = _number(args, "aht_minutes", 0, 600, lo_open=True)
    try:
        target, target_seconds = parse_target(args.target)
    except ValueError as exc:
        raise UsageError(f"--target: {exc}") from None
    shrinkage = _number(args, "shrinkage", 0, 1, hi_open=True)
    occupancy = _number(args, "max_occupancy", 0, 1, lo_open=True)
    backlog = _count(args, "backlog")
    on_shift = _count(args, "on_shift")
    backlog_seconds = None
    if args.backlog_within is not None:
        try:
            backlog_seconds = parse_duration(args.backlog_within)
        except ValueError as exc:
            raise UsageError(f"--backlog-within: {exc}") from None
        if backlog_seconds <= 0:
            raise UsageError("--backlog-within: must be above 0")
    spread = _number(args, "range_spread", 0, 1, hi_open=True)
    patience = None if args.patience_minutes is None else _number(args, "patience_minutes", 0, 1e6, lo_open=True)

    q = StaffingQuestion(
        arrivals_per_hour=arrivals,
        aht_seconds=aht * 60.0,
        target=target,
        target_seconds=target_seconds,
        max_occupancy=occupancy,
        backlog=backlog,
        backlog_seconds=backlog_seconds,
        backlog_confidence=_DEFAULTS.backlog_confidence,
        patience_seconds=None if patience is None else patience * 60.0,
    )
    try:
        ans = solve(q)
        lo = solve(msgspec.structs.replace(q, arrivals_per_hour=arrivals * (1 - spread))).agents_needed
        hi = solve(msgspec.structs.replace(q, arrivals_per_hour=arrivals * (1 + spread))).agents_needed
    except ValueError as exc:  # e.g. a load beyond the guard
        raise UsageError(f"--arrivals-per-hour: {exc}") from None
    to_schedule = math.ceil(ans.agents_needed / (1.0 - shrinkage) - 1e-9)
    call_in = max(0, to_schedule - on_shift)
    sla = format_target(target, target_seconds)
    out: dict[str, object] = {
        "agents_needed": ans.agents_needed,
        "to_schedule": to_schedule,
        "on_shift": on_shift,
        "call_in": call_in,
        "stand_down": max(0, on_shift - to_schedule),
        "service_level": round(ans.service_level, 6),
        "occupancy": round(ans.occupancy, 6),
        "range": [lo, hi],
        "sla_target": sla,
        "arrivals_per_hour": arrivals,
        "aht_minutes": aht,
        "erlangs": round(ans.erlangs, 6),
        "queue_agents": ans.queue_agents,
        "backlog": backlog,
        "backlog_agents": ans.backlog_agents,
        "wait_probability": round(ans.wait_probability, 6),
        "mean_wait_seconds": round(ans.mean_wait_seconds, 3),
        "binding": ans.binding,
        "model": "erlang_a" if patience is not None else "erlang_c",
        "shrinkage": shrinkage,
        "max_occupancy": occupancy,
    }
    if patience is not None:
        out["abandonment"] = round(ans.abandonment, 6)
    if args.json:
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
        return 0
    model = "Erlang A" if patience is not None else "Erlang C"
    lines = [
        f"load           {arrivals:g}/h x {aht:g} min = {ans.erlangs:.1f} Erlang; target {sla} ({model})",
        f"agents needed  {ans.agents_needed} answering at once (range {lo}-{hi})",
        f"to schedule    {to_schedule} ({shrinkage * 100:g} % shrinkage)",
        f"on shift       {on_shift}",
        f"call in        {call_in}",
        f"service level  {ans.service_level:.3f} within {format_duration(target_seconds)}; occupancy "
        f"{ans.occupancy:.3f} (cap {occupancy:g}, "
        + ("no new arrivals)" if ans.binding == "none" else f"set by the {ans.binding.replace('_', ' ')})"),
        f"waiting        {ans.wait_probability:.3f} wait at all, mean wait {ans.mean_wait_seconds:.0f} s",
    ]
    if patience is not None:
        lines.append(f"abandonment    {ans.abandonment:.3f} give up (mean patience {patience:g} min)")
    if backlog:
        lines.append(
            f"backlog        {backlog}: {ans.backlog_agents} of the agents clear it "
            f"within {format_duration(target_seconds if backlog_seconds is None else backlog_seconds)}"
        )
    if on_shift > to_schedule:
        lines.append(f"stand down     {on_shift - to_schedule}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
