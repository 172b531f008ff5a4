"""Queueing formulas for one queue of agents: Erlang C (M/M/n), Erlang A (M/M/n+M) and backlog clearance.

Everything here is pure and works in seconds for times and per-hour for rates at the edges; inside,
loads are in Erlangs (arrivals x handle time). Erlang B comes from its stable recursion
`B(k) = a B(k-1) / (k + a B(k-1))`, which stays in [0, 1]: no factorials, no overflow, for loads of
tens of thousands of Erlangs.

The service level is the share of arrivals whose first reply starts within the target time
(FCFS). Erlang A counts a customer who gives up before being answered as a miss.

`solve_pooled` staffs several classes of arrivals (platforms, each with its own handle time and
target) answered by one team from one FCFS queue: every class sees the same wait, so the team is
the smallest that meets every class's target on that one wait distribution.

>>> s = solve(StaffingQuestion(arrivals_per_hour=200, aht_seconds=180, target=0.8, target_seconds=20))
>>> s.agents_needed, round(s.service_level, 3), round(s.occupancy, 3)
(14, 0.888, 0.714)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import msgspec
import numpy as np
from scipy.special import gammainc, gammaln

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
    the customer gives up. Closed forms (Mandelbaum & Zeltyn's analysis of the Palm/Erlang-A queue),
    in microseconds at any load: with `x = n mu / theta`, `y = lambda / theta`, the queue behind
    "all n busy" weighs `A = sum_j y^j / ((x+1)...(x+j))` (`_log_queue_weight`), so an arrival waits
    with probability `A B / (1 + (A - 1) B)` (B: Erlang B), the mean queue while all are busy is
    `y - x (1 - 1/A)` (balance of arrivals against services and abandonments), and a waiting
    customer's offered wait V has `P(V > t) = P(x, y e^(-theta t)) / P(x, y)` (P: the regularised
    lower incomplete gamma), so being picked up within t before giving up has probability
    `x (P(x+1, y) - P(x+1, y e^(-theta t))) / (y P(x, y))`. The tests check these against the
    stationary birth-death chain solved numerically (a linear ODE per queue position).

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
    if lam <= 0.0:
        return 1.0, 0.0, 0.0, 0.0
    mu = 1.0 / aht_seconds
    theta = 1.0 / patience_seconds
    x, y = agents * mu / theta, lam / theta
    b = erlang_b(agents, lam / mu)
    log_a = _log_queue_weight(x, y)
    inv_a = math.exp(-log_a)  # A >= 1
    # P(wait) = A B / (1 + (A - 1) B), divided through by A B so that a huge A cannot overflow
    wait_probability = 1.0 / (1.0 + (1.0 / b - 1.0) * inv_a) if b > 0.0 else 0.0
    mean_queue = wait_probability * max(0.0, y - x * (1.0 - inv_a))
    abandonment = theta * mean_queue / lam
    # Little's law: mean queue = lam x mean time in queue, over everyone (answered or not).
    mean_wait = mean_queue / lam
    z = math.exp(-theta * target_seconds)
    p_xy = float(gammainc(x, y))
    if p_xy > 1e-250:
        within = x * float(gammainc(x + 1.0, y) - gammainc(x + 1.0, y * z)) / (y * p_xy)
    else:
        # the same ratio with each P(a, w) written as w^a e^-w S(a, w) / Gamma(a + 1): far below
        # capacity (y << x) P(x, y) underflows, but waiting need not be rare (long patience)
        tail = math.exp((x + 1.0) * math.log(z) + y * (1.0 - z) + _log_series(x + 1.0, y * z) - _log_series(x + 1.0, y))
        within = x / (x + 1.0) * math.exp(_log_series(x + 1.0, y) - log_a) * (1.0 - tail)
    sl = (1.0 - wait_probability) + wait_probability * min(1.0, max(0.0, within))
    return min(1.0, sl), min(1.0, abandonment), wait_probability, mean_wait


def _log_queue_weight(x: float, y: float) -> float:
    """log A, `A = sum_{j>=0} y^j / ((x+1)(x+2)...(x+j)) = x e^y y^-x gamma(x, y)`: from the incomplete
    gamma where it is well away from underflow, else (far below capacity, y << x) from the series."""
    p = float(gammainc(x, y))
    if p > 1e-250:
        return math.log(x) + y - x * math.log(y) + float(gammaln(x)) + math.log(p)
    return _log_series(x, y)


def _log_series(x: float, y: float) -> float:
    """log of `sum_{j>=0} y^j / ((x+1)...(x+j))` summed term by term: for y < x, where the terms fall
    from the first (by y / (x + j) each) and 40 standard deviations of y cover what is left."""
    if y <= 0.0:
        return 0.0
    return float(_log_series_many(x, np.array([y]))[0])


def _log_series_many(x: float, ys: np.ndarray) -> np.ndarray:
    """`_log_series(x, y)` for each y > 0 of `ys`, with the terms the largest needs."""
    j = np.arange(int(40.0 * math.sqrt(float(ys.max()) + 1.0)) + 100, dtype=float)
    logt = j[None, :] * np.log(ys)[:, None] - (gammaln(x + j + 1.0) - gammaln(x + 1.0))[None, :]
    top = logt.max(axis=1)
    return top + np.log(np.exp(logt - top[:, None]).sum(axis=1))


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(96)  # Gauss-Legendre on [-1, 1]


def own_patience_outcomes(
    agents: int,
    arrivals_per_hour: float,
    aht_seconds: float,
    patience_seconds: float,
    classes: Sequence[tuple[float, float | None]],
) -> list[tuple[float, float]]:
    """On the M/M/n+M queue (`erlang_a`'s), for customers of each class (target time, mean patience
    or None for never giving up): (share picked up within the target before giving up, share who
    give up). The queue's dynamics are the given patience's (a pooled queue's mean abandonment
    rate), each customer's own abandonment their class's.

    A waiting customer's offered wait V has `P(V > v) = F(v) = P(x, y e^(-theta v)) / P(x, y)`
    (`erlang_a`); with their own rate `r`, they are answered within t with probability
    `1 - F(t) e^(-r t) - r int_0^t F(v) e^(-r v) dv` and give up with `r int_0^inf F(v) e^(-r v) dv`
    (integrated by Gauss-Legendre). With a class's patience the queue's, this is `erlang_a`.

    >>> sl, ab, _, _ = erlang_a(14, 200, 180, 600, 20)
    >>> [(round(s, 9), round(a, 9)) for s, a in own_patience_outcomes(14, 200, 180, 600, [(20, 600)])] == [
    ...     (round(sl, 9), round(ab, 9))]
    True
    """
    lam = arrivals_per_hour / 3600.0
    if agents <= 0 or lam <= 0.0:
        return [(0.0, 1.0) if agents <= 0 else (1.0, 0.0) for _ in classes]
    mu, theta = 1.0 / aht_seconds, 1.0 / patience_seconds
    x, y = agents * mu / theta, lam / theta
    b = erlang_b(agents, lam / mu)
    wait = 1.0 / (1.0 + (1.0 / b - 1.0) * math.exp(-_log_queue_weight(x, y))) if b > 0.0 else 0.0
    offered = _offered_wait_tail(x, y, theta)
    horizon = 1.0
    while float(offered(np.array([horizon]))[0]) > 1e-13 and horizon < 1e9:
        horizon *= 2.0

    def integral(rate: float, lo: float, hi: float) -> float:
        v = (_NODES + 1.0) * (hi - lo) / 2.0 + lo
        return float(np.sum(_WEIGHTS * (hi - lo) / 2.0 * offered(v) * np.exp(-rate * v)))

    out = []
    for target_seconds, patience in classes:
        r = 0.0 if patience is None else 1.0 / patience
        tail_t = float(offered(np.array([target_seconds]))[0])
        within = 1.0 - tail_t * math.exp(-r * target_seconds) - r * integral(r, 0.0, target_seconds)
        # the tail in two pieces: most of V's mass is early, the horizon is far
        gives_up = r * (integral(r, 0.0, horizon / 8.0) + integral(r, horizon / 8.0, horizon)) if r > 0.0 else 0.0
        sl = (1.0 - wait) + wait * min(1.0, max(0.0, within))
        out.append((min(1.0, sl), min(1.0, max(0.0, wait * gives_up))))
    return out


def _offered_wait_tail(x: float, y: float, theta: float) -> Callable[[np.ndarray], np.ndarray]:
    """v -> P(V > v) for a waiting customer of the M/M/n+M queue with x = n mu / theta, y = lambda / theta."""
    p_xy = float(gammainc(x, y))
    if p_xy > 1e-250:
        return lambda v: gammainc(x, y * np.exp(-theta * v)) / p_xy
    # far below capacity P(x, y) underflows: the ratio from P(a, w) = w^a e^-w S(a, w) / Gamma(a + 1)
    log_s_y = _log_series(x, y)

    def tail(v: np.ndarray) -> np.ndarray:
        z = np.exp(-theta * v)
        return np.exp(x * np.log(z) + y * (1.0 - z) + _log_series_many(x, y * z) - log_s_y)

    return tail


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


# -- one queue for several classes (a unified inbox) ---------------------------------------------


class QueueClass(msgspec.Struct, frozen=True, kw_only=True):
    """One class of arrivals in a pooled queue: a platform's mentions, handle time and target."""

    arrivals_per_hour: float
    aht_seconds: float
    target: float
    """Share of this class answered within `target_seconds`, in (0, 1)."""
    target_seconds: float
    patience_seconds: float | None = None
    """Mean patience of this class's customers; None: they wait however long it takes."""

    def alone(self, max_occupancy: float = 1.0) -> StaffingQuestion:
        """This class as a queue of its own (the team it would need apart)."""
        return StaffingQuestion(
            arrivals_per_hour=self.arrivals_per_hour,
            aht_seconds=self.aht_seconds,
            target=self.target,
            target_seconds=self.target_seconds,
            max_occupancy=max_occupancy,
            patience_seconds=self.patience_seconds,
        )


