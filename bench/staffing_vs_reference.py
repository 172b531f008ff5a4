"""`crisisd staffing` against an independent Erlang C computation over a grid of loads.

Reference (written here, sharing no code with daemon/staffing): the textbook Erlang C formula
    C(n, a) = (a^n / n!) (n / (n - a)) / (sum_{k<n} a^k / k! + (a^n / n!) (n / (n - a)))
with every term a^k / k! taken in log space (k ln a - lgamma(k + 1)) and the sums done by
numpy.logaddexp.accumulate, service level 1 - C exp(-(n - a) t / h), and the staffing the smallest
n > a with that service level >= P and occupancy a / n <= cap, found by a plain linear scan. The
daemon instead runs the Erlang B recursion in one pass. Also printed: the worked example common in
call-centre guides (100 contacts per half hour, 180 s handle time, 80 % within 20 s: 10 Erlang; the
usual answer is 14 agents).

    .venv/bin/python bench/staffing_vs_reference.py [--quick]

Prints one line per disagreement and a summary: the acceptance is agreement within one agent.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import time

import numpy as np

from daemon.cli import main as crisisd


def reference_staff(rate: float, aht: float, pct: float, target: float, cap: float) -> tuple[int, float]:
    a = rate * aht / 3600.0
    n_hi = int(a + 40.0 * math.sqrt(a) + 200.0)
    k = np.arange(n_hi + 1, dtype=float)
    log_terms = k * math.log(a) - np.array([math.lgamma(x + 1.0) for x in k])
    log_cum = np.logaddexp.accumulate(log_terms)  # log sum_{j<=k} a^j / j!
    n = max(1, math.floor(a) + 1)
    while True:
        if a / n <= cap:
            top = log_terms[n] + math.log(n / (n - a))
            below = log_cum[n - 1]
            c = math.exp(top - np.logaddexp(below, top))
            sl = 1.0 - c * math.exp(-(n - a) * target / aht)
            if sl >= pct:
                return n, sl
        n += 1


def cli(rate: float, aht: float, pct: float, target: str, cap: float) -> dict[str, float]:
    buf = io.StringIO()
    argv = [
        "staffing",
        "--arrivals-per-hour",
        f"{rate:g}",
        "--aht-minutes",
        f"{aht / 60.0:.10g}",
        "--target",
        f"{pct * 100:g}/{target}",
        "--max-occupancy",
        f"{cap:g}",
        "--json",
    ]
    with contextlib.redirect_stdout(buf):
        rc = crisisd(argv)
    if rc != 0:
        raise RuntimeError(f"crisisd {' '.join(argv)} exited {rc}")
    out: dict[str, float] = json.loads(buf.getvalue())
    return out


def _seconds(d: str) -> float:
    return float(d[:-1]) * {"s": 1.0, "m": 60.0, "h": 3600.0}[d[-1]]


def run(quick: bool) -> int:
    rates = [30, 120, 500, 1500, 6000] if quick else [30, 60, 120, 300, 500, 1000, 1500, 3000, 4500, 6000]
    ahts = (
        [10.0, 60.0, 240.0, 900.0, 3600.0] if quick else [10.0, 30.0, 60.0, 180.0, 240.0, 600.0, 900.0, 1800.0, 3600.0]
    )
    targets = ["5s", "20s", "2m", "15m", "1h"] if quick else ["1s", "5s", "20s", "60s", "2m", "5m", "15m", "30m", "1h"]
    caps = [0.7, 0.85, 1.0]
    pcts = [0.8] if quick else [0.8, 0.9, 0.95]

    ex = cli(200, 180, 0.8, "20s", 1.0)
    ref_ex = reference_staff(200, 180, 0.8, 20.0, 1.0)
    print(
        f"worked example (10 Erlang, 80/20s; usual answer 14 agents): crisisd {ex['agents_needed']} agents, "
        f"SL {ex['service_level']:.4f}; reference {ref_ex[0]} agents, SL {ref_ex[1]:.4f}"
    )

    worst = 0.0
    sl_diff = 0.0
    points = 0
    exact = 0
    t0 = time.perf_counter()
    for rate, aht, target, cap, pct in itertools.product(rates, ahts, targets, caps, pcts):
        got = cli(rate, aht, pct, target, cap)
        ref_n, ref_sl = reference_staff(rate, aht, pct, _seconds(target), cap)
        diff = got["agents_needed"] - ref_n
        points += 1
        exact += diff == 0
        worst = max(worst, abs(diff))
        if diff == 0:
            sl_diff = max(sl_diff, abs(got["service_level"] - ref_sl))
        else:
            print(
                f"  differs: {rate}/h x {aht:g}s, {pct:g}/{target}, cap {cap}: "
                f"crisisd {got['agents_needed']}, reference {ref_n}"
            )
    secs = time.perf_counter() - t0
    print(
        f"grid: {len(rates)} loads ({rates[0]}-{rates[-1]}/h) x "
        f"{len(ahts)} handle times ({ahts[0]:g}s-{ahts[-1]:g}s) x "
        f"{len(targets)} targets ({targets[0]}-{targets[-1]}) x {len(caps)} occupancy caps {caps} x percent {pcts}"
    )
    print(
        f"points {points}: identical {exact}, largest difference {worst} agent(s); "
        f"largest service-level difference where identical {sl_diff:.2e}; "
        f"{secs / points * 1000:.1f} ms per point (CLI in-process + reference)"
    )
    ok = worst <= 1
    print("PASS: within one agent everywhere" if ok else "FAIL: more than one agent apart somewhere")
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smaller grid")
    raise SystemExit(run(p.parse_args().quick))
