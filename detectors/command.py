"""`crisisd score-series IN.csv [-o OUT.csv] [--bucket DURATION] [--config FILE]`.

Runs the daemon's detection over a pre-aggregated count series (NAB format: `timestamp,value`),
exactly as the daemon does for one brand: each row is one bucket of customer mentions fed to
`BrandDetector.update` and `IncidentTracker.step`. Writes `timestamp,value,anomaly_score,alert`:
the score in [0, 1] (0.5 = the volume signal's firing threshold) and alert = 1 exactly on the
rows where the daemon opens or escalates an incident (one alert per incident, not per bucket).

Rows are buckets: the bucket width is the series' spacing (the median gap between rows, at least
10 s) unless `--bucket` says otherwise; with a wider `--bucket`, consecutive rows are summed into
buckets and a bucket's score and alert land on the row that closes it. `--bucket` takes the widths
the daemon allows (`windows.bucket_seconds`: 10 s to 1 h) and no narrower than the rows' spacing (a
row cannot be split); a series whose rows are over an hour apart is refused. Missing rows are
missing data, not zeros; values are counts (rounded; a negative value reads as 0).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.cli import UsageError, check_input, input_lines
from daemon.incidents import IncidentTracker
from daemon.windows import MAX_BUCKET_SECONDS, MIN_BUCKET_SECONDS, Bucket
from detectors.brand import BrandDetector
from detectors.settings import DetectionSettings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M")


def parse_duration(text: str) -> int:
    """Seconds of a DURATION such as `30s`, `5m`, `1h`.

    >>> parse_duration("5m"), parse_duration("90s"), parse_duration("1h")
    (300, 90, 3600)
    """
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration (e.g. 30s, 5m, 1h): {text!r}")
    seconds = float(m.group(1)) * _UNIT[m.group(2)]
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"duration must be a whole number of seconds >= 1: {text!r}")
    return int(seconds)


def parse_timestamp(text: str) -> float:
    """Epoch seconds of a NAB timestamp (UTC), an ISO 8601 time or a number.

    >>> parse_timestamp("2015-02-26 21:42:53"), parse_timestamp("2015-02-26T21:42:53Z")
    (1424986973.0, 1424986973.0)
    """
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    if s.endswith("Z"):
        s = s[:-1]
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        dt = None
    if dt is None:
        for fmt in _FORMATS:
            try:
                dt = datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
    if dt is None:
        raise ValueError(f"not a timestamp: {text!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(slots=True)
class Row:
    raw_ts: str
    raw_value: str
    t: float
    value: float


def read_series(path: Path, stream: Iterable[str]) -> list[Row]:
    """Parse and validate the CSV; a bad file raises UsageError naming file and line."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError(f"{path}: empty file (expected a header 'timestamp,value')") from None
    except csv.Error as exc:
        raise UsageError(f"{path}:1: {exc}") from None
    cols = [h.strip().lower() for h in header]
    if "timestamp" not in cols or "value" not in cols:
        raise UsageError(f"{path}:1: header must have columns 'timestamp' and 'value', got {header!r}")
    it, iv = cols.index("timestamp"), cols.index("value")
    rows: list[Row] = []
    line = 1
    try:
        for rec in reader:
            line = reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) <= max(it, iv):
                raise UsageError(f"{path}:{line}: expected {len(cols)} columns, got {len(rec)}")
            try:
                t = parse_timestamp(rec[it])
            except ValueError as exc:
                raise UsageError(f"{path}:{line}: {exc}") from None
            try:
                v = float(rec[iv])
            except ValueError:
                raise UsageError(f"{path}:{line}: value is not a number: {rec[iv]!r}") from None
            if not math.isfinite(v):
                raise UsageError(f"{path}:{line}: value must be a finite number: {rec[iv]!r}")
            if rows and t <= rows[-1].t:
                raise UsageError(f"{path}:{line}: timestamps must increase ({rec[it]!r})")
            rows.append(Row(rec[it], rec[iv], t, v))
    except csv.Error as exc:
        raise UsageError(f"{path}:{line}: {exc}") from None
    if not rows:
        raise UsageError(f"{path}: no data rows")
    return rows