class PooledAnswer(msgspec.Struct, frozen=True, kw_only=True):
    answer: StaffingAnswer
    """The team: its `service_level` is the arrival-weighted mean of the classes' own."""
    service_levels: list[float]
    """Each class's predicted share answered within its own target time (in the order given)."""
    aht_seconds: float
    """The arrival-weighted mean handle time (the backlog's, unless it is given)."""
    wait_scale_seconds: float
    """The time scale of the pooled wait: `sum(l h^2) / sum(l h)`."""
    patience_seconds: float | None
    """The pooled patience: 1 / (arrival-weighted mean abandonment rate); None: Erlang C."""


def pooled_question(classes: Sequence[QueueClass], *, max_occupancy: float = 1.0) -> StaffingQuestion:
    """The one queue that stands for several classes (its target is the first class's; `solve_pooled`
    checks them all).

    FCFS, the wait is the same whatever the class, and it is approximated as an M/M/n(+M) queue:
    - load `a = sum(l_i h_i)` (arrivals x handle time; the arrival-weighted mean handle time is
      `h = a / sum(l_i)`);
    - wait time scale `h_w = sum(l_i h_i^2) / sum(l_i h_i)`: the mean of a mixture of exponential
      handle times is h, but its squared coefficient of variation `cs^2 = 2 sum(l_i h_i^2) /
      (sum(l_i) h^2) - 1` is above 1, and waits of an M/G/n queue are about those of M/M/n times
      `(1 + cs^2) / 2` (the Allen-Cunneen / Lee-Longton two-moment approximation): so the queue is
      solved with handle time `h (1 + cs^2) / 2 = h_w` at the same load. Equal handle times give
      `h_w = h`, the plain Erlang C;
    - patience: the arrival-weighted mean abandonment rate `theta = sum(l_i / p_i) / sum(l_i)`
      (a class without a patience counts as never giving up), so the pooled patience is
      `1 / theta` (Erlang A) when any class has one, else None (Erlang C). It sets how the queue
      moves; `solve_pooled` then gives each class's customers their own patience
      (`own_patience_outcomes`).

    >>> q = pooled_question([QueueClass(arrivals_per_hour=300, aht_seconds=180, target=0.8, target_seconds=900),
    ...     QueueClass(arrivals_per_hour=100, aht_seconds=240, target=0.9, target_seconds=300)])
    >>> round(q.arrivals_per_hour * q.aht_seconds / 3600, 3), round(q.aht_seconds, 1), q.patience_seconds
    (21.667, 198.5, None)
    """
    active = [c for c in classes if c.arrivals_per_hour > 0]
    if not active:
        raise ValueError("pooled_question: no class has arrivals")
    lam = sum(c.arrivals_per_hour for c in active)
    work = sum(c.arrivals_per_hour * c.aht_seconds for c in active)
    scale = sum(c.arrivals_per_hour * c.aht_seconds * c.aht_seconds for c in active) / work
    theta = sum(c.arrivals_per_hour / c.patience_seconds for c in active if c.patience_seconds) / lam
    return StaffingQuestion(
        arrivals_per_hour=work / scale,
        aht_seconds=scale,
        target=active[0].target,
        target_seconds=active[0].target_seconds,
        max_occupancy=max_occupancy,
        patience_seconds=1.0 / theta if theta > 0 else None,
    )


