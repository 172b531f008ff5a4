"""Every command's exit codes (0 ok, 2 usage/configuration, 1 other failure) and the JSON output."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon.cli import main

EVENT = {
    "id": "twitter:1",
    "brand": "klm",
    "platform": "twitter",
    "created_at": "2010-04-16T07:42:10+02:00",
    "text": "Flight cancelled",
    "author": {"id": "u1"},
}


def run(*argv: str) -> int:
    return main(list(argv))


def _none_too_long(n: int) -> None:
    pytest.fail(f"line {n} reported too long")


def test_no_command_and_unknown_command_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        run()
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        run("nope")
    assert e.value.code == 2
    assert "crisisd: error:" in capsys.readouterr().err


def test_replay_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("replay", str(tmp_path / "missing.jsonl")) == 2
    err = capsys.readouterr().err
    assert "missing.jsonl" in err and len(err.strip().splitlines()) == 1


def test_replay_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("replay", str(tmp_path)) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_replay_reads_a_pipe_and_dead_letters_in_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`crisisd replay <(zcat day.jsonl.gz)` hands the command a pipe: read it, and put the dead
    letters in the working directory (there is nothing to write beside /dev/fd/63)."""
    fifo = tmp_path / "events"
    os.mkfifo(fifo)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def feed() -> None:
        with open(fifo, "w") as fh:
            fh.write(json.dumps(EVENT) + "\nnot json\n")

    writer = threading.Thread(target=feed)
    writer.start()
    assert run("replay", str(fifo)) == 0
    writer.join()
    assert "1 valid, 1 invalid" in capsys.readouterr().err
    dead = [json.loads(x) for x in (work / "events.dead-letter.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dead] == ["not_json"]


def test_replay_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps(EVENT) + "\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("windows:\n  bucket_seconds: nope\n")
    assert run("replay", str(f), "--config", str(cfg)) == 2
    assert "windows.bucket_seconds" in capsys.readouterr().err


def test_replay_counts_invalid_and_writes_dead_letter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "in.jsonl"
    lines = [json.dumps(EVENT), "not json", json.dumps(EVENT), json.dumps({**EVENT, "id": 5}), ""]
    f.write_text("\n".join(lines) + "\n")
    assert run("replay", str(f), "--json") == 0
    err = capsys.readouterr().err
    assert "2 invalid" in err and "1 duplicate" in err
    dead = [json.loads(x) for x in (tmp_path / "in.jsonl.dead-letter.jsonl").read_text().splitlines()]
    assert [(d["line"], d["reason"]) for d in dead] == [(2, "not_json"), (4, "wrong_type")]
    assert dead[0]["original"] == "not json"


def test_replay_reads_gzip_and_refuses_a_dead_letter_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [json.dumps(EVENT), "not json", json.dumps({**EVENT, "id": "twitter:2"})]
    plain, packed = tmp_path / "in.jsonl", tmp_path / "in.jsonl.gz"
    plain.write_text("\n".join(lines) + "\n")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert run("replay", str(plain)) == 0
    want = capsys.readouterr().err.splitlines()[0].split("): ")[1]
    assert run("replay", str(packed)) == 0
    assert capsys.readouterr().err.splitlines()[0].split("): ")[1] == want  # the same counts
    assert want.startswith("2 valid, 1 invalid")
    assert run("replay", str(plain), "--dead-letter", str(tmp_path)) == 2
    assert "the dead-letter file is a directory" in capsys.readouterr().err


def test_replay_refuses_an_unwritable_dead_letter_path_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dead-letter path that cannot be written is a usage error found before the first line: not
    `failed: FileNotFoundError` at the first invalid line, after processing started, nor exit 0
    when no line happens to be invalid. The check leaves nothing behind: no file means nothing
    invalid."""
    f = tmp_path / "in.jsonl"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    bad = [blocker / "x.jsonl", blocker / "sub" / "x.jsonl"]  # a file in the way (refused even as root)
    if Path("/proc/self").is_dir():
        bad.append(Path("/proc/nope/x.jsonl"))
    for lines in ([json.dumps(EVENT)], [json.dumps(EVENT), "not json"]):
        f.write_text("\n".join(lines) + "\n")
        for path in bad:
            assert run("replay", str(f), "--json", "--dead-letter", str(path)) == 2
            out, err = capsys.readouterr()
            assert out == ""  # nothing processed
            assert err.startswith(f"crisisd: error: {path}: cannot write the dead-letter file")
            assert len(err.strip().splitlines()) == 1
    # a directory still to be made is fine, and made only for an invalid line
    later = tmp_path / "new" / "dir" / "dead.jsonl"
    f.write_text(json.dumps(EVENT) + "\n")
    assert run("replay", str(f), "--dead-letter", str(later)) == 0
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "in.jsonl"]  # no probe left behind
    f.write_text("not json\n")
    assert run("replay", str(f), "--dead-letter", str(later)) == 0
    assert [json.loads(x)["reason"] for x in later.read_text().splitlines()] == ["not_json"]
    # the file holds this run's invalid lines: a clean replay leaves none (an earlier run's goes)
    f.write_text(json.dumps(EVENT) + "\n")
    assert run("replay", str(f), "--dead-letter", str(later)) == 0
    assert not later.exists()


def test_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafka:\n  topic: t1\n")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("CRISISD_SLACK_CHANNEL", "C0CRISIS")  # Slack on needs its channel, as for `run`
    assert run("check-config", str(cfg)) == 0
    out = capsys.readouterr().out
    assert "t1" in out and "xoxb-very-secret" not in out
    assert run("check-config", str(tmp_path / "missing.yaml")) == 2
    cfg.write_text("kafka: [\n")
    assert run("check-config", str(cfg)) == 2


def test_check_config_refuses_what_run_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Slack configured (a bot token), `run` refuses a blank channel at start: check-config
    passed the same file. Both now refuse it, with the same message."""
    from config.settings import load_settings
    from daemon.cli import UsageError
    from daemon.kafka.run_command import build_notifier

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.delenv("CRISISD_SLACK_CHANNEL", raising=False)
    monkeypatch.setenv("CRISISD_STATE_DIR", str(tmp_path / "state"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text('slack: {channel: ""}\n')
    with pytest.raises(UsageError) as refused:
        build_notifier(load_settings(str(cfg)), False, None)  # what `run` does before it connects
    assert str(refused.value) == "slack.channel: not set (CRISISD_SLACK_CHANNEL)"
    assert run("check-config", str(cfg)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"crisisd: error: {refused.value}\n"
    # without a bot token Slack is off: `run` uses the console, and a blank channel is no problem
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    assert run("check-config", str(cfg)) == 0
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    cfg.write_text("slack: {channel: C0CRISIS}\n")
    assert run("check-config", str(cfg)) == 0


def test_check_config_warns_when_escalation_mentions_nobody(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped escalation ladder names no users and no user groups: a page mentions nobody.
    Valid, so exit 0, but said on stderr."""
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("slack:\n  escalation:\n    levels: [{name: a, channel: C0LEADS}, {name: b}]\n")
    assert run("check-config", str(cfg)) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("crisisd: warning: slack.escalation.levels: ")
    assert "pages will mention nobody" in err[0]
    cfg.write_text("slack:\n  escalation:\n    levels: [{name: a}, {name: b, user_groups: [S0CARE]}]\n")
    assert run("check-config", str(cfg)) == 0
    assert capsys.readouterr().err == ""


def test_staffing_json_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("staffing", "--arrivals-per-hour", "600", "--aht-minutes", "4", "--target", "80/15m", "--json") == 0
    obj = json.loads(capsys.readouterr().out)
    for key in ("agents_needed", "to_schedule", "on_shift", "call_in", "service_level", "occupancy"):
        assert key in obj
    assert obj["sla_target"] == "80/15m"
    # the notification's `staffing.sla_target` (StaffingPlanner) uses the same P/DURATION form
    assert run("staffing", "--arrivals-per-hour", "600", "--aht-minutes", "4", "--target", "90/60m", "--json") == 0
    assert json.loads(capsys.readouterr().out)["sla_target"] == "90/1h"
    assert run("staffing", "--arrivals-per-hour", "600", "--aht-minutes", "4", "--target", "eighty") == 2


def test_score_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"text": "My flight was cancelled and nobody answers!"}) + "\n")
    out = tmp_path / "o.jsonl"
    assert run("score-text", str(f), "-o", str(out)) == 0
    row = json.loads(out.read_text())
    assert {"lang", "negativity", "negative", "intent"} <= row.keys()
    assert run("score-text", str(tmp_path / "missing.jsonl")) == 2


def test_score_series(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text("timestamp,value\n" + "".join(f"2015-03-01 00:{m:02d}:00,{10 + m % 3}\n" for m in range(0, 60, 5)))
    out = tmp_path / "o.csv"
    assert run("score-series", str(f), "-o", str(out)) == 0
    rows = out.read_text().splitlines()
    assert rows[0] == "timestamp,value,anomaly_score,alert" and len(rows) == 13
    assert run("score-series", str(tmp_path / "missing.csv")) == 2


def test_simulate_unknown_scenario_exits_2() -> None:
    assert run("simulate", "no-such-scenario") == 2


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["demo", "--days", "0"], "--days: must be at least 1"),
        (["demo", "--seed", "-1"], "--seed: must be >= 0"),
        (["demo", "--days", "100000"], "--days: must be at most 366"),
        (["simulate", "normal", "--days", "100000"], "--days: must be at most 366"),
        (["simulate", "normal", "--days", "200"], "--days × --scale: 200 days at scale 1 "),
        (["simulate", "normal", "--days", "2", "--scale", "60"], "--days × --scale: 2 days at scale 60 "),
    ],
)  # fmt: skip
def test_demo_and_simulate_refuse_days_and_seeds_out_of_range(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors, before anything is simulated: not `failed: ValueError` (exit 1) from deep in
    the simulator, nor a MemoryError (or the kernel's OOM killer) for 100,000 days."""
    assert run(*argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"crisisd: error: {named}") and len(err.splitlines()) == 1


def test_run_without_kafka_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRISISD_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("CRISISD_STATE_DIR", str(tmp_path))
    assert run("run") == 2


def test_console_script_is_installed() -> None:
    out = subprocess.run([sys.executable, "-m", "daemon.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("crisisd ")


def test_produce_reads_gzip_like_replay(tmp_path: Path) -> None:
    from daemon.kafka.produce_command import read_lines

    plain, packed = tmp_path / "in.jsonl", tmp_path / "in.jsonl.gz"
    plain.write_bytes(b'{"a": 1}\r\n\n{"b": 2}\n')
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = [b'{"a": 1}', b'{"b": 2}']
    assert list(read_lines(str(packed), _none_too_long)) == list(read_lines(str(plain), _none_too_long)) == expected


def test_produce_refuses_a_bootstrap_server_without_a_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps(EVENT) + "\n")
    assert run("produce", str(f), "--topic", "t", "--bootstrap-servers", "k1:9092,broker") == 2
    assert "--bootstrap-servers: 'broker' is not host:port" in capsys.readouterr().err


def test_a_utf8_bom_does_not_make_line_1_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.kafka.produce_command import read_lines

    lines = [json.dumps(EVENT), json.dumps({**EVENT, "id": "twitter:2"})]
    plain, packed = tmp_path / "in.jsonl", tmp_path / "in.jsonl.gz"
    plain.write_bytes(codecs.BOM_UTF8 + "\n".join(lines).encode() + b"\n")  # as Notepad saves "UTF-8 with BOM"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for f in (plain, packed):
        assert run("replay", str(f)) == 0
        assert "2 valid, 0 invalid" in capsys.readouterr().err
        assert list(read_lines(str(f), _none_too_long)) == [line.encode() for line in lines]
    assert not (tmp_path / "in.jsonl.dead-letter.jsonl").exists()


def _damaged_gzips(tmp_path: Path, plain: bytes) -> list[Path]:
    """The ways a .gz is damaged, each raising its own error from gzip or zlib."""
    packed = gzip.compress(plain)
    damaged = {
        "garbage.gz": b"\x1f\x8b\x08\x00garbage",  # a gzip magic, then no deflate stream: EOFError
        "truncated.gz": packed[: len(packed) // 2],  # a download cut short: EOFError
        "corrupt.gz": packed[:10] + b"\xff" + packed[11:],  # zlib.error: invalid block type
        "bad-crc.gz": packed[:-8] + b"\0\0\0\0" + packed[-4:],  # gzip.BadGzipFile: CRC check failed
    }
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in damaged]


@pytest.mark.parametrize(
    ("argv", "plain"),
    [
        (["replay", "{}", "--json"], (json.dumps(EVENT) + "\n").encode() * 200),
        (["score-text", "{}"], b'{"text": "My flight was cancelled"}\n' * 200),
        (["score-series", "{}"], b"timestamp,value\n" + b"".join(b"%d,1\n" % (60 * i) for i in range(200))),
    ],
)
def test_a_damaged_gzip_input_is_a_usage_error_naming_the_file(
    argv: list[str], plain: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not `failed: error: Error -3 while decompressing data` or `failed: EOFError` (exit 1, no file
    named): exit 2 and one line naming the file."""
    for f in _damaged_gzips(tmp_path, plain):
        assert run(*(a.format(f) for a in argv)) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"crisisd: error: {f}: damaged gzip data: "), err
        assert len(err.splitlines()) == 1 or argv[0] == "replay"  # replay's summary is not printed
        assert "crisisd: failed" not in err and err.count("crisisd: error") == 1


def test_input_lines_names_a_damaged_gzip_stream_on_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from daemon.cli import UsageError, input_lines
    from daemon.kafka.produce_command import read_lines

    for f in _damaged_gzips(tmp_path, b'{"a": 1}\n' * 200):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(f.read_bytes()))))
        with pytest.raises(UsageError, match=r"^stdin: damaged gzip data: "):
            list(input_lines("-"))
        with pytest.raises(UsageError, match=rf"^{f}: damaged gzip data: "):  # produce reads it so too
            list(read_lines(str(f), _none_too_long))


def test_input_lines_cuts_a_line_over_the_cap_and_skips_its_rest(tmp_path: Path) -> None:
    from daemon.cli import input_lines

    f = tmp_path / "in.jsonl"
    f.write_bytes(b"1234\n12345\n123456789\nok\n" + b"x" * 100)
    assert list(input_lines(str(f), 5)) == [b"1234\n", b"12345\n", b"123456", b"ok\n", b"xxxxxx"]


def test_a_line_over_1_mib_is_dead_lettered_by_replay_and_not_produced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line no Kafka message could be (a corrupt export, a binary file) is read past, not into
    memory: `replay` dead-letters its first MiB as `line_too_long`, `produce` names it and exits 1."""
    import tracemalloc

    from daemon.cli import MAX_LINE_BYTES
    from daemon.kafka.produce_command import read_lines

    f = tmp_path / "in.jsonl"
    huge = b"x" * (20 * MAX_LINE_BYTES)
    f.write_bytes(json.dumps(EVENT).encode() + b"\n" + huge + b"\n" + json.dumps({**EVENT, "id": "twitter:2"}).encode())
    tracemalloc.start()
    try:
        assert run("replay", str(f), "--json") == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_LINE_BYTES  # not the 20 MiB line
    assert "2 valid, 1 invalid (line_too_long 1)" in capsys.readouterr().err
    dead = [json.loads(x) for x in (tmp_path / "in.jsonl.dead-letter.jsonl").read_text().splitlines()]
    assert [(d["line"], d["reason"], len(d["original"])) for d in dead] == [(2, "line_too_long", MAX_LINE_BYTES)]
    too_long: list[int] = []
    assert [json.loads(x)["id"] for x in read_lines(str(f), too_long.append)] == ["twitter:1", "twitter:2"]
    assert too_long == [2]


def test_a_clean_replay_leaves_no_dead_letter_file_of_an_earlier_run(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps(EVENT) + "\nnot json\n")
    assert run("replay", str(f), "--json") == 0
    dead = tmp_path / "in.jsonl.dead-letter.jsonl"
    assert dead.exists()
    f.write_text(json.dumps(EVENT) + "\n")  # fixed
    assert run("replay", str(f), "--json") == 0
    assert not dead.exists(), "no file means nothing invalid"
