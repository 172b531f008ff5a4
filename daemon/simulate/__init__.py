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

The world (`scenario.BRANDS`; mean customer mentions per minute at scale 1):

| brand     | time zone        | volume | languages                      | role                               |
|-----------|------------------|--------|--------------------------------|------------------------------------|
| klm       | Europe/Amsterdam | 42     | en, nl, some ru/sr/hr/bs/mk    | the crisis brand                   |
| bol       | Europe/Amsterdam | 14     | nl, en                         | positive marketing campaign        |
| airserbia | Europe/Belgrade  | 12     | sr (both scripts), en, hr/bs/mk| a celebrity's viral post           |
| hrtelekom | Europe/Zagreb    | 10     | hr, some bs/sr/en              | a troll: ~150 posts in one hour    |
| aeroflot  | Europe/Moscow    | 9      | ru, en                         | plain                              |
| wolt      | Europe/Belgrade  | 6      | sr, hr, bs, mk, en             | grows 12 % of day one per day      |
| makpetrol | Europe/Skopje    | 0.3    | mk, sr, en                     | sparse: one mention every ~3 min   |

Volumes follow diurnal and weekly profiles in each brand's local time, wander slowly hour by hour
and are gamma-Poisson (negative binomial) per minute. Background negativity is 22-29 %. Brands answer
complaints and questions through a first-come-first-served queue staffed for normal load, so the
crisis makes replies fall hours behind. About 3 % of events arrive 1.5-15 minutes late, 0.3 % up to
8 hours late, 0.4 % are delivered twice, 13 % (and every email) carry no `lang`, 12 % of Facebook
events carry an upstream `sentiment`, e-mails are signed over several lines, some Instagram photos
have no caption (empty text), and `3 + 2 x days` lines are invalid.

`ash-crisis`: on the last day (2010-04-15 by default) klm's volume ramps over 30-40 minutes to
x12-x18 (a 3-5 hour plateau, then an hour-scale decay), ~70 % negative, with ash/volcano/cancelled/
refund/stranded vocabulary in every language. `normal`: the same world without it. `coordinated`:
the normal world plus, on the last day, 600-900 (x scale) near-identical negative posts against klm
from fresh low-follower accounts within 30 minutes (astroturfing, not a customer crisis).
Distractors recur in every week of the stream; `Stream.truth` (also `--truth FILE`) says where
everything is, and `Stream.labels()` gives each event's hidden category and intent.
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
