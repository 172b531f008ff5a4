"""What each detector promises: sound at any volume, seasonal, robust to distractors, bounded memory."""

from __future__ import annotations

import msgspec
import pytest
from detector_streams import stream

from daemon.incidents import IncidentTracker
from daemon.windows import Bucket
from detectors.brand import Assessment, BrandDetector, severity_rank
from detectors.negativity import NegativityDetector
from detectors.settings import DetectionSettings, TopicSettings, VolumeSettings
from detectors.topic import TopicDetector
from detectors.volume import VolumeDetector

DAY = 24 * 60
W = 4 * DAY  # history the detectors learn from before each test (a replayed warm-up)


@pytest.mark.parametrize(("per_min", "dispersion"), [(0.3, 0.0), (20.0, 0.05), (2000.0, 0.01)])
def test_volume_quiet_on_normal_days_at_any_scale(per_min: float, dispersion: float) -> None:
    det = VolumeDetector(seed=0)
    fired = [det.read(b).firing for b in _learned(det, stream(1, 4 * DAY, per_min, dispersion=dispersion))]
    assert sum(fired[DAY:]) == 0  # diurnal cycle learned: no alarm over three days


@pytest.mark.parametrize(("per_min", "factor"), [(0.3, 12.0), (20.0, 3.0), (2000.0, 2.0)])
def test_volume_catches_a_jump_at_any_scale(per_min: float, factor: float) -> None:
    det = VolumeDetector(seed=0)
    bs = list(stream(2, W + 30, per_min, dispersion=0.01 if per_min > 100 else 0.0))
    for b in bs[:W]:
        det.update(b)
    hits = []
    for b in bs[W:]:
        b.mentions = int(b.mentions * factor) + (3 if per_min < 1 else 0)
        hits.append(det.read(b).firing)
        det.update(b)
    assert any(hits[:15])  # within 15 minutes


def test_volume_level_shift_is_learned_eventually() -> None:
    det = VolumeDetector(VolumeSettings(return_period_days=0), seed=0)
    bs = list(stream(3, 6 * DAY, 20.0, dispersion=0.02))
    fired = []
    for i, b in enumerate(bs):
        if i >= W:
            b.mentions *= 2  # a lasting new normal (e.g. a new market)
        fired.append(det.read(b).firing)
        det.update(b)
    assert any(fired[W : W + 60])
    assert not any(fired[-DAY:])  # no paging forever


def test_volume_a_learned_burst_moves_the_dispersion_by_a_bounded_step() -> None:
    det = VolumeDetector(seed=0)  # the burst falls in the burn-in: it is learned, not kept out
    for i, b in enumerate(stream(6, DAY + 60, 20.0, dispersion=0.02)):
        if i >= DAY:
            b.mentions *= 3  # one noisy hour
        det.update(b)
    # winsorised moments: a plain moment estimate would be near 1 (variance ~ mu^2, deaf for a day)
    assert det.span_dispersion(0) < 0.4


def test_negativity_rise_with_flat_volume_fires_small_counts_do_not() -> None:
    det = NegativityDetector(seed=0)
    bs = list(stream(4, W + 60, 30.0, neg_share=0.25))
    for b in bs[:W]:
        det.update(b)
    tiny = Bucket("acme", bs[W].start, 60, mentions=3, negative=3)
    assert not det.read(tiny).firing  # 3 of 3 is no evidence
    fired = []
    for b in bs[W:]:
        b.negative = int(b.mentions * 0.7)
        fired.append(det.read(b).firing)
        det.update(b)
    assert any(fired[:10])


def test_topic_memory_is_bounded_whatever_the_vocabulary() -> None:
    det = TopicDetector(TopicSettings(candidates=32, sketch_width=128), seed=0)
    for i in range(500):
        det.update(Bucket("acme", i * 60.0, 60, mentions=50, terms={f"w{i}-{k}": 1 for k in range(50)}))
    assert len(det._recent) <= 32 and det._sketch.shape == (det.settings.sketch_depth, 128)


def _learned(det, buckets):
    for b in buckets:
        yield b
        det.update(b)


def _spike(bs: list[Bucket], start: int, minutes: int, factor: float, neg: float | None, **extra) -> None:
    for b in bs[start : start + minutes]:
        b.mentions = int(b.mentions * factor)
        if neg is not None:
            b.negative = int(b.mentions * neg)
        for k, v in extra.items():
            setattr(b, k, v)


