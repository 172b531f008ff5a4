"""A discrete-event simulation of one reply queue, to check the staffing formulas.

Poisson arrivals, a fixed number of agents, exponential or lognormal handle times, optional
exponential patience (customers who give up), and an optional backlog waiting at time 0. With
`mix`, the arrivals are several classes in one queue (platforms in a unified inbox): each arrival
is of a class drawn by its share, with exponential handle times of the class's mean, and
exponential patience of the class's own mean if it has one (a WhatsApp customer may wait longer
than a Twitter one). Agents
take the oldest waiting mention (FCFS; the backlog is oldest, so it goes first), or with
`backlog_policy="new_first"` new arrivals before the backlog (the backlog is worked with spare
capacity only). All randomness comes from `seed`: the same seed gives the same arrivals, handle
times and patience whatever the number of agents (common random numbers), so runs with n and n - 1
agents differ only by the agent.

>>> sim = simulate(200.0, 180.0, 14, customers=20_000, seed=1)
>>> round(sim.service_level(20.0), 2)
0.89
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

Service = Literal["exponential", "lognormal"]


class Simulation(NamedTuple):
    arrivals: np.ndarray
    """Arrival times of new mentions, seconds."""
    starts: np.ndarray
    """When an agent picked each new mention up; nan when the customer gave up first."""
    backlog_starts: np.ndarray
    """When each backlog mention (waiting at time 0) was picked up."""
    busy_seconds: float
    """Agent time spent handling between time 0 and the last arrival."""
    agents: int
    warmup: int
    """New mentions at the start left out of the service level (the queue starts empty)."""
    classes: np.ndarray | None = None
    """With `mix`: each new mention's class (its index in `mix`)."""

    def service_level(self, target_seconds: float, klass: int | None = None) -> float:
        """Share of new mentions after the warm-up picked up within the target (giving up = miss);
        of one class of the `mix` only, given `klass`."""
        ok = self._met(target_seconds)
        if klass is not None and self.classes is not None:
            ok = ok[self.classes[self.warmup :] == klass]
        return float(ok.mean()) if len(ok) else math.nan

    def service_level_se(self, target_seconds: float, batches: int = 20) -> float:
        """Standard error of `service_level` by batch means (arrivals in order)."""
        ok = self._met(target_seconds)
        if len(ok) < batches * 10:
            return math.nan
        means = np.array([b.mean() for b in np.array_split(ok, batches)])
        return float(means.std(ddof=1) / math.sqrt(batches))

    def _met(self, target_seconds: float) -> np.ndarray:
        wait = (self.starts - self.arrivals)[self.warmup :]
        return np.nan_to_num(wait, nan=math.inf) <= target_seconds + 1e-9

    def abandonment(self) -> float:
        return float(np.isnan(self.starts[self.warmup :]).mean())

    def occupancy(self) -> float:
        """Busy share of the agents from time 0 to the last arrival."""
        span = float(self.arrivals[-1]) if len(self.arrivals) else 0.0
        return self.busy_seconds / (self.agents * span) if span > 0 else math.nan

    def backlog_cleared_at(self) -> float:
        """When the last backlog mention was picked up (0 without a backlog)."""
        return float(self.backlog_starts.max()) if len(self.backlog_starts) else 0.0


def handle_times(rng: np.random.Generator, n: int, aht_seconds: float, service: Service, cv: float) -> np.ndarray:
    if service == "exponential":
        return rng.exponential(aht_seconds, n)
    sigma2 = math.log1p(cv * cv)
    return rng.lognormal(math.log(aht_seconds) - sigma2 / 2.0, math.sqrt(sigma2), n)


