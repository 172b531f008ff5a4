"""The simulator keeps its promises: determinism, valid events, the crisis and every distractor."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import msgspec
import numpy as np
import pytest

from daemon.cli import main as cli_main
from daemon.events import InvalidEvent, Mention, decode, parse_event_time
from daemon.simulate import generate, simulate
from daemon.simulate.scenario import TROLL_BRAND, make_plan
from daemon.simulate.stream import NEGATIVE, POSITIVE, Stream
from daemon.simulate.vocab import CRISIS_TERMS

MIN = 60.0


class Sim:
    """A decoded stream with its lines, truth and hidden labels."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.truth = stream.truth
        self.lines = list(stream.lines())
        self.decoded = [decode(x) for x in self.lines]
        self.mentions = [m for m in self.decoded if isinstance(m, Mention)]
        self.unique: dict[str, Mention] = {}
        for m in self.mentions:
            self.unique.setdefault(m.id, m)
        self.category = {i: cat for i, cat, _ in stream.labels()}

    def customer(self, brand: str, lo: float = 0.0, hi: float = float("inf")) -> list[Mention]:
        return [m for m in self.unique.values() if m.brand == brand and not m.is_brand and lo <= m.ts < hi]

    def negative_share(self, ms: list[Mention]) -> float:
        return sum(self.category[m.id] in NEGATIVE for m in ms) / max(len(ms), 1)


@pytest.fixture(scope="module")
def crisis() -> Sim:
    return Sim(simulate("ash-crisis", days=3, seed=11, scale=0.15))


@pytest.fixture(scope="module")
def normal() -> Sim:
    return Sim(simulate("normal", days=4, seed=4, scale=0.1))


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = list(generate("ash-crisis", days=1, seed=3, scale=0.03))
    b = list(generate("ash-crisis", days=1, seed=3, scale=0.03))
    c = list(generate("ash-crisis", days=1, seed=4, scale=0.03))
    assert a == b
    assert a != c
    assert len(a) > 1000


def test_truth_is_deterministic_json() -> None:
    t1 = msgspec.json.encode(simulate("normal", days=1, seed=9, scale=0.02).truth)
    t2 = msgspec.json.encode(simulate("normal", days=1, seed=9, scale=0.02).truth)
    assert t1 == t2


def test_every_line_is_valid_except_the_garbage(crisis: Sim) -> None:
    invalid = [d for d in crisis.decoded if isinstance(d, InvalidEvent)]
    assert len(invalid) == crisis.truth.counts.garbage >= 3
    assert len({d.reason for d in invalid}) >= 3
    assert len(crisis.lines) == crisis.truth.counts.lines
    assert len(crisis.unique) == crisis.truth.counts.events
    assert all(b"\n" not in line for line in crisis.lines)


def test_garbage_of_every_kind_is_rejected() -> None:
    sim = simulate("normal", days=10, seed=2, scale=0.01)  # 23 garbage lines: every kind at least once
    assert len(sim.truth.counts.garbage_kinds) == 12
    bad = [d for d in map(decode, sim.lines()) if isinstance(d, InvalidEvent)]
    assert len(bad) == sim.truth.counts.garbage
    assert {d.reason for d in bad} >= {"not_json", "not_an_object", "missing_field", "wrong_type", "invalid_value"}


def test_events_follow_the_contract(crisis: Sim) -> None:
    ms = list(crisis.unique.values())
    start, end = parse_event_time(crisis.truth.start), parse_event_time(crisis.truth.end)
    assert all(start <= m.ts < end for m in ms)
    langs = Counter(m.lang for m in ms)
    assert 0.05 < langs[None] / len(ms) < 0.3  # some events leave language detection to the daemon
    assert {"en", "nl", "sr", "sr-Latn", "sr-Cyrl", "hr", "bs", "mk", "ru"} <= set(langs)
    assert 0.05 < sum(m.url is not None for m in ms) / len(ms) < 0.6
    assert {m.platform for m in ms} >= {"twitter", "facebook", "instagram", "email", "whatsapp", "vk"}
    texts = " ".join(m.text for m in ms[:20000])
    assert any("\u0400" <= ch <= "\u04ff" for ch in texts)  # Cyrillic (sr, mk, ru)
    assert "č" in texts or "ž" in texts  # Latin-script South Slavic


def test_background_negativity_is_20_to_30_percent(crisis: Sim) -> None:
    onset = parse_event_time(crisis.truth.crisis.onset)
    for brand in ("klm", "bol", "airserbia", "aeroflot"):
        share = crisis.negative_share(crisis.customer(brand, 0, onset))
        assert 0.18 < share < 0.34, (brand, share)


