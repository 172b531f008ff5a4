"""Evaluate crisisd's detection: NAB (via `crisisd score-series` + nab_score.py) and simulated streams.

    .venv/bin/python bench/eval_detectors.py                 # NAB + simulation (5 seeds)
    .venv/bin/python bench/eval_detectors.py --only nab
    .venv/bin/python bench/eval_detectors.py --only sim --seeds 1 2 3 4 5 --normal-days 28

NAB: every CSV of `--data`/nab_dev/{realTweets, artificialNoAnomaly, artificialWithAnomaly} goes
through `crisisd score-series` (the daemon's detectors and incident tracker; alert = an incident
opened or escalated), then ../shared/tools/nab_score.py scores the binary alerts (standard
profile). Printed: the NAB score, windows hit, false alarms and each window's detection delay.

Simulation: `crisisd simulate ash-crisis|normal|coordinated --seed S --truth T` then `crisisd replay
--json` with each brand's time zone configured from the truth (as a deployment configures its brands);
printed: the ash crisis' detection delay (event-time minutes from onset to `detected_at` of the
first incident of the crisis brand at or after onset) and its flags (a customer crisis must carry
none), sev1/sev2 incidents in normal weeks, and what the copy-paste campaign of the `coordinated`
scenario opened (at `--coordinated-scale`, 0.3 by default: some 200 posts beside the brand's usual
traffic, harder to tell than the full-scale 600-900).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = ("realTweets", "artificialNoAnomaly", "artificialWithAnomaly")


def _crisisd(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "import sys; from daemon.cli import main; sys.exit(main(sys.argv[1:]))", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]


def _score_one(src: Path, dst: Path) -> tuple[Path, int]:
    r = _crisisd("score-series", str(src), "-o", str(dst))
    if r.returncode != 0:
        raise SystemExit(f"score-series failed on {src}: {r.stderr.strip()}")
    with dst.open() as fh:
        alerts = sum(int(row["alert"]) for row in csv.DictReader(fh))
    return dst, alerts


def _parse(ts: str) -> float:
    return datetime.strptime(ts[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def run_nab(data: Path, tool: Path, out: Path) -> None:
    nab = data / "nab_dev"
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    jobs = []
    with concurrent.futures.ProcessPoolExecutor() as pool:
        for cat in CATEGORIES:
            (out / cat).mkdir(parents=True, exist_ok=True)
            for src in sorted((nab / cat).glob("*.csv")):
                jobs.append(pool.submit(_score_one, src, out / cat / src.name))
        results = [j.result() for j in jobs]
    print("== NAB (crisisd score-series, binary alerts as raised)")
    for dst, alerts in results:
        key = f"{dst.parent.name}/{dst.name}"
        with dst.open() as fh:
            rows = list(csv.DictReader(fh))
        alert_ts = [_parse(r["timestamp"]) for r in rows if r["alert"] == "1"]
        wins = [(_parse(a), _parse(b)) for a, b in windows.get(key, [])]
        delays = []
        for a, b in wins:
            hits = [t for t in alert_ts if a <= t <= b]
            delays.append(f"{(min(hits) - a) / 3600:.1f}h" if hits else "miss")
        outside = sum(1 for t in alert_ts if not any(a <= t <= b for a, b in wins))
        print(f"  {key:55s} alerts={alerts:3d} outside-windows={outside:3d} window delays from start={delays}")
    for cat in CATEGORIES:
        r = subprocess.run(
            [sys.executable, str(tool), str(out), "--category", cat, "--data-dir", str(nab), "--column", "alert"],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            continue
        lines = [ln for ln in r.stdout.splitlines() if "TOTAL" in ln or ln.strip().startswith(("category", cat))]
        print(f"-- {cat}")
        for ln in lines:
            print("  " + ln.strip())


def run_sim(seeds: list[int], normal_days: int, crisis_days: int, coordinated_scale: float = 0.3) -> None:
    probe = _crisisd("simulate", "--help")
    if probe.returncode != 0:
        print("== simulation: `crisisd simulate` is not available yet; skipped")
        return
    print("== simulation (crisisd simulate + crisisd replay --json)")
    runs = [
        (seed, scenario, days, scale)
        for seed in seeds
        for scenario, days, scale in (
            ("ash-crisis", crisis_days, 1.0),
            ("normal", normal_days, 1.0),
            ("coordinated", crisis_days, coordinated_scale),
        )
    ]
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for line in pool.map(lambda run: _sim_one(Path(tmp), *run), runs):  # each run is its own processes
            print("  " + line, flush=True)


def _sim_one(tmp: Path, seed: int, scenario: str, days: int, scale: float = 1.0) -> str:
    f = tmp / f"{scenario}-{seed}.jsonl"
    truth = tmp / f"{scenario}-{seed}.truth.json"
    args = ("--days", str(days), "--seed", str(seed), "--scale", str(scale), "-o", str(f), "--truth", str(truth))
    r = _crisisd("simulate", scenario, *args)
    if r.returncode != 0:
        return f"simulate {scenario} seed {seed} failed: {r.stderr.strip()}"
    config = _brand_timezones(truth, tmp / f"{scenario}-{seed}.yaml")
    dead = tmp / f"{scenario}-{seed}.dead.jsonl"
    r = _crisisd("replay", str(f), "--config", str(config), "--json", "--dead-letter", str(dead))
    f.unlink()  # a 28-day stream is about 1.5 GB
    if r.returncode != 0:
        return f"replay {scenario} seed {seed} failed: {r.stderr.strip()}"
    notes = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
    opened = [n for n in notes if n.get("type") == "incident.opened"]
    sev12 = [n for n in notes if n.get("severity") in ("sev1", "sev2")]
    ids12 = sorted({n["incident_id"] for n in sev12})
    t = json.loads(truth.read_text())
    if scenario == "ash-crisis":
        return _crisis_line(seed, t, opened, ids12, notes)
    if scenario == "coordinated":
        return _campaign_line(seed, t, notes, ids12)
    return f"normal     seed={seed} days={days}: incidents={len(opened)} sev1/sev2={len(ids12)} {ids12[:5]}"


def _campaign_line(seed: int, truth: dict, notes: list[dict], ids12: list[str]) -> str:
    """The incidents of the campaign's brand that started while it ran, with their highest severity and
    their flags; a campaign must be a sev3 watch flagged `coordinated`, and page nobody."""
    (c,) = [d for d in truth["distractors"] if d["kind"] == "coordinated"]
    start, end = _iso(c["start"]), _iso(c["end"])
    found: dict[str, tuple[str, set[str]]] = {}
    for n in notes:
        if n["brand"] == c["brand"] and start - 600 <= _iso(n["started_at"]) <= end:
            sev, flags = found.get(n["incident_id"], ("sev3", set()))
            found[n["incident_id"]] = (min(sev, n["severity"]), flags | set(n.get("flags") or ()))
    said = "; ".join(f"{i} {sev} flags={sorted(flags)}" for i, (sev, flags) in found.items()) or "NO INCIDENT"
    return f"coordinated seed={seed}: {c['detail']} on {c['brand']}: {said}; sev1/sev2 anywhere: {ids12[:5]}"


def _brand_timezones(truth: Path, config: Path) -> Path:
    """A configuration with each simulated brand's daily curve in its audience's time zone, as a
    deployment sets `detection.brands.<brand>.volume.timezone` (and as `crisisd demo` does): without
    it, the daylight-saving switch moves a European brand's morning by an hour in UTC."""
    brands = json.loads(truth.read_text())["brands"]
    lines = ["detection:", "  brands:"]
    for b in brands:
        lines += [f"    {json.dumps(b['brand'])}:", "      volume:", f"        timezone: {json.dumps(b['tz'])}"]
    config.write_text("\n".join(lines) + "\n")
    return config


