"""`crisisd score-text IN.jsonl [-o OUT.jsonl]`: language, negativity, negative flag and intent per text.

Each input line is a JSON object with `text` (string) and optionally `lang` (BCP 47 tag or null); the
output line is the same object with `lang`, `negativity` (0..1), `negative` and `intent` added. A bad
line (not UTF-8, not JSON, not an object, `text` missing or not a string, `lang` not a string) is
skipped with `line N: reason` on stderr; blank lines are ignored. Exit codes: 0 all lines scored,
1 some lines were skipped (the others are still written), 2 the input or output file cannot be opened.
`-` reads standard input or writes standard output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import IO, Any

import msgspec

from daemon.cli import UsageError
from daemon.enrich.scorer import TextScorer

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
    lang = obj.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise BadLine(f"field lang: expected a string or null, got {type(lang).__name__}")
    s = scorer.score(obj["text"], lang)
    obj["lang"] = s.lang
    obj["negativity"] = s.negativity
    obj["negative"] = s.negative
    obj["intent"] = s.intent
    return _encode(obj)


def score_lines(scorer: TextScorer, lines: Iterable[bytes], on_error: Callable[[int, str], None]) -> Iterator[bytes]:
    """Scored lines (without newline); bad ones are skipped and passed to `on_error(line_no, reason)`."""
    for n, raw in enumerate(lines, 1):
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

    with ExitStack() as stack:
        try:
            src: IO[bytes] = sys.stdin.buffer if args.input == "-" else stack.enter_context(open(args.input, "rb"))
        except OSError as exc:
            raise UsageError(f"IN {args.input}: {exc.strerror}") from None
        try:
            dst: IO[bytes] = (
                sys.stdout.buffer if args.output in (None, "-") else stack.enter_context(open(args.output, "wb"))
            )
        except OSError as exc:
            raise UsageError(f"-o {args.output}: {exc.strerror}") from None
        for out in score_lines(scorer, src, report):
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