def _incidents(bs: list[Bucket], settings: DetectionSettings | None = None):
    det, tr = BrandDetector(settings, seed=0), IncidentTracker(settings)
    out = []
    for b in bs:
        out += tr.step(b, det.update(b))
    return [c for c in out if c.type == "opened"], out


def test_crisis_is_sev1_with_volume_and_negativity() -> None:
    bs = list(stream(5, W + 120, 40.0))
    for k, b in enumerate(bs[W:]):  # ramp to x15 over 36 minutes, the new mentions 70 % negative
        base = b.mentions
        b.mentions = int(base * (1 + 14 * min(1.0, (k + 0.5) / 36)))
        b.negative = int(base * 0.25 + (b.mentions - base) * 0.7)
    opened, changes = _incidents(bs)
    assert len(opened) == 1
    assert opened[0].detected_at - bs[W].start <= 5 * 60
    assert min(c.severity for c in changes) == "sev1"  # sev1 sorts first


WATCH_CAMPAIGNS = msgspec.convert({"flags": {"campaign_max_severity": "sev3"}}, DetectionSettings)


def test_positive_campaign_opens_nothing_by_default_and_at_most_sev3_when_watched() -> None:
    bs = list(stream(6, W + 240, 20.0))
    _spike(bs, W, 180, 4.0, 0.05)
    assert _incidents(bs) == ([], [])
    opened, changes = _incidents(bs, WATCH_CAMPAIGNS)
    assert opened and {c.severity for c in changes} == {"sev3"}
    assert "positive" in changes[-1].flags


def test_a_calm_minute_inside_a_crisis_is_not_a_campaign() -> None:
    bs = list(stream(5, W + 180, 10.0))
    for k, b in enumerate(bs[W:]):  # x4 volume, 90 % negative, but one calm minute an hour in
        b.mentions *= 4
        b.negative = 1 if k == 60 else int(b.mentions * 0.9)
    opened, changes = _incidents(bs)
    assert len(opened) == 1
    assert all("positive" not in c.flags for c in changes)
    assert min(c.severity for c in changes) == "sev1"  # sev1 sorts first


def _angry_copies(top_copies: int) -> list[Bucket]:
    """An hour of 100 extra, mostly negative, mentions a minute, all of them copies; the most-copied
    text has `top_copies` of them in its five-minute period."""
    bs = list(stream(7, W + 120, 20.0))
    for b in bs[W : W + 60]:
        extra = 100
        b.mentions += extra
        b.negative += int(extra * 0.8)
        b.near_duplicates = extra
        b.top_copies = top_copies
    return bs


def test_coordinated_campaign_is_flagged_and_capped() -> None:
    opened, changes = _incidents(_angry_copies(500))  # one message, copied a hundred times a minute
    assert opened and all(c.severity == "sev3" for c in changes)
    assert "coordinated" in changes[-1].flags


def test_alike_texts_spread_over_many_messages_are_a_crisis_not_a_campaign() -> None:
    """Customers in a crisis write alike (the same few words about the same cancelled flight), so
    copies may be many; but no one message carries them, as a copy-paste campaign's does."""
    opened, changes = _incidents(_angry_copies(4))  # a hundred copies a minute, of many texts
    assert opened and max(severity_rank(c.severity) for c in changes) == 3
    assert not any("coordinated" in c.flags for c in changes)


def _crisis_minute(b: Bucket, k: int) -> Bucket:
    """Minute `k` of a crisis: volume ramping to x15 over 36 minutes, the new mentions 70 % negative,
    alike texts (a third of them copies) of many messages."""
    base = b.mentions
    extra = int(base * 14 * min(1.0, (k + 0.5) / 36))
    b.mentions = base + extra
    b.negative = int(base * 0.25 + extra * 0.7)
    b.near_duplicates, b.top_copies = int(extra * 0.3), 5
    return b