def solve_pooled(
    classes: Sequence[QueueClass],
    *,
    max_occupancy: float = 1.0,
    backlog: int = 0,
    backlog_aht_seconds: float | None = None,
    backlog_seconds: float | None = None,
    backlog_confidence: float = 0.95,
) -> PooledAnswer:
    """The smallest team that answers several classes from one FCFS queue, each within its own
    target, under the occupancy cap, plus the agents that clear the backlog.

    Each class's service level is the share of the (common) wait within its own target time, so
    the team is the largest of the answers for each distinct target on the pooled queue
    (`pooled_question`): the service level rises with the team for every target time. The backlog
    (handle time `backlog_aht_seconds`, else the arrival-weighted mean) is cleared within
    `backlog_seconds`, else the shortest target time of the classes.

    Five platforms of 30 mentions an hour at 4 minutes, 80 % within 15 minutes, at most 85 % busy:
    five queues of 3 agents each, or one team of 12 (10 Erlangs, the occupancy cap binds).

    >>> five = [QueueClass(arrivals_per_hour=30, aht_seconds=240, target=0.8, target_seconds=900)] * 5
    >>> p = solve_pooled(five, max_occupancy=0.85)
    >>> p.answer.agents_needed, solve(StaffingQuestion(arrivals_per_hour=30, aht_seconds=240, target=0.8,
    ...     target_seconds=900, max_occupancy=0.85)).agents_needed * 5
    (12, 15)
    """
    for c in classes:
        _check(c.alone())
    if not classes:
        raise ValueError("solve_pooled: no class")
    lam = sum(c.arrivals_per_hour for c in classes)
    mean_aht = (
        sum(c.arrivals_per_hour * c.aht_seconds for c in classes) / lam
        if lam > 0
        else sum(c.aht_seconds for c in classes) / len(classes)
    )
    clear_aht = mean_aht if backlog_aht_seconds is None else backlog_aht_seconds
    clear_in = min(c.target_seconds for c in classes) if backlog_seconds is None else backlog_seconds
    if lam <= 0:
        only = solve(
            StaffingQuestion(
                arrivals_per_hour=0.0,
                aht_seconds=clear_aht,
                target=classes[0].target,
                target_seconds=classes[0].target_seconds,
                backlog=backlog,
                backlog_seconds=clear_in,
                backlog_confidence=backlog_confidence,
            )
        )
        return PooledAnswer(
            answer=only,
            service_levels=[1.0] * len(classes),
            aht_seconds=mean_aht,
            wait_scale_seconds=mean_aht,
            patience_seconds=None,
        )
    q = pooled_question(classes, max_occupancy=max_occupancy)
    best: StaffingAnswer | None = None
    for share, seconds in sorted({(c.target, c.target_seconds) for c in classes if c.arrivals_per_hour > 0}):
        ans = solve(msgspec.structs.replace(q, target=share, target_seconds=seconds))
        if best is None or ans.queue_agents > best.queue_agents:
            best = ans
    assert best is not None
    if q.patience_seconds is not None:
        best, own = _own_patience(best, q, classes, max_occupancy)
        each = iter(own)
        levels = [next(each) if c.arrivals_per_hour > 0 else 1.0 for c in classes]
    else:
        a = q.arrivals_per_hour * q.aht_seconds / 3600.0
        levels = [
            service_level(best.queue_agents, a, q.aht_seconds, c.target_seconds) if c.arrivals_per_hour > 0 else 1.0
            for c in classes
        ]
    n = best.queue_agents
    backlog_agents = backlog_clearance_agents(backlog, clear_aht, clear_in, backlog_confidence)
    answer = msgspec.structs.replace(
        best,
        agents_needed=n + backlog_agents,
        backlog_agents=backlog_agents,
        service_level=sum(sl * c.arrivals_per_hour for sl, c in zip(levels, classes, strict=True)) / lam,
    )
    return PooledAnswer(
        answer=answer,
        service_levels=levels,
        aht_seconds=mean_aht,
        wait_scale_seconds=q.aht_seconds,
        patience_seconds=q.patience_seconds,
    )


