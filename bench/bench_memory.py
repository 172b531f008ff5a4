"""Memory of one pipeline against the number of brands and of distinct authors: RSS, bounded?

Each point runs in a fresh child process (`--child`), so one point's garbage never inflates the
next: it builds a `Pipeline`, feeds it synthetic events (valid JSON through `Pipeline.process`,
`lang` given, 5 % brand replies answering a recent mention, a 50,000-word vocabulary that every
brand draws from, so term tables are exercised at any number of brands), and reads VmRSS
(resident now) and VmHWM (peak resident) from /proc/self/status before and after. Events are
spread evenly over `--minutes` of event time (default 60), brands round-robin, authors cycling
through `authors` distinct ids; the number of events is max(authors, 20 x brands, `--min-events`).

The target: <= 500 MB at 10,000 brands and 1 million authors.

    python bench/bench_memory.py                                   # brands 10, 100 x authors 10k, 100k
    python bench/bench_memory.py --brands 10 1000 10000 --authors 10000 100000 1000000   # full grid
    python bench/bench_memory.py --brands 10000 --authors 1000000  # the target point only
    python bench/bench_memory.py --brands 10 --authors 200000 --trace 12   # who holds the memory
    python bench/bench_memory.py --brands 1000 --authors 100000 --breakdown  # which state, per brand

`--breakdown` walks the pipeline's state after the run and prints the bytes each part holds
(objects shared by several parts are counted once, in the first; settings, modules and classes
are not counted), in MB and per brand.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = 50_000
TEXTS = (
    "flight cancelled because of the ash cloud {w} nobody answers",
    "thanks for the quick help with {w}",
    "where is my refund for {w}? still waiting",
    "{w} delayed again, terrible service",
    "love the new {w}",
)


def status_mb() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB (Linux)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) / 1024.0
    return out


def deep_size(obj: object, seen: set[int]) -> int:
    """Bytes held by `obj` and what it references, skipping objects in `seen` (then adding them)."""
    import msgspec
    import numpy as np

    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (type, type(sys))) or (callable(o) and not hasattr(o, "__dict__")):
            continue
        seen.add(id(o))
        if isinstance(o, msgspec.Struct) and type(o).__name__.endswith("Settings"):
            continue  # configuration, shared by every brand
        if isinstance(o, np.ndarray):
            total += sys.getsizeof(o) + (0 if o.base is None and o.flags.owndata else o.nbytes)
            if o.dtype == object:
                stack.extend(o.ravel().tolist())
            continue
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)) or type(o).__name__ == "deque":
            stack.extend(o)  # type: ignore[arg-type]
        if hasattr(o, "__dict__") and not isinstance(o, type):
            stack.append(vars(o))
        for cls in type(o).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name != "__weakref__" and hasattr(o, name):
                    stack.append(getattr(o, name))
        if isinstance(o, msgspec.Struct):
            stack.extend(getattr(o, f) for f in o.__struct_fields__)
    return total


def breakdown(pipe: object) -> list[tuple[str, int]]:
    """Bytes of each part of the pipeline's state, summed over brands."""
    seen: set[int] = {id(pipe.settings)}  # type: ignore[attr-defined]
    parts: dict[str, int] = {}
    brands = pipe.brands.values()  # type: ignore[attr-defined]
    getters = {
        "windows (open buckets, author caps)": lambda s: s.windows,
        "volume detector": lambda s: s.detection.detector.volume,
        "negativity detector": lambda s: s.detection.detector.negativity,
        "topic detector": lambda s: s.detection.detector.topic,
        "brand detector (rest)": lambda s: s.detection.detector,
        "incident tracker": lambda s: s.detection.tracker,
        "response tracker": lambda s: s.detection.responses,
        "timeline history": lambda s: s.detection.history,
        "recent bucket mixes": lambda s: s.detection.recent,
        "brand detection (rest)": lambda s: s.detection,
        "brand's own scorer": lambda s: s.scorer,
        "brand state (rest)": lambda s: s,
    }
    for name, get in getters.items():
        parts[name] = sum(deep_size(get(s), seen) for s in brands)
    parts["brands dict"] = deep_size(pipe.brands, seen)  # type: ignore[attr-defined]
    parts["dedup ids"] = deep_size(pipe.recent, seen)  # type: ignore[attr-defined]
    return list(parts.items())


