"""Pooled staffing (`staffing.pooled`: one team, one queue) against a queue per platform.

Prints, for the default configuration unless said otherwise:
1. the audit's case: 30 mentions an hour on each of five platforms against 150 on one;
2. people answering at once, pooled and per platform, over loads and platform counts;
3. monotonicity sweeps: more backlog and more arrivals on one platform, counting the steps where
   the suggestion asks for fewer people (with the backlog counted by platform, as the pipeline
   measures it, and without);
4. the pooled queue in simulation: mixed handle times and targets, each platform's simulated share
   within its own target with the suggested team and one fewer ("below": some platform's share is
   below its target; where the occupancy cap set the team, one fewer may meet the targets);
5. the same with each platform's own patience (Erlang A): the queue's dynamics on the arrival-weighted
   mean abandonment rate, each platform's customers giving up at their own rate; the simulation gives
   every customer the patience of their platform (a customer who gives up is a miss).

    .venv/bin/python bench/staffing_pooling.py [--quick] [--customers N] [--seed S]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from typing import NamedTuple

import msgspec
import numpy as np

from daemon.staffing.erlang import QueueClass, solve_pooled
from daemon.staffing.planner import StaffingPlanner, SurgeLoad
from daemon.staffing.settings import StaffingSettings
from daemon.staffing.simulation import simulate

FIVE = ("email", "facebook", "instagram", "linkedin", "whatsapp")
MIXED = {
    "twitter": {"aht_minutes": 3, "target": "80/25m"},
    "facebook": {"aht_minutes": 4, "target": "80/15m"},
    "instagram": {"aht_minutes": 2, "target": "80/30m"},
    "email": {"aht_minutes": 8, "target": "80/1h"},
    "whatsapp": {"aht_minutes": 5, "target": "90/5m"},
}


def planners(**kw: object) -> tuple[StaffingPlanner, StaffingPlanner]:
    """(pooled, per platform) for the same settings."""
    return (
        StaffingPlanner(msgspec.convert({**kw, "pooled": True}, StaffingSettings)),
        StaffingPlanner(msgspec.convert({**kw, "pooled": False}, StaffingSettings)),
    )


def audit_case() -> None:
    pooled, separate = planners()
    print("1. 30/h on each of five platforms (4 min, 80/15m) against 150/h on one; all need a reply")
    for name, rates in (("5 x 30/h", dict.fromkeys(FIVE, 30.0)), ("1 x 150/h", {"facebook": 150.0})):
        load = SurgeLoad(mentions_per_hour=rates, actionable_share=1.0, on_shift=0)
        p, s = pooled.suggest(load), separate.suggest(load)
        print(
            f"   {name:10s} pooled {p.agents_needed:3d} answering ({p.to_schedule} to schedule), per platform"
            f" {s.agents_needed:3d} ({s.to_schedule}) {s.by_platform}"
        )


def load_grid() -> None:
    pooled, separate = planners()
    print("\n2. people answering at once, pooled / per platform (default settings, 60 % need a reply)")
    names = ("twitter", "facebook", "instagram", "email", "whatsapp", "linkedin")
    totals = (20, 60, 150, 500, 1500, 5000)
    print("   platforms " + "".join(f"{t:>12,}/h" for t in totals))
    for k in (1, 2, 3, 6):
        row = []
        for total in totals:
            load = SurgeLoad(mentions_per_hour={n: total / k for n in names[:k]}, on_shift=0)
            row.append(f"{pooled.suggest(load).agents_needed:>6} / {separate.suggest(load).agents_needed:<6}")
        print(f"   {k:9d} " + "".join(f"{c:>14}" for c in row))


def drops(values: list[int]) -> int:
    return sum(1 for a, b in itertools.pairwise(values) if b < a)


def monotonicity(quick: bool) -> None:
    print("\n3. steps where more load asks for fewer people (agents answering at once)")
    pooled, separate = planners(platforms=MIXED)
    rates = {"facebook": 1436.0, "email": 768.0, "instagram": 7.0, "whatsapp": 58.0, "twitter": 84.0}
    backlogs = range(0, 400 if quick else 2000)
    for label, planner in (("pooled", pooled), ("per platform", separate)):
        needed = [
            planner.plan(SurgeLoad(mentions_per_hour=rates, actionable_share=1.0, backlog=b)).agents for b in backlogs
        ]
        print(
            f"   backlog 0-{backlogs[-1]:,}, five platforms (mixed handle times and targets), {label}: {drops(needed)}"
        )
    steps = range(0, 3001, 10 if quick else 5)
    for measured in (True, False):
        for label, planner in (("pooled", pooled), ("per platform", separate)):
            needed = []
            for tw in steps:
                load = SurgeLoad(
                    mentions_per_hour={"twitter": float(tw), "facebook": 600.0},
                    actionable_share=1.0,
                    backlog=2000,
                    backlog_by_platform={"twitter": 1200, "facebook": 800} if measured else {},
                )
                needed.append(planner.plan(load).agents)
            how = "counted by platform" if measured else "assumed to follow the arrivals"
            print(
                f"   twitter 0-3,000/h beside facebook 600/h, backlog 2,000 {how}, {label}:"
                f" {drops(needed)} of {len(needed) - 1} steps"
            )


def class_levels(
    total: float,
    agents: int,
    customers: int,
    seed: int,
    mix: list[tuple[float, float, float | None]],
    spec: list[Platform],
) -> list[float]:
    """Each platform's simulated share within its own target time, one run."""
    sim = simulate(total, 0.0, agents, customers=customers, seed=seed, mix=mix)
    return [sim.service_level(s.target_seconds, i) for i, s in enumerate(spec)]


