"""Synthetic bucket streams for detector tests (seeded, no shared data)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from daemon.windows import Bucket


def stream(
    seed: int,
    minutes: int,
    base_per_min: float = 20.0,
    neg_share: float = 0.25,
    dispersion: float = 0.05,
    brand: str = "acme",
    start: float = 1_700_000_000.0 - 1_700_000_000.0 % 86400,
    diurnal: float = 0.6,
    bucket: int = 60,
) -> Iterator[Bucket]:
    """Negative-binomial counts with a diurnal cycle; negatives binomial at `neg_share`."""
    rng = np.random.default_rng(seed)
    for i in range(minutes * 60 // bucket):
        t = start + i * bucket
        hour = (t % 86400) / 3600
        mu = base_per_min * bucket / 60 * (1 + diurnal * math.sin(2 * math.pi * (hour - 9) / 24))
        lam = rng.gamma(1 / dispersion, mu * dispersion) if dispersion > 0 else mu
        n = int(rng.poisson(lam))
        neg = int(rng.binomial(n, neg_share))
        yield Bucket(brand, t, bucket, mentions=n, raw_mentions=n, negative=neg, by_lang={"en": n} if n else {})