def _crisis_line(seed: int, truth: dict, opened: list[dict], ids12: list[str], notes: list[dict]) -> str:
    crisis = truth.get("crisis") or {}
    brand = crisis.get("brand")
    onset = crisis.get("onset") or crisis.get("start")
    if not brand or not onset:
        return f"ash-crisis seed={seed}: truth has no crisis brand/onset: {sorted(crisis)}"
    t0 = _iso(onset)
    mine = [n for n in opened if n["brand"] == brand and _iso(n["detected_at"]) >= t0 - 3600]
    if not mine:
        return f"ash-crisis seed={seed}: crisis on {brand} at {onset} NOT DETECTED"
    first = min(mine, key=lambda n: _iso(n["detected_at"]))
    delay = (_iso(first["detected_at"]) - t0) / 60
    others = [n["incident_id"] for n in opened if n is not first and n["severity"] in ("sev1", "sev2")]
    flags = sorted({f for n in notes if n["incident_id"] == first["incident_id"] for f in n.get("flags") or ()})
    return (
        f"ash-crisis seed={seed}: {first['incident_id']} {first['severity']} detected {delay:+.0f} min after onset, "
        f"flags {flags}; other sev1/sev2 incidents: {others}"
    )


def _iso(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="../shared/data", help="shared data folder (default ../shared/data)")
    p.add_argument("--tool", default="../shared/tools/nab_score.py", help="NAB scorer")
    p.add_argument("--only", choices=("nab", "sim"))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--normal-days", type=int, default=28)
    p.add_argument("--crisis-days", type=int, default=7)
    p.add_argument("--coordinated-scale", type=float, default=0.3, help="volume scale of the coordinated runs")
    p.add_argument("--out", help="keep score-series outputs here (default: a temporary folder)")
    args = p.parse_args()
    data = (REPO / args.data).resolve() if not Path(args.data).is_absolute() else Path(args.data)
    tool = (REPO / args.tool).resolve() if not Path(args.tool).is_absolute() else Path(args.tool)
    if args.only in (None, "nab"):
        if args.out:
            run_nab(data, tool, Path(args.out))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                run_nab(data, tool, Path(tmp))
    if args.only in (None, "sim"):
        run_sim(args.seeds, args.normal_days, args.crisis_days, args.coordinated_scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
