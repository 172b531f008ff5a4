"""Hostile input for the decoder and the pipeline, and an independent oracle of the event contract.

Shared by `tests/fuzz/test_fuzz_pipeline.py` (a few hundred hypothesis examples) and
`bench/fuzz_campaign.py` (>= 100,000 messages). The oracle re-reads docs/mention-event.md with
the standard library's `json`, not msgspec, so the decoder is checked against the contract rather
than against itself:

    >>> oracle_reason(b'{"id":"t:1","brand":"k","platform":"twitter","created_at":0,"text":"","author":{"id":"u"}}')
    >>> oracle_reason(b'[1]')
    'not_an_object'
    >>> oracle_reason(b'\\xff')
    'invalid_utf8'

`Ledger` is the pipeline-level half: what `Pipeline.process` must count for each message
(valid, duplicate, or invalid: decoding, or too far ahead of the stream or of the clock).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

MAX_TEXT_BYTES = 64 * 1024
KINDS = ("post", "comment", "reply", "direct_message", "share")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")

# -- the oracle -----------------------------------------------------------------------------------


class _Bad(Exception):
    pass


def _no_constants(name: str) -> float:
    raise _Bad(name)  # NaN / Infinity are not JSON


def oracle_reason(raw: bytes) -> str | None:
    """None when `raw` is a valid mention event by the contract; else a coarse reason:
    invalid_utf8, not_json, not_an_object, or `field:<name>` for the first bad field."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        obj = _without_surrogates(json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constants))
    except (ValueError, _Bad, RecursionError):
        return "not_json"
    if not isinstance(obj, dict):
        return "not_an_object"
    for name, check in _FIELDS:
        if name in obj:
            if not check(obj[name]):
                return f"field:{name}"
        elif name in _REQUIRED:
            return f"field:{name}"
    return None


def oracle_ts(raw: bytes) -> float:
    """Event time of a message `oracle_reason` accepted."""
    return _event_time(json.loads(raw.decode("utf-8").removeprefix("\ufeff"))["created_at"])


def _without_surrogates(obj: Any) -> Any:
    """A lone \\udXXX escape (half an emoji, cut) is read as U+FFFD."""
    if isinstance(obj, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", obj)
    if isinstance(obj, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without_surrogates(v) for v in obj]
    return obj


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def _str(lo: int, hi: int) -> Any:
    return lambda v: isinstance(v, str) and lo <= len(v) <= hi


def _opt(check: Any) -> Any:
    return lambda v: v is None or check(v)


def _platform(v: Any) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= 64 and v == v.lower() and v.replace("_", "").isalnum()


def _event_time(v: Any) -> float:
    if isinstance(v, str):
        if not _RFC3339.match(v.strip()):
            raise ValueError(v)
        s = v.strip()
        s = s[:-1] + "+00:00" if s[-1] in "Zz" else s
        leap = s[17:19] == "60"  # RFC 3339's leap second
        t = datetime.fromisoformat(s[:17] + "59" + s[19:] if leap else s).timestamp() + leap
        if not 0 <= t < 32503680000:
            raise ValueError(v)
        return t
    if not _is_num(v):
        raise ValueError(v)
    f = float(v)
    f = f / 1000.0 if f > 1e11 else f
    if not 0 <= f < 32503680000:
        raise ValueError(v)
    return f


def _created_at(v: Any) -> bool:
    try:
        _event_time(v)
    except (ValueError, OverflowError, OSError):
        return False
    return True


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v.encode("utf-8")) <= MAX_TEXT_BYTES


def _author(v: Any) -> bool:
    if not isinstance(v, dict):
        return False
    if not (isinstance(v.get("id"), str) and v["id"]):
        return False
    if "followers" in v and not (v["followers"] is None or (_is_int(v["followers"]) and v["followers"] >= 0)):
        return False
    return v.get("is_brand") is None or isinstance(v["is_brand"], bool)


def _nonneg_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


_REQUIRED = {"id", "brand", "platform", "created_at", "text", "author"}
_FIELDS: list[tuple[str, Any]] = [
    ("id", _str(1, 256)),
    ("brand", lambda v: _str(1, 128)(v) and v.strip() != ""),
    ("platform", _platform),
    ("created_at", _created_at),
    ("text", _text),
    ("author", _author),
    ("lang", _opt(lambda v: isinstance(v, str))),
    ("sentiment", _opt(lambda v: _is_num(v) and -1 <= v <= 1)),
    ("kind", _opt(lambda v: v in KINDS)),
    ("in_reply_to", _opt(lambda v: isinstance(v, str))),
    ("shares", _opt(_nonneg_int)),
    ("url", _opt(lambda v: isinstance(v, str))),
]


