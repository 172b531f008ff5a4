"""Queueing formulas for one queue of agents: Erlang C (M/M/n), Erlang A (M/M/n+M) and backlog clearance.

Everything here is pure and works in seconds for times and per-hour for rates at the edges; inside,
loads are in Erlangs (arrivals x handle time). Erlang B comes from its stable recursion
`B(k) = a B(k-1) / (k + a B(k-1))`, which stays in [0, 1]: no factorials, no overflow, for loads of
tens of thousands of Erlangs.

The service level is the share of arrivals whose first reply starts within the target time
(FCFS). Erlang A counts a customer who gives up before being answered as a miss.

>>> s = solve(StaffingQuestion(arrivals_per_hour=200, aht_seconds=180, target=0.8, target_seconds=20))
>>> s.agents_needed, round(s.service_level, 3), round(s.occupancy, 3)
(14, 0.888, 0.714)
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

# A guard for absurd inputs: 100 000 Erlangs is 100 000 people busy at once.
MAX_ERLANGS = 100_000.0


class StaffingQuestion(msgspec.Struct, frozen=True, kw_only=True):
    """One queue: arrivals needing a reply, their handle time and the service-level target."""

    arrivals_per_hour: float
    aht_seconds: float
    target: float
    """Share answered within `target_seconds`, in (0, 1)."""
    target_seconds: float
    max_occupancy: float = 1.0
    """Upper bound on the busy share of agents working the queue, in (0, 1]."""
    backlog: int = 0
    """Unanswered mentions already waiting; all of them must be answered within `target_seconds`
    (or `backlog_seconds` when given)."""
    backlog_seconds: float | None = None
    """Time to clear the backlog in; None: the target time."""
    backlog_confidence: float = 0.95
    """Probability that the backlog agents clear the backlog in time (exponential handle times)."""
    patience_seconds: float | None = None
    """Mean customer patience; set for Erlang A (abandonment), None for Erlang C."""


class StaffingAnswer(msgspec.Struct, frozen=True, kw_only=True):
    agents_needed: int
    """Agents working the queue at once: `queue_agents + backlog_agents`."""
    queue_agents: int
    """Agents for the steady flow of arrivals (Erlang C or A, occupancy cap)."""
    backlog_agents: int
    """Extra agents that clear the backlog within the target."""
    erlangs: float
    service_level: float
    """Predicted share of arrivals answered within the target with `queue_agents`."""
    occupancy: float
    """Predicted busy share of the `queue_agents`."""
    wait_probability: float
    """Share of arrivals that wait at all."""
    mean_wait_seconds: float
    """Mean wait over all arrivals (Erlang A: those who give up count the time until they leave)."""
    abandonment: float = 0.0
    """Share of arrivals that give up (Erlang A only)."""
    binding: str = "none"
    """What set `queue_agents`: `service_level`, `occupancy` or `none` (no load)."""


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability of an M/M/n/n loss system, by the stable recursion.

    >>> round(erlang_b(10, 10.0), 5)
    0.21458
    >>> erlang_b(0, 3.0)
    1.0
    """
    b = 1.0
    for k in range(1, agents + 1):
        b = erlangs * b / (k + erlangs * b)
    return b


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/n queue (1 when the queue is unstable).

    >>> round(erlang_c(11, 10.0), 4)
    0.6821
    """
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return _c_from_b(b, agents, erlangs)


def _c_from_b(b: float, n: int, a: float) -> float:
    rho = a / n
    return b / (1.0 - rho * (1.0 - b))


def service_level(agents: int, erlangs: float, aht_seconds: float, target_seconds: float) -> float:
    """Erlang C share answered within `target_seconds`: 1 - C exp(-(n - a) t / h).

    >>> round(service_level(14, 10.0, 180.0, 20.0), 4)
    0.8884
    """
    if erlangs <= 0:
        return 1.0
    if agents <= erlangs:
        return 0.0
    c = erlang_c(agents, erlangs)
    return 1.0 - c * math.exp(-(agents - erlangs) * target_seconds / aht_seconds)


def _check(q: StaffingQuestion) -> None:
    for name, value in (
        ("arrivals_per_hour", q.arrivals_per_hour),
        ("aht_seconds", q.aht_seconds),
        ("target_seconds", q.target_seconds),
    ):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")
    if q.aht_seconds <= 0:
        raise ValueError("aht_seconds: must be > 0")
    if not 0 < q.target < 1:
        raise ValueError(f"target: must be a share in (0, 1), got {q.target!r}")
    if not 0 < q.max_occupancy <= 1:
        raise ValueError(f"max_occupancy: must be in (0, 1], got {q.max_occupancy!r}")
    if q.backlog < 0:
        raise ValueError("backlog: must be >= 0")
    if q.backlog_seconds is not None and not (q.backlog_seconds > 0 and math.isfinite(q.backlog_seconds)):
        raise ValueError("backlog_seconds: must be > 0")
    if not 0 < q.backlog_confidence < 1:
        raise ValueError("backlog_confidence: must be in (0, 1)")
    if q.patience_seconds is not None and not (q.patience_seconds > 0 and math.isfinite(q.patience_seconds)):
        raise ValueError("patience_seconds: must be > 0")
    if q.arrivals_per_hour * q.aht_seconds / 3600.0 > MAX_ERLANGS:
        raise ValueError(f"arrivals x handle time: more than {MAX_ERLANGS:.0f} agents busy at once")


def solve(q: StaffingQuestion) -> StaffingAnswer:
    """The smallest staff that meets the target and the occupancy cap, plus the backlog term."""
    _check(q)
    a = q.arrivals_per_hour * q.aht_seconds / 3600.0
    clear_in = q.target_seconds if q.backlog_seconds is None else q.backlog_seconds
    backlog_agents = backlog_clearance_agents(q.backlog, q.aht_seconds, clear_in, q.backlog_confidence)
    if a <= 0:
        return StaffingAnswer(
            agents_needed=backlog_agents,
            queue_agents=0,
            backlog_agents=backlog_agents,
            erlangs=0.0,
            service_level=1.0,
            occupancy=0.0,
            wait_probability=0.0,
            mean_wait_seconds=0.0,
        )
    if q.patience_seconds is not None:
        return _solve_a(q, a, backlog_agents)
    n_occ = max(1, math.ceil(a / q.max_occupancy - 1e-9))
    # One pass of the recursion up to the answer: O(n) for the whole search.
    b = 1.0
    n = 0
    while True:
        n += 1
        b = a * b / (n + a * b)
        if n <= a or n < n_occ:
            continue
        c = _c_from_b(b, n, a)
        sl = 1.0 - c * math.exp(-(n - a) * q.target_seconds / q.aht_seconds)
        if sl >= q.target:
            break
    # Which constraint bound: the service level if n - 1 would also satisfy the cap.
    binding = "service_level"
    if n == n_occ and n - 1 > a and service_level(n - 1, a, q.aht_seconds, q.target_seconds) >= q.target:
        binding = "occupancy"
    return StaffingAnswer(
        agents_needed=n + backlog_agents,
        queue_agents=n,
        backlog_agents=backlog_agents,
        erlangs=a,
        service_level=sl,
        occupancy=a / n,
        wait_probability=c,
        mean_wait_seconds=c * q.aht_seconds / (n - a),
        binding=binding,
    )


def backlog_clearance_agents(backlog: int, aht_seconds: float, target_seconds: float, confidence: float = 0.95) -> int:
    """Agents who, working only the backlog, start a reply to all of it within the target.

    m agents each take one at once and then complete about `m t / h` more in time t (Poisson with
    exponential handle times); the answer is the smallest m with P(m + Poisson(m t / h) >= B) >= confidence.

    >>> backlog_clearance_agents(0, 240, 900)
    0
    >>> backlog_clearance_agents(100, 240, 900)  # fluid answer 100 / (1 + 900 / 240) = 21.05
    25
    >>> backlog_clearance_agents(5, 3600, 20)  # handle time far above the target: one agent each
    5
    """
    if backlog <= 0:
        return 0
    # P(Poisson(mu) > k) is pdtrc(k, mu) for k >= 0 and 1 below: exactly what scipy.stats.poisson.sf
    # computes, without its per-call argument handling (~100x slower, and called per search step)
    from scipy.special import pdtrc

    per_agent = target_seconds / aht_seconds
    lo, hi = 0, backlog  # hi always suffices: every item is picked up at once
    while lo < hi:
        m = (lo + hi) // 2
        k = backlog - m - 1
        ok = m > 0 and (k < 0 or float(pdtrc(k, m * per_agent)) >= confidence)
        if ok:
            hi = m
        else:
            lo = m + 1
    return lo


# -- Erlang A: M/M/n+M ---------------------------------------------------------------------------


def erlang_a(
    agents: int, arrivals_per_hour: float, aht_seconds: float, patience_seconds: float, target_seconds: float
) -> tuple[float, float, float, float]:
    """(service level, abandonment, wait probability, mean wait in seconds) for M/M/n+M.

    The service level counts an arrival as met when an agent picks it up within the target before
    the customer gives up. Arrivals see the stationary queue (PASTA); the chance that a customer
    with j others ahead is picked up within t solves a small linear ODE (a pure-death chain in which
    those ahead leave by service or abandonment and the customer may abandon too).

    >>> sl, ab, pw, w = erlang_a(14, 200, 180, 1e7, 20)  # near-infinite patience: Erlang C
    >>> round(sl, 3)
    0.888
    >>> sl, ab, pw, w = erlang_a(8, 200, 180, 120, 20)  # overloaded but patience is short
    >>> round(ab, 2) > 0.1
    True
    """
    if agents <= 0:
        return 0.0, 1.0, 1.0, 0.0
    lam = arrivals_per_hour / 3600.0
    mu = 1.0 / aht_seconds
    theta = 1.0 / patience_seconds
    n = agents
    log_pi, lo_k = _stationary_log(n, lam, mu, theta)
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    k = np.arange(lo_k, lo_k + len(pi))
    queue_mask = k >= n
    if not queue_mask.any():
        return 1.0, 0.0, 0.0, 0.0
    wait_probability = float(pi[queue_mask].sum())
    j_max = int(k[-1] - n)
    js = np.arange(j_max + 1, dtype=float)
    r = n * mu + js * theta  # rate at which the queue ahead shrinks, j ahead
    served_in_time = _served_within(r, theta, target_seconds)
    q_pi = np.zeros(j_max + 1)
    q_pi[k[queue_mask] - n] = pi[queue_mask]
    below = float(pi[~queue_mask].sum())
    sl = below + float(q_pi @ served_in_time)
    mean_queue = float(q_pi @ js)  # customers waiting, time-average = arrival-average (PASTA)
    abandonment = theta * mean_queue / lam if lam > 0 else 0.0
    # Little's law: mean queue = lam x mean time in queue, over everyone (answered or not).
    mean_wait = mean_queue / lam if lam > 0 else 0.0
    return min(1.0, sl), min(1.0, abandonment), wait_probability, mean_wait


def _stationary_log(n: int, lam: float, mu: float, theta: float) -> tuple[np.ndarray, int]:
    """Unnormalised log stationary probabilities of M/M/n+M over the states that matter."""
    excess = max(0.0, (lam - n * mu) / theta)
    k_max = n + int(excess + 12.0 * math.sqrt(lam / theta + 1.0) + 50.0)
    k = np.arange(1, k_max + 1, dtype=float)
    death = np.minimum(k, n) * mu + np.maximum(k - n, 0.0) * theta
    log_pi = np.concatenate(([0.0], np.cumsum(math.log(lam) - np.log(death))))
    keep = log_pi >= log_pi.max() - 60.0  # below e^-60 contributes nothing in double precision
    idx = np.flatnonzero(keep)
    lo, hi = int(idx[0]), int(idx[-1])
    return log_pi[lo : hi + 1], lo


def _served_within(r: np.ndarray, theta: float, t: float) -> np.ndarray:
    """u_j(t): picked up within t with j ahead; du_j/dt = r_j u_{j-1} - (r_j + theta) u_j, u_{-1} = 1."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import expm_multiply

    m = len(r)
    # Augmented state [u_0 .. u_{m-1}, 1] so that the source term is part of the linear system.
    main = np.concatenate((-(r + theta), [0.0]))
    lower = np.concatenate((r[1:], [0.0]))
    mat = diags([main, lower], [0, -1], shape=(m + 1, m + 1), format="lil")
    mat[0, m] = r[0]
    x0 = np.zeros(m + 1)
    x0[m] = 1.0
    u = expm_multiply(mat.tocsr() * t, x0)
    return np.clip(u[:m], 0.0, 1.0)