def test_crisis_ramps_to_ten_to_twenty_times_the_volume(crisis: Sim) -> None:
    t = crisis.truth.crisis
    onset, peak = parse_event_time(t.onset), parse_event_time(t.peak)
    assert 30 <= t.ramp_minutes <= 40 and 12 <= t.peak_multiplier <= 18
    day = 24 * 3600
    # the same local hours a day earlier are the baseline (same diurnal position)
    before = len(crisis.customer("klm", peak - day, peak + 60 * MIN - day))
    during = len(crisis.customer("klm", peak, peak + 60 * MIN))
    assert 8 < during / before < 25
    first = len(crisis.customer("klm", onset, onset + 10 * MIN))
    last = len(crisis.customer("klm", peak - 10 * MIN, peak))
    base10 = before / 6
    assert base10 < first < last  # rising, not a step


def test_crisis_negativity_and_new_terms(crisis: Sim) -> None:
    t = crisis.truth.crisis
    peak = parse_event_time(t.peak)
    plateau = crisis.customer("klm", peak, peak + 90 * MIN)
    assert 0.62 < crisis.negative_share(plateau) < 0.8
    assert abs(crisis.negative_share(plateau) - t.negative_share_at_peak) < 0.06
    onset = parse_event_time(t.onset)
    seen = set()
    for m in plateau:
        text = m.text.lower()
        for variant, terms in CRISIS_TERMS.items():
            if any(term in text for term in terms):
                seen.add(variant)
    assert {"en", "nl", "sr-Latn", "sr-Cyrl", "hr", "bs", "mk", "ru"} <= seen
    with_terms = [m for m in plateau if any(w in m.text.lower() for w in ("ash", "aswolk", "vulka", "пепел"))]
    assert len(with_terms) / len(plateau) > 0.5
    earlier = crisis.customer("klm", onset - 6 * 3600, onset)
    assert sum("volcan" in m.text.lower() or "vulka" in m.text.lower() for m in earlier) == 0


def test_replies_fall_behind_in_the_crisis(crisis: Sim) -> None:
    r = crisis.truth.reply_minutes
    assert r["before"] < 20
    assert r["during"] > 5 * r["before"]
    replies = [m for m in crisis.unique.values() if m.is_brand and m.in_reply_to]
    assert replies and all(m.in_reply_to in crisis.unique for m in replies)
    assert all(m.kind == "reply" for m in replies)
    assert all(crisis.unique[m.in_reply_to].ts <= m.ts for m in replies)


def test_duplicates_and_late_deliveries(crisis: Sim) -> None:
    by_id = Counter(m.id for m in crisis.mentions)
    dups = sum(n - 1 for n in by_id.values())
    assert dups == crisis.truth.counts.duplicates > 0
    first: dict[str, bytes] = {}
    for line, d in zip(crisis.lines, crisis.decoded, strict=True):
        if isinstance(d, Mention):
            assert first.setdefault(d.id, line) == line  # a duplicate delivery is the same bytes
    high, late, very_late = 0.0, 0, 0
    for m in crisis.mentions:
        behind = high - m.ts
        late += behind > 90
        very_late += behind > 1800
        high = max(high, m.ts)
    assert late > 0.01 * len(crisis.mentions)
    assert very_late > 0


def test_troll(crisis: Sim) -> None:
    (troll,) = [d for d in crisis.truth.distractors if d.kind == "troll"]
    posts = [m for m in crisis.unique.values() if m.author_id == troll.author_id]
    assert 140 <= len(posts) <= 160 and troll.brand == TROLL_BRAND
    assert max(m.ts for m in posts) - min(m.ts for m in posts) <= 3600
    assert all(crisis.category[m.id] in NEGATIVE for m in posts)


def test_celebrity_viral_post(crisis: Sim) -> None:
    (celeb,) = [d for d in crisis.truth.distractors if d.kind == "celebrity"]
    post = crisis.unique[celeb.post_id]
    assert post.shares >= 40_000 and post.followers >= 3_000_000
    reactions = [m for m in crisis.unique.values() if m.in_reply_to == post.id and not m.is_brand]
    assert len(reactions) > 50
    assert max(m.ts for m in reactions) - post.ts <= 90 * MIN
    positive_or_neutral = sum(crisis.category[m.id] not in NEGATIVE for m in reactions) / len(reactions)
    assert positive_or_neutral > 0.8


def test_positive_campaign(crisis: Sim) -> None:
    (camp,) = [d for d in crisis.truth.distractors if d.kind == "campaign"]
    lo = parse_event_time(camp.start) + 20 * MIN
    hi = lo + 120 * MIN
    during = crisis.customer(camp.brand, lo, hi)
    next_day = crisis.customer(camp.brand, lo + 86400, hi + 86400)
    assert len(during) > 2.5 * len(next_day)
    assert sum(crisis.category[m.id] in POSITIVE for m in during) / len(during) > 0.6


def test_growth_and_sparse_brands(normal: Sim) -> None:
    start = parse_event_time(normal.truth.start)
    days = [len(normal.customer("wolt", start + d * 86400, start + (d + 1) * 86400)) for d in range(4)]
    assert days[-1] > 1.2 * days[0]
    sparse = sorted(m.ts for m in normal.customer("makpetrol"))
    gaps = np.diff(sparse) / MIN
    assert 1.5 < float(np.mean(gaps)) < 6  # about one mention every few minutes


