"""`crisisd score-text IN.jsonl [-o OUT.jsonl]`: language, negativity, negative flag and intent per text.

Each input line is a JSON object with `text` (string) and optionally `lang` (BCP 47 tag or null); the
output line is the same object with `lang`, `negativity` (0..1), `negative` and `intent` added. A bad
line (not UTF-8, not JSON, not an object, `text` missing or not a string, `lang` not a string, a
text over 64 KiB of UTF-8 as the daemon refuses it, a line over 1 MiB) is skipped with `line N:
reason` on stderr, and an over-long line is never read into memory whole; blank lines are ignored.
Exit codes: 0 all lines scored, 1 some lines were skipped (the others are still written), 2 the
input or output file cannot be opened. `-` reads standard input or writes standard output; the
input may be gzip-compressed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import IO, Any

import msgspec

from daemon.cli import MAX_LINE_BYTES, UsageError, check_input, input_lines
from daemon.enrich.scorer import TextScorer
from daemon.events import MAX_TEXT_BYTES, text_too_long

# room for a text at the cap written with JSON escapes (`\u0001` is 6 bytes) and the line's other fields

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class BadLine(Exception):
    """A line that cannot be scored; the message is the reason."""


def score_line(scorer: TextScorer, raw: bytes) -> bytes:
    """Score one JSONL line; raises BadLine with a short reason.

    >>> score_line(TextScorer(), b'{"id": 7, "text": "Thanks, great help!", "lang": "en"}')
    b'{"id":7,"text":"Thanks, great help!","lang":"en","negativity":...,"negative":false,"intent":"praise"}'
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        obj: Any = _decode(text)
    except msgspec.DecodeError as exc:
        raise BadLine(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadLine(f"expected a JSON object, got {type(obj).__name__}")
    if "text" not in obj:
        raise BadLine("field text: missing")
    if not isinstance(obj["text"], str):
        raise BadLine(f"field text: expected a string, got {type(obj['text']).__name__}")
    if text_too_long(obj["text"]):
        raise BadLine(f"field text: longer than {MAX_TEXT_BYTES} bytes (the daemon's text_too_long)")
    lang = obj.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise BadLine(f"field lang: expected a string or null, got {type(lang).__name__}")
    s = scorer.score(obj["text"], lang)
    obj["lang"] = s.lang
    obj["negativity"] = s.negativity
    obj["negative"] = s.negative
    obj["intent"] = s.intent
    return _encode(obj)


def score_lines(
    scorer: TextScorer, lines: Iterable[bytes], on_error: Callable[[int, str], None], max_bytes: int = MAX_LINE_BYTES
) -> Iterator[bytes]:
    """Scored lines (without newline); bad ones are skipped and passed to `on_error(line_no, reason)`.
    A line longer than `max_bytes` (as `input_lines(path, max_bytes)` cuts it) is a bad one."""
    for n, raw in enumerate(lines, 1):
        if len(raw) > max_bytes:
            on_error(n, f"longer than {max_bytes} bytes")
            continue
        line = raw.strip()
        if not line:
            continue
        try:
            yield score_line(scorer, line)
        except BadLine as exc:
            on_error(n, str(exc))


def main(args: argparse.Namespace) -> int:
    scorer = TextScorer()
    skipped = 0

    def report(n: int, reason: str) -> None:
        nonlocal skipped
        skipped += 1
        print(f"crisisd score-text: line {n}: {reason}", file=sys.stderr)

    check_input(args.input)
    with ExitStack() as stack:
        try:
            dst: IO[bytes] = (
                sys.stdout.buffer if args.output in (None, "-") else stack.enter_context(open(args.output, "wb"))
            )
        except OSError as exc:
            raise UsageError(f"-o {args.output}: {exc.strerror}") from None
        for out in score_lines(scorer, input_lines(args.input, MAX_LINE_BYTES), report):
            dst.write(out + b"\n")
        dst.flush()
    if skipped:
        print(f"crisisd score-text: {skipped} line(s) skipped", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "score-text",
        help="score texts (JSONL) for language, negativity and intent",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IN.jsonl", help='one {"text": ..., "lang": optional} object per line; - for stdin')
    p.add_argument("-o", "--output", metavar="OUT.jsonl", help="where to write (default standard output)")
    p.set_defaults(func=main)