class Ledger:
    """What the pipeline must count, message by message (mirrors `Pipeline.process`'s order:
    decode, then the future limits against the newest accepted event time and the wall clock
    `now` (the pipeline's, injected), then duplicate ids)."""

    def __init__(self, max_future_seconds: float, max_ahead_of_clock_seconds: float = 0, now: float = 0.0) -> None:
        self.limit = max_future_seconds
        self.clock_limit = now + max_ahead_of_clock_seconds if max_ahead_of_clock_seconds else math.inf
        self.max_ts: float | None = None
        self.ids: set[str] = set()

    def expect(self, raw: bytes) -> str:
        """'valid', 'duplicate', or 'invalid'."""
        if oracle_reason(raw) is not None:
            return "invalid"
        obj = json.loads(raw)
        return self.count(obj["id"], _event_time(obj["created_at"]))

    def count(self, event_id: str, ts: float) -> str:
        """The pipeline-level half for a decoded event."""
        if (self.max_ts is not None and ts > self.max_ts + self.limit) or ts > self.clock_limit:
            return "invalid"
        if event_id in self.ids:
            return "duplicate"
        self.ids.add(event_id)
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
        return "valid"


# -- a seeded corpus ------------------------------------------------------------------------------

BASE_TS = 1271396530  # 2010-04-16T05:42:10Z
BRANDS = ("klm", "bol", "airserbia", "hrtelekom", "aeroflot", "wolt", "makpetrol")
TEXTS = (
    "Flight to Oslo cancelled because of the ash cloud. What now?",
    "Vlucht geannuleerd door de aswolk, niemand neemt op",
    "Let za Beograd je otkazan, ne javljate se na telefon",
    "Лет за Београд је отказан",
    "Рейс отменён, верните деньги",
    "thanks for the quick help!",
    "",
    "🙂 😡 #ash #klm",
)
CATEGORIES = (
    "valid",
    "duplicate_id",
    "random_bytes",
    "truncated_json",
    "wrong_type",
    "missing_field",
    "invalid_utf8",
    "extreme_timestamp",
    "json_not_object",
    "unknown_fields",
    "mutated",
    "huge_text",
)


