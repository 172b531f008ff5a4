"""`crisisd score-series`: output shape, one alert per incident, exit codes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from daemon.cli import main


def write_series(path: Path, n: int = 3000, spike_at: int | None = 2500, seed: int = 4, step: int = 300) -> None:
    rng = np.random.default_rng(seed)
    t0 = 1_424_986_973  # 2015-02-26 21:42:53, NAB style
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(n):
            mu = 50 * (1 + 0.5 * math.sin(2 * math.pi * i / 288))
            v = int(rng.poisson(mu))
            if spike_at is not None and spike_at <= i < spike_at + 6:
                v *= 8
            ts = np.datetime64(t0 + step * i, "s").astype(str).replace("T", " ")
            fh.write(f"{ts},{v}\n")


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_output_shape_and_one_alert_per_incident(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src)
    assert main(["score-series", str(src), "-o", str(dst)]) == 0
    rows, inp = read(dst), read(src)
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert"]
    assert [r["timestamp"] for r in rows] == [r["timestamp"] for r in inp]
    assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    alerts = [i for i, r in enumerate(rows) if r["alert"] == "1"]
    assert alerts and alerts[0] == 2500  # the spike's first bucket, and not again per bucket
    assert all(a >= 2500 for a in alerts) and len(alerts) <= 2


def test_quiet_series_never_alerts_and_output_is_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    write_series(src, spike_at=None)
    assert main(["score-series", str(src), "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["score-series", str(src), "-o", str(tmp_path / "b.csv"), "--bucket", "5m"]) == 0
    a, b = (tmp_path / "a.csv").read_text(), (tmp_path / "b.csv").read_text()
    assert a == b
    assert all(r["alert"] == "0" for r in read(tmp_path / "a.csv"))


def test_wider_bucket_sums_rows(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    write_series(src, n=600)
    assert main(["score-series", str(src), "-o", str(dst), "--bucket", "15m"]) == 0
    assert len(read(dst)) == 600


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "empty file"),
        ("time,count\n1,2\n", "header"),
        ("timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,abc\n", ":3: value is not a number"),
        ("timestamp,value\nyesterday,1\n", ":2: not a timestamp"),
        ("timestamp,value\n2015-01-01 00:05:00,1\n2015-01-01 00:00:00,1\n", ":3: timestamps must increase"),
        ("timestamp,value\n2015-01-01 00:00:00,nan\n", ":2: value must be a finite number"),
        ("timestamp,value\n", "no data rows"),
    ],
)
def test_bad_files_exit_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, needle: str
) -> None:
    src = tmp_path / "bad.csv"
    src.write_text(content)
    assert main(["score-series", str(src)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and needle in err


def test_missing_file_and_bad_bucket_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score-series", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    src = tmp_path / "in.csv"
    write_series(src, n=10)
    assert main(["score-series", str(src), "--bucket", "5 parsecs"]) == 2
    assert "--bucket" in capsys.readouterr().err


@pytest.mark.parametrize("bucket", ["5s", "9s", "61m", "2h", "7d"])
def test_bucket_outside_the_daemons_bounds_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bucket: str
) -> None:
    src = tmp_path / "in.csv"
    write_series(src, n=10)
    assert main(["score-series", str(src), "--bucket", bucket]) == 2
    err = capsys.readouterr().err
    assert f"--bucket: {bucket!r}" in err and "10 to 3600 s" in err and "windows.bucket_seconds" in err


@pytest.mark.parametrize("bucket", ["10s", "1h"])
def test_bucket_at_the_daemons_bounds_is_accepted(tmp_path: Path, bucket: str) -> None:
    src = tmp_path / "in.csv"
    write_series(src, n=10, step=10)
    assert main(["score-series", str(src), "-o", str(tmp_path / "out.csv"), "--bucket", bucket]) == 0


def test_a_bucket_narrower_than_the_rows_is_refused_not_scored_as_if_it_held_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    write_series(src, n=10)  # five-minute rows
    assert main(["score-series", str(src), "--bucket", "1m"]) == 2
    assert "--bucket: '1m' is narrower than the rows' spacing (300 s)" in capsys.readouterr().err


def test_rows_over_an_hour_apart_are_refused_and_finer_ones_summed_into_ten_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daily, fine = tmp_path / "daily.csv", tmp_path / "fine.csv"
    write_series(daily, n=10, step=86400)
    assert main(["score-series", str(daily)]) == 2
    assert "rows are 86400 s apart" in capsys.readouterr().err
    write_series(fine, n=40, spike_at=None, step=2)
    assert main(["score-series", str(fine), "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["score-series", str(fine), "-o", str(tmp_path / "b.csv"), "--bucket", "10s"]) == 0
    assert read(tmp_path / "a.csv") == read(tmp_path / "b.csv")


def test_a_spreadsheet_bom_gzip_and_stdin_read_like_the_plain_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """score-series reads its input like replay and score-text do (one shared opener)."""
    import gzip
    import io
    import sys

    src = tmp_path / "in.csv"
    write_series(src, n=600, spike_at=500)
    plain = src.read_bytes()
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + plain)
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(plain))
    assert main(["score-series", str(src), "-o", str(tmp_path / "plain.out")]) == 0
    for name in ("bom.csv", "in.csv.gz"):
        assert main(["score-series", str(tmp_path / name), "-o", str(tmp_path / f"{name}.out")]) == 0
        assert read(tmp_path / f"{name}.out") == read(tmp_path / "plain.out")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(plain))))
    assert main(["score-series", "-", "-o", str(tmp_path / "stdin.out")]) == 0
    assert read(tmp_path / "stdin.out") == read(tmp_path / "plain.out")