def _own_patience(
    best: StaffingAnswer, q: StaffingQuestion, classes: Sequence[QueueClass], cap: float
) -> tuple[StaffingAnswer, list[float]]:
    """The pooled Erlang A team, grown until each class meets its target with its own customers'
    patience, and the work carried (each class's handle time, less those of its customers who give
    up) keeps under the cap; with the service level of each class that has arrivals.

    The pooled queue gives everyone the mean abandonment rate: a class that never gives up (email,
    most of the work) was counted as leaving the queue like the impatient one (chat), so the work
    carried, and with it the occupancy, came out low, and the impatient class's service level high
    (bench/staffing_pooling.py: chat 3 min patience, 80/5m, beside 20-minute email at 150/h was
    staffed 20, which leaves chat at 0.77 in simulation; now 22, 0.90)."""
    active = [c for c in classes if c.arrivals_per_hour > 0]
    assert q.patience_seconds is not None
    patience = q.patience_seconds
    wanted = [(c.target_seconds, c.patience_seconds) for c in active]

    def state(n: int) -> tuple[bool, float, float, list[float]]:
        """(every class meets its target, occupancy, abandonment, each class's service level) with n agents."""
        outcomes = own_patience_outcomes(n, q.arrivals_per_hour, q.aht_seconds, patience, wanted)
        carried = sum(
            c.arrivals_per_hour * c.aht_seconds * (1.0 - ab) for c, (_, ab) in zip(active, outcomes, strict=True)
        )
        gave_up = sum(c.arrivals_per_hour * ab for c, (_, ab) in zip(active, outcomes, strict=True))
        met = all(sl >= c.target for c, (sl, _) in zip(active, outcomes, strict=True))
        abandonment = gave_up / sum(c.arrivals_per_hour for c in active)
        return met, carried / 3600.0 / n, abandonment, [sl for sl, _ in outcomes]

    n = best.queue_agents
    met, occupancy, abandonment, levels = state(n)
    if met and occupancy <= cap + 1e-12:
        return msgspec.structs.replace(best, occupancy=occupancy, abandonment=abandonment), levels
    while True:  # both the levels and the occupancy improve with every agent
        met_before = met
        n += 1
        met, occupancy, abandonment, levels = state(n)
        if met and occupancy <= cap + 1e-12:
            break
    sl, _, pw, w = erlang_a(n, q.arrivals_per_hour, q.aht_seconds, patience, q.target_seconds)
    grown = msgspec.structs.replace(
        best,
        agents_needed=n,
        queue_agents=n,
        service_level=sl,
        occupancy=occupancy,
        wait_probability=pw,
        mean_wait_seconds=w,
        abandonment=abandonment,
        binding="occupancy" if met_before else "service_level",
    )
    return grown, levels
