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


# -- several platforms, one team (--platform) -------------------------------------------------------------

FIVE = [a for _ in range(5) for a in ("--platform", f"p{_}:30:4:80/15m")]


def test_platforms_pooled_need_fewer_than_a_queue_each(capsys: pytest.CaptureFixture[str]) -> None:
    """Five platforms of 30 mentions an hour at 4 minutes, 80 % within 15 minutes, at most 85 % busy:
    one team of 12 for all, where a queue per platform needs 3 each (as the daemon staffs an incident)."""
    assert main(["staffing", *FIVE, "--max-occupancy", "0.85", "--on-shift", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("agents_needed", "to_schedule", "on_shift", "call_in", "service_level", "occupancy"):
        assert key in out
    assert out["agents_needed"] == 12 and out["agents_if_apart"] == 15
    assert out["to_schedule"] == 18 and out["call_in"] == 14
    assert [p["platform"] for p in out["platforms"]] == ["p0", "p1", "p2", "p3", "p4"]
    assert all(p["service_level"] >= 0.8 and p["agents_if_apart"] == 3 for p in out["platforms"])
    assert out["range"][0] <= 12 <= out["range"][1] and out["model"] == "erlang_c"


def test_each_platform_meets_its_own_target_with_its_own_patience(capsys: pytest.CaptureFixture[str]) -> None:
    """Chat whose customers give up after 3 minutes, 80 % within 5 minutes, beside 20-minute email:
    the team is grown until chat meets its target with its own patience, not the mean one."""
    argv = ["staffing", "--platform", "chat:150:4:80/5m:3", "--platform", "email:150:20:80/4h", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    chat, email = out["platforms"]
    assert chat["service_level"] >= 0.8 and email["service_level"] >= 0.8
    assert chat["patience_minutes"] == 3 and email["patience_minutes"] is None
    assert out["model"] == "erlang_a" and 0 < out["abandonment"] < 0.2
    assert out["occupancy"] <= 0.85


def test_platforms_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["staffing", "--platform", "twitter:300:3:80/15m", "--platform", "whatsapp:100:6:80/5m:10"]
    assert main([*argv, "--backlog", "200"]) == 0
    text = capsys.readouterr().out
    assert "2 platforms, one queue: 400/h" in text and "Erlang A" in text
    assert "one team for all" in text and "a queue per platform:" in text
    assert "  whatsapp  100/h x 6 min, patience 10 min: " in text and "(target 80/5m; alone it would need" in text
    assert "backlog        200:" in text


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--platform", "twitter:300:3"], "--platform: 'twitter:300:3' is not NAME:N:M:P/DURATION[:W]"),
        (["--platform", "twitter:lots:3:80/15m"], "--platform twitter: mentions per hour: 'lots' is not a number"),
        (["--platform", "twitter:300:0:80/15m"], "--platform twitter: handle time in minutes: 0 is outside (0, 600]"),
        (["--platform", "twitter:300:3:80"], "--platform twitter:"),
        (["--platform", "twitter:300:3:80/15m:0"], "--platform twitter: patience in minutes"),
        (["--platform", "a:1:1:80/1m", "--platform", "a:2:2:80/1m"], "--platform: a is given twice"),
        (["--platform", "a:1:1:80/1m", "--target", "80/1m"], "--target: give the load either so or as --platform"),
        (["--platform", "a:1:1:80/1m", "--patience-minutes", "3"], "--patience-minutes: give each platform's"),
        ([], "--arrivals-per-hour is required (or give the load as --platform)"),
    ],
)
def test_bad_platforms_exit_2_saying_why(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staffing", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
