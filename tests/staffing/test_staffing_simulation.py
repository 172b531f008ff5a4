"""The simulation agrees with the formulas, and the suggestions hold up in simulation."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest

from daemon.staffing.erlang import StaffingQuestion, erlang_a, service_level, solve
from daemon.staffing.simulation import simulate


def test_same_seed_same_run() -> None:
    a = simulate(300.0, 120.0, 12, customers=5000, seed=7)
    b = simulate(300.0, 120.0, 12, customers=5000, seed=7)
    assert np.array_equal(a.starts, b.starts, equal_nan=True)
    c = simulate(300.0, 120.0, 11, customers=5000, seed=7)
    assert np.array_equal(a.arrivals, c.arrivals)  # common random numbers across staff levels


@pytest.mark.parametrize(("rate", "aht", "n", "target"), [(200.0, 180.0, 12, 20.0), (1200.0, 240.0, 84, 60.0)])
def test_matches_erlang_c(rate: float, aht: float, n: int, target: float) -> None:
    sim = simulate(rate, aht, n, customers=150_000, seed=11)
    a = rate * aht / 3600.0
    exact = service_level(n, a, aht, target)
    se = sim.service_level_se(target)
    assert abs(sim.service_level(target) - exact) < 4 * se + 0.005
    assert sim.occupancy() == pytest.approx(a / n, rel=0.03)


def test_matches_erlang_a() -> None:
    sim = simulate(1200.0, 300.0, 95, customers=150_000, seed=5, patience_seconds=180.0)
    sl, ab, _, _ = erlang_a(95, 1200.0, 300.0, 180.0, 60.0)
    assert sim.service_level(60.0) == pytest.approx(sl, abs=4 * sim.service_level_se(60.0) + 0.005)
    assert sim.abandonment() == pytest.approx(ab, abs=0.01)


@pytest.mark.parametrize(
    ("rate", "aht", "target", "pct"),
    [(120.0, 300.0, 60.0, 0.8), (900.0, 180.0, 20.0, 0.8), (2400.0, 240.0, 120.0, 0.9)],
)
def test_suggestion_meets_target_and_one_fewer_misses(rate: float, aht: float, target: float, pct: float) -> None:
    ans = solve(StaffingQuestion(arrivals_per_hour=rate, aht_seconds=aht, target=pct, target_seconds=target))
    assert ans.binding == "service_level"
    n = ans.queue_agents
    ok = simulate(rate, aht, n, customers=200_000, seed=3)
    short = simulate(rate, aht, n - 1, customers=200_000, seed=3)
    assert ok.service_level(target) >= pct - 2 * ok.service_level_se(target)
    assert short.service_level(target) < pct + 2 * short.service_level_se(target)
    assert short.service_level(target) < ok.service_level(target)


def test_occupancy_cap_binds_in_simulation() -> None:
    q = StaffingQuestion(
        arrivals_per_hour=600.0, aht_seconds=300.0, target=0.8, target_seconds=900.0, max_occupancy=0.8
    )
    ans = solve(q)
    assert ans.binding == "occupancy"
    assert simulate(600.0, 300.0, ans.queue_agents, customers=100_000, seed=2).occupancy() <= 0.8 + 0.01
    assert simulate(600.0, 300.0, ans.queue_agents - 1, customers=100_000, seed=2).occupancy() > 0.8 - 0.01


@pytest.mark.parametrize("policy", ["fcfs", "new_first"])
def test_backlog_is_cleared_within_the_target(policy: Literal["fcfs", "new_first"]) -> None:
    q = StaffingQuestion(arrivals_per_hour=600.0, aht_seconds=240.0, target=0.8, target_seconds=900.0, backlog=400)
    ans = solve(q)
    cleared = [
        simulate(
            600.0, 240.0, ans.agents_needed, customers=3000, seed=s, backlog=400, backlog_policy=policy
        ).backlog_cleared_at()
        for s in range(40)
    ]
    assert np.mean(np.array(cleared) <= 900.0) >= 0.95


def test_lognormal_handle_times_have_the_right_mean() -> None:
    sim = simulate(600.0, 240.0, 60, customers=50_000, seed=1, service="lognormal", cv=0.5)
    assert sim.busy_seconds / 50_000 == pytest.approx(240.0, rel=0.02)