def _crisis_then_stock_phrase(bs: list[Bucket], calm_until_quiet: bool) -> list[Assessment]:
    """Three hours of crisis (x15, angry, alike texts of many messages), then, at once or after
    calm minutes up to the first quiet bucket, ten angry minutes with a small excess made of one
    stock phrase copied a dozen times a minute; the assessments of those ten minutes."""
    det = BrandDetector(seed=0)
    for b in bs[:W]:
        det.update(b)
    for k, b in enumerate(bs[W : W + 180]):
        det.update(_crisis_minute(b, k))
    i = W + 180
    while calm_until_quiet and not det.update(bs[i]).quiet:
        i += 1
    out = []
    for b in bs[i + 1 : i + 11]:
        b.mentions += 15
        b.negative = int(b.mentions * 0.8)
        b.near_duplicates, b.top_copies = 25, 60
        out.append(det.update(b))
    return out


@pytest.mark.parametrize("calm_until_quiet", [False, True])
def test_a_crisis_tail_with_a_stock_phrase_is_not_called_a_campaign(calm_until_quiet: bool) -> None:
    """Hours into a crisis its volume is back near normal, its mood still angry, and for a few
    minutes one stock phrase ("all flights cancelled") makes most of a small excess: five minutes
    alone look like a campaign, the anomaly as a whole does not, also after a quiet minute within
    it. The flag would have told the on-call manager that the crisis they are handling is
    astroturfing, and capped its severity at sev3."""
    tail = _crisis_then_stock_phrase(list(stream(5, W + 24 * 60, 40.0)), calm_until_quiet)
    assert not any("coordinated" in a.flags for a in tail)
    assert all(a.severity in ("sev1", "sev2") for a in tail)


def test_a_crisis_right_after_a_few_copied_minutes_still_pages() -> None:
    """A few minutes of one copied text (a campaign's start, or the brand's stock phrases by chance)
    raise the coordinated flag, and a crisis follows at once: the flag must not cap the crisis at
    sev3 for as long as it runs. Once the anomaly is no longer mostly copies, the flag goes."""
    bs = list(stream(5, W + 120, 40.0))
    for b in bs[W : W + 4]:
        b.mentions += 20
        b.near_duplicates, b.top_copies = 20, 40
    for k, b in enumerate(bs[W + 4 : W + 120]):
        _crisis_minute(b, k)
    det = BrandDetector(seed=0)
    flagged = [("coordinated" in a.flags, a.severity) for a in map(det.update, bs)][W:]
    assert any(f for f, _ in flagged[:8])  # the copied minutes were flagged...
    assert not flagged[-1][0] and min(sev or "sev9" for _, sev in flagged) == "sev1"  # ...not the crisis


def test_a_campaign_after_a_busy_morning_is_flagged_from_the_start() -> None:
    """A morning a little above the model, with a lone busy minute every half hour (one reaches
    sev3), then a copy-paste campaign: the campaign is weighed by its own buckets, not diluted by
    the morning's, so it is a flagged watch from its first elevated minute and never pages."""
    bs = list(stream(9, W + 240, 20.0))
    for k, b in enumerate(bs[W : W + 180]):
        b.mentions += 3 if k % 30 else 25
    for b in bs[W + 180 : W + 210]:
        b.mentions += 15
        b.negative += 12
        b.near_duplicates, b.top_copies = 12, 40
    det = BrandDetector(seed=0)
    campaign = [det.update(b) for b in bs][W + 180 : W + 210]
    elevated = [a for a in campaign if not a.quiet]
    assert elevated and all("coordinated" in a.flags and a.severity in (None, "sev3") for a in elevated)


def test_a_positive_coordinated_campaign_takes_the_strictest_cap() -> None:
    """The brand's own promotion: many accounts posting the same happy text. Positive caps at
    `campaign_max_severity` (none by default), coordinated at `flag_max_severity` (sev3): none holds,
    whatever raw severity a bucket reaches (a sev3 watch used to open when it reached sev2)."""
    bs = list(stream(7, W + 240, 20.0))
    for k, b in enumerate(bs[W : W + 180]):
        extra = 150
        b.mentions += extra
        b.near_duplicates = extra  # happy copies: the negatives stay the usual ones
        b.top_copies = 5 * extra
        if 150 <= k < 160:  # ten angrier minutes: a bucket's raw severity passes sev3
            b.negative = int(b.mentions * 0.6)
    assert _incidents(bs)[0] == []
    opened, changes = _incidents(bs, WATCH_CAMPAIGNS)
    assert opened and all(c.severity == "sev3" for c in changes)
    assert {"coordinated", "positive"} <= set(changes[-1].flags)


