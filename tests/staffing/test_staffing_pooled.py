"""One team for every platform: one FCFS queue, each platform's target held on its one wait."""

from __future__ import annotations

import msgspec
import pytest

from daemon.staffing.erlang import QueueClass, StaffingQuestion, pooled_question, service_level, solve, solve_pooled
from daemon.staffing.planner import StaffingPlanner, SurgeLoad
from daemon.staffing.settings import StaffingSettings
from daemon.staffing.simulation import simulate


def test_each_platform_meets_its_own_target_on_the_one_wait() -> None:
    """FCFS, every platform's mentions wait alike: the team is the smallest with which every
    platform's share within its own time is met; with one fewer, some platform misses (or the
    occupancy cap is passed)."""
    cases = [
        [(900.0, 180.0, 0.8, 1500.0), (600.0, 240.0, 0.8, 900.0)],  # the defaults: twitter and facebook
        [(200.0, 180.0, 0.9, 300.0), (60.0, 480.0, 0.8, 3600.0)],  # whatsapp 90/5m, email 80/1h
        [(40.0, 120.0, 0.95, 30.0), (400.0, 240.0, 0.8, 900.0), (5.0, 900.0, 0.7, 14400.0)],
    ]
    for case in cases:
        classes = [QueueClass(arrivals_per_hour=r, aht_seconds=h, target=p, target_seconds=t) for r, h, p, t in case]
        pooled = solve_pooled(classes, max_occupancy=0.85)
        n = pooled.answer.queue_agents
        q = pooled_question(classes)
        a = q.arrivals_per_hour * q.aht_seconds / 3600.0
        assert a == pytest.approx(sum(r * h for r, h, _, _ in case) / 3600.0)
        for c, level in zip(classes, pooled.service_levels, strict=True):
            assert level == service_level(n, a, q.aht_seconds, c.target_seconds) >= c.target
        below = [service_level(n - 1, a, q.aht_seconds, c.target_seconds) for c in classes]
        assert a / (n - 1) > 0.85 or any(sl < c.target for sl, c in zip(below, classes, strict=True))
        weights = [c.arrivals_per_hour for c in classes]
        mean = sum(sl * w for sl, w in zip(pooled.service_levels, weights, strict=True)) / sum(weights)
        assert pooled.answer.service_level == pytest.approx(mean)


def test_the_pooled_queue_and_its_approximations() -> None:
    """Equal handle times: the plain Erlang C of the summed arrivals. Patience: the arrival-weighted
    abandonment rate, a platform without one counting as never giving up."""
    same = [QueueClass(arrivals_per_hour=r, aht_seconds=240.0, target=0.8, target_seconds=900.0) for r in (100, 50)]
    q = pooled_question(same)
    assert (q.arrivals_per_hour, q.aht_seconds, q.patience_seconds) == pytest.approx((150.0, 240.0, None))
    plain = solve(StaffingQuestion(arrivals_per_hour=150.0, aht_seconds=240.0, target=0.8, target_seconds=900.0))
    answer = solve_pooled(same).answer
    assert answer.service_level == pytest.approx(plain.service_level, rel=1e-12)
    assert msgspec.structs.replace(answer, service_level=plain.service_level) == plain
    impatient = QueueClass(arrivals_per_hour=300.0, aht_seconds=180.0, target=0.8, target_seconds=300.0)
    mixed = [
        msgspec.structs.replace(impatient, patience_seconds=600.0),
        msgspec.structs.replace(impatient, arrivals_per_hour=100.0),
    ]
    assert pooled_question(mixed).patience_seconds == pytest.approx(800.0)  # (300/600 + 0) / 400 per second
    answer = solve_pooled(mixed).answer
    alone = StaffingQuestion(arrivals_per_hour=400.0, aht_seconds=180.0, target=0.8, target_seconds=300.0)
    erlang_a = solve(msgspec.structs.replace(alone, patience_seconds=800.0))
    assert msgspec.structs.replace(answer, service_level=erlang_a.service_level) == erlang_a
    assert answer.abandonment > 0 and answer.queue_agents < solve(alone).queue_agents


