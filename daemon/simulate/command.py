"""`crisisd simulate SCENARIO [--days N] [--seed N] [-o FILE] [--truth FILE] [--start DATE] [--scale F]`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import BinaryIO

import msgspec

from daemon.cli import UsageError
from daemon.demo import DEMO_SCALE
from daemon.simulate.scenario import SCENARIOS, make_plan, parse_start
from daemon.simulate.stream import Stream

# The longest stream simulated: the project's evaluations use up to 28 days, a year covers any real
# use. The simulator holds its whole plan in memory, about 40 MB per day at --scale 1 (measured:
# 1.1 GB for 28 days, 2.4 GB for 56); 100,000 days asked for 7.5 GB at once and died.
MAX_DAYS = 366
# Memory grows with days x scale, so that product is bounded too: 100 day-volumes, about 4 GB, is
# 3.5 times the largest evaluation (28 days at scale 1); a year at the demo's scale (0.1) is 37.
MAX_DAY_VOLUMES = 100
_MB_PER_DAY_VOLUME = 42


def check_stream_size(days: int, seed: int, scale: float = 1.0) -> None:
    """UsageError naming `--days`, `--seed` or `--scale` for a stream the simulator cannot make
    (`simulate` and `demo`), before anything is simulated."""
    if days < 1:
        raise UsageError("--days: must be at least 1")
    if days > MAX_DAYS:
        raise UsageError(f"--days: must be at most {MAX_DAYS} (a year), got {days}")
    if not 0 < scale <= 100:
        raise UsageError("--scale: must be in (0, 100]")
    if days * scale > MAX_DAY_VOLUMES:
        gb = days * scale * _MB_PER_DAY_VOLUME / 1000
        raise UsageError(
            f"--days × --scale: {days} days at scale {scale:g} would take about {gb:.0f} GB of memory;"
            f" days × scale must be at most {MAX_DAY_VOLUMES}"
        )
    if seed < 0:
        raise UsageError("--seed: must be >= 0")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="write a synthetic mention stream as JSONL",
        description="Write a synthetic multi-brand mention stream (JSON lines, in delivery order: late, "
        "duplicate and a few invalid lines included). Scenarios: " + ", ".join(SCENARIOS) + ".",
    )
    p.add_argument(
        "scenario",
        metavar="SCENARIO",
        help="ash-crisis (the crisis on the last day), normal (no crisis) or coordinated (normal plus an "
        "astroturfing burst)",
    )
    p.add_argument("--days", type=int, default=7, help=f"days simulated, 1 to {MAX_DAYS} (default 7)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same bytes (default 0)")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default stdout)")
    p.add_argument("--truth", metavar="FILE", help="also write the ground truth (crisis, distractors) as JSON")
    p.add_argument(
        "--start", metavar="DATE", help="first day, YYYY-MM-DD in Europe/Amsterdam (default: ends 2010-04-15)"
    )
    p.add_argument(
        "--scale", type=float, default=1.0, help=f"volume multiplier (default 1; the demo uses {DEMO_SCALE:g})"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.scenario not in SCENARIOS:
        raise UsageError(f"SCENARIO: unknown scenario {args.scenario!r} (known: {', '.join(SCENARIOS)})")
    check_stream_size(args.days, args.seed, args.scale)
    try:
        start = parse_start(args.start) if args.start else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    began = time.perf_counter()  # only for the summary line
    stream = Stream(make_plan(args.scenario, args.days, args.seed, start, args.scale))
    if args.truth:
        _write(args.truth, "--truth", msgspec.json.format(msgspec.json.encode(stream.truth)) + b"\n")
    if args.output:
        try:
            out: BinaryIO = open(args.output, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"-o {args.output}: {exc.strerror}") from None
        with out:
            write_lines(stream, out)
    else:
        write_lines(stream, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    c = stream.truth.counts
    took = time.perf_counter() - began
    print(
        f"crisisd simulate: {c.lines} lines ({c.events} events, {c.replies} brand replies, {c.duplicates} "
        f"duplicates, {c.late + c.very_late} late, {c.garbage} invalid) in {took:.1f} s "
        f"({c.lines / max(took, 1e-9):,.0f} lines/s)",
        file=sys.stderr,
    )
    return 0


def write_lines(stream: Stream, out: BinaryIO, batch: int = 20_000) -> None:
    """Write every line of `stream` to a binary file, newline-terminated, in large writes."""
    buf: list[bytes] = []
    for line in stream.lines():
        buf.append(line)
        if len(buf) >= batch:
            buf.append(b"")
            out.write(b"\n".join(buf))
            buf = []
    if buf:
        buf.append(b"")
        out.write(b"\n".join(buf))


def _write(path: str, field: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise UsageError(f"{field} {path}: {exc.strerror}") from None
