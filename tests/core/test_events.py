"""Decoding of the mention event: every invalid kind is rejected with a reason, never raised."""

from __future__ import annotations

import json

import pytest

from daemon import events
from daemon.events import InvalidEvent, Mention, decode, encode_wire, parse_event_time


def event(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "twitter:59412",
        "brand": "KLM",
        "platform": "twitter",
        "created_at": "2010-04-16T07:42:10+02:00",
        "text": "Flight to Oslo cancelled because of the ash cloud. What now?",
        "author": {"id": "u:8812", "followers": 340},
        "lang": "en",
        "kind": "post",
    }
    base.update(over)
    return base


def enc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def test_contract_example_decodes() -> None:
    m = decode(enc(event()))
    assert isinstance(m, Mention)
    assert m.brand == "klm"  # brands compare case-insensitively
    assert m.ts == 1271396530.0
    assert m.author_id == "u:8812" and m.followers == 340 and not m.is_brand


@pytest.mark.parametrize(
    ("created_at", "ts"),
    [
        ("2010-04-16T05:42:10Z", 1271396530.0),
        ("2010-04-16T05:42:10.500Z", 1271396530.5),
        (1271396530, 1271396530.0),
        (1271396530.25, 1271396530.25),
        (1271396530123, 1271396530.123),  # milliseconds when > 1e11
    ],
)
def test_timestamp_forms(created_at: object, ts: float) -> None:
    m = decode(enc(event(created_at=created_at)))
    assert isinstance(m, Mention)
    assert m.ts == pytest.approx(ts)


def test_optional_fields_and_unknown_fields() -> None:
    m = decode(
        enc(
            event(
                author={"id": "klm", "is_brand": True},
                in_reply_to="twitter:1",
                sentiment=-0.5,
                shares=3,
                url="https://x.example/1",
                kind="reply",
                extra={"ignored": True},
            )
        )
    )
    assert isinstance(m, Mention)
    assert m.is_brand and m.in_reply_to == "twitter:1" and m.sentiment == -0.5 and m.kind == "reply"


def test_empty_text_is_valid() -> None:
    assert isinstance(decode(enc(event(text=""))), Mention)


