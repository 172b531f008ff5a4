"""Synthetic mention streams (`crisisd simulate`): a realistic multi-brand world with or without a crisis.

    >>> from daemon.simulate import simulate
    >>> sim = simulate("ash-crisis", days=1, seed=3, scale=0.02)
    >>> sim.truth.crisis.brand
    'klm'
    >>> from daemon.events import decode, Mention
    >>> isinstance(decode(next(iter(sim.lines()))), Mention)
    True

`generate()` is the short form when only the lines are needed. Everything is a pure function of
(scenario, days, seed, start, scale): the same arguments give byte-identical lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from daemon.simulate.scenario import BRANDS, SCENARIOS, Truth, make_plan
from daemon.simulate.stream import Stream

__all__ = ["BRANDS", "SCENARIOS", "Stream", "Truth", "generate", "simulate"]


def simulate(scenario: str, days: int = 7, seed: int = 0, start: date | None = None, scale: float = 1.0) -> Stream:
    """Build a stream: `.truth` (a `Truth`) at once, `.lines()` yields the JSON lines in delivery order.

    Raises ValueError for an unknown scenario or bad numbers.
    """
    return Stream(make_plan(scenario, days, seed, start, scale))


def generate(
    scenario: str, days: int = 7, seed: int = 0, start: date | None = None, scale: float = 1.0
) -> Iterator[bytes]:
    """The lines of `simulate(...)`: one JSON object per item (garbage lines included), no newline."""
    return simulate(scenario, days, seed, start, scale).lines()
