from __future__ import annotations

import json

import pytest

from daemon.cli import main

BASE = ["staffing", "--arrivals-per-hour", "200", "--aht-minutes", "3", "--target", "80/20s"]


def test_json_has_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--on-shift", "5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("agents_needed", "to_schedule", "on_shift", "call_in", "service_level", "occupancy"):
        assert key in out
    assert out["agents_needed"] == 14
    assert out["to_schedule"] == 20  # 14 / (1 - 0.3)
    assert out["on_shift"] == 5 and out["call_in"] == 15
    assert out["range"][0] <= 14 <= out["range"][1]


def test_backlog_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*BASE, "--backlog", "100", "--shrinkage", "0", "--max-occupancy", "0.7", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backlog_agents"] > 0
    assert out["agents_needed"] == out["queue_agents"] + out["backlog_agents"] == out["to_schedule"]
    assert out["occupancy"] <= 0.7


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--patience-minutes", "2"]) == 0
    text = capsys.readouterr().out
    assert "agents needed" in text and "Erlang A" in text


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--arrivals-per-hour", "lots"], "--arrivals-per-hour"),
        (["--arrivals-per-hour", "nan"], "--arrivals-per-hour"),
        (["--aht-minutes", "0"], "--aht-minutes"),
        (["--target", "80"], "--target"),
        (["--target", "120/15m"], "--target"),
        (["--target", "80/0s"], "--target"),
        (["--shrinkage", "1"], "--shrinkage"),
        (["--max-occupancy", "1.5"], "--max-occupancy"),
        (["--backlog", "-3"], "--backlog"),
        (["--on-shift", "two"], "--on-shift"),
        (["--arrivals-per-hour", "9000000", "--aht-minutes", "60"], "--arrivals-per-hour"),
    ],
)
def test_bad_values_exit_2_naming_the_option(extra: list[str], option: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0]


def test_backlog_within_a_longer_span_needs_fewer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BASE, "--backlog", "1000", "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main([*BASE, "--backlog", "1000", "--backlog-within", "2h", "--json"]) == 0
    slow = json.loads(capsys.readouterr().out)
    assert 0 < slow["backlog_agents"] < fast["backlog_agents"]
    assert main([*BASE, "--backlog-within", "soon"]) == 2
    assert "--backlog-within" in capsys.readouterr().err