def child(
    brands: int, authors: int, events: int, minutes: float, trace: int = 0, parts: bool = False
) -> dict[str, object]:
    import msgspec

    if trace:
        import tracemalloc

        tracemalloc.start()

    from config.settings import load_settings
    from daemon.pipeline import Pipeline

    pipe = Pipeline(load_settings(env={}))
    pipe.process(b"{}")  # language models and lexicons loaded
    base = status_mb()
    enc = msgspec.json.Encoder()
    t0 = 1271396530.0
    step = minutes * 60.0 / events
    names = [f"brand{b:05d}" for b in range(brands)]
    started = time.perf_counter()
    cpu = time.process_time()
    for i in range(events):
        brand = names[i % brands]
        ts = t0 + i * step
        if i % 20 == 19:
            obj: dict[str, object] = {
                "id": f"r:{i}",
                "brand": brand,
                "platform": "twitter",
                "created_at": ts,
                "text": "we are sorry, please DM us",
                "author": {"id": f"brand:{brand}", "is_brand": True},
                "in_reply_to": f"t:{i - brands}",
                "lang": "en",
                "kind": "reply",
            }
        else:
            w = (i * 7919 + (i // brands) * 104729) % WORDS  # every brand sees the whole vocabulary
            obj = {
                "id": f"t:{i}",
                "brand": brand,
                "platform": "twitter",
                "created_at": ts,
                "text": TEXTS[i % len(TEXTS)].format(w=f"word{w}"),
                "author": {"id": f"a:{i % authors}", "followers": i % 5000},
                "lang": "en",
            }
        pipe.process(enc.encode(obj))
    pipe.flush()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    end = status_mb()
    s = pipe.stats
    top: list[str] = []
    if trace:
        import tracemalloc

        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        for stat in snap.statistics("lineno")[:trace]:
            frame = stat.traceback[0]
            where = os.path.relpath(frame.filename, REPO) if frame.filename.startswith(str(REPO)) else frame.filename
            top.append(f"{stat.size / 2**20:8.1f} MB {stat.count:>10,} blocks  {where}:{frame.lineno}")
    if parts:
        for name, size in breakdown(pipe):
            top.append(f"{size / 2**20:8.1f} MB {size / brands / 1024:8.1f} KB/brand  {name}")
    return {
        "top": top,
        "cpu_seconds": round(cpu, 1),
        "brands": brands,
        "authors": authors,
        "events": events,
        "seconds": round(seconds, 1),
        "base_rss_mb": round(base["VmRSS"], 1),
        "rss_mb": round(end["VmRSS"], 1),
        "peak_mb": round(end["VmHWM"], 1),
        "valid": s.valid,
        "buckets": s.buckets,
        "notifications": s.notifications,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brands", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--authors", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--minutes", type=float, default=60.0, help="event-time span of each point (default 60)")
    ap.add_argument("--min-events", type=int, default=20_000)
    ap.add_argument("--trace", type=int, default=0, metavar="N", help="tracemalloc: the N biggest allocation sites")
    ap.add_argument("--breakdown", action="store_true", help="bytes held by each part of the state, per brand")
    ap.add_argument("--child", type=int, nargs=3, metavar=("BRANDS", "AUTHORS", "EVENTS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        brands, authors, events = args.child
        print(json.dumps(child(brands, authors, events, args.minutes, args.trace, args.breakdown)))
        return 0

    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    head = f"{'brands':>7} {'authors':>10} {'events':>10} {'base MB':>8} {'RSS MB':>8} {'peak MB':>8}"
    print(f"{head} {'s':>7} {'CPU s':>7}  buckets")
    worst = 0.0
    for brands in args.brands:
        for authors in args.authors:
            events = max(authors, 20 * brands, args.min_events)
            cmd = [sys.executable, __file__, "--child", str(brands), str(authors), str(events)]
            cmd += ["--minutes", str(args.minutes), "--trace", str(args.trace)]
            cmd += ["--breakdown"] if args.breakdown else []
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if out.returncode != 0:
                print(f"{brands:>7} {authors:>10} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            worst = max(worst, r["peak_mb"])
            print(
                f"{brands:>7,} {authors:>10,} {events:>10,} {r['base_rss_mb']:>8.0f} {r['rss_mb']:>8.0f} "
                f"{r['peak_mb']:>8.0f} {r['seconds']:>7.1f} {r['cpu_seconds']:>7.1f}  {r['buckets']:,}",
                flush=True,
            )
            for line in r["top"]:
                print(f"        {line}", flush=True)
    print(f"largest peak RSS {worst:.0f} MB (target <= 500 MB at 10,000 brands and 1,000,000 authors)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
