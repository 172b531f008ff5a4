from __future__ import annotations

import math

import msgspec
import pytest

from daemon.staffing.erlang import (
    StaffingQuestion,
    backlog_clearance_agents,
    erlang_a,
    erlang_b,
    erlang_c,
    service_level,
    solve,
)


def _direct_erlang_c(n: int, a: float) -> float:
    """Textbook sum with factorials in log space (an independent formulation)."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n)]
    top = n * math.log(a) - math.lgamma(n + 1) + math.log(n / (n - a))
    m = max([*logs, top])
    s = sum(math.exp(x - m) for x in logs)
    t = math.exp(top - m)
    return t / (s + t)


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (11, 10.0), (14, 10.0), (120, 100.0), (6100, 6000.0)])
def test_erlang_c_matches_direct_formula(n: int, a: float) -> None:
    assert erlang_c(n, a) == pytest.approx(_direct_erlang_c(n, a), rel=1e-9)


def test_erlang_b_stays_finite_for_huge_loads() -> None:
    b = erlang_b(60_000, 59_000.0)
    assert 0 < b < 1


def test_textbook_example() -> None:
    # 100 calls per half hour, 3 minutes each, 80 % within 20 s: 10 Erlang, 14 agents.
    ans = solve(StaffingQuestion(arrivals_per_hour=200, aht_seconds=180, target=0.8, target_seconds=20))
    assert ans.agents_needed == 14
    assert service_level(13, 10.0, 180, 20) < 0.8 <= ans.service_level


@pytest.mark.parametrize("rate", [30, 300, 1200, 6000])
@pytest.mark.parametrize("aht", [10, 240, 3600])
@pytest.mark.parametrize("target", [1, 20, 900, 3600])
@pytest.mark.parametrize("occ", [0.7, 1.0])
def test_solution_is_minimal_over_grid(rate: float, aht: float, target: float, occ: float) -> None:
    ans = solve(
        StaffingQuestion(arrivals_per_hour=rate, aht_seconds=aht, target=0.8, target_seconds=target, max_occupancy=occ)
    )
    n, a = ans.queue_agents, ans.erlangs
    assert n > a
    assert a / n <= occ + 1e-12
    assert service_level(n, a, aht, target) >= 0.8
    below = n - 1
    assert below <= a or a / below > occ or service_level(below, a, aht, target) < 0.8
    assert 0 <= ans.wait_probability <= 1 and math.isfinite(ans.mean_wait_seconds)


def test_zero_load_needs_nobody() -> None:
    ans = solve(StaffingQuestion(arrivals_per_hour=0, aht_seconds=240, target=0.8, target_seconds=900))
    assert ans.agents_needed == 0 and ans.binding == "none"


def test_backlog_adds_agents() -> None:
    base = StaffingQuestion(arrivals_per_hour=600, aht_seconds=240, target=0.8, target_seconds=900)
    with_backlog = solve(msgspec.structs.replace(base, backlog=500))
    plain = solve(base)
    assert with_backlog.agents_needed == plain.agents_needed + with_backlog.backlog_agents
    # fluid lower bound: m (1 + t / h) >= B
    assert with_backlog.backlog_agents >= 500 / (1 + 900 / 240)


def test_backlog_agents_is_minimal() -> None:
    from scipy.stats import poisson

    m = backlog_clearance_agents(400, 300, 600, 0.95)
    assert poisson.sf(400 - m - 1, m * 2.0) >= 0.95
    assert poisson.sf(400 - (m - 1) - 1, (m - 1) * 2.0) < 0.95


def test_erlang_a_tends_to_erlang_c_with_long_patience() -> None:
    sl, ab, pw, _ = erlang_a(14, 200, 180, 1e9, 20)
    assert sl == pytest.approx(service_level(14, 10.0, 180, 20), abs=1e-6)
    assert pw == pytest.approx(erlang_c(14, 10.0), abs=1e-6)
    assert ab < 1e-6


def test_erlang_a_handles_overload() -> None:
    sl, ab, _, _ = erlang_a(50, 6000, 60, 120, 60)  # 100 Erlang offered to 50 agents
    assert 0.4 < ab < 0.6 and 0 <= sl <= 1


def test_erlang_a_staffing_never_above_erlang_c_much() -> None:
    q = StaffingQuestion(arrivals_per_hour=1200, aht_seconds=300, target=0.8, target_seconds=60, max_occupancy=1.0)
    c = solve(q)
    a = solve(msgspec.structs.replace(q, patience_seconds=180.0))
    assert a.queue_agents <= c.queue_agents
    assert a.service_level >= 0.8


@pytest.mark.parametrize(
    "bad",
    [
        {"arrivals_per_hour": -1.0},
        {"aht_seconds": 0.0},
        {"target": 1.0},
        {"max_occupancy": 0.0},
        {"arrivals_per_hour": math.nan},
        {"arrivals_per_hour": 1e9, "aht_seconds": 3600.0},
    ],
)
def test_bad_questions_raise(bad: dict[str, float]) -> None:
    q = {"arrivals_per_hour": 100.0, "aht_seconds": 60.0, "target": 0.8, "target_seconds": 60.0, **bad}
    with pytest.raises(ValueError):
        solve(StaffingQuestion(**q))  # type: ignore[arg-type]
