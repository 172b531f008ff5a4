"""How long one staffing answer takes, Erlang C and Erlang A, from a quiet queue to a crisis-sized one.

`daemon.staffing.erlang.solve` runs on the consumer's thread for every staffing suggestion (an
incident's opening, its updates, several platforms each), so its time at crisis loads is time the
pipeline stands still. Printed per load: the offered Erlangs, the agents answered, and the median
wall time of `--repeat` solves, for Erlang C and for Erlang A with `--patience` minutes.

    .venv/bin/python bench/bench_erlang.py [--repeat 20] [--patience 30] [--aht 180] [--target 80/15m]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.staffing.erlang import StaffingQuestion, solve
from daemon.staffing.settings import parse_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--patience", type=float, default=30.0, help="mean patience, minutes (Erlang A)")
    parser.add_argument("--aht", type=float, default=180.0, help="handle time, seconds")
    parser.add_argument("--target", default="80/15m")
    args = parser.parse_args()
    share, seconds = parse_target(args.target)
    print(f"solve(), handle time {args.aht:.0f} s, target {args.target}, occupancy cap 0.85; median of {args.repeat}")
    print(f"{'mentions/h':>11} {'Erlangs':>8}  {'C agents':>8} {'C time':>10}  {'A agents':>8} {'A time':>10}")
    for rate in (100, 1_000, 6_000, 20_000, 100_000):
        row = [f"{rate:>11,} {rate * args.aht / 3600:>8,.0f}"]
        for patience in (None, args.patience * 60):
            q = StaffingQuestion(
                arrivals_per_hour=rate,
                aht_seconds=args.aht,
                target=share,
                target_seconds=seconds,
                max_occupancy=0.85,
                patience_seconds=patience,
            )
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                answer = solve(q)
                times.append(time.perf_counter() - t0)
            row.append(f"{answer.agents_needed:>8,} {statistics.median(times) * 1e3:>8.2f} ms")
        print("  ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
