"""Accuracy and memory of the topic detector's count-min sketch: conservative vs plain updates.

The topic detector reads a term's usual share of authors from a count-min sketch (max with
`floor_share`, 0.005 by default). Collisions only ever inflate an estimate, which makes a new term
look usual and hides a topic. This feeds the real `TopicDetector.learn_one` (conservative update)
and a plain count-min built on the same hashes with the same Zipf-distributed stream (a quiet
brand over three days: `--authors` authors, `--terms` distinct terms each, from a `--vocabulary`
word vocabulary), then prints, per depth x width, the estimated share of terms never seen (mean,
p50, p90, p99: the floor is what they should read), the mean overestimate of seen terms, and the
bytes per brand.

    python bench/bench_sketch.py
    python bench/bench_sketch.py --authors 20000 --vocabulary 200000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.windows import Bucket
from detectors.settings import TopicSettings
from detectors.topic import TopicDetector


def stream(authors: int, terms: int, vocabulary: int, seed: int) -> list[dict[str, int]]:
    """Buckets of 10 authors, each naming `terms` Zipf-distributed words (counted once per author)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocabulary + 1)
    p /= p.sum()
    out = []
    for _ in range(authors // 10):
        words, counts = np.unique(rng.choice(vocabulary, size=10 * terms, p=p), return_counts=True)
        out.append({f"w{w}": int(c) for w, c in zip(words.tolist(), counts.tolist(), strict=True)})
    return out


def measure(buckets: list[dict[str, int]], vocabulary: int, depth: int, width: int, conservative: bool) -> list[float]:
    settings = TopicSettings(sketch_depth=depth, sketch_width=width, baseline_half_life_hours=1e6)
    det = TopicDetector(settings, seed=0)
    truth: dict[str, int] = {}
    plain = np.zeros(depth * width)
    for i, terms in enumerate(buckets):
        for t, n in terms.items():
            truth[t] = truth.get(t, 0) + n
        if conservative:
            det.learn_one(Bucket("b", i * 60.0, 60, mentions=10, authors=10, terms=terms))
        else:  # plain count-min on the detector's own hashes, full width from the start
            cols = det._cells(det._hashes(terms), depth, width) + (np.arange(depth) * width)[None, :]
            np.add.at(plain, cols.ravel().astype(np.intp), np.repeat(np.fromiter(terms.values(), float), depth))
    total = len(buckets) * 10
    names = [f"w{w}" for w in range(vocabulary)]
    if conservative:
        assert det._sketch is not None
        est = det._estimates(names)
        size = det._sketch.nbytes
    else:
        cols = det._cells(det._hashes(names), depth, width)
        est = plain.reshape(depth, width)[np.arange(depth)[None, :], cols].min(axis=1)
        size = plain.astype(np.float32).nbytes  # as float32 cells
    true = np.array([truth.get(t, 0) for t in names], dtype=float)
    unseen = est[true == 0] / total
    over = (est[true > 0] - true[true > 0]) / total
    return [*(float(x) for x in (unseen.mean(), *np.quantile(unseen, [0.5, 0.9, 0.99]))), float(over.mean()),
            size]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--authors", type=int, default=7200, help="authors over the stream (default: 100 an hour, 3 days)")
    ap.add_argument("--terms", type=int, default=10, help="distinct terms per author (default 10)")
    ap.add_argument("--vocabulary", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    buckets = stream(args.authors, args.terms, args.vocabulary, args.seed)
    print(f"{args.authors:,} authors x {args.terms} terms from {args.vocabulary:,} words (Zipf); floor_share 0.005")
    print(f"{'update':<13} {'depth':>5} {'width':>5}  unseen share: {'mean':>7} {'p50':>7} {'p90':>7} {'p99':>7}"
          f"  seen over {'bytes':>7}")  # fmt: skip
    for conservative, depth, width in [(False, 4, 1024), (False, 2, 1024), (True, 4, 1024), (True, 2, 1024),
                                       (True, 4, 512), (True, 1, 1024)]:  # fmt: skip
        m, q50, q90, q99, over, size = measure(buckets, args.vocabulary, depth, width, conservative)
        kind = "conservative" if conservative else "plain"
        shares = f"{m:7.4f} {q50:7.4f} {q90:7.4f} {q99:7.4f}"
        print(f"{kind:<13} {depth:>5} {width:>5}  {'':>13} {shares}  {over:9.4f} {size:>7,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