class Platform(NamedTuple):
    aht: float  # seconds
    target: float  # share within target_seconds
    target_seconds: float
    patience: float | None = None  # mean, seconds; None: never gives up


Case = tuple[str, list[Platform], list[float]]
"""(name, its platforms, their shares of the arrivals)."""


def simulated(quick: bool, customers: int, seed: int) -> None:
    print("\n4. the pooled queue in simulation (FCFS, exponential handle times per platform, 85 % cap)")
    run_cases(
        [
            (
                "twitter 3m 80/25m + facebook 4m 80/15m",
                [Platform(180.0, 0.8, 1500.0), Platform(240.0, 0.8, 900.0)],
                [0.6, 0.4],
            ),
            (
                "twitter 3m 80/15m + email 15m 80/1h",
                [Platform(180.0, 0.8, 900.0), Platform(900.0, 0.8, 3600.0)],
                [0.8, 0.2],
            ),
            (
                "chat 2m 80/5m + email 20m 80/5m",
                [Platform(120.0, 0.8, 300.0), Platform(1200.0, 0.8, 300.0)],
                [0.7, 0.3],
            ),
            (
                "chat 2m 90/1m + email 20m 80/15m",
                [Platform(120.0, 0.9, 60.0), Platform(1200.0, 0.8, 900.0)],
                [0.9, 0.1],
            ),
        ],
        quick,
        customers,
        seed,
    )


def simulated_patience(quick: bool, customers: int, seed: int) -> None:
    print("\n5. each platform its own patience (Erlang A: each platform's own abandonment on the pooled queue)")
    run_cases(
        [
            (
                "twitter 3m 80/15m p30m + email 15m 80/1h p8h",
                [Platform(180.0, 0.8, 900.0, 1800.0), Platform(900.0, 0.8, 3600.0, 28800.0)],
                [0.8, 0.2],
            ),
            (
                "twitter 3m 80/25m p20m + facebook 4m 80/15m p1h",
                [Platform(180.0, 0.8, 1500.0, 1200.0), Platform(240.0, 0.8, 900.0, 3600.0)],
                [0.6, 0.4],
            ),
            (
                "twitter 3m 80/15m p10m + facebook 4m 80/15m p2h",
                [Platform(180.0, 0.8, 900.0, 600.0), Platform(240.0, 0.8, 900.0, 7200.0)],
                [0.5, 0.5],
            ),
            (
                "whatsapp 5m 90/5m p10m + email 8m 80/1h none",
                [Platform(300.0, 0.9, 300.0, 600.0), Platform(480.0, 0.8, 3600.0, None)],
                [0.7, 0.3],
            ),
            # customers who give up before the target time, beside ten times slower email
            (
                "chat 2m 80/5m p3m + email 20m 80/5m none",
                [Platform(120.0, 0.8, 300.0, 180.0), Platform(1200.0, 0.8, 300.0, None)],
                [0.7, 0.3],
            ),
            (
                "chat 2m 80/5m p3m + email 2m 80/5m none",
                [Platform(120.0, 0.8, 300.0, 180.0), Platform(120.0, 0.8, 300.0, None)],
                [0.7, 0.3],
            ),
            (
                "twitter 3m 80/15m p5m + whatsapp 5m 90/5m p1h + email 10m 80/4h none",
                [
                    Platform(180.0, 0.8, 900.0, 300.0),
                    Platform(300.0, 0.9, 300.0, 3600.0),
                    Platform(600.0, 0.8, 14400.0, None),
                ],
                [0.5, 0.3, 0.2],
            ),
        ],
        quick,
        customers,
        seed,
    )


def run_cases(cases: list[Case], quick: bool, customers: int, seed: int) -> None:
    """Each case at 20, 150 (and 1,000) mentions an hour: the pooled suggestion n, and each platform's
    simulated share within its own target with n - 1 and n agents (4 runs each)."""
    totals = (20.0, 150.0, 1000.0) if not quick else (20.0, 150.0)
    reps = 4
    worst = 0.0
    for name, spec, shares in cases:
        for total in totals:
            classes = [
                QueueClass(
                    arrivals_per_hour=total * w,
                    aht_seconds=s.aht,
                    target=s.target,
                    target_seconds=s.target_seconds,
                    patience_seconds=s.patience,
                )
                for s, w in zip(spec, shares, strict=True)
            ]
            ans = solve_pooled(classes, max_occupancy=0.85).answer
            n = ans.queue_agents
            mix = [(w, s.aht, s.patience) for s, w in zip(spec, shares, strict=True)]
            cells = []
            for k in (n - 1, n):
                if k < 1:
                    continue
                levels = np.mean([class_levels(total, k, customers, seed + r, mix, spec) for r in range(reps)], axis=0)
                ok = all(sl >= s.target for sl, s in zip(levels, spec, strict=True))
                if k == n:
                    worst = max(worst, max(s.target - sl for sl, s in zip(levels, spec, strict=True)))
                cells.append(f"{k}: {' / '.join(f'{sl:.3f}' for sl in levels)} {'meets' if ok else 'below'}")
            print(f"   {name:64s} {total:6,.0f}/h  {ans.binding:13s}  " + ";  ".join(cells))
    print(f"   largest shortfall below a target with the suggested team: {max(0.0, worst):.3f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter sweeps and simulations")
    p.add_argument("--customers", type=int, default=None, help="simulated arrivals per run (4 runs a point)")
    p.add_argument("--seed", type=int, default=20100416)
    args = p.parse_args()
    customers = args.customers or (30_000 if args.quick else 100_000)
    started = time.perf_counter()
    audit_case()
    load_grid()
    monotonicity(args.quick)
    simulated(args.quick, customers, args.seed)
    simulated_patience(args.quick, customers, args.seed)
    print(
        f"\n{time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
