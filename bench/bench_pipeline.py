"""Pipeline throughput in one process: decode -> dedup -> score -> window -> detect, no Kafka.

The input is a simulated stream (`crisisd simulate`, garbage, late and duplicate lines included)
or your own JSONL file, read into memory first. It runs twice over the same events:

- `lang given`: every event carries `lang` (events without one get the language the built-in
  detector finds, written into the JSON before the clock starts), so scoring skips detection;
- `lang absent`: `lang` removed from every event, so the daemon detects every language.

The rate counts every line handed to `Pipeline.process` (invalid and duplicate ones too) plus the
final `flush()`, divided by wall time; the best of `--repeat` runs is printed with the median,
and the rate per CPU-second of this process (less sensitive to a busy machine).
The target is >= 50,000 events/s with the language given.

    python bench/bench_pipeline.py                          # the ash-crisis day at scale 0.1 (~40k lines)
    python bench/bench_pipeline.py --days 7 --scale 1       # the full-size stream (~1.6M lines)
    python bench/bench_pipeline.py --profile                # + cProfile top 15 and time by module
    python bench/bench_pipeline.py --input FILE.jsonl
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402

from config.settings import load_settings  # noqa: E402
from daemon.pipeline import Pipeline  # noqa: E402


def load_lines(args: argparse.Namespace) -> list[bytes]:
    if args.input:
        with open(args.input, "rb") as fh:
            return [line.rstrip(b"\r\n") for line in fh if line.strip()]
    from daemon.simulate import generate

    return list(generate(args.scenario, days=args.days, seed=args.seed, scale=args.scale))


def with_lang(lines: list[bytes]) -> list[bytes]:
    """Every JSON object gets a `lang` (detected here when absent); other lines stay as they are."""
    from daemon.enrich.language import detect

    out = []
    for line in lines:
        obj = _json_object(line)
        if obj is None:
            out.append(line)
            continue
        if not isinstance(obj.get("lang"), str):
            text = obj.get("text")
            obj["lang"] = detect(text) if isinstance(text, str) else "en"
        out.append(msgspec.json.encode(obj))
    return out


def without_lang(lines: list[bytes]) -> list[bytes]:
    out = []
    for line in lines:
        obj = _json_object(line)
        if obj is None or "lang" not in obj:
            out.append(line)
            continue
        del obj["lang"]
        out.append(msgspec.json.encode(obj))
    return out


def _json_object(line: bytes) -> dict[str, object] | None:
    try:
        obj = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def run_once(lines: list[bytes]) -> tuple[float, float, Pipeline]:
    """(wall seconds, CPU seconds of this process, the pipeline) for one pass over `lines`."""
    settings = load_settings(env={})
    pipe = Pipeline(settings)
    pipe.process(b"{}")  # language models load lazily: warm them outside the clock
    process = pipe.process
    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    for line in lines:
        process(line)
    pipe.flush()
    return time.perf_counter() - started, time.process_time() - cpu, pipe


def measure(name: str, lines: list[bytes], repeat: int) -> float:
    """Print the best and median wall-clock rate, and the CPU-time rate (what an idle machine gives)."""
    rates, cpu_rates = [], []
    pipe = None
    for _ in range(repeat):
        seconds, cpu, pipe = run_once(lines)
        rates.append(len(lines) / seconds)
        cpu_rates.append(len(lines) / max(cpu, 1e-9))
    assert pipe is not None
    s = pipe.stats
    print(
        f"{name:<12} {max(rates):>9,.0f} events/s wall best, {statistics.median(rates):>9,.0f} median of {repeat}; "
        f"{max(cpu_rates):>9,.0f} events per CPU-second",
        flush=True,
    )
    print(
        f"{'':<12} valid {s.valid:,}, invalid {s.invalid_total:,}, duplicate {s.duplicate:,}, "
        f"late {s.late:,}, buckets {s.buckets:,}, notifications {s.notifications:,}, brands {len(pipe.brands)}",
        flush=True,
    )
    return max(rates)


def profile(name: str, lines: list[bytes], top: int) -> None:
    prof = cProfile.Profile()
    settings = load_settings(env={})
    pipe = Pipeline(settings)
    pipe.process(b"{}")
    process = pipe.process
    prof.enable()
    for line in lines:
        process(line)
    pipe.flush()
    prof.disable()
    table: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values())
    print(f"\n== cProfile, {name}: top {top} functions by tottime (total {total:.2f}s under the profiler) ==")
    rows = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)
    print(f"{'tottime':>8} {'share':>6} {'cumtime':>8} {'calls':>10}  function")
    for (path, line, func), (_cc, nc, tt, ct, _callers) in rows[:top]:
        print(f"{tt:8.3f} {tt / total:6.1%} {ct:8.3f} {nc:10,}  {_where(path)}:{line}({func})")
    by_module: dict[str, float] = {}
    for (path, _line, _func), (_cc, _nc, tt, _ct, callers) in rows:
        if path == "~" and callers:
            # a builtin (dict.get, sorted, re) is charged to the modules that called it
            for (cpath, _cl, _cf), edge in callers.items():
                key = _where(cpath)
                by_module[key] = by_module.get(key, 0.0) + edge[2]
            continue
        key = _where(path)
        by_module[key] = by_module.get(key, 0.0) + tt
    print(f"\n== tottime by module, {name} (builtins charged to their caller) ==")
    for mod, tt in sorted(by_module.items(), key=lambda kv: kv[1], reverse=True)[:top]:
        print(f"{tt:8.3f} {tt / total:6.1%}  {mod}")
    print(f"\n== cumulative time by pipeline stage, {name} ==")
    for label, suffix, func in _STAGES:
        ct = sum(row[3] for (path, _line, f), row in table.items() if f == func and path.endswith(suffix))
        print(f"{ct:8.3f} {ct / total:6.1%}  {label}")


_STAGES = [
    ("decode (daemon/events.py decode)", "daemon/events.py", "decode"),
    ("enrich (Pipeline._enrich: language, negativity, intent, terms)", "daemon/pipeline.py", "_enrich"),
    ("detection.observe_mention (per event)", "daemon/detection.py", "observe_mention"),
    ("windows.add (per event, closes buckets)", "daemon/windows.py", "add"),
    ("detect (Pipeline._detect: per closed bucket)", "daemon/pipeline.py", "_detect"),
]


def _where(path: str) -> str:
    """A repo-relative path for crisisd's files; library and builtin frames by package name."""
    if "site-packages" in path:
        return "site-packages/" + path.split("site-packages/", 1)[1].split("/", 1)[0]
    if path.startswith(str(REPO)):
        return os.path.relpath(path, REPO)
    if path in ("~", ""):
        return "<builtins>"
    return os.path.basename(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="JSONL stream (default: simulate SCENARIO)")
    ap.add_argument("--scenario", default="ash-crisis")
    ap.add_argument("--days", type=int, default=1, help="simulated days (default 1)")
    ap.add_argument("--scale", type=float, default=0.1, help="simulation volume multiplier (default 0.1)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per variant (default 2)")
    ap.add_argument("--only", choices=("given", "absent"), help="run one variant only")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile top 15 per variant")
    ap.add_argument("--top", type=int, default=15, help="rows in the profile tables (default 15)")
    args = ap.parse_args(argv)

    lines = load_lines(args)
    variants: list[tuple[str, Callable[[list[bytes]], list[bytes]]]] = []
    if args.only in (None, "given"):
        variants.append(("lang given", with_lang))
    if args.only in (None, "absent"):
        variants.append(("lang absent", without_lang))
    print(f"events       {len(lines):,} lines ({args.input or f'{args.scenario}, {args.days} d, scale {args.scale}'})")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    prepared = [(name, fn(lines)) for name, fn in variants]
    for name, data in prepared:
        measure(name, data, args.repeat)
    if args.profile:
        for name, data in prepared:
            profile(name, data, args.top)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