def test_normal_week_has_distractors_but_no_crisis(normal: Sim) -> None:
    assert normal.truth.crisis is None
    assert {d.kind for d in normal.truth.distractors} == {"troll", "celebrity", "campaign", "growth", "sparse"}
    assert not any(cat.startswith("cr_") for cat in normal.category.values())


def test_distractors_repeat_every_week_over_four_weeks() -> None:
    plan = make_plan("normal", 28, seed=1)
    kinds = Counter(p.kind for p in plan.pulses)
    assert kinds == {"troll": 4, "celebrity": 4, "campaign": 4}


def test_start_and_scale() -> None:
    plan = make_plan("ash-crisis", 3, seed=0, start=date(2011, 1, 3))
    assert plan.crisis is not None
    assert plan.crisis.onset_ms > plan.start_ms + 2 * 86400_000  # on the last day
    small = simulate("normal", days=1, seed=0, scale=0.05).truth.counts.events
    big = simulate("normal", days=1, seed=0, scale=0.2).truth.counts.events
    assert 3 < big / small < 5


def test_cli(tmp_path, capsys) -> None:
    assert cli_main(["simulate", "tsunami"]) == 2
    assert "tsunami" in capsys.readouterr().err
    assert cli_main(["simulate", "normal", "--days", "0"]) == 2
    assert cli_main(["simulate", "normal", "--start", "yesterday"]) == 2
    out, truth = tmp_path / "s.jsonl", tmp_path / "t.json"
    args = ["simulate", "ash-crisis", "--days", "1", "--seed", "5", "--scale", "0.02", "-o", str(out)]
    assert cli_main([*args, "--truth", str(truth)]) == 0
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b"" and lines[:-1] == list(generate("ash-crisis", days=1, seed=5, scale=0.02))
    t = msgspec.json.decode(truth.read_bytes())
    assert t["crisis"]["brand"] == "klm" and t["counts"]["lines"] == len(lines) - 1


def test_help_gives_the_scale_the_demo_uses(capsys) -> None:
    from daemon.demo import DEMO_SCALE

    with pytest.raises(SystemExit):
        cli_main(["simulate", "--help"])
    assert f"the demo uses {DEMO_SCALE:g})" in " ".join(capsys.readouterr().out.split())


@pytest.mark.slow
def test_a_week_of_ash_crisis_has_a_million_events() -> None:
    sim = simulate("ash-crisis", days=7, seed=0)
    assert sim.truth.counts.lines >= 1_000_000


def test_tiny_scale_still_yields_a_valid_stream() -> None:
    sim = simulate("ash-crisis", days=1, seed=1, scale=0.00001)  # the quiet brand and the troll remain
    lines = list(sim.lines())
    assert len(lines) == sim.truth.counts.lines > 100
    assert sum(isinstance(decode(x), InvalidEvent) for x in lines) == sim.truth.counts.garbage


def test_crisis_texts_are_varied_not_copies(crisis: Sim) -> None:
    # many people write about the same thing, but identical texts from many accounts would be a
    # coordinated campaign, which the detectors must tell apart from a customer crisis
    peak = parse_event_time(crisis.truth.crisis.peak)
    for lo in np.arange(peak, peak + 120 * MIN, 10 * MIN):
        ms = [m for m in crisis.customer("klm", lo, lo + 10 * MIN) if m.kind != "share"]
        most = Counter(m.text for m in ms).most_common(1)[0][1]
        assert most < 0.02 * len(ms), (most, len(ms))


def test_coordinated_campaign_scenario() -> None:
    sim = Sim(simulate("coordinated", days=2, seed=6, scale=0.2))
    assert sim.truth.crisis is None
    (coord,) = [d for d in sim.truth.distractors if d.kind == "coordinated"]
    posts = [m for m in sim.unique.values() if sim.category[m.id] == "coordinated"]
    assert len(posts) == int(coord.size) >= 100 and {m.brand for m in posts} == {coord.brand}
    start = parse_event_time(coord.start)
    assert all(start <= m.ts < start + 30 * MIN for m in posts)
    assert len({m.author_id for m in posts}) > 0.5 * len(posts)  # many accounts...
    skeletons = {" ".join(re.sub(r"[@#]\w+|[^\w\s]|klm", " ", m.text.lower()).split()) for m in posts}
    assert len(skeletons) <= 2  # ...posting near-copies (one message per language)
    assert max(m.followers or 0 for m in posts) < 40  # fresh accounts
    assert {d.kind for d in sim.truth.distractors} >= {"troll", "celebrity", "campaign"}


def test_texts_include_empty_captions_and_multiline_emails(crisis: Sim) -> None:
    ms = list(crisis.unique.values())
    assert any(m.text == "" for m in ms)
    emails = [m for m in ms if m.platform == "email"]
    assert emails and all("\n\n" in m.text for m in emails)
