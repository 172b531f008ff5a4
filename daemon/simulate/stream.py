"""Building the stream: volumes and event attributes vectorised with numpy, then texts and JSON per line.

Three steps, all driven by one seeded numpy generator:

1. counts per brand and minute: mean rate x diurnal x weekly seasonality (local time) x growth x a
   slow hourly wander, then gamma-Poisson (negative binomial) counts; the crisis, the campaign, the
   troll and the celebrity add their own events;
2. brand replies through a first-come-first-served queue with a staffed capacity per minute (so a
   crisis makes replies fall behind), ids in time order, delivery delays (late events), duplicate
   deliveries and garbage lines, all as arrays;
3. rendering in delivery order: texts from templates, JSON with msgspec.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from daemon.simulate.scenario import (
    BRAND_INDEX,
    BRANDS,
    DIURNAL,
    GROWTH_BRAND,
    SPARSE_BRAND,
    BrandSpec,
    BrandTruth,
    Counts,
    CrisisTruth,
    DistractorTruth,
    Plan,
    Pulse,
    Truth,
    rfc3339,
)
from daemon.simulate.text import LANGS, Texts
from daemon.simulate.vocab import CRISIS_TERMS

CATEGORIES = (
    "complaint", "question_neg", "feedback_neg", "question", "feedback", "praise", "other",
    "cr_complaint", "cr_question", "cr_info", "reply", "cr_reply", "troll", "celeb_post",
    "celeb_pos", "celeb_neu", "campaign", "brand_post", "coordinated",
)  # fmt: skip
CAT = {name: i for i, name in enumerate(CATEGORIES)}
NEGATIVE = frozenset({"complaint", "question_neg", "feedback_neg", "cr_complaint", "troll", "coordinated"})
POSITIVE = frozenset({"praise", "celeb_post", "celeb_pos", "campaign", "brand_post"})
INTENT = {
    "complaint": "complaint", "question_neg": "question", "feedback_neg": "feedback", "question": "question",
    "feedback": "feedback", "praise": "praise", "other": "other", "cr_complaint": "complaint",
    "cr_question": "question", "cr_info": "other", "reply": "other", "cr_reply": "other",
    "troll": "complaint", "celeb_post": "praise", "celeb_pos": "praise", "celeb_neu": "other",
    "campaign": "praise", "brand_post": "other", "coordinated": "complaint",
}  # fmt: skip
CRISIS_CATS = frozenset({"cr_complaint", "cr_question", "cr_info"})
PLATFORMS = ("twitter", "facebook", "instagram", "email", "whatsapp", "vk")
KINDS = ("post", None, "comment", "reply", "direct_message", "share")  # None: a post with `kind` left out
_K_POST, _K_BARE, _K_COMMENT, _K_REPLY, _K_DM, _K_SHARE = range(6)

MINUTE = 60_000
HOUR = 3_600_000
POOL = 400_000  # customer accounts
TROLL_AUTHOR = POOL + 1
CELEB_AUTHOR = POOL + 2
COORD_AUTHORS = POOL + 100  # first of the campaign's fresh accounts
N_AUTHORS = COORD_AUTHORS + 2000
BRAND_AUTHOR = -1
GAMMA_SHAPE = 12.0  # minute-level overdispersion: var = mean + mean^2 / shape
LATE_SHARE = 0.03
VERY_LATE_SHARE = 0.003
DUPLICATE_SHARE = 0.004
# Probability that the brand answers a customer mention, by category.
_REPLY_P = {"complaint": 0.7, "question_neg": 0.7, "feedback_neg": 0.4, "question": 0.5, "feedback": 0.15,
            "praise": 0.1, "cr_complaint": 0.45, "cr_question": 0.45, "celeb_post": 1.0, "campaign": 0.03}  # fmt: skip
REPLY_P = np.array([_REPLY_P.get(c, 0.0) for c in CATEGORIES])
_DTYPES = {"brand": np.int8, "cat": np.int8, "lang": np.int8, "plat": np.int8, "kind": np.int8,
           "author": np.int32, "parent": np.int32, "shares": np.int32}  # fmt: skip
GARBAGE_KINDS = (
    "truncated", "not_json", "array", "missing_id", "missing_author", "created_at_bool",
    "followers_string", "bad_timestamp", "empty_id", "invalid_utf8", "platform_upper", "text_number",
)  # fmt: skip


def _background_probs(negative_share: float) -> np.ndarray:
    ns = negative_share
    p = np.zeros(len(CATEGORIES))
    for name, share in (("complaint", 0.62), ("question_neg", 0.2), ("feedback_neg", 0.18)):
        p[CAT[name]] = ns * share
    for name, share in (("question", 0.32), ("feedback", 0.12), ("praise", 0.22), ("other", 0.34)):
        p[CAT[name]] = (1 - ns) * share
    return p / p.sum()


CRISIS_MIX = {"cr_complaint": 0.74, "cr_question": 0.20, "cr_info": 0.06}


class _Parts:
    """Columns of events collected part by part, concatenated once."""

    names = ("brand", "ts", "cat", "lang", "plat", "author", "parent", "kind", "shares")

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {n: [] for n in self.names}
        self.n = 0

    def add(self, **cols: np.ndarray | int) -> None:
        sizes = {np.size(v) for v in cols.values() if np.ndim(v) > 0}
        size = sizes.pop() if sizes else 1
        if size == 0:
            return
        for name in self.names:
            v = cols.get(name, -1)
            dtype = _DTYPES.get(name, np.int64)
            self.cols[name].append(np.broadcast_to(np.asarray(v).astype(dtype), (size,)).copy())
        self.n += size

    def arrays(self) -> dict[str, np.ndarray]:
        for name, chunks in self.cols.items():  # one chunk per column afterwards: no second copy kept
            if len(chunks) != 1:
                self.cols[name] = [np.concatenate(chunks) if chunks else np.zeros(0, _DTYPES.get(name, np.int64))]
        return {n: v[0] for n, v in self.cols.items()}

    def clear(self) -> None:
        self.cols = {n: [] for n in self.names}


def _choice(rng: np.random.Generator, probs: dict[str, float], names: tuple[str, ...], n: int) -> np.ndarray:
    keys = list(probs)
    p = np.array([probs[k] for k in keys], dtype=np.float64)
    codes = np.array([names.index(k) for k in keys])
    return codes[rng.choice(len(keys), size=n, p=p / p.sum())]


def _utc_offsets_ms(tz: str, start_ms: int, hours: int) -> np.ndarray:
    zone = ZoneInfo(tz)
    out = np.empty(hours, dtype=np.int64)
    for h in range(hours):
        t = datetime.fromtimestamp((start_ms + h * HOUR) / 1000, UTC).astimezone(zone)
        off = t.utcoffset()
        out[h] = int(off.total_seconds() * 1000) if off is not None else 0
    return out


class Stream:
    """A generated stream: the ground truth at once, the lines on demand (`lines()`)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._texts = Texts()
        self._text_cache: dict[int, str] = {}
        self._celeb_rows: list[int] = []
        rng = np.random.default_rng([plan.seed, 1])
        self._build(rng)

    # ---- step 1: events -----------------------------------------------------------------------

    def _build(self, rng: np.random.Generator) -> None:
        plan = self.plan
        n_min = (plan.end_ms - plan.start_ms) // MINUTE
        hours = n_min // 60 + 2
        t_min = plan.start_ms + np.arange(n_min, dtype=np.int64) * MINUTE
        self._offsets = np.stack([_utc_offsets_ms(b.tz, plan.start_ms, hours) for b in BRANDS])
        parts = _Parts()
        smooth_rates = np.zeros((len(BRANDS), n_min))
        crisis = plan.crisis
        for bi, spec in enumerate(BRANDS):
            off = self._offsets[bi][(t_min - plan.start_ms) // HOUR]
            local_h = (t_min + off + MINUTE // 2) / HOUR
            hod = local_h % 24
            dow = ((local_h // 24).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
            diurnal = np.interp(hod, np.arange(24) + 0.5, DIURNAL[spec.diurnal], period=24)
            weekly = np.asarray(spec.weekly)[dow]
            growth = 1.0 + spec.growth_per_day * (t_min - plan.start_ms) / (24 * HOUR)
            scale = plan.scale if spec.scaled else 1.0
            smooth = spec.per_minute * scale * diurnal * weekly * growth
            wander = np.zeros(hours)  # slow AR(1) wander of the level, hour by hour
            shocks = rng.normal(0.0, 0.08, hours)
            for h in range(1, hours):
                wander[h] = 0.8 * wander[h - 1] + shocks[h]
            rate = smooth * np.exp(wander[(t_min - plan.start_ms) // HOUR])
            smooth_rates[bi] = smooth
            counts = rng.poisson(rate * rng.gamma(GAMMA_SHAPE, 1.0 / GAMMA_SHAPE, n_min))
            self._add_customers(rng, parts, bi, np.repeat(t_min, counts), _background_probs(spec.negative_share))
            if crisis is not None and crisis.brand == spec.key:
                extra = rate * (crisis.multiplier(t_min + MINUTE // 2) - 1.0)
                counts = rng.poisson(extra * rng.gamma(GAMMA_SHAPE, 1.0 / GAMMA_SHAPE, n_min))
                probs = np.zeros(len(CATEGORIES))
                for name, share in CRISIS_MIX.items():
                    probs[CAT[name]] = share
                self._add_customers(rng, parts, bi, np.repeat(t_min, counts), probs)
            for pulse in plan.pulses:
                if pulse.brand == spec.key and pulse.kind == "campaign":
                    self._add_campaign(rng, parts, bi, pulse, t_min, rate)
        for pulse in plan.pulses:
            if pulse.kind == "troll":
                self._add_troll(rng, parts, pulse)
            elif pulse.kind == "celebrity":
                self._add_celebrity(rng, parts, pulse)
            elif pulse.kind == "coordinated":
                self._add_coordinated(rng, parts, pulse)
        cols = parts.arrays()
        n_customer = parts.n
        self._add_replies(rng, parts, cols, smooth_rates)
        del cols
        cols = parts.arrays()
        parts.clear()
        self._finish(rng, cols, n_customer)  # empties `cols` as it goes

    def _add_customers(
        self, rng: np.random.Generator, parts: _Parts, bi: int, minute_ts: np.ndarray, cat_probs: np.ndarray
    ) -> None:
        n = minute_ts.size
        if n == 0:
            return
        spec = BRANDS[bi]
        ts = minute_ts + rng.integers(0, MINUTE, n)
        cat = rng.choice(len(CATEGORIES), size=n, p=cat_probs)
        lang = _choice(rng, spec.langs, LANGS, n)
        plat = _choice(rng, spec.platforms, PLATFORMS, n)
        author = (POOL * rng.random(n) ** 1.3).astype(np.int64)  # a few accounts post often
        parts.add(brand=bi, ts=ts, cat=cat, lang=lang, plat=plat, author=author, kind=self._kinds(rng, plat))

    @staticmethod
    def _kinds(rng: np.random.Generator, plat: np.ndarray) -> np.ndarray:
        u = rng.random(plat.size)
        kind = np.where(u < 0.5, _K_BARE, _K_POST)
        tw = plat == PLATFORMS.index("twitter")
        kind = np.where(tw & (u > 0.85), _K_SHARE, kind)
        kind = np.where(tw & (u > 0.95), _K_DM, kind)
        kind = np.where((plat == PLATFORMS.index("facebook")) & (u < 0.6), _K_COMMENT, kind)
        kind = np.where((plat == PLATFORMS.index("instagram")) & (u < 0.8), _K_COMMENT, kind)
        kind = np.where((plat == PLATFORMS.index("vk")) & (u < 0.3), _K_COMMENT, kind)
        dm = (plat == PLATFORMS.index("email")) | (plat == PLATFORMS.index("whatsapp"))
        return np.where(dm, _K_DM, kind)

    def _add_campaign(
        self, rng: np.random.Generator, parts: _Parts, bi: int, pulse: Pulse, t_min: np.ndarray, rate: np.ndarray
    ) -> None:
        x = (t_min + MINUTE // 2 - pulse.start_ms).astype(np.float64)
        ramp = np.clip(x / (15 * MINUTE), 0.0, 1.0)
        decay = np.exp(-np.maximum(x - 150 * MINUTE, 0.0) / (40 * MINUTE))
        extra = np.where((x >= 0) & (t_min < pulse.end_ms), rate * (pulse.size - 1.0) * ramp * decay, 0.0)
        minute_ts = np.repeat(t_min, rng.poisson(extra))
        n = minute_ts.size
        spec = BRANDS[bi]
        probs = _background_probs(spec.negative_share) * 0.15
        probs[CAT["campaign"]] += 0.85
        ts = minute_ts + rng.integers(0, MINUTE, n)
        plat = _choice(rng, {"twitter": 0.55, "instagram": 0.3, "facebook": 0.15}, PLATFORMS, n)
        shares = np.where(rng.random(n) < 0.5, rng.geometric(0.3, n) - 1, -1)
        parts.add(
            brand=bi, ts=ts, cat=rng.choice(len(CATEGORIES), size=n, p=probs),
            lang=_choice(rng, {"nl": 0.75, "en": 0.25}, LANGS, n), plat=plat,
            author=(POOL * rng.random(n) ** 1.3).astype(np.int64), kind=self._kinds(rng, plat), shares=shares,
        )  # fmt: skip
        parts.add(
            brand=bi, ts=pulse.start_ms, cat=CAT["brand_post"], lang=LANGS.index("nl"),
            plat=PLATFORMS.index("twitter"), author=BRAND_AUTHOR, kind=_K_POST, shares=int(rng.integers(50, 400)),
        )  # fmt: skip

    def _add_troll(self, rng: np.random.Generator, parts: _Parts, pulse: Pulse) -> None:
        n = int(pulse.size)
        ts = np.sort(pulse.start_ms + rng.integers(0, pulse.end_ms - pulse.start_ms, n))
        parts.add(
            brand=BRAND_INDEX[pulse.brand], ts=ts, cat=CAT["troll"],
            lang=_choice(rng, {"hr": 0.8, "en": 0.2}, LANGS, n), plat=PLATFORMS.index("twitter"),
            author=TROLL_AUTHOR, kind=_K_BARE,
        )  # fmt: skip

    def _add_celebrity(self, rng: np.random.Generator, parts: _Parts, pulse: Pulse) -> None:
        bi = BRAND_INDEX[pulse.brand]
        tw = PLATFORMS.index("twitter")
        self._celeb_rows.append(parts.n)
        post = parts.n
        parts.add(
            brand=bi, ts=pulse.start_ms, cat=CAT["celeb_post"], lang=LANGS.index("en"), plat=tw,
            author=CELEB_AUTHOR, kind=_K_POST, shares=int(rng.integers(40_000, 60_000)),
        )  # fmt: skip
        n = int(rng.poisson(pulse.size))
        delay = rng.exponential(12 * MINUTE, n).astype(np.int64) + 5_000
        keep = delay < pulse.end_ms - pulse.start_ms
        n = int(keep.sum())
        spec = BRANDS[bi]
        cat = _choice(rng, {"celeb_pos": 0.6, "celeb_neu": 0.3, "complaint": 0.1}, CATEGORIES, n)
        comment = rng.random(n) < 0.7
        parts.add(
            brand=bi, ts=pulse.start_ms + delay[keep], cat=cat, lang=_choice(rng, spec.langs, LANGS, n), plat=tw,
            author=(POOL * rng.random(n) ** 1.3).astype(np.int64), kind=np.where(comment, _K_COMMENT, _K_SHARE),
            parent=np.where(comment, post, -1),
        )  # fmt: skip

    def _add_coordinated(self, rng: np.random.Generator, parts: _Parts, pulse: Pulse) -> None:
        n = int(pulse.size)
        accounts = round(n / 1.25)  # every account posts once, a quarter of them twice
        who = np.concatenate([np.arange(accounts), rng.choice(accounts, n - accounts, replace=False)])
        ts = pulse.start_ms + np.sort(rng.integers(0, pulse.end_ms - pulse.start_ms, n))
        parts.add(
            brand=BRAND_INDEX[pulse.brand], ts=ts, cat=CAT["coordinated"],
            lang=_choice(rng, {"en": 0.7, "nl": 0.3}, LANGS, n), plat=PLATFORMS.index("twitter"),
            author=COORD_AUTHORS + rng.permutation(who), kind=_K_BARE,
        )  # fmt: skip

    # ---- step 2: replies, ids, delivery -------------------------------------------------------

    def _add_replies(
        self, rng: np.random.Generator, parts: _Parts, cols: dict[str, np.ndarray], smooth_rates: np.ndarray
    ) -> None:
        plan = self.plan
        n_min = smooth_rates.shape[1]
        wants = (rng.random(cols["ts"].size) < REPLY_P[cols["cat"]]) & (cols["author"] != BRAND_AUTHOR)
        t_min = plan.start_ms + np.arange(n_min, dtype=np.int64) * MINUTE
        for bi, spec in enumerate(BRANDS):
            idx = np.flatnonzero(wants & (cols["brand"] == bi))
            if idx.size == 0:
                continue
            idx = idx[np.argsort(cols["ts"][idx], kind="stable")]
            arrivals = np.bincount((cols["ts"][idx] - plan.start_ms) // MINUTE, minlength=n_min)[:n_min]
            mean_p = float(_background_probs(spec.negative_share) @ REPLY_P)
            hourly = smooth_rates[bi].reshape(-1, 60).mean(axis=1) if n_min % 60 == 0 else smooth_rates[bi]
            staffed = np.repeat(hourly, 60)[:n_min] if n_min % 60 == 0 else hourly
            capacity = np.maximum(1.3 * mean_p * staffed, 0.05)
            if plan.crisis is not None and plan.crisis.brand == spec.key:  # call-ins arrive after 90 minutes
                surge = np.clip((t_min - plan.crisis.onset_ms - 90 * MINUTE) / (60 * MINUTE), 0.0, 1.0)
                capacity = capacity * (1.0 + surge)
            x = np.cumsum(arrivals - capacity)
            backlog = x - np.minimum(np.minimum.accumulate(x), 0.0)  # Lindley recursion, vectorised
            served = np.cumsum(arrivals) - backlog
            k = np.arange(1, idx.size + 1, dtype=np.float64)
            minute = np.searchsorted(served, k - 1e-6)
            ok = minute < n_min
            idx, minute = idx[ok], minute[ok]
            start = plan.start_ms + minute * MINUTE + rng.integers(0, MINUTE, idx.size)
            handling = (rng.lognormal(np.log(5.0), 0.6, idx.size) * MINUTE).astype(np.int64)
            ts = np.maximum(start, cols["ts"][idx]) + handling
            ok = ts < plan.end_ms
            idx, ts = idx[ok], ts[ok]
            crisis_parent = np.isin(cols["cat"][idx], [CAT[c] for c in CRISIS_CATS])
            parts.add(
                brand=bi, ts=ts, cat=np.where(crisis_parent, CAT["cr_reply"], CAT["reply"]), lang=cols["lang"][idx],
                plat=cols["plat"][idx], author=BRAND_AUTHOR, parent=idx, kind=_K_REPLY,
            )  # fmt: skip

    def _finish(self, rng: np.random.Generator, cols: dict[str, np.ndarray], n_customer: int) -> None:
        plan = self.plan
        order = np.argsort(cols["ts"], kind="stable")
        new_pos = np.empty_like(order)
        new_pos[order] = np.arange(order.size)
        c = {}
        for k in list(cols):  # column by column, so the peak memory stays near one copy
            c[k] = cols.pop(k)[order]
        c["parent"] = np.where(c["parent"] >= 0, new_pos[np.maximum(c["parent"], 0)], -1)
        n = order.size
        self.celeb_posts = sorted(int(new_pos[i]) for i in self._celeb_rows)
        # ids in time order, unique per platform
        seq = np.zeros(n, dtype=np.int64)
        for p in range(len(PLATFORMS)):
            m = c["plat"] == p
            seq[m] = np.arange(int(m.sum()))
        c["seq"] = seq
        c["r"] = rng.integers(0, 2**63, n, dtype=np.int64)
        c["has_lang"] = (rng.random(n) >= 0.13) & (c["plat"] != PLATFORMS.index("email"))
        c["has_url"] = rng.random(n) < np.array([0.4, 0.3, 0.5, 0.0, 0.0, 0.3])[c["plat"]]
        polarity = np.array([(-1 if x in NEGATIVE else 1 if x in POSITIVE else 0) for x in CATEGORIES])[c["cat"]]
        senti = np.clip(polarity * rng.uniform(0.3, 0.9, n) + rng.normal(0, 0.08, n), -1, 1).round(2)
        # hundredths, -128 = absent (keeps the column small)
        c["sentiment"] = np.where(
            (c["plat"] == PLATFORMS.index("facebook")) & (rng.random(n) < 0.12), (senti * 100).round(), -128
        ).astype(np.int8)
        followers = np.exp(rng.normal(4.6, 1.6, N_AUTHORS)).astype(np.int64)
        followers[COORD_AUTHORS:] = rng.integers(0, 40, N_AUTHORS - COORD_AUTHORS)  # fresh accounts
        followers[TROLL_AUTHOR], followers[CELEB_AUTHOR] = 37, int(rng.integers(3_000_000, 6_000_000))
        f = followers[np.maximum(c["author"], 0)]
        brand_f = np.array([b.followers for b in BRANDS])[c["brand"]]
        f = np.where(c["author"] == BRAND_AUTHOR, brand_f, f)
        no_f = (c["plat"] == PLATFORMS.index("email")) | (c["plat"] == PLATFORMS.index("whatsapp"))
        c["followers"] = np.where(no_f, -1, f).astype(np.int32)
        if c["shares"].size:
            tw_post = (c["plat"] == PLATFORMS.index("twitter")) & (c["shares"] < 0) & (rng.random(n) < 0.3)
            tw_post &= c["author"] != BRAND_AUTHOR
            c["shares"] = np.where(tw_post, np.floor(np.exp(rng.normal(0, 1.2, n))).astype(np.int64) - 1, c["shares"])
            c["shares"] = np.where(c["shares"] < 0, -1, c["shares"])
        self.cols = c
        # delivery: most within seconds, a few minutes late, a small share hours late
        u = rng.random(n)
        delay = rng.exponential(1500.0, n).astype(np.int64)
        late = u < LATE_SHARE
        very_late = (u >= LATE_SHARE) & (u < LATE_SHARE + VERY_LATE_SHARE)
        delay = np.where(late, rng.integers(90_000, 15 * MINUTE, n), delay)
        delay = np.where(very_late, rng.integers(30 * MINUTE, 8 * HOUR, n), delay)
        delivery = c["ts"] + delay
        dup = np.flatnonzero(rng.random(n) < DUPLICATE_SHARE)
        redo = np.where(
            rng.random(dup.size) < 0.8,
            1000 + rng.exponential(20_000.0, dup.size).astype(np.int64),
            rng.integers(5 * MINUTE, 2 * HOUR, dup.size),
        )
        n_garbage = 3 + 2 * plan.days
        g_kind = np.resize(rng.permutation(len(GARBAGE_KINDS)), n_garbage)
        g_ref = rng.integers(0, max(n, 1), n_garbage)
        g_time = rng.integers(plan.start_ms, plan.end_ms, n_garbage)
        src = np.concatenate([np.arange(n), dup, g_ref]) if n else np.zeros(0, np.int64)
        flag = np.concatenate([np.zeros(n, np.int64), np.ones(dup.size, np.int64), 2 + g_kind])
        when = np.concatenate([delivery, delivery[dup] + redo, g_time])
        row = np.argsort(when, kind="stable")
        self._row_src, self._row_flag = src[row], flag[row]
        self.truth = self._truth(n_customer, late, very_late, dup.size, g_kind)

    # ---- ground truth ---------------------------------------------------------------------------

    def _truth(self, n_customer: int, late: np.ndarray, very_late: np.ndarray, n_dup: int, g_kind: np.ndarray) -> Truth:
        plan, c = self.plan, self.cols
        counts = Counts(
            lines=int(self._row_src.size),
            events=int(c["ts"].size),
            customer=int((c["author"] != BRAND_AUTHOR).sum()),
            replies=int((c["kind"] == _K_REPLY).sum()),
            duplicates=n_dup,
            late=int(late.sum()),
            very_late=int(very_late.sum()),
            garbage=int(g_kind.size),
            garbage_kinds={k: int((g_kind == i).sum()) for i, k in enumerate(GARBAGE_KINDS) if (g_kind == i).any()},
            without_lang=int((~c["has_lang"]).sum()),
            by_brand={b.key: int((c["brand"] == i).sum()) for i, b in enumerate(BRANDS)},
        )
        crisis = None
        replies: dict[str, float] = {}
        if plan.crisis is not None:
            cp = plan.crisis
            neg = sum(CRISIS_MIX[k] for k in CRISIS_MIX if k in NEGATIVE)
            base_neg = BRANDS[BRAND_INDEX[cp.brand]].negative_share
            share = ((cp.peak_multiplier - 1) * neg + base_neg) / cp.peak_multiplier
            crisis = CrisisTruth(
                brand=cp.brand,
                onset=rfc3339(cp.onset_ms),
                peak=rfc3339(cp.peak_ms),
                end=rfc3339(min(cp.end_ms, plan.end_ms)),
                peak_multiplier=cp.peak_multiplier,
                ramp_minutes=cp.ramp_ms // MINUTE,
                negative_share_at_peak=round(share, 3),
                terms={k: list(v) for k, v in CRISIS_TERMS.items()},
            )
            replies = self.reply_minutes(cp.brand, cp.onset_ms - 24 * HOUR, cp.onset_ms, "before")
            replies |= self.reply_minutes(cp.brand, cp.onset_ms, cp.onset_ms + 3 * HOUR, "during")
        else:
            replies = self.reply_minutes("klm", plan.start_ms, plan.end_ms, "all")
        distractors = []
        for p in plan.pulses:
            author = post = None
            if p.kind == "troll":
                author, detail = f"u:{TROLL_AUTHOR}", f"{int(p.size)} negative posts by one author within an hour"
            elif p.kind == "celebrity":
                author = f"u:{CELEB_AUTHOR}"
                posts = [i for i in self.celeb_posts if int(c["ts"][i]) == p.start_ms]
                post = self.event_id(posts[0]) if posts else None
                detail = "viral post, then a short burst of mostly neutral/positive reactions"
            elif p.kind == "coordinated":
                detail = f"{int(p.size)} near-identical negative posts from {round(p.size / 1.25)} new accounts"
            else:
                detail = f"positive campaign, volume x{p.size} for about 3 hours"
            distractors.append(
                DistractorTruth(p.kind, p.brand, rfc3339(p.start_ms), rfc3339(p.end_ms), detail, author, post, p.size)
            )
        g = BRANDS[BRAND_INDEX[GROWTH_BRAND]]
        distractors.append(
            DistractorTruth(
                "growth", g.key, rfc3339(plan.start_ms), rfc3339(plan.end_ms),
                f"volume grows linearly by {g.growth_per_day:.0%} of the first day per day",
                size=round(1 + g.growth_per_day * plan.days, 2),
            )
        )  # fmt: skip
        s = BRANDS[BRAND_INDEX[SPARSE_BRAND]]
        distractors.append(
            DistractorTruth(
                "sparse", s.key, rfc3339(plan.start_ms), rfc3339(plan.end_ms),
                f"about one mention every {1 / s.per_minute:.0f} minutes", size=s.per_minute,
            )
        )  # fmt: skip
        brands = [
            BrandTruth(
                b.key, b.tz, b.domain, round(b.per_minute * (plan.scale if b.scaled else 1.0), 3), b.negative_share,
                b.langs,
            )
            for b in BRANDS
        ]  # fmt: skip
        return Truth(
            scenario=plan.scenario, seed=plan.seed, days=plan.days, scale=plan.scale, start=rfc3339(plan.start_ms),
            end=rfc3339(plan.end_ms), crisis=crisis, distractors=distractors, brands=brands, counts=counts,
            reply_minutes=replies,
        )  # fmt: skip

    def reply_minutes(self, brand: str, lo_ms: int, hi_ms: int, label: str) -> dict[str, float]:
        """Median brand response time (minutes) to customer mentions created in [lo, hi), and the share
        of those mentions answered before the stream ends."""
        c = self.cols
        bi = BRAND_INDEX[brand]
        reply = (c["kind"] == _K_REPLY) & (c["brand"] == bi)
        parents = c["parent"][reply]
        wait = (c["ts"][reply] - c["ts"][parents]) / MINUTE
        in_win = (c["ts"][parents] >= lo_ms) & (c["ts"][parents] < hi_ms)
        asked = (c["brand"] == bi) & (c["ts"] >= lo_ms) & (c["ts"] < hi_ms) & (c["author"] != BRAND_AUTHOR)
        asked_n = int((asked & (REPLY_P[c["cat"]] > 0)).sum())
        median = float(np.median(wait[in_win])) if in_win.any() else 0.0
        return {label: round(median, 1), f"{label}_answered_share": round(int(in_win.sum()) / max(asked_n, 1), 3)}

    def labels(self) -> Iterator[tuple[str, str, str]]:
        """(id, category, intent) of every distinct event, in event-time order: the hidden truth
        behind each text (category names: `CATEGORIES`; negative ones: `NEGATIVE`)."""
        c = self.cols
        for i, cat in enumerate(c["cat"].tolist()):
            name = CATEGORIES[cat]
            yield self.event_id(i), name, INTENT[name]

    # ---- step 3: lines --------------------------------------------------------------------------

    def event_id(self, i: int) -> str:
        c = self.cols
        return _event_id(int(c["plat"][i]), int(c["seq"][i]), int(c["r"][i]), BRANDS[int(c["brand"][i])].key)

    def lines(self, batch: int = 8192) -> Iterator[bytes]:
        """Every line in delivery order (no trailing newline): events, duplicates and garbage."""
        for lo in range(0, self._row_src.size, batch):
            yield from self._render(self._row_src[lo : lo + batch], self._row_flag[lo : lo + batch])

    def _render(self, src: np.ndarray, flag: np.ndarray) -> Iterator[bytes]:
        c = self.cols
        ts = c["ts"][src]
        dt = ts.astype("datetime64[ms]")
        utc_s = np.datetime_as_string(dt, unit="s").tolist()
        utc_ms = np.datetime_as_string(dt, unit="ms").tolist()
        off = self._offsets[c["brand"][src], (ts - self.plan.start_ms) // HOUR]
        local_s = np.datetime_as_string((ts + off).astype("datetime64[ms]"), unit="s").tolist()
        parent = c["parent"][src]
        has_parent = parent >= 0
        p_safe = np.maximum(parent, 0)
        rows = zip(
            flag.tolist(), src.tolist(), ts.tolist(), utc_s, utc_ms, local_s, (off // MINUTE).tolist(),
            c["brand"][src].tolist(), c["plat"][src].tolist(), c["cat"][src].tolist(), c["lang"][src].tolist(),
            c["author"][src].tolist(), c["followers"][src].tolist(), c["kind"][src].tolist(),
            c["shares"][src].tolist(), c["seq"][src].tolist(), c["r"][src].tolist(), c["has_lang"][src].tolist(),
            c["has_url"][src].tolist(), c["sentiment"][src].tolist(), has_parent.tolist(),
            c["plat"][p_safe].tolist(), c["seq"][p_safe].tolist(), c["r"][p_safe].tolist(),
            c["author"][p_safe].tolist(), strict=True,
        )  # fmt: skip
        texts = self._texts
        cache = self._text_cache
        encode = _ENCODER.encode
        for (
            fl, _i, t, us, ums, ls, off_min, b, p, cat, lang, author, followers, kind, shares, seq, r, has_lang,
            has_url, senti, has_par, p_plat, p_seq, p_r, p_author,
        ) in rows:  # fmt: skip
            spec = BRANDS[b]
            key = spec.key
            platform = PLATFORMS[p]
            if p == 0:
                created: str | int = us + "Z"
            elif p == 2:
                created = ums + "Z"
            elif p == 3:
                created = t
            elif p == 4:
                created = t // 1000
            else:
                created = ls + _offset_str(off_min)
            text_key = (((b << 4) | lang) << 5 | cat) << 12 | ((r >> 24) & 0x7FF)
            text = cache.get(text_key)
            if text is None:
                text = cache[text_key] = _skeleton(texts, spec, lang, cat, (r >> 24) & 0xFFF)
            if "\x01" in text:
                text = text.replace("\x01", spec.handles[(r & 0xFF) % len(spec.handles)])
            if "\x02" in text:
                text = text.replace("\x02", f"{spec.flight_prefix}{100 + ((r >> 8) & 0xFFFF) % 1900}")
            if kind == _K_SHARE:
                text = f"RT @u{(r >> 40) % 90_000}: {text}"
            elif kind == _K_REPLY and p == 0:
                text = f"@u{p_author} {text}"
            elif p == 3:  # e-mails are signed, over several lines
                who = key.upper() if author == BRAND_AUTHOR else f"u{author}"
                text = f"{text}\n\n{_SIGN_OFF[lang]},\n{who}"
            elif p == 2 and cat == _CAT_OTHER and (r >> 50) & 7 == 0:
                text = ""  # a photo without a caption
            if author == BRAND_AUTHOR:
                auth = _Author(f"brand:{key}", followers if followers >= 0 else None, True)
            else:
                auth = _Author(f"u:{author}", followers if followers >= 0 else None)
            tag = _LANG_TAGS[lang][(r >> 20) & 1] if has_lang else None
            ev = _Event(
                id=_event_id(p, seq, r, key),
                brand=key.upper() if p == 3 else key,  # one upstream sends the brand upper-case
                platform=platform,
                created_at=created,
                text=text,
                author=auth,
                lang=tag,
                sentiment=None if senti == -128 else senti / 100,
                kind=KINDS[kind],
                in_reply_to=_event_id(p_plat, p_seq, p_r, key) if has_par else None,
                shares=shares if shares >= 0 else None,
                url=_url(p, seq, r, author, key) if has_url else None,
            )
            if fl < 2:
                yield encode(ev)
            else:
                yield _garbage(GARBAGE_KINDS[fl - 2], ev)


def _skeleton(texts: Texts, spec: BrandSpec, lang: int, cat: int, variant: int) -> str:
    """One of 2048 text variants per (brand, language, category), with \\x01 for the brand handle and
    \\x02 for the flight code, which each event fills in: rendering is cached, texts stay varied."""
    r = ((variant + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    r ^= r >> 29
    values = {"b": "\x01", "fl": "\x02", "tag": spec.campaign_tag}
    return texts.render(LANGS[lang], spec.domain, CATEGORIES[cat], r, values)


class _Author(msgspec.Struct, omit_defaults=True):
    id: str
    followers: int | None = None
    is_brand: bool = False


class _Event(msgspec.Struct, omit_defaults=True):
    id: str
    brand: str
    platform: str
    created_at: str | int
    text: str
    author: _Author
    lang: str | None = None
    sentiment: float | None = None
    kind: str | None = None
    in_reply_to: str | None = None
    shares: int | None = None
    url: str | None = None


_ENCODER = msgspec.json.Encoder()
_CAT_OTHER = CAT["other"]
_SIGN_OFF = [
    {"en": "Kind regards", "nl": "Met vriendelijke groet", "sr-Latn": "Srdačan pozdrav", "sr-Cyrl": "Срдачан поздрав",
     "hr": "Lijep pozdrav", "bs": "Srdačan pozdrav", "mk": "Со почит", "ru": "С уважением"}[x]
    for x in LANGS
]  # fmt: skip
_LANG_TAGS = {i: (("sr", "sr-Latn") if x == "sr-Latn" else ("sr", "sr-Cyrl") if x == "sr-Cyrl" else (x, x))
              for i, x in enumerate(LANGS)}  # fmt: skip
_OFFSETS: dict[int, str] = {}


def _offset_str(minutes: int) -> str:
    s = _OFFSETS.get(minutes)
    if s is None:
        sign = "+" if minutes >= 0 else "-"
        s = _OFFSETS[minutes] = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return s


def _event_id(plat: int, seq: int, r: int, brand: str) -> str:
    if plat == 0:
        return f"twitter:{12_000_000_000 + seq * 16 + (r & 15)}"
    if plat == 1:
        return f"facebook:{100_000 + BRAND_INDEX[brand]}_{30_000_000 + seq}"
    if plat == 2:
        return f"instagram:{2_100_000_000 + seq * 4 + (r & 3)}"
    if plat == 3:
        return f"email:msg-{seq:09d}"
    if plat == 4:
        return f"whatsapp:wamid.{0x5A000000 + seq:x}"
    return f"{PLATFORMS[plat]}:{seq}"


def _url(plat: int, seq: int, r: int, author: int, brand: str) -> str:
    if plat == 0:
        who = brand if author == BRAND_AUTHOR else f"u{author}"
        return f"https://twitter.com/{who}/status/{12_000_000_000 + seq * 16 + (r & 15)}"
    if plat == 1:
        return f"https://www.facebook.com/{brand}/posts/{30_000_000 + seq}"
    if plat == 2:
        return f"https://www.instagram.com/p/{np.base_repr(2_100_000_000 + seq * 4 + (r & 3), 36).lower()}/"
    return f"https://vk.com/wall-{100 + BRAND_INDEX[brand]}_{seq}"


def _garbage(kind: str, ev: _Event) -> bytes:
    """One invalid line derived from a real event; every kind is rejected by `daemon.events.decode`."""
    good = _ENCODER.encode(ev)
    obj = msgspec.to_builtins(ev)
    if kind == "truncated":
        return good[: max(1, len(good) * 3 // 5)]
    if kind == "not_json":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "array":
        return b"[" + good + b"]"
    if kind == "missing_id":
        del obj["id"]
    elif kind == "missing_author":
        del obj["author"]
    elif kind == "created_at_bool":
        obj["created_at"] = True
    elif kind == "followers_string":
        obj["author"]["followers"] = "many"
    elif kind == "bad_timestamp":
        obj["created_at"] = "2010-13-45T25:61:00Z"
    elif kind == "empty_id":
        obj["id"] = ""
    elif kind == "invalid_utf8":
        return good.replace(b'"text":"', b'"text":"\xff\xfe', 1)
    elif kind == "platform_upper":
        obj["platform"] = obj["platform"].upper()
    elif kind == "text_number":
        obj["text"] = 404
    return _ENCODER.encode(obj)