def test_the_pooled_wait_holds_up_in_simulation() -> None:
    """A mixture of handle times (70 % at 2 minutes, 30 % at 20) waits longer than one queue at
    their mean would: the pooled queue is solved at the work-weighted handle time (the M/G/n
    two-moment approximation), which the simulation bears out; the plain mean overstates the
    service level by about 0.1."""
    classes = [
        QueueClass(arrivals_per_hour=105.0, aht_seconds=120.0, target=0.8, target_seconds=300.0),
        QueueClass(arrivals_per_hour=45.0, aht_seconds=1200.0, target=0.8, target_seconds=300.0),
    ]
    pooled = solve_pooled(classes)
    n = pooled.answer.queue_agents
    assert n == 22
    sim = simulate(150.0, 0.0, n, customers=400_000, seed=3, mix=[(0.7, 120.0), (0.3, 1200.0)])
    measured, se = sim.service_level(300.0), sim.service_level_se(300.0)
    assert measured >= 0.8 - 3 * se
    for k in (0, 1):  # FCFS: both platforms wait alike
        assert sim.service_level(300.0, k) == pytest.approx(measured, abs=4 * se + 0.01)
    a = pooled.answer.erlangs
    mean_model = service_level(n, a, pooled.aht_seconds, 300.0)
    assert abs(pooled.answer.service_level - measured) < 0.03 < mean_model - measured


def test_the_backlog_has_the_handle_time_of_where_it_waits() -> None:
    """The backlog is measured by platform (`responses.backlog_by_platform`): 5,000 waiting on email
    (8 minutes a reply) need more people than on twitter (3), whatever new mentions come in on."""
    platforms = {"twitter": {"aht_minutes": 3.0, "target": "80/25m"}, "email": {"aht_minutes": 8.0, "target": "80/1h"}}
    rates = {"twitter": 900.0, "email": 100.0}
    p = StaffingPlanner(msgspec.convert({"platforms": platforms}, StaffingSettings))
    on_email = p.suggest(SurgeLoad(mentions_per_hour=rates, backlog=5000, backlog_by_platform={"email": 40}))
    on_twitter = p.suggest(SurgeLoad(mentions_per_hour=rates, backlog=5000, backlog_by_platform={"twitter": 40}))
    assert on_email.backlog_agents > 2 * on_twitter.backlog_agents > 0
    more_twitter = SurgeLoad(
        mentions_per_hour={**rates, "twitter": 3000.0}, backlog=5000, backlog_by_platform={"email": 40}
    )
    assert p.suggest(more_twitter).backlog_agents == on_email.backlog_agents


def test_a_larger_backlog_no_longer_takes_a_platform_s_share_away() -> None:
    """Per platform, the backlog of 10 gave twitter 1 of it (and a backlog agent) and that of 11 gave
    it none (largest remainders): 250 people, then 249. The split is now a divisor method."""
    platforms = {
        "twitter": {"aht_minutes": 3, "target": "80/25m"},
        "facebook": {"aht_minutes": 4, "target": "80/15m"},
        "instagram": {"aht_minutes": 2, "target": "80/30m"},
        "email": {"aht_minutes": 8, "target": "80/1h"},
        "whatsapp": {"aht_minutes": 5, "target": "90/5m"},
    }
    rates = {"facebook": 1436.0, "email": 768.0, "instagram": 7.0, "whatsapp": 58.0, "twitter": 84.0}
    p = StaffingPlanner(msgspec.convert({"platforms": platforms}, StaffingSettings))
    needed = [p.plan(SurgeLoad(mentions_per_hour=rates, actionable_share=1.0, backlog=b)).agents for b in range(150)]
    assert needed == sorted(needed)
