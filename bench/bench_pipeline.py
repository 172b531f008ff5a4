"""Pipeline throughput in one process: decode -> dedup -> score -> window -> detect, no Kafka.

The input is a simulated stream (`crisisd simulate`, garbage, late and duplicate lines included)
or your own JSONL file, read into memory first. Two densities:

- `sparse` (the default stream): the ash-crisis day at scale 0.1, 7 brands, about 5 events per
  one-minute bucket, so the per-bucket costs (detectors, incidents) weigh as much as the per-event
  ones;
- `dense`: the same scenario at `--dense-scale` (1.0), only its busiest `--dense-hours` (1) of
  event time: klm's crisis at full volume beside the other brands' mornings, about 200 events per
  bucket (the load a daemon has to sustain when it matters). Every run starts from a snapshot of
  a pipeline that has processed the stream before that hour (untimed), so its scorers, windows
  and detectors carry the state of a daemon that has been running (with the defaults the hour
  itself sends no notification: its per-bucket figures are mostly the detectors' and windows').

and two language variants of each:

- `lang given`: every event carries `lang` (events without one get the language the built-in
  detector finds, written into the JSON before the clock starts), so scoring skips detection;
- `lang absent`: `lang` removed from every event, so the daemon detects every language.

A rate counts every line handed to `Pipeline.process` (invalid and duplicate ones too) plus the
final `flush()`. Printed per variant: the best and median wall-clock rate of `--repeat` runs, the
rate per CPU-second of this process (`time.process_time`, much less sensitive to a busy machine),
and the load average while it ran. The target is >= 50,000 events/s with the language given.

Then, from one more run per variant with probes around each stage, where the time goes in
microseconds of CPU per event (each stage's own time, without the stages it calls; probes read a
wall clock, and their split is scaled to the run's CPU time), and per closed bucket for the
per-bucket stages. The notifications of every run are hashed: the digest must be the same in
every run (determinism) and is the quick check that a speed-up changed no output.

    python bench/bench_pipeline.py                          # sparse and dense, lang given and absent
    python bench/bench_pipeline.py --only given --density sparse
    python bench/bench_pipeline.py --days 7 --scale 1       # the full-size stream (~3.5M lines)
    python bench/bench_pipeline.py --profile                # + cProfile tables per variant
    python bench/bench_pipeline.py --input FILE.jsonl       # your stream (no dense variant)

For a sampling profile without cProfile's overhead (py-spy in the virtualenv):
`py-spy record -o pipeline.svg -- .venv/bin/python bench/bench_pipeline.py --only given --repeat 1`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import msgspec  # noqa: E402

from config.settings import load_settings  # noqa: E402
from daemon.events import Mention, decode  # noqa: E402
from daemon.notification import Notification  # noqa: E402
from daemon.pipeline import Pipeline  # noqa: E402

TARGET = 50_000  # events/s per process with the language given (issue 8)

# -- input -------------------------------------------------------------------------------------


def load_lines(args: argparse.Namespace) -> list[bytes]:
    if args.input:
        with open(args.input, "rb") as fh:
            return [line.rstrip(b"\r\n") for line in fh if line.strip()]
    from daemon.simulate import generate

    return list(generate(args.scenario, days=args.days, seed=args.seed, scale=args.scale))


def busiest(lines: list[bytes], hours: float) -> tuple[list[bytes], list[bytes], float, float]:
    """The lines whose event time falls in the busiest `hours` of the stream, in delivery order.

    Invalid lines delivered among them stay. Returns (those lines, every line delivered before
    them, start, end) with start and end in epoch seconds.
    """
    stamps = [(i, m.ts) for i, line in enumerate(lines) if isinstance(m := decode(line), Mention)]
    step = 600.0  # ten-minute bins, a sliding window of `hours`
    bins: dict[int, int] = {}
    for _, ts in stamps:
        bins[int(ts // step)] = bins.get(int(ts // step), 0) + 1
    width = max(1, round(hours * 3600 / step))
    first, last = min(bins), max(bins)
    best, best_n = first, -1
    for b in range(first, max(first, last - width + 1) + 1):
        n = sum(bins.get(b + k, 0) for k in range(width))
        if n > best_n:
            best, best_n = b, n
    start, end = best * step, (best + width) * step
    keep = [i for i, ts in stamps if start <= ts < end]
    lo, hi = keep[0], keep[-1]
    inside = set(keep)
    valid = {i for i, _ in stamps}
    window = [line for i, line in enumerate(lines[lo : hi + 1], lo) if i in inside or i not in valid]
    return window, lines[:lo], start, end


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
    except (msgspec.DecodeError, UnicodeDecodeError):  # garbage lines stay as they are
        return None
    return obj if isinstance(obj, dict) else None


# -- timed runs --------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float
    pipe: Pipeline
    digest: str
    notifications: int
    counts: dict[str, int]  # what this run added to the pipeline's stats (a warm one has some)


@dataclass
class Variant:
    name: str
    lines: list[bytes]
    warm: bytes | None = None  # a snapshot every run starts from (the stream before `lines`)
    runs: list[Run] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # label -> seconds of own wall time
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])  # per GC generation, probed run
    probed: Run | None = None


def _fresh(warm: bytes | None = None) -> Pipeline:
    settings = load_settings(env={})
    pipe = Pipeline.restore(settings, warm) if warm is not None else Pipeline(settings)
    pipe.process(b"{}")  # language models load lazily: warm them outside the clock
    return pipe


def warm_up(lines: list[bytes]) -> bytes:
    """The snapshot of a pipeline that has processed `lines` (untimed)."""
    pipe = _fresh()
    for line in lines:
        pipe.process(line)
    return pipe.snapshot()


def run_once(lines: list[bytes], warm: bytes | None = None, v: Variant | None = None) -> Run:
    """One pass over `lines` from a fresh (or `warm`) pipeline: wall and CPU seconds, outputs' digest.

    With `v`, the pass runs with the stage probes on and fills `v.stages` and `v.collections`.
    """
    pipe = _fresh(warm)
    before = _counts(pipe)
    process = pipe.process
    notes: list[Notification] = []
    keep = notes.extend
    gc.collect()
    with probes(v.stages, v.collections) if v is not None else nullcontext():
        cpu = time.process_time()
        started = time.perf_counter()
        for line in lines:
            out = process(line).notifications
            if out:
                keep(out)
        keep(pipe.flush())
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = _counts(pipe)
    return Run(wall, cpu, pipe, _digest(notes), len(notes), {k: after[k] - before[k] for k in after})


def _counts(pipe: Pipeline) -> dict[str, int]:
    s = pipe.stats
    return {
        "valid": s.valid,
        "invalid": s.invalid_total,
        "duplicate": s.duplicate,
        "late": s.late,
        "buckets": s.buckets,
    }


def _digest(notes: list[Notification]) -> str:
    h = hashlib.sha256()
    for n in notes:
        h.update(msgspec.json.encode(n))
        h.update(b"\n")
    return h.hexdigest()[:16]


def measure(v: Variant, repeat: int) -> None:
    for _ in range(repeat):
        v.load.append(os.getloadavg()[0])
        v.runs.append(run_once(v.lines, v.warm))
    v.load.append(os.getloadavg()[0])


# -- where the time goes -----------------------------------------------------------------------

# (label, "event" or "bucket", module, attribute path): each probe times its function's own time
# (without the probed functions it calls). A probe whose target is gone is skipped.
_PROBES: list[tuple[str, str, str, str]] = [
    ("decode", "event", "daemon.pipeline", "decode"),
    ("dedup", "event", "daemon.dedup", "RecentIds.seen"),
    ("enrich (language, negativity, intent, terms)", "event", "daemon.pipeline", "Pipeline._enrich"),
    ("response tracking (observe_mention/reply)", "event", "daemon.detection", "BrandDetection.observe_mention"),
    ("response tracking (observe_mention/reply)", "event", "daemon.detection", "BrandDetection.observe_reply"),
    ("windows.add (counting into the bucket)", "event", "daemon.windows", "BrandWindows.add"),
    ("closing buckets (windows.close_until)", "bucket", "daemon.windows", "BrandWindows.close_until"),
    ("volume detector", "bucket", "detectors.volume", "VolumeDetector.read"),
    ("volume detector", "bucket", "detectors.volume", "VolumeDetector.after_score"),
    ("negativity detector", "bucket", "detectors.negativity", "NegativityDetector.read"),
    ("negativity detector", "bucket", "detectors.negativity", "NegativityDetector.after_score"),
    ("topic detector", "bucket", "detectors.topic", "TopicDetector.read"),
    ("topic detector", "bucket", "detectors.topic", "TopicDetector.after_score"),
    ("assessment (BrandDetector.update, _assess)", "bucket", "detectors.brand", "BrandDetector.update"),
    ("incidents (IncidentTracker.step)", "bucket", "daemon.incidents", "IncidentTracker.step"),
    ("notification objects (+ staffing, responses)", "bucket", "daemon.detection", "BrandDetection._notification"),
    ("bucket glue (_detect, on_bucket, history)", "bucket", "daemon.pipeline", "Pipeline._detect"),
    ("bucket glue (_detect, on_bucket, history)", "bucket", "daemon.detection", "BrandDetection.on_bucket"),
]
_REST = "the rest of process() (stats, brand lookup, glue)"
_GC = "cyclic garbage collector (pauses)"


@contextmanager
def probes(totals: dict[str, float], collections: list[int]) -> Iterator[None]:
    """Wrap every probe target; each adds its own (exclusive) wall seconds to `totals[label]`.

    Garbage collections are timed apart (`totals[_GC]`) and counted per generation.
    """
    clock = time.perf_counter
    stack: list[float] = []  # time spent in probed callees of each active probe
    undo: list[Callable[[], None]] = []

    def timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def probe(*args: Any, **kwargs: Any) -> Any:
            stack.append(0.0)
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = clock() - t0
                totals[label] = totals.get(label, 0.0) + dt - stack.pop()
                if stack:
                    stack[-1] += dt

        return probe

    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        # a collection pauses whichever stage allocated last: count it apart, not in that stage
        if phase == "start":
            started[0] = clock()
            return
        dt = clock() - started[0]
        totals[_GC] = totals.get(_GC, 0.0) + dt
        collections[info["generation"]] += 1
        if stack:
            stack[-1] += dt

    gc.callbacks.append(on_gc)
    try:
        for label, _per, module, attr in _PROBES:
            owner: Any = importlib.import_module(module)
            *path, name = attr.split(".")
            try:
                for part in path:
                    owner = getattr(owner, part)
                fn = getattr(owner, name)
            except AttributeError:
                continue
            own = owner.__dict__.get(name, _MISSING)
            setattr(owner, name, timed(fn, label))
            undo.append(_restorer(owner, name, own))
        yield
    finally:
        gc.callbacks.remove(on_gc)
        for restore in reversed(undo):
            restore()


_MISSING = object()


def _restorer(owner: Any, name: str, own: object) -> Callable[[], None]:
    def restore() -> None:
        if own is _MISSING:
            delattr(owner, name)  # it was inherited
        else:
            setattr(owner, name, own)

    return restore


def breakdown(v: Variant) -> None:
    v.probed = run_once(v.lines, v.warm, v)


def print_breakdown(variants: list[Variant]) -> None:
    done = [v for v in variants if v.probed is not None]
    if not done:
        return
    width = max(16, *(len(v.name) + 1 for v in done))
    labels = list(dict.fromkeys(label for label, *_ in _PROBES))
    per = {label: p for label, p, *_ in _PROBES}
    print("\n== where the time goes: microseconds of CPU per event (each stage without its callees) ==")
    print("   (one more run per variant with a probe around each stage; the split of the probes' wall")
    print("   time is scaled to the run's CPU time; per-bucket stages are spread over the events)")
    print(f"{'stage':<48}" + "".join(f"{v.name:>{width}}" for v in done))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<48}" + "".join(f"{x:>{width}}" for x in values))

    def us_per_event(v: Variant, seconds: float) -> float:
        assert v.probed is not None
        return seconds * (v.probed.cpu / v.probed.wall) / len(v.lines) * 1e6

    for group, title in (("event", "-- per event --"), ("bucket", "-- per closed bucket, spread over the events --")):
        print(title)
        for label in labels:
            if per[label] == group:
                row(label, [f"{us_per_event(v, v.stages.get(label, 0.0)):.1f}" for v in done])
    row(_GC, [f"{us_per_event(v, v.stages.get(_GC, 0.0)):.1f}" for v in done])
    row(_REST, [f"{us_per_event(v, v.probed.wall - sum(v.stages.values())):.1f}" for v in done if v.probed])
    row("total (probed run)", [f"{us_per_event(v, v.probed.wall):.1f}" for v in done if v.probed])
    row("total without probes (best run)", [f"{min(r.cpu for r in v.runs) / len(v.lines) * 1e6:.1f}" for v in done])
    print("-- per closed bucket: microseconds of CPU per bucket --")
    for label in labels:
        if per[label] == "bucket":
            row(label, [f"{_per_bucket(v, v.stages.get(label, 0.0)):.0f}" for v in done])
    bucket_total = [sum(s for label, s in v.stages.items() if per.get(label) == "bucket") for v in done]
    row("all per-bucket stages", [f"{_per_bucket(v, t):.0f}" for v, t in zip(done, bucket_total, strict=True)])
    row("garbage collections, generation 0/1/2", ["/".join(map(str, v.collections)) for v in done])


def _per_bucket(v: Variant, seconds: float) -> float:
    assert v.probed is not None
    return seconds * (v.probed.cpu / v.probed.wall) / max(1, v.probed.counts["buckets"]) * 1e6


# -- report ------------------------------------------------------------------------------------


def print_rates(variants: list[Variant]) -> None:
    print(
        f"\n{'variant':<22} {'lines':>9} {'buckets':>8} {'per bucket':>10}  {'events/s wall':>13} "
        f"{'(median)':>9}  {'per CPU-second':>14}  {'load':>9}"
    )
    for v in variants:
        if not v.runs:
            continue
        rates = [len(v.lines) / r.wall for r in v.runs]
        cpu_rates = [len(v.lines) / max(r.cpu, 1e-9) for r in v.runs]
        buckets = v.runs[-1].counts["buckets"]
        print(
            f"{v.name:<22} {len(v.lines):>9,} {buckets:>8,} {len(v.lines) / max(1, buckets):>10.1f}  "
            f"{max(rates):>13,.0f} {statistics.median(rates):>9,.0f}  {max(cpu_rates):>14,.0f}  "
            f"{min(v.load):>4.1f}-{max(v.load):<4.1f}"
        )
    given = [v for v in variants if v.runs and v.name.endswith("lang given")]
    for v in given:
        best = max(len(v.lines) / max(r.cpu, 1e-9) for r in v.runs)
        verdict = "met" if best >= TARGET else f"not met, x{TARGET / best:.1f} short"
        print(f"target {TARGET:,} events/s with the language given, {v.name.split(',')[0]}: {verdict} (per CPU-second)")
    print()
    for v in variants:
        if not v.runs:
            continue
        c = v.runs[-1].counts
        digests = {r.digest for r in v.runs} | ({v.probed.digest} if v.probed else set())
        same = "same in every run" if len(digests) == 1 else f"DIFFERS between runs: {sorted(digests)}"
        print(
            f"{v.name:<22} valid {c['valid']:,}, invalid {c['invalid']:,}, duplicate {c['duplicate']:,}, "
            f"late {c['late']:,}, brands {len(v.runs[-1].pipe.brands)}; {v.runs[-1].notifications} notifications, "
            f"sha256 {v.runs[-1].digest} ({same})"
        )


def profile(name: str, lines: list[bytes], warm: bytes | None, top: int) -> None:
    prof = cProfile.Profile()
    pipe = _fresh(warm)
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


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", help="JSONL stream (default: simulate SCENARIO); no dense variant then")
    ap.add_argument("--scenario", default="ash-crisis")
    ap.add_argument("--days", type=int, default=1, help="simulated days (default 1)")
    ap.add_argument("--scale", type=float, default=0.1, help="volume multiplier of the sparse stream (default 0.1)")
    ap.add_argument("--dense-scale", type=float, default=1.0, help="volume multiplier of the dense stream (default 1)")
    ap.add_argument("--dense-hours", type=float, default=1.0, help="busiest hours kept in the dense stream (default 1)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per variant (default 2)")
    ap.add_argument("--only", choices=("given", "absent"), help="one language variant only")
    ap.add_argument("--density", choices=("sparse", "dense"), help="one density only")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the per-stage run")
    ap.add_argument("--profile", action="store_true", help="also print cProfile tables per variant")
    ap.add_argument("--top", type=int, default=15, help="rows in the profile tables (default 15)")
    args = ap.parse_args(argv)

    print("pipeline benchmark: decode -> dedup -> score -> window -> detect, one process, no Kafka")
    print(f"machine      {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {_load()} (before)")
    streams: list[tuple[str, list[bytes], list[bytes]]] = []  # (density, timed lines, warm-up lines)
    if args.density in (None, "sparse"):
        lines = load_lines(args)
        what = args.input or f"{args.scenario}, {args.days} d, scale {args.scale}"
        print(f"sparse       {what}: {len(lines):,} lines")
        streams.append(("sparse", lines, []))
    if args.density in (None, "dense") and not args.input:
        from datetime import UTC, datetime

        from daemon.simulate import generate

        full = list(generate(args.scenario, days=args.days, seed=args.seed, scale=args.dense_scale))
        lines, before, start, end = busiest(full, args.dense_hours)
        span = f"{datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M}-{datetime.fromtimestamp(end, UTC):%H:%M} UTC"
        print(
            f"dense        {args.scenario}, {args.days} d, scale {args.dense_scale}, its busiest "
            f"{args.dense_hours:g} h ({span}): {len(lines):,} of {len(full):,} lines, from a snapshot "
            f"after the {len(before):,} before them"
        )
        streams.append(("dense", lines, before))
    langs: list[tuple[str, Callable[[list[bytes]], list[bytes]]]] = []
    if args.only in (None, "given"):
        langs.append(("lang given", with_lang))
    if args.only in (None, "absent"):
        langs.append(("lang absent", without_lang))
    variants = [
        Variant(f"{density}, {lang}", fn(lines), warm_up(fn(before)) if before else None)
        for density, lines, before in streams
        for lang, fn in langs
    ]

    for v in variants:
        measure(v, args.repeat)
        if not args.no_breakdown:
            breakdown(v)
    print_rates(variants)
    if not args.no_breakdown:
        print_breakdown(variants)
    if args.profile:
        for v in variants:
            profile(v.name, v.lines, v.warm, args.top)
    print(f"\nload average {_load()} (after)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
