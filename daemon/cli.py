"""The `crisisd` command line (public contract: README "CLI reference").

Exit codes: 0 success, 2 usage or configuration error (one line on stderr naming the field or
file), 1 any other failure. Each subcommand lives beside the stage it drives and registers
itself through an `add_parser(subparsers)` function; this module only dispatches.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import io
import os
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from typing import NoReturn, cast

# The longest input line read whole (replay, produce, score-text): Kafka's default message size.
# A valid event is far shorter (its text at most 64 KiB); a longer line is reported by its number,
# and read past without holding it in memory.
MAX_LINE_BYTES = 1 << 20


class UsageError(Exception):
    """A usage or configuration problem: exit code 2, message names the field or file."""


def check_input(path: str) -> None:
    """An input FILE names something readable as a stream: `-` (stdin), a file, a pipe or a device
    (`<(...)`, /dev/stdin), not a directory or nothing."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory")
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")


def probe_writable(directory: str | os.PathLike[str]) -> None:
    """Raise OSError unless a file can be created in `directory` (a throw-away one, gone at once)."""
    with tempfile.TemporaryFile(dir=directory, prefix=".crisisd-write-check-"):
        pass


def input_lines(path: str, max_bytes: int | None = None) -> Iterator[bytes]:
    """The raw lines of an input FILE (`-` is stdin), plain or gzip-compressed: recognised by its
    magic bytes, so pipes work too, and a day archived as .jsonl.gz is read as it is instead of as
    thousands of invalid lines. A UTF-8 byte order mark (Windows tools write one) is dropped, or
    line 1 would not be JSON.

    With `max_bytes`, a longer line (its line end included) comes cut to `max_bytes + 1` bytes, so
    the caller can tell, and the rest of it is skipped unread into memory: one 100 MB line must not
    take 100 MB.

    Damaged gzip data (a cut download, a corrupt block, a header and then garbage) raises
    UsageError `FILE: damaged gzip data: ...` where it is found, not zlib's or gzip's own error
    naming no file: the lines before it have been yielded."""
    if path == "-":
        yield from _maybe_gzip(cast(io.BufferedReader, sys.stdin.buffer), max_bytes, "stdin")
        return
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, generator
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        yield from _maybe_gzip(fh, max_bytes, path)


def _maybe_gzip(fh: io.BufferedReader, max_bytes: int | None, name: str) -> Iterator[bytes]:
    if fh.peek(2)[:2] == b"\x1f\x8b":
        try:
            with gzip.open(fh) as gz:
                yield from _unmarked(gz, max_bytes)
        except (gzip.BadGzipFile, zlib.error, EOFError) as exc:  # EOFError: the stream ends early
            raise UsageError(f"{name}: damaged gzip data: {exc}") from None
    else:
        yield from _unmarked(fh, max_bytes)


def _unmarked(stream: io.BufferedIOBase, max_bytes: int | None) -> Iterator[bytes]:
    lines = iter(stream) if max_bytes is None else _capped(stream, max_bytes)
    first = next(lines, None)
    if first is not None:
        yield first.removeprefix(codecs.BOM_UTF8)
        yield from lines


def _capped(stream: io.BufferedIOBase, max_bytes: int) -> Iterator[bytes]:
    while line := stream.readline(max_bytes + 1):
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while (rest := stream.readline(1 << 16)) and not rest.endswith(b"\n"):
                pass
        yield line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # exit 2 with one line naming the problem
        self.print_usage(sys.stderr)
        print(f"crisisd: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from daemon import __version__
    from daemon.commands import register_all

    parser = _Parser(prog="crisisd", description="Crisis detection and escalation for social customer care.")
    parser.add_argument("--version", action="version", version=f"crisisd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    register_all(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"crisisd: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        print(f"crisisd: failed: {describe(exc)}", file=sys.stderr)
        return 1


def describe(exc: BaseException) -> str:
    """`Class: message` of a failure; some clients' messages begin with their own class name
    ("KafkaTimeoutError: ...") and are not prefixed twice."""
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}"


if __name__ == "__main__":
    # `python -m daemon.cli`: run the imported module's `main`, so `UsageError` raised by the
    # subcommands (imported as daemon.cli) is the class caught here
    from daemon.cli import main as _main

    sys.exit(_main())
