"""The mention event (input contract v1) and its validating decoder.

msgspec decodes and type-checks in one pass; what msgspec cannot express (timestamp forms,
lower-case platform, case-insensitive brand) is checked right after. Every failure becomes an
`InvalidEvent` carrying a short machine-readable reason: decoding never raises.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Literal

import msgspec

MAX_TEXT_BYTES = 64 * 1024
MAX_FUTURE_SECONDS = 7 * 24 * 3600
_END_TS = 32503680000  # event times are of the years 1970..2999

Kind = Literal["post", "comment", "reply", "direct_message", "share"]


class Author(msgspec.Struct, frozen=True, gc=False):
    id: str
    followers: Annotated[int, msgspec.Meta(ge=0)] | None = None
    is_brand: bool | None = None  # null, as some producers write every absent field, is false


class _WireMention(msgspec.Struct, frozen=True, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    platform: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    created_at: str | float
    text: str
    author: Author
    lang: str | None = None
    sentiment: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] | None = None
    kind: Kind | None = None  # absent or null: a post
    in_reply_to: str | None = None
    shares: Annotated[int, msgspec.Meta(ge=0)] | None = None
    url: str | None = None


class Mention(msgspec.Struct, frozen=True, gc=False):
    """A decoded, validated mention. `ts` is event time in epoch seconds; `brand` is lower-cased."""

    id: str
    brand: str
    platform: str
    ts: float
    text: str
    author_id: str
    is_brand: bool = False
    followers: int | None = None
    lang: str | None = None
    sentiment: float | None = None
    kind: str = "post"
    in_reply_to: str | None = None
    shares: int | None = None
    url: str | None = None

    @property
    def is_share(self) -> bool:
        """A reshare of someone else's post: `kind: share`, or a classic retweet's text ("RT @user: ...")."""
        return self.kind == "share" or self.text.startswith("RT @")


class InvalidEvent(msgspec.Struct, frozen=True):
    """Why an event was rejected. `reason` is a stable code, `detail` is for humans."""

    reason: str
    detail: str


_decoder = msgspec.json.Decoder(_WireMention)

# Platforms and brands repeat on every event: remember the valid platform names and the normalised
# brand of each spelling (bounded, so hostile input cannot grow them).
_NAME_CACHE = 4096
_GOOD_PLATFORMS: set[str] = set()
_BRANDS: dict[str, str] = {}


def normalise_brand(brand: str) -> str:
    """Brands compare case-insensitively (Unicode case folding: `STRASSE` is `straße`); the
    message key `crisisd produce` gives is this too.

    >>> normalise_brand(" KLM "), normalise_brand("Straße") == normalise_brand("STRASSE")
    ('klm', True)
    """
    return brand.strip().casefold()


# A UTF-16 surrogate escape left alone (a text cut between the two halves of an emoji, as a
# producer cutting UTF-16 strings writes it): msgspec refuses the whole message for it. Escaped
# backslashes are matched first so that `\\ud800` (a backslash, then letters) stays as it is.
_SURROGATE_ESCAPE = re.compile(
    rb"\\\\"  # an escaped backslash
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # a pair: one emoji
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"  # half of one
)


def _repaired(raw: bytes) -> bytes | None:
    """`raw` with a leading byte order mark dropped and lone surrogate escapes made U+FFFD, or
    None when it has neither (so the decoder's first answer stands)."""
    fixed = raw.removeprefix(b"\xef\xbb\xbf")
    if b"\\u" in fixed:
        fixed = _SURROGATE_ESCAPE.sub(lambda m: m[0] if len(m[0]) != 6 else b"\\ufffd", fixed)
    return fixed if fixed != raw else None


def _utf8_error(raw: bytes | str) -> str | None:
    """Why `raw` is not UTF-8, or None when it is (a str is)."""
    if isinstance(raw, str):
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return str(exc)
    return None


def parse_event_time(value: str | float) -> float:
    """RFC 3339 with offset, or epoch seconds (milliseconds when > 1e11).

    >>> parse_event_time("2010-04-16T07:42:10+02:00")
    1271396530.0
    >>> parse_event_time(1271396530123)
    1271396530.123
    >>> parse_event_time("2010-04-16T05:42:10Z")
    1271396530.0
    """
    if isinstance(value, str):
        n = len(value)
        zoned = (n == 20 and value[19] == "Z") or (n == 25 and value[19] in "+-")
        if zoned and value[10] == "T" and value[16] == ":":
            # The common `YYYY-MM-DDTHH:MM:SSZ` and `...SS+HH:MM`: the events of one minute share its
            # epoch, parsed once. Other forms, or a minute that does not parse, take the general way.
            sec = value[17:19]
            if sec.isdigit() and sec.isascii() and sec < "60":
                minute = _minute(value[:16], value[19:])
                if minute is not None:
                    return minute + int(sec)
        return _parse_rfc3339(value)
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError("timestamp is not finite")
    if v > 1e11:
        v /= 1000.0
    return _in_range(v)


def _in_range(ts: float) -> float:
    if not 0 <= ts < _END_TS:
        raise ValueError("timestamp out of range (years 1970 to 2999)")
    return ts


def _parse_rfc3339(value: str) -> float:
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if len(s) < 20 or s[10] not in "Tt ":
        raise ValueError("not an RFC 3339 date-time")
    leap = s[16:19] == ":60"
    if leap:  # RFC 3339 allows a leap second (23:59:60); datetime does not
        s = s[:17] + "59" + s[19:]
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise ValueError("RFC 3339 timestamp has no offset")
    return _in_range(dt.timestamp() + leap)


# ("YYYY-MM-DDTHH:MM" + offset) -> epoch seconds of that minute; cleared when full (bounded memory)
_MINUTES: dict[str, float] = {}


def _minute(prefix: str, offset: str) -> float | None:
    key = prefix + offset
    minute = _MINUTES.get(key)
    if minute is None:
        try:
            dt = datetime.fromisoformat(f"{prefix}:00{'+00:00' if offset == 'Z' else offset}")
        except ValueError:
            return None
        if dt.tzinfo is None:
            return None
        minute = dt.timestamp()
        if not 0 <= minute < _END_TS:
            return None  # the general way says why
        if len(_MINUTES) >= _NAME_CACHE:
            _MINUTES.clear()
        _MINUTES[key] = minute
    return minute


def text_too_long(text: str) -> bool:
    """More than MAX_TEXT_BYTES of UTF-8 (the daemon's and `score-text`'s cap)."""
    return len(text) > MAX_TEXT_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES


def decode(raw: bytes | str | None) -> Mention | InvalidEvent:
    """Decode one JSON message; never raises.

    >>> decode(b'{"id":"t:1","brand":"KLM","platform":"twitter","created_at":0,"text":"","author":{"id":"u"}}').brand
    'klm'
    >>> decode(b'{"id":"t:1"}').reason
    'missing_field'
    >>> decode(None).detail  # a Kafka record with no value (a tombstone)
    'the message has no value'
    """
    if raw is None:
        return InvalidEvent("not_json", "the message has no value")
    try:
        wire = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        fixed = _repaired(raw) if isinstance(raw, bytes) and not isinstance(exc, msgspec.ValidationError) else None
        if fixed is None:
            return _undecodable(raw, exc)
        try:
            wire = _decoder.decode(fixed)
        except (msgspec.DecodeError, RecursionError) as again:
            return _undecodable(raw, again)
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:  # str input with lone surrogates
        return InvalidEvent("invalid_utf8", str(exc))
    except RecursionError as exc:  # msgspec recurses per nesting level: {"a":{"a":... 100k deep
        return _undecodable(raw, exc)
    return _checked(wire)


class _BrandOnly(msgspec.Struct):
    brand: str


_brand_decoder = msgspec.json.Decoder(_BrandOnly)


def brand_key(raw: bytes | None) -> bytes | None:
    """The message key of a mention: its brand as `decode` reads it (normalised, UTF-8), or None
    when `raw` has no usable brand (not a JSON object, no string `brand`, a blank one). Only
    `brand` is decoded (the rest is checked for well-formed JSON, not typed), and a message
    `decode` repairs (byte order mark, a lone surrogate escape) is repaired here too, so every
    message `decode` accepts gets its `Mention.brand` as key. `crisisd produce` and the re-keyer
    key by it.

    >>> brand_key(b'{"id": "t:1", "brand": " KLM ", "text": "hi"}')
    b'klm'
    >>> brand_key(b"\\xef\\xbb\\xbf" + b'{"brand": "KLM", "text": "\\\\ud83d"}')
    b'klm'
    >>> brand_key(b'not json'), brand_key(b'[1, 2]'), brand_key(b'{"brand": 7}'), brand_key(b'{"brand": " "}')
    (None, None, None, None)
    """
    if raw is None:
        return None
    try:
        try:
            brand = _brand_decoder.decode(raw).brand
        except msgspec.ValidationError:
            return None
        except msgspec.DecodeError:
            fixed = _repaired(raw)
            if fixed is None:
                return None
            brand = _brand_decoder.decode(fixed).brand
        return normalise_brand(brand).encode("utf-8") or None
    except (msgspec.DecodeError, UnicodeError, RecursionError):  # bad UTF-8 in a field, deep nesting
        return None


def _undecodable(raw: bytes | str, exc: Exception) -> InvalidEvent:
    """The reason msgspec refused `raw`. Bytes that are not UTF-8 are `invalid_utf8` whatever else
    is wrong: msgspec reports the schema error it meets first (`4\\xff` is not_an_object,
    `{"a":1}\\xff` missing_field) and may never reach the bad bytes. Checked here, on the failure
    path only: a valid message is not decoded twice."""
    bad = _utf8_error(raw)
    if bad is not None:
        return InvalidEvent("invalid_utf8", bad)
    if isinstance(exc, RecursionError):
        return InvalidEvent("not_json", "JSON nested too deeply")
    if isinstance(exc, msgspec.ValidationError):
        msg = str(exc)
        if msg.startswith("Object missing required field"):
            reason = "missing_field"
        elif msg.startswith("Expected `object`, got") and "at `$" not in msg:
            reason = "not_an_object"
        elif re.match(r"Expected `[^`]+`, got `", msg):
            reason = "wrong_type"
        else:
            reason = "invalid_value"
        return InvalidEvent(reason, msg)
    return InvalidEvent("not_json", str(exc))


def _checked(wire: _WireMention) -> Mention | InvalidEvent:
    """What msgspec cannot express, checked."""
    text = wire.text
    if text_too_long(text):
        return InvalidEvent("text_too_long", f"text is longer than {MAX_TEXT_BYTES} bytes")
    author = wire.author
    if not author.id:
        return InvalidEvent("invalid_value", "author.id is empty")
    platform = wire.platform
    if platform not in _GOOD_PLATFORMS:
        if platform != platform.lower() or not platform.replace("_", "").isalnum():
            return InvalidEvent("invalid_value", f"platform {platform[:40]!r} is not a lower-case word")
        if len(_GOOD_PLATFORMS) < _NAME_CACHE:
            _GOOD_PLATFORMS.add(platform)
    try:
        ts = parse_event_time(wire.created_at)
    except (ValueError, OverflowError, OSError) as exc:
        return InvalidEvent("bad_timestamp", f"created_at {str(wire.created_at)[:60]!r}: {exc}")
    brand = _BRANDS.get(wire.brand)
    if brand is None:
        brand = normalise_brand(wire.brand)
        if not brand:
            return InvalidEvent("invalid_value", "brand is blank")
        if len(_BRANDS) < _NAME_CACHE:
            _BRANDS[wire.brand] = brand
    # positional: the field order of `Mention` (keywords cost twice as much per event)
    return Mention(
        wire.id,
        brand,
        platform,
        ts,
        text,
        author.id,
        author.is_brand is True,
        author.followers,
        wire.lang,
        wire.sentiment,
        wire.kind or "post",
        wire.in_reply_to,
        wire.shares,
        wire.url,
    )


_encoder = msgspec.json.Encoder()


def encode_wire(m: Mention) -> bytes:
    """The contract form of a mention (used by `simulate` and `produce`)."""
    from datetime import UTC

    created = datetime.fromtimestamp(m.ts, UTC).isoformat().replace("+00:00", "Z")
    obj: dict[str, object] = {
        "id": m.id,
        "brand": m.brand,
        "platform": m.platform,
        "created_at": created,
        "text": m.text,
        "author": {
            "id": m.author_id,
            **({"followers": m.followers} if m.followers is not None else {}),
            **({"is_brand": True} if m.is_brand else {}),
        },
    }
    for key in ("lang", "sentiment", "in_reply_to", "shares", "url"):
        v = getattr(m, key)
        if v is not None:
            obj[key] = v
    if m.kind != "post":
        obj["kind"] = m.kind
    return _encoder.encode(obj)