INVALID = [
    (b"not json", "not_json"),
    (b'{"id": "x", ', "not_json"),
    (b"\xff\xfe{}", "invalid_utf8"),
    # bytes that are not UTF-8 are invalid_utf8 whatever else is wrong: msgspec reports the schema
    # error first (not_an_object, missing_field, wrong_type), before it reaches the bad bytes
    (b"4\xff\xfe", "invalid_utf8"),
    (b'{"a":1}\xff', "invalid_utf8"),
    (b"[[[\xff", "invalid_utf8"),
    (b'{"id": 5, "x": "\xff"}', "invalid_utf8"),
    (b'\xef\xbb\xbf{"a": 1}\xc3', "invalid_utf8"),  # behind a byte order mark: the retried decode
    (b'{"id": "x", \xfe', "invalid_utf8"),
    (b'{"a":' * 100_000 + b"\xff", "invalid_utf8"),  # nested too deeply, and not UTF-8
    (b'{"a":' * 100_000, "not_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"a string"', "not_an_object"),
    (enc({k: v for k, v in event().items() if k != "brand"}), "missing_field"),
    (enc({k: v for k, v in event().items() if k != "author"}), "missing_field"),
    (enc(event(author={"followers": 3})), "missing_field"),
    (enc(event(id=42)), "wrong_type"),
    (enc(event(text=None)), "wrong_type"),
    (enc(event(author="u1")), "wrong_type"),
    (enc(event(created_at=True)), "wrong_type"),
    (enc(event(id="")), "invalid_value"),
    (enc(event(id="x" * 257)), "invalid_value"),
    (enc(event(brand="b" * 129)), "invalid_value"),
    (enc(event(sentiment=1.5)), "invalid_value"),
    (enc(event(author={"id": "u", "followers": -1})), "invalid_value"),
    (enc(event(kind="tweet")), "invalid_value"),
    (enc(event(platform="Twitter")), "invalid_value"),
    (enc(event(author={"id": ""})), "invalid_value"),
    (enc(event(created_at="yesterday")), "bad_timestamp"),
    (enc(event(created_at="2010-04-16T07:42:10")), "bad_timestamp"),  # no offset
    (enc(event(created_at="2010-13-45T07:42:10Z")), "bad_timestamp"),
    (enc(event(created_at=1e300)), "bad_timestamp"),
    (enc(event(created_at=-5)), "bad_timestamp"),
    (enc(event(created_at="1969-12-31T23:59:59Z")), "bad_timestamp"),  # the range numbers have: 1970..2999
    (enc(event(created_at="9999-12-31T23:59:59Z")), "bad_timestamp"),
    (enc(event(brand="   ")), "invalid_value"),  # blank: no brand at all
    (None, "not_json"),  # a Kafka record with no value (a tombstone)
    (b"", "not_json"),
    (enc(event(text="x" * (64 * 1024 + 1))), "text_too_long"),
]


@pytest.mark.parametrize(("raw", "reason"), INVALID)
def test_invalid_kinds(raw: bytes, reason: str) -> None:
    out = decode(raw)
    assert isinstance(out, InvalidEvent), out
    assert out.reason == reason
    assert out.detail


def test_what_real_producers_write_is_read_as_meant() -> None:
    """null for an optional field is its absence; a text cut between the halves of an emoji (a
    lone surrogate escape, as UTF-16 producers cut it) keeps the event with U+FFFD; a byte order
    mark before the object is dropped; a leap second is the second after :59; brands fold case."""
    plain = decode(enc(event()))
    assert isinstance(plain, Mention)
    nulls = decode(enc(event(kind=None, author={"id": "u:8812", "followers": 340, "is_brand": None})))
    assert nulls == plain
    cut = decode(enc(event(text="Delayed again \ud83d")))  # json.dumps escapes the lone half
    assert isinstance(cut, Mention) and cut.text == "Delayed again \ufffd"
    pair = decode(enc(event(text="Delayed again \U0001f621")))
    assert isinstance(pair, Mention) and pair.text == "Delayed again \U0001f621"
    escaped = decode(enc(event(text="C:\\ud800")))  # a backslash and letters, not an escape
    assert isinstance(escaped, Mention) and escaped.text == "C:\\ud800"
    assert decode(b"\xef\xbb\xbf" + enc(event())) == plain
    assert parse_event_time("2016-12-31T23:59:60Z") == parse_event_time("2017-01-01T00:00:00Z")
    folded = decode(enc(event(brand="STRASSE")))
    assert isinstance(folded, Mention) and folded.brand == decode(enc(event(brand="Straße"))).brand  # type: ignore[union-attr]


def test_a_str_with_a_lone_surrogate_is_invalid_not_raised() -> None:
    out = decode(json.dumps(event(), ensure_ascii=False).replace("Oslo", "Os\ud800lo"))
    assert isinstance(out, InvalidEvent) and out.reason == "invalid_utf8"


def test_wire_round_trip() -> None:
    m = decode(enc(event(author={"id": "klm", "is_brand": True}, in_reply_to="t:1", shares=2)))
    assert isinstance(m, Mention)
    again = decode(encode_wire(m))
    assert again == m


# The per-minute fast path of parse_event_time must give what the general path gives, for good
# and bad stamps alike, whether the minute is already cached or not.
STAMPS = [
    "2010-04-16T05:42:10Z",
    "2010-04-16T05:42:59Z",
    "2010-04-16T07:42:10+02:00",
    "2010-04-16T01:12:10-04:30",
    "2010-04-16T05:42:10-00:00",
    "2010-04-16t05:42:10Z",
    "2010-04-16T05:42:10z",
    "2010-04-16 05:42:10Z",
    "2010-04-16T05:42:60Z",
    "2010-04-16T05:42:6aZ",
    "2010-04-16T05:42:\uff11\uff10Z",  # full-width digits
    "2010-04-16T05:42:10+24:00",
    "2010-04-16T05:42:10+02:0a",
    "2010-02-30T05:42:10Z",
    "2010-W15-5T05:42:10Z",
    "2010-04-16T05:4x:10Z",
    " 2010-04-16T05:42:1Z",
]


def _general(value: str) -> float | str:
    try:
        return events._parse_rfc3339(value)
    except ValueError as exc:
        return f"ValueError: {exc}"


def _fast(value: str) -> float | str:
    try:
        return parse_event_time(value)
    except ValueError as exc:
        return f"ValueError: {exc}"


@pytest.mark.parametrize("value", STAMPS)
def test_minute_cache_agrees_with_the_general_parser(value: str) -> None:
    events._MINUTES.clear()
    cold = _fast(value)
    warm = _fast(value)  # the minute is cached now (when it parses)
    assert cold == warm == _general(value)


def test_minute_cache_is_bounded() -> None:
    events._MINUTES.clear()
    for day in range(1, 29):
        for hour in range(24):
            for minute in range(0, 60, 5):
                stamp = f"2010-02-{day:02d}T{hour:02d}:{minute:02d}:07Z"
                assert parse_event_time(stamp) == _general(stamp)
    assert len(events._MINUTES) <= events._NAME_CACHE


def test_decode_fills_every_field_in_order() -> None:
    """decode builds Mention positionally: every wire field must land in its own attribute."""
    m = decode(
        enc(
            event(
                brand=" KLM ",
                author={"id": "u:1", "followers": 7, "is_brand": True},
                lang="nl",
                sentiment=0.25,
                kind="reply",
                in_reply_to="twitter:1",
                shares=3,
                url="https://x.example/1",
            )
        )
    )
    assert m == Mention(
        id="twitter:59412",
        brand="klm",
        platform="twitter",
        ts=1271396530.0,
        text="Flight to Oslo cancelled because of the ash cloud. What now?",
        author_id="u:1",
        is_brand=True,
        followers=7,
        lang="nl",
        sentiment=0.25,
        kind="reply",
        in_reply_to="twitter:1",
        shares=3,
        url="https://x.example/1",
    )


def test_name_caches_stay_bounded() -> None:
    for i in range(events._NAME_CACHE + 100):
        out = decode(enc(event(brand=f"Brand{i}", platform=f"p{i}")))
        assert isinstance(out, Mention) and out.brand == f"brand{i}"
    assert len(events._BRANDS) <= events._NAME_CACHE
    assert len(events._GOOD_PLATFORMS) <= events._NAME_CACHE
    bad = decode(enc(event(platform="Twitter")))  # a bad platform is never cached as good
    assert isinstance(bad, InvalidEvent) and bad.reason == "invalid_value"
