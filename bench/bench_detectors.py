"""Benchmark: the per-bucket cost of a brand's detection (detectors + incident tracker), and one
minute of event time for 10,000 brands.

    .venv/bin/python bench/bench_detectors.py [--brands 10000] [--per-minute 20]

A detector is warmed on two synthetic days (seasonal negative-binomial counts, a vocabulary of
terms), then cloned (pickle, as a checkpoint restore would) into `--brands` brands; each brand gets
one closed bucket and the wall time of that minute is measured, for a quiet minute and for a
minute in which every brand is in a crisis (all tests and all terms scored). Also printed: the
checkpoint size of one brand's state, and that the cost does not grow with history (constant time).
"""

from __future__ import annotations

import argparse
import math
import pickle
import statistics
import sys
import time

import numpy as np

from daemon.incidents import IncidentTracker
from daemon.windows import Bucket
from detectors.brand import BrandDetector
from detectors.settings import DetectionSettings

DAY = 1440
T0 = 1_700_000_000.0 - 1_700_000_000.0 % 86400


def bucket(rng: np.random.Generator, i: int, per_minute: float, crisis: bool = False) -> Bucket:
    t = T0 + i * 60
    hour = (t % 86400) / 3600
    mu = per_minute * (1 + 0.6 * math.sin(2 * math.pi * (hour - 9) / 24)) * (8 if crisis else 1)
    n = int(rng.poisson(rng.gamma(20, mu / 20)))
    neg = int(rng.binomial(n, 0.7 if crisis else 0.25))
    words = rng.integers(0, 400, size=min(n * 3, 200))
    terms: dict[str, int] = {}
    for w in words:
        key = f"w{w}"
        terms[key] = terms.get(key, 0) + 1
    if crisis:
        terms.update({"ash": n // 2, "volcano": n // 3, "cancelled": n // 3})
    return Bucket("b", t, 60, mentions=n, raw_mentions=n, negative=neg, authors=n, by_lang={"en": n}, terms=terms)


def warm(per_minute: float, days: int, seed: int = 0) -> tuple[BrandDetector, IncidentTracker, int]:
    rng = np.random.default_rng(seed)
    det, tr = BrandDetector(DetectionSettings(), seed=seed, brand="b"), IncidentTracker(DetectionSettings())
    for i in range(days * DAY):
        b = bucket(rng, i, per_minute)
        tr.step(b, det.update(b))
    return det, tr, days * DAY


def per_bucket_cost(det: BrandDetector, tr: IncidentTracker, start: int, n: int, per_minute: float) -> float:
    rng = np.random.default_rng(1)
    bs = [bucket(rng, start + i, per_minute) for i in range(n)]
    t = time.perf_counter()
    for b in bs:
        tr.step(b, det.update(b))
    return (time.perf_counter() - t) / n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--brands", type=int, default=10_000)
    p.add_argument("--per-minute", type=float, default=20.0, help="mean customer mentions per brand and minute")
    args = p.parse_args()

    det, tr, n = warm(args.per_minute, 2)
    blob = pickle.dumps((det, tr), protocol=pickle.HIGHEST_PROTOCOL)
    print(f"checkpoint of one brand (detectors + tracker): {len(blob) / 1024:.1f} KiB")

    # constant time: the cost per bucket after 2 days and after 2 more days of history
    c1 = per_bucket_cost(det, tr, n, 600, args.per_minute)
    det2, tr2 = pickle.loads(blob)
    per_bucket_cost(det2, tr2, n, 2 * DAY, args.per_minute)  # two more days of history
    c2 = per_bucket_cost(det2, tr2, n + 2 * DAY, 600, args.per_minute)
    print(f"per-bucket update, quiet minute: {c1 * 1e6:.0f} us (with 2 more days of history: {c2 * 1e6:.0f} us)")

    for label, crisis in (("quiet minute", False), ("crisis minute (every brand)", True)):
        rng = np.random.default_rng(2)
        clones = [pickle.loads(blob) for _ in range(args.brands)]
        minute = [bucket(rng, n + 600, args.per_minute, crisis) for _ in range(args.brands)]
        for i, b in enumerate(minute):
            b.brand = f"brand{i}"
        times = []
        t_all = time.perf_counter()
        for (d, t), b in zip(clones, minute, strict=True):
            d.brand = b.brand
            t0 = time.perf_counter()
            t.step(b, d.update(b))
            times.append(time.perf_counter() - t0)
        wall = time.perf_counter() - t_all
        print(
            f"{args.brands} brands, one {label}: {wall:.2f} s wall "
            f"(median {statistics.median(times) * 1e6:.0f} us, "
            f"p99 {sorted(times)[int(len(times) * 0.99)] * 1e6:.0f} us "
            f"per brand); {wall / 60 * 100:.1f} % of one core per minute of event time"
        )
        del clones
    print(f"memory for {args.brands} brands (checkpoint size): {len(blob) * args.brands / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
