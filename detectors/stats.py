"""Tail probabilities for counts, as *surprise* = -log10(p), capped at `MAX_SURPRISE`.

A surprise is comparable across brands of any size: 6 means "one in a million".

>>> round(poisson_surprise(10, 2.0), 2)
4.33
>>> nb_surprise(10, 2.0, 0.5) < poisson_surprise(10, 2.0)  # overdispersion: less surprising
True
>>> nb_surprise(0, 5.0, 0.1)
0.0
>>> round(betabinom_surprise(14, 20, 5.0, 15.0), 1)
2.6
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

MAX_SURPRISE = 300.0


def _surprise(p: float) -> float:
    if not p > 0.0:  # 0 or nan after underflow
        return MAX_SURPRISE
    return min(MAX_SURPRISE, max(0.0, -math.log10(p)))


def poisson_surprise(x: float, mu: float) -> float:
    """-log10 P(X >= x) for X ~ Poisson(mu)."""
    if x <= 0:
        return 0.0
    if mu <= 0:
        return MAX_SURPRISE
    return _surprise(float(special.gammainc(x, mu)))


def nb_surprise(x: float, mu: float, dispersion: float) -> float:
    """-log10 P(X >= x) for X negative binomial with mean `mu`, variance mu + dispersion * mu^2."""
    if x <= 0:
        return 0.0
    if mu <= 0:
        return MAX_SURPRISE
    if dispersion <= 1e-9:
        return poisson_surprise(x, mu)
    r = 1.0 / dispersion
    return _surprise(float(special.betainc(x, r, mu / (r + mu))))


_EXACT_MAX_N = 400


def betabinom_surprise(k: int, n: int, a: float, b: float) -> float:
    """-log10 P(K >= k) for K ~ BetaBinomial(n, a, b): k successes of n when the rate is uncertain.

    Exact up to n = 400, then a normal approximation with the beta-binomial variance.
    """
    if k <= 0 or n <= 0:
        return 0.0
    if k > n:
        return MAX_SURPRISE
    if n <= _EXACT_MAX_N:
        ks = np.arange(k, n + 1, dtype=np.float64)
        logpmf = (
            special.gammaln(n + 1)
            - special.gammaln(ks + 1)
            - special.gammaln(n - ks + 1)
            + special.betaln(ks + a, n - ks + b)
            - special.betaln(a, b)
        )
        m = float(logpmf.max())
        log_p = m + math.log(float(np.exp(logpmf - m).sum()))
        return min(MAX_SURPRISE, max(0.0, -log_p / math.log(10)))
    p = a / (a + b)
    var = n * p * (1 - p) * (a + b + n) / (a + b + 1)
    z = (k - 0.5 - n * p) / math.sqrt(var)
    return _surprise(0.5 * math.erfc(z / math.sqrt(2)))
