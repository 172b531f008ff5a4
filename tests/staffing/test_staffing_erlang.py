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
    own_patience_outcomes,
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


def _numeric_erlang_a(
    n: int, arrivals_per_hour: float, aht: float, patience: float, target: float
) -> tuple[float, float, float, float]:
    """M/M/n+M solved numerically, independently of the closed forms: the birth-death chain's
    stationary distribution, and for a customer with j ahead the chance of being picked up within
    `target` before giving up from the linear ODE du_j/dt = r_j u_{j-1} - (r_j + theta) u_j (r_j: the
    rate at which the queue ahead shrinks), integrated by the matrix exponential."""
    import numpy as np
    from scipy.linalg import expm

    lam, mu, theta = arrivals_per_hour / 3600.0, 1.0 / aht, 1.0 / patience
    k_max = n + int(max(0.0, (lam - n * mu) / theta) + 12.0 * math.sqrt(lam / theta + 1.0) + 50.0)
    k = np.arange(1, k_max + 1, dtype=float)
    death = np.minimum(k, n) * mu + np.maximum(k - n, 0.0) * theta
    log_pi = np.concatenate(([0.0], np.cumsum(math.log(lam) - np.log(death))))
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    queue = pi[n:]
    js = np.arange(len(queue), dtype=float)
    r = n * mu + js * theta
    m = len(r)
    mat = np.zeros((m + 1, m + 1))
    mat[np.arange(m), np.arange(m)] = -(r + theta)
    mat[np.arange(1, m), np.arange(m - 1)] = r[1:]
    mat[0, m] = r[0]
    x0 = np.zeros(m + 1)
    x0[m] = 1.0
    within = np.clip((expm(mat * target) @ x0)[:m], 0.0, 1.0)
    wait = float(queue.sum())
    mean_queue = float(queue @ js)
    return float(pi[:n].sum() + queue @ within), theta * mean_queue / lam, wait, mean_queue / lam


@pytest.mark.parametrize("n", [1, 3, 14, 40, 90])
@pytest.mark.parametrize(
    ("rate", "aht", "patience", "target"),
    [
        (200, 180, 600, 20),  # light load, patience of ten handle times
        (900, 180, 120, 60),  # short patience
        (1500, 240, 1800, 900),  # the default platform's target (15 minutes), half an hour's patience
        (3000, 60, 30, 5),  # impatient customers, a target of seconds
        (400, 300, 3000, 60),  # patience of ten handle times, near Erlang C where n suffices
        (8000, 180, 300, 300),  # overloaded at every n here
    ],
)
def test_erlang_a_closed_forms_match_the_chain_solved_numerically(
    n: int, rate: float, aht: float, patience: float, target: float
) -> None:
    got = erlang_a(n, rate, aht, patience, target)
    want = _numeric_erlang_a(n, rate, aht, patience, target)
    assert got[:3] == pytest.approx(want[:3], abs=1e-9)
    assert got[3] == pytest.approx(want[3], rel=1e-7, abs=1e-9)


def test_erlang_a_at_a_thousand_erlangs_is_solved_and_consistent() -> None:
    """A crisis-sized queue (20,000 mentions an hour at 3 minutes: 1,000 Erlangs) with half an hour's
    patience (once seconds per evaluation): the answer is the fewest agents that meet the target and
    the occupancy cap, and more agents never serve worse."""
    q = StaffingQuestion(
        arrivals_per_hour=20000,
        aht_seconds=180,
        target=0.8,
        target_seconds=60,
        patience_seconds=1800,
        max_occupancy=0.9,
    )
    a = solve(q)
    sl, ab, _, _ = erlang_a(a.queue_agents, 20000, 180, 1800, 60)
    assert sl >= 0.8 and 1000 * (1 - ab) / a.queue_agents <= 0.9 + 1e-12
    sl, ab, _, _ = erlang_a(a.queue_agents - 1, 20000, 180, 1800, 60)
    assert sl < 0.8 or 1000 * (1 - ab) / (a.queue_agents - 1) > 0.9
    levels = [erlang_a(n, 20000, 180, 1800, 60)[0] for n in range(950, 1060, 10)]
    assert levels == sorted(levels) and all(0.0 <= v <= 1.0 for v in levels)


@pytest.mark.parametrize(
    ("agents", "per_hour", "aht", "patience", "target"),
    [
        (14, 200, 180, 600, 20),
        (8, 200, 180, 120, 20),  # overloaded, short patience
        (100, 1500, 200, 1800, 900),
        (200, 3800, 180, 5e6, 20),  # far below capacity for the gamma function: the series branch
        (60, 1000, 180, 2e5, 30),
    ],
)
def test_own_patience_outcomes_with_the_queue_s_patience_are_erlang_a(agents, per_hour, aht, patience, target) -> None:
    """Each class's outcome integrates the offered wait against its own patience; with the queue's
    patience that is Erlang A's closed form."""
    sl, abandonment, _, _ = erlang_a(agents, per_hour, aht, patience, target)
    ((own_sl, own_ab), (never_sl, never_ab)) = own_patience_outcomes(
        agents, per_hour, aht, patience, [(target, patience), (target, None)]
    )
    assert own_sl == pytest.approx(sl, abs=1e-8) and own_ab == pytest.approx(abandonment, abs=1e-9)
    assert never_ab == 0.0 and never_sl >= own_sl - 1e-12  # waiting it out: never lost