class Corpus:
    """A seeded stream of (category, message bytes). Valid events advance a shared event-time
    clock by a few seconds each, so the pipeline closes buckets as a real stream does.

    >>> c = Corpus(seed=1)
    >>> msgs = [c.message() for _ in range(200)]
    >>> {cat for cat, _ in msgs} >= {"valid", "random_bytes", "invalid_utf8"}
    True
    >>> again = Corpus(seed=1)
    >>> msgs == [again.message() for _ in range(200)]
    True
    """

    def __init__(self, seed: int, *, huge_every: int = 0, huge_bytes: int = 10 << 20) -> None:
        self.rng = random.Random(seed)
        self.seq = 0
        self.ts = float(BASE_TS)
        self.recent: list[bytes] = []
        self.huge_every = huge_every
        self.huge_bytes = huge_bytes
        self.count = 0

    def warmup(self) -> list[bytes]:
        """One valid event per brand: every brand's windows start at the stream's time."""
        out = []
        for brand in BRANDS:
            obj = self.event()
            obj["brand"], obj["created_at"] = brand, self.ts
            out.append(_enc(obj))
        return out

    def messages(self, n: int) -> Iterator[tuple[str, bytes]]:
        for _ in range(n):
            yield self.message()

    def message(self) -> tuple[str, bytes]:
        self.count += 1
        if self.huge_every and self.count % self.huge_every == 0:
            return "huge_text", self.huge_text()
        r = self.rng.random()
        # about half valid, the rest spread over the kinds of garbage
        cat = "valid" if r < 0.5 else CATEGORIES[1 + int((r - 0.5) / 0.5 * 10)]
        return cat, getattr(self, cat)()

    # -- valid events ------------------------------------------------------------------------------
    def event(self) -> dict[str, Any]:
        rng = self.rng
        self.seq += 1
        self.ts += rng.expovariate(1 / 3.0)
        late = rng.random() < 0.03
        ts = self.ts - (rng.uniform(60, 3 * 3600) if late else 0.0)
        obj: dict[str, Any] = {
            "id": f"{rng.choice(('twitter', 'facebook'))}:{self.seq}",
            "brand": rng.choice(BRANDS) if rng.random() < 0.98 else rng.choice(BRANDS).upper(),
            "platform": rng.choice(("twitter", "facebook", "instagram", "email")),
            "created_at": _fmt_ts(rng, ts),
            "text": rng.choice(TEXTS),
            "author": {"id": f"u:{rng.randrange(5000)}"},
        }
        if rng.random() < 0.5:
            obj["author"]["followers"] = rng.randrange(100_000)
        if rng.random() < 0.1:
            obj["author"]["is_brand"] = True
            obj["in_reply_to"] = f"twitter:{max(1, self.seq - rng.randrange(1, 50))}"
        if rng.random() < 0.7:
            obj["lang"] = rng.choice(("en", "nl", "sr", "sr-Cyrl", "hr", "bs", "mk", "ru", "xx"))
        if rng.random() < 0.1:
            obj["sentiment"] = rng.uniform(-1, 1)
        if rng.random() < 0.2:
            obj["kind"] = rng.choice(KINDS)
        if rng.random() < 0.1:
            obj["shares"] = rng.randrange(1000)
        self.recent = ([*self.recent, _enc(obj)])[-50:]  # bytes: callers may damage `obj`
        return obj

    def valid(self) -> bytes:
        return _enc(self.event())

    def duplicate_id(self) -> bytes:
        if not self.recent:
            return self.valid()
        obj = json.loads(self.rng.choice(self.recent))
        if self.rng.random() < 0.5:
            obj["text"] = "a different text, same id"
        return _enc(obj)

    # -- garbage ------------------------------------------------------------------------------------
    def random_bytes(self) -> bytes:
        return self.rng.randbytes(self.rng.randrange(0, 300))

    def truncated_json(self) -> bytes:
        raw = self.valid()
        return raw[: self.rng.randrange(0, len(raw))]

    def wrong_type(self) -> bytes:
        obj = self.event()
        path = self.rng.choice(
            (
                "id",
                "brand",
                "platform",
                "created_at",
                "text",
                "author",
                "lang",
                "sentiment",
                "kind",
                "shares",
                "author.id",
                "author.followers",
                "author.is_brand",
                "url",
                "in_reply_to",
            )
        )
        value = self.rng.choice((None, True, 0, -1, 1.5, "x", "", [], {}, [1, 2], {"a": 1}, 2**70, -(2**70)))
        _set(obj, path, value)
        return _enc(obj)

    def missing_field(self) -> bytes:
        obj = self.event()
        path = self.rng.choice(("id", "brand", "platform", "created_at", "text", "author", "author.id"))
        _delete(obj, path)
        return _enc(obj)

    def invalid_utf8(self) -> bytes:
        raw = bytearray(self.valid())
        for _ in range(self.rng.randrange(1, 4)):
            raw.insert(self.rng.randrange(len(raw)), self.rng.choice((0xFF, 0xC0, 0x80, 0xED, 0xF5)))
        return bytes(raw)

    def extreme_timestamp(self) -> bytes:
        obj = self.event()
        rng = self.rng
        obj["created_at"] = rng.choice(
            (
                0,
                -1,
                1,
                1e11,
                1e11 + 1,
                9.99e12,
                1e15,
                1e300,
                -1e300,
                2**63,
                32503680000,
                32503679999,
                self.ts + 8 * 86400,
                self.ts + 6 * 86400,
                (self.ts + 30 * 86400) * 1000,
                "1970-01-01T00:00:00Z",
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "2999-12-31T23:59:59+00:00",
                "2010-02-30T00:00:00Z",
                "2010-04-16T25:00:00Z",
                "2010-04-16T07:42:10+24:00",
                "2010-04-16T07:42:10",
                "2010-04-16",
                "now",
                "",
                "2010-04-16T07:42:10.999999999999+02:00",
                " 2010-04-16T07:42:10Z ",
            )
        )
        return _enc(obj)

    def json_not_object(self) -> bytes:
        if self.rng.random() < 0.1:  # deep nesting: msgspec recurses once per level
            depth = self.rng.choice((100, 1000, 100_000))
            return self.rng.choice((b"[" * depth, b'{"a":' * depth, b'{"id":"x","extra":' + b"[" * depth))
        return _enc(self.rng.choice((None, 1, -0.5, "text", [], [self.event()], True, [[[[[]]]]])))

    def unknown_fields(self) -> bytes:
        obj = self.event()
        obj["extra"] = {"nested": [1, {"x": None}]}
        obj["author"]["bio"] = "unknown fields are ignored"
        return _enc(obj)

    def mutated(self) -> bytes:
        raw = bytearray(self.valid())
        for _ in range(self.rng.randrange(1, 6)):
            i = self.rng.randrange(len(raw))
            op = self.rng.randrange(3)
            if op == 0:
                raw[i] = self.rng.randrange(256)
            elif op == 1:
                del raw[i]
            else:
                raw.insert(i, self.rng.choice(b'{}[]",:\\0123456789eE.-+ ntrufals'))
        return bytes(raw)

    def huge_text(self) -> bytes:
        obj = self.event()
        obj["text"] = "ash " * (self.huge_bytes // 4)
        return _enc(obj)


def _fmt_ts(rng: random.Random, ts: float) -> Any:
    form = rng.randrange(4)
    if form == 0:
        return int(ts)
    if form == 1:
        return int(ts * 1000)
    if form == 2:
        return datetime.fromtimestamp(ts, _CEST).isoformat()
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_CEST = timezone(timedelta(hours=2))


def _enc(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    head, _, tail = path.partition(".")
    if tail:
        if isinstance(obj.get(head), dict):
            obj[head][tail] = value
    else:
        obj[head] = value


def _delete(obj: dict[str, Any], path: str) -> None:
    head, _, tail = path.partition(".")
    if tail:
        if isinstance(obj.get(head), dict):
            obj[head].pop(tail, None)
    else:
        obj.pop(head, None)


# -- hypothesis strategies ------------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    _json_leaf, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
)
"""Any JSON value."""

_any_value = json_values | st.integers(min_value=-(2**80), max_value=2**80)
_timestamps = st.one_of(
    st.floats(min_value=BASE_TS - 86400, max_value=BASE_TS + 10 * 86400),
    st.integers(min_value=BASE_TS - 86400, max_value=BASE_TS + 10 * 86400),
    st.integers(min_value=BASE_TS - 86400, max_value=BASE_TS + 10 * 86400).map(lambda t: t * 1000),
    st.datetimes(timezones=st.timezones() | st.just(UTC)).map(lambda d: d.isoformat()),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)


def _field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a good value, sometimes anything at all."""
    return st.integers(0, 15).flatmap(lambda k: good if k else _any_value)


@st.composite
def mention_objects(draw: Any) -> dict[str, Any]:
    """Mention-shaped dicts: each field is usually right and sometimes wrong or missing."""
    obj: dict[str, Any] = {}
    author: dict[str, Any] = {"id": draw(_field(st.text(min_size=1, max_size=12)))}
    if draw(st.booleans()):
        author["followers"] = draw(_field(st.integers(min_value=0, max_value=10**7)))
    if draw(st.integers(0, 5)) == 0:
        author["is_brand"] = draw(_field(st.booleans()))
    fields: dict[str, st.SearchStrategy[Any]] = {
        "id": _field(st.text(min_size=1, max_size=20) | st.sampled_from(["twitter:1", "twitter:2", "twitter:3"])),
        "brand": _field(st.sampled_from(BRANDS) | st.text(min_size=1, max_size=10)),
        "platform": _field(st.sampled_from(["twitter", "facebook", "e_mail"]) | st.text(max_size=10)),
        "created_at": _timestamps,
        "text": _field(st.text(max_size=200)),
        "author": _field(st.just(author)),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "lang": _field(st.sampled_from(["en", "nl", "sr-Cyrl", "ru", "und"])),
        "sentiment": _field(st.floats(min_value=-1, max_value=1)),
        "kind": _field(st.sampled_from(KINDS)),
        "in_reply_to": _field(st.text(max_size=20)),
        "shares": _field(st.integers(min_value=0, max_value=10**6)),
        "url": _field(st.text(max_size=20)),
    }
    for name, strat in fields.items():
        if draw(st.integers(0, 49)) > 0:  # a required field goes missing one time in fifty
            obj[name] = draw(strat)
    for name, strat in optional.items():
        if draw(st.booleans()):
            obj[name] = draw(strat)
    return obj


messages = st.one_of(
    mention_objects().map(_enc),
    mention_objects().map(_enc),
    mention_objects().map(lambda o: _enc(o)[: len(_enc(o)) // 2]),
    json_values.map(_enc),
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
"""Raw message bytes: mention-shaped objects (half of them), truncated ones, any JSON, any bytes."""