def _solve_a(q: StaffingQuestion, a: float, backlog_agents: int) -> StaffingAnswer:
    assert q.patience_seconds is not None
    cache: dict[int, tuple[float, float, float, float]] = {}

    def ev(n: int) -> tuple[float, float, float, float]:
        if n not in cache:
            cache[n] = erlang_a(n, q.arrivals_per_hour, q.aht_seconds, q.patience_seconds or 0.0, q.target_seconds)
        return cache[n]

    def ok(n: int) -> bool:
        sl, ab, _, _ = ev(n)
        return sl >= q.target and a * (1.0 - ab) / n <= q.max_occupancy + 1e-12

    # Both the service level and the occupancy improve with n. Start at the Erlang C answer (cheap
    # to evaluate near the answer) and gallop: states far below the answer have long queues.
    start = solve(msgspec.structs.replace(q, patience_seconds=None, backlog=0)).queue_agents
    if ok(start):
        hi, step = start, 1
        while hi - step >= 1 and ok(hi - step):
            hi -= step
            step *= 2
        lo = max(1, hi - step + 1)
    else:
        lo, step = start + 1, 1
        while not ok(start + step):
            lo = start + step + 1
            step *= 2
        hi = start + step
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    n = lo
    sl, ab, pw, w = ev(n)
    binding = "occupancy" if n > 1 and ev(n - 1)[0] >= q.target else "service_level"
    return StaffingAnswer(
        agents_needed=n + backlog_agents,
        queue_agents=n,
        backlog_agents=backlog_agents,
        erlangs=a,
        service_level=sl,
        occupancy=a * (1.0 - ab) / n,
        wait_probability=pw,
        mean_wait_seconds=w,
        abandonment=ab,
        binding=binding,
    )