def simulate(
    arrivals_per_hour: float,
    aht_seconds: float,
    agents: int,
    *,
    customers: int = 100_000,
    seed: int = 0,
    service: Service = "exponential",
    cv: float = 1.0,
    patience_seconds: float | None = None,
    backlog: int = 0,
    backlog_policy: Literal["fcfs", "new_first"] = "fcfs",
    warmup: float = 0.1,
    start: Literal["empty", "stationary"] = "empty",
    mix: Sequence[tuple[float, float] | tuple[float, float, float | None]] | None = None,
) -> Simulation:
    """Run the queue for `customers` new arrivals (plus the backlog) with `agents` agents.

    `start="stationary"` begins in the long-run state of the Markov queue (M/M/n, or M/M/n+M with
    a patience) instead of empty: busy agents with fresh exponential remaining times and customers
    already waiting (left out of the figures). It removes the warm-up bias near full occupancy,
    where an empty start takes very long to fill up; exact for exponential handle times.

    `mix`: (share, mean handle time in seconds[, mean patience in seconds or None]) per class of
    arrivals, exponential handle times (`aht_seconds` and `service` are then unused; `start` must
    be "empty"); a class's own patience replaces `patience_seconds` for it (None: it never gives up).
    """
    if agents < 1:
        raise ValueError("agents: at least one")
    rng = np.random.default_rng(seed)
    # Separate streams so that changing one knob (backlog, patience) leaves the others alone.
    streams = rng.bit_generator.seed_seq.spawn(5)  # type: ignore[attr-defined]
    r_arr, r_svc, r_pat, r_blg, r_init = (np.random.default_rng(s) for s in streams)
    gaps = (
        r_arr.exponential(3600.0 / arrivals_per_hour, customers)
        if arrivals_per_hour > 0
        else np.full(customers, np.inf)
    )
    free = [0.0] * agents  # heap of the times agents become free
    initial = 0
    if start == "stationary" and arrivals_per_hour > 0:
        k = _stationary_draw(r_init, arrivals_per_hour / 3600.0, 1.0 / aht_seconds, agents, patience_seconds)
        busy_now = min(k, agents)
        free = sorted([*r_init.exponential(aht_seconds, busy_now).tolist(), *([0.0] * (agents - busy_now))])
        initial = max(0, k - agents)
    gaps = np.concatenate((np.zeros(initial), gaps))  # those already waiting "arrived" at time 0
    arrivals = np.cumsum(gaps)
    customers += initial
    classes = None
    if mix:
        if start != "empty":
            raise ValueError("mix: only from an empty start")
        shares = np.array([m[0] for m in mix], dtype=float)
        means = np.array([m[1] for m in mix], dtype=float)
        classes = r_svc.choice(len(mix), size=customers, p=shares / shares.sum())
        svc = (r_svc.exponential(1.0, customers) * means[classes]).tolist()
        b_classes = r_blg.choice(len(mix), size=backlog, p=shares / shares.sum())
        svc_b = (r_blg.exponential(1.0, backlog) * means[b_classes]).tolist()
    else:
        svc = handle_times(r_svc, customers, aht_seconds, service, cv).tolist()
        svc_b = handle_times(r_blg, backlog, aht_seconds, service, cv).tolist()
    pat: list[float] | None = None
    if not (mix and any(len(m) > 2 for m in mix)):
        pat = r_pat.exponential(patience_seconds, customers).tolist() if patience_seconds else None
    else:  # each class its own patience
        assert classes is not None
        own: list[float | None] = [m[2] if len(m) > 2 else patience_seconds for m in mix]
        if any(x is not None and not x > 0 for x in own):
            raise ValueError("mix: a patience must be > 0 (or None)")
        mean_p = np.array([math.inf if x is None else x for x in own])[classes]
        finite = np.isfinite(mean_p)
        pat = np.where(finite, r_pat.exponential(1.0, customers) * np.where(finite, mean_p, 1.0), math.inf).tolist()
    arr = arrivals.tolist()
    end = arr[-1] if arr else 0.0
    busy = sum(min(f, end) for f in free)  # remaining work of agents busy at time 0
    starts = [math.nan] * customers
    b_starts = [math.nan] * backlog
    waiting: deque[int] = deque()
    i = 0
    b = 0
    new_first = backlog_policy == "new_first"
    inf = math.inf
    while True:
        tf = free[0]
        ta = arr[i] if i < customers else inf
        if (waiting or b < backlog) and tf <= ta:
            # An agent frees up with work waiting: drop customers who gave up, then pick.
            if pat is not None:
                while waiting and arr[waiting[0]] + pat[waiting[0]] < tf:
                    waiting.popleft()
            if b < backlog and (not waiting or not new_first):
                b_starts[b] = tf
                heapq.heapreplace(free, tf + svc_b[b])
                busy += max(0.0, min(svc_b[b], end - tf))
                b += 1
            elif waiting:
                j = waiting.popleft()
                starts[j] = tf
                heapq.heapreplace(free, tf + svc[j])
                busy += max(0.0, min(svc[j], end - tf))
            continue
        if i >= customers:
            break
        if not waiting and b >= backlog and tf <= ta:  # an idle agent takes it at once
            starts[i] = ta
            heapq.heapreplace(free, ta + svc[i])
            busy += max(0.0, min(svc[i], end - ta))
        else:
            waiting.append(i)
        i += 1
    return Simulation(
        arrivals=arrivals,
        starts=np.array(starts),
        backlog_starts=np.array(b_starts),
        busy_seconds=busy,
        agents=agents,
        warmup=initial + int((customers - initial) * warmup),
        classes=classes,
    )


def _stationary_draw(
    rng: np.random.Generator, lam: float, mu: float, agents: int, patience_seconds: float | None
) -> int:
    """Number in system drawn from the stationary law of the birth-death chain M/M/n(+M)."""
    theta = 1.0 / patience_seconds if patience_seconds else 0.0
    a = lam / mu
    if theta == 0.0 and a >= agents:
        return agents  # unstable without abandonment: start full, the queue grows anyway
    k_max = agents + 200 + int(50.0 * math.sqrt(a + 1.0))
    if theta == 0.0:
        k_max += int(40.0 / max(1e-9, -math.log(a / agents)))  # geometric tail of the queue
    else:
        k_max += int(max(0.0, (lam - agents * mu) / theta) + 40.0 * math.sqrt(lam / theta + 1.0))
    k = np.arange(1, k_max + 1, dtype=float)
    rates = np.minimum(k, agents) * mu + np.maximum(k - agents, 0.0) * theta
    logp = np.concatenate(([0.0], np.cumsum(math.log(lam) - np.log(rates))))
    p = np.exp(logp - logp.max())
    return int(rng.choice(len(p), p=p / p.sum()))