def test_viral_post_without_negativity_is_capped() -> None:
    bs = list(stream(8, W + 120, 20.0))
    bs[W].max_reach = 2_000_000
    _spike(bs, W, 40, 8.0, 0.2)
    assert _incidents(bs)[0] == []
    opened, changes = _incidents(bs, WATCH_CAMPAIGNS)
    assert all(c.severity == "sev3" for c in changes)
    assert opened and "viral" in opened[0].flags


def test_negativity_learns_a_wobbly_share_and_stays_quiet_on_it() -> None:
    """A brand whose negative share drifts by the hour (scorer drift, topics of the day) learns a
    looser baseline instead of paging on every drift."""
    import numpy as np

    rng = np.random.default_rng(9)
    det = NegativityDetector(seed=0)
    fired = 0
    for i in range(3 * DAY):
        share = 0.3 + 0.15 * np.sin(i / 37.0) * (1 if (i // 45) % 2 else -1)  # drifts by +-0.15
        n = int(rng.poisson(30))
        b = Bucket("acme", i * 60.0, 60, mentions=n, negative=int(rng.binomial(n, share)))
        fired += det.read(b).firing and i > DAY
        det.update(b)
    assert det.strength(1) < 200  # learned: spans stray more than binomial noise
    assert fired == 0


def test_daily_curve_follows_local_time_across_a_dst_switch() -> None:
    """Europe switched to summer time on 2010-03-28 01:00 UTC: the curve moves an hour in UTC."""
    import math as m

    import numpy as np

    start = 1_269_302_400.0  # 2010-03-23T00:00Z
    rng = np.random.default_rng(3)

    def run(tz: str) -> int:
        det = VolumeDetector(VolumeSettings(timezone=tz), seed=0)
        fired = 0
        for i in range(8 * DAY):
            t = start + i * 60
            local = t + (7200 if t >= 1_269_738_000 else 3600)  # Amsterdam, CET -> CEST
            hour = (local % 86400) / 3600
            mu = 40 * (1 + 0.8 * m.sin(2 * m.pi * (hour - 9) / 24))
            b = Bucket("klm", t, 60, mentions=int(rng.poisson(mu)))
            fired += det.read(b).firing
            det.update(b)
        return fired

    assert run("Europe/Amsterdam") == 0


def test_the_load_rises_with_a_surge_within_three_buckets_but_not_with_one_busy_minute() -> None:
    """The load people read (and staffing, and load updates) is the last quarter hour's mean, or the
    last three minutes' when higher: a surge shows within three buckets, one busy minute moves it by
    a third of its excess, and a surge that ends eases out over the quarter hour."""
    det = BrandDetector(seed=0)
    t0 = 1_700_000_000.0 - 1_700_000_000.0 % 86400

    def load(i: int, n: int) -> float:
        return det.update(Bucket("acme", t0 + 60 * i, 60, mentions=n, by_lang={"en": n})).observed_per_hour

    for i in range(30):
        load(i, 50)
    assert load(30, 50) == 3000.0
    assert [round(load(i, 150 if i == 31 else 50)) for i in range(31, 35)] == [5000, 5000, 5000, 3400]
    surge = [load(i, 150) for i in range(35, 50)]  # a surge that lasts
    assert surge[0] < surge[1] < surge[2] == surge[-1] == 9000.0
    after = [load(i, 50) for i in range(50, 66)]
    assert after == sorted(after, reverse=True) and after[0] > 8000.0 and after[-1] == 3000.0


@pytest.mark.parametrize(("per_min", "factor", "minutes"), [(2.0, 6.0, 90), (5.0, 3.0, 120), (40.0, 4.0, 120)])
def test_an_incident_resolves_within_two_hours_of_the_load_back_to_normal(
    per_min: float, factor: float, minutes: int
) -> None:
    """The four-hour span still holds a surge for hours after it ended: it must not keep the incident
    open on a load back to normal (sparse brands resolved 3.5-4 hours after their surge, and an
    on-call manager saw "open" all that time). 60 quiet minutes, and the hour span draining."""
    bs = list(stream(11, W + minutes + 6 * 60, per_min, neg_share=0.2))
    _spike(bs, W, minutes, factor, 0.5)
    opened, changes = _incidents(bs)
    resolved = [c for c in changes if c.type == "resolved"]
    assert len(opened) == 1 and len(resolved) == 1
    back_to_normal = bs[W + minutes].start
    assert resolved[0].resolved_at - back_to_normal <= 120 * 60