def infer_bucket(rows: list[Row]) -> int:
    """The series' spacing: the median gap between rows (60 s for a single row), which a repeated
    timestamp or a run of missing rows does not change.

    >>> infer_bucket([Row("", "", float(t), 1.0) for t in (0, 300, 300, 600, 1800, 2100)])
    300
    """
    gaps = sorted(b.t - a.t for a, b in itertools.pairwise(rows) if b.t > a.t)
    return max(1, round(gaps[len(gaps) // 2])) if gaps else 60


def score_rows(
    rows: list[Row], bucket_seconds: int, settings: DetectionSettings, brand: str = "series"
) -> Iterator[tuple[Row, float, int]]:
    """(row, anomaly_score, alert) per row, as the daemon would decide."""
    det = BrandDetector(settings, seed=0, brand=brand)
    tracker = IncidentTracker(settings)
    spacing = infer_bucket(rows)
    group: list[Row] = []
    last_score = 0.0

    def flush(group: list[Row]) -> Iterator[tuple[Row, float, int]]:
        nonlocal last_score
        total = sum(max(r.value, 0.0) for r in group)  # counts: a negative value reads as 0
        b = Bucket(brand, group[0].t, bucket_seconds, mentions=round(total), raw_mentions=round(total))
        a = det.update(b)
        changes = tracker.step(b, a)
        alert = int(any(c.alert for c in changes))
        for r in group[:-1]:
            yield r, last_score, 0
        last_score = a.volume.score
        yield group[-1], last_score, alert

    if bucket_seconds <= spacing:
        for r in rows:
            yield from flush([r])
        return
    start = rows[0].t
    for r in rows:
        if group and (r.t - start) // bucket_seconds != (group[0].t - start) // bucket_seconds:
            yield from flush(group)
            group = []
        group.append(r)
    if group:
        yield from flush(group)


def main(args: argparse.Namespace) -> int:
    path = Path(args.input)
    settings = DetectionSettings()
    if args.config:
        from config.settings import ConfigError, load_settings

        try:
            settings = load_settings(args.config).detection
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    bucket = None
    if args.bucket:
        try:
            bucket = parse_duration(args.bucket)
        except ValueError as exc:
            raise UsageError(f"--bucket: {exc}") from None
        if not MIN_BUCKET_SECONDS <= bucket <= MAX_BUCKET_SECONDS:  # the daemon's own bounds
            raise UsageError(
                f"--bucket: {args.bucket!r} is {bucket} s; buckets are {MIN_BUCKET_SECONDS} to "
                f"{MAX_BUCKET_SECONDS} s, as in the daemon (windows.bucket_seconds)"
            )
    # the shared opener: `-` is stdin, gzip is read by its magic bytes, a byte order mark (a CSV
    # saved by a spreadsheet) is dropped
    check_input(args.input)
    try:
        rows = read_series(path, (line.decode("utf-8") for line in input_lines(args.input)))
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:  # damaged gzip data is input_lines' UsageError, naming the file too
        raise UsageError(f"{path}: not UTF-8 text") from None
    spacing = infer_bucket(rows)
    if bucket is None:
        if spacing > MAX_BUCKET_SECONDS:
            raise UsageError(
                f"{path}: rows are {spacing} s apart; the daemon's buckets are at most {MAX_BUCKET_SECONDS} s"
                " (windows.bucket_seconds), so it cannot score this series"
            )
        width = max(spacing, MIN_BUCKET_SECONDS)  # finer rows are summed into the daemon's narrowest bucket
    elif bucket < spacing:  # a row cannot be split: narrower buckets would each hold a whole row's count
        raise UsageError(f"--bucket: {args.bucket!r} is narrower than the rows' spacing ({spacing} s)")
    else:
        width = bucket
    negative = sum(1 for r in rows if r.value < 0)
    if negative:
        print(f"crisisd: warning: {path}: {negative} negative values read as 0 (not counts)", file=sys.stderr)
    out: Any
    if args.output and args.output != "-":
        try:
            out = open(args.output, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"{args.output}: {exc.strerror or exc}") from None
    else:
        out = sys.stdout
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["timestamp", "value", "anomaly_score", "alert"])
        for row, score, alert in score_rows(rows, width, settings):
            w.writerow([row.raw_ts, row.raw_value, f"{score:.6f}", alert])
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "score-series",
        help="run the volume detector and incident tracker over a count series (NAB CSV)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument(
        "input", metavar="IN.csv", help="CSV with columns timestamp,value (`-`: stdin; gzip-compressed is read as such)"
    )
    p.add_argument("-o", "--output", metavar="OUT.csv", help="output CSV (default: stdout)")
    p.add_argument(
        "--bucket",
        metavar="DURATION",
        help="bucket width, 10s to 1h as in the daemon, e.g. 5m (default: the series' spacing)",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file (its detection: section is used)")
    p.set_defaults(func=main)
