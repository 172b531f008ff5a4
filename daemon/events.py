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

Kind = Literal["post", "comment", "reply", "direct_message", "share"]


class Author(msgspec.Struct, frozen=True):
    id: str
    followers: Annotated[int, msgspec.Meta(ge=0)] | None = None
    is_brand: bool = False


class _WireMention(msgspec.Struct, frozen=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    brand: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    platform: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    created_at: str | float
    text: str
    author: Author
    lang: str | None = None
    sentiment: Annotated[float, msgspec.Meta(ge=-1.0, le=1.0)] | None = None
    kind: Kind = "post"
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


class InvalidEvent(msgspec.Struct, frozen=True):
    """Why an event was rejected. `reason` is a stable code, `detail` is for humans."""

    reason: str
    detail: str


_decoder = msgspec.json.Decoder(_WireMention)


def _bad_utf8(raw: bytes | str) -> bool:
    if isinstance(raw, str):
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def parse_event_time(value: str | float) -> float:
    """RFC 3339 with offset, or epoch seconds (milliseconds when > 1e11).

    >>> parse_event_time("2010-04-16T07:42:10+02:00")
    1271396530.0
    >>> parse_event_time(1271396530123)
    1271396530.123
    """
    if isinstance(value, bool):
        raise ValueError("boolean is not a timestamp")
    if isinstance(value, int | float):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError("timestamp is not finite")
        if v > 1e11:
            v /= 1000.0
        if not 0 <= v < 32503680000:  # years 1970..2999
            raise ValueError("timestamp out of range")
        return v
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    if len(s) < 20 or s[10] not in "Tt ":
        raise ValueError("not an RFC 3339 date-time")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        raise ValueError("RFC 3339 timestamp has no offset")
    return dt.timestamp()


def decode(raw: bytes | str) -> Mention | InvalidEvent:
    """Decode one JSON message; never raises.

    >>> decode(b'{"id":"t:1","brand":"KLM","platform":"twitter","created_at":0,"text":"","author":{"id":"u"}}').brand
    'klm'
    >>> decode(b'{"id":"t:1"}').reason
    'missing_field'
    """
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
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
    except msgspec.DecodeError as exc:
        return InvalidEvent("invalid_utf8" if _bad_utf8(raw) else "not_json", str(exc))
    except UnicodeDecodeError as exc:  # str input with lone surrogates
        return InvalidEvent("invalid_utf8", str(exc))
    except RecursionError:  # msgspec recurses per nesting level: {"a":{"a":... 100k deep
        return InvalidEvent("not_json", "JSON nested too deeply")
    if len(wire.text) > MAX_TEXT_BYTES // 4 and len(wire.text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        return InvalidEvent("text_too_long", f"text is longer than {MAX_TEXT_BYTES} bytes")
    if not wire.author.id:
        return InvalidEvent("invalid_value", "author.id is empty")
    if wire.platform != wire.platform.lower() or not wire.platform.replace("_", "").isalnum():
        return InvalidEvent("invalid_value", f"platform {wire.platform[:40]!r} is not a lower-case word")
    try:
        ts = parse_event_time(wire.created_at)
    except (ValueError, OverflowError, OSError) as exc:
        return InvalidEvent("bad_timestamp", f"created_at {str(wire.created_at)[:60]!r}: {exc}")
    return Mention(
        id=wire.id,
        brand=wire.brand.strip().lower(),
        platform=wire.platform,
        ts=ts,
        text=wire.text,
        author_id=wire.author.id,
        is_brand=wire.author.is_brand,
        followers=wire.author.followers,
        lang=wire.lang,
        sentiment=wire.sentiment,
        kind=wire.kind,
        in_reply_to=wire.in_reply_to,
        shares=wire.shares,
        url=wire.url,
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
