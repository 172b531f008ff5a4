"""`crisisd replay FILE` and `crisisd demo`: the pipeline over a JSONL file, in event time.

Replay reads as fast as it can; invalid lines go to a dead-letter file (JSONL with the reason and
the original line) and are counted. `--json` prints one notification object per line on stdout;
otherwise the console notifier shows what Slack would. The summary goes to stderr.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import msgspec

from daemon.cli import MAX_LINE_BYTES, probe_writable
from daemon.events import InvalidEvent

if TYPE_CHECKING:
    from config.settings import Settings
    from daemon.notification import Notification
    from daemon.pipeline import Pipeline


def add_parser(sub: argparse._SubParsersAction) -> None:
    from daemon.simulate.command import MAX_DAYS

    p = sub.add_parser("replay", help="run the pipeline over a JSONL file of mention events, in event time")
    p.add_argument("file", help="JSONL file of mention events ('-' for stdin)")
    p.add_argument("--config", help="YAML configuration file")
    p.add_argument("--json", action="store_true", help="print one notification object per line")
    p.add_argument(
        "--dead-letter",
        help="where invalid lines go (default: FILE.dead-letter.jsonl; for stdin or a pipe, in the working directory)",
    )
    p.set_defaults(func=replay_main)

    d = sub.add_parser("demo", help="the whole pipeline on a built-in ash-crisis scenario (no Kafka or Slack)")
    d.add_argument("--seed", type=int, default=7, help="scenario seed")
    d.add_argument(
        "--days", type=int, default=4, help=f"days of simulated history before and with the crisis (1 to {MAX_DAYS})"
    )
    d.add_argument("--json", action="store_true", help="print notification objects instead of messages")
    d.set_defaults(func=demo_main)


def load(config: str | None) -> Settings:
    from config.settings import ConfigError, load_settings
    from daemon.cli import UsageError

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


class DeadLetterFile:
    """Invalid input, one JSON object per line: reason, detail, line number and the original bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None
        self._enc = msgspec.json.Encoder()

    def write(self, line_no: int, raw: bytes, reason: str, detail: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
        try:
            original: dict[str, str] = {"original": raw.decode("utf-8")}
        except UnicodeDecodeError:
            original = {"original_base64": base64.b64encode(raw).decode("ascii")}
        self._fh.write(self._enc.encode({"line": line_no, "reason": reason, "detail": detail, **original}) + b"\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        elif self.path.is_file():  # an earlier run's: no file must mean that nothing was invalid
            self.path.unlink(missing_ok=True)

    def check(self) -> None:
        """Raise UsageError unless the file can be written, before the first line is read: a path
        that cannot be (a directory, a missing directory that cannot be made, a file in the way, a
        read-only place) would otherwise fail only at the first invalid line, after processing
        started, or never when no line is invalid. Nothing is left behind, neither the file (no
        file still means nothing invalid) nor a directory: `write` makes those when it must."""
        from daemon.cli import UsageError

        path = self.path
        try:
            if path.is_dir():
                raise UsageError(f"{path}: the dead-letter file is a directory")
            if path.exists():  # opened as `write` will, but appending: nothing is truncated yet
                with path.open("ab"):
                    return
            where = path.parent
            while not where.exists():  # the nearest existing directory: `write` makes the rest
                where = where.parent
        except OSError as exc:
            raise UsageError(f"{path}: cannot write the dead-letter file: {exc.strerror or exc}") from None
        missing = "" if where == path.parent else f"{path.parent} does not exist and cannot be made: "
        try:
            probe_writable(where)
        except OSError as exc:
            raise UsageError(
                f"{path}: cannot write the dead-letter file: {missing}{where}: {exc.strerror or exc}"
            ) from None


def run_stream(
    pipeline: Pipeline,
    lines: Iterable[bytes],
    emit: Callable[[Notification], object],
    dead_letter: DeadLetterFile | None = None,
) -> None:
    """Feed lines to the pipeline, hand every notification to `emit`, flush at the end."""
    too_long = InvalidEvent("line_too_long", f"longer than {MAX_LINE_BYTES} bytes: its first {MAX_LINE_BYTES} kept")
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:  # `input_lines` cut it: not an event, and never read whole
            line = line[:MAX_LINE_BYTES]
            out = pipeline.reject(too_long)
        else:
            out = pipeline.process(line)
        if out.invalid is not None and dead_letter is not None:
            dead_letter.write(n, line, out.invalid.reason, out.invalid.detail)
        for note in out.notifications:
            emit(note)
    for note in pipeline.flush():
        emit(note)


def _emitter(json_out: bool) -> Callable[[Notification], object]:
    from daemon.notification import to_json
    from notifiers.console import ConsoleNotifier

    if json_out:
        out = sys.stdout.buffer

        def emit(note: Notification) -> None:
            out.write(to_json(note) + b"\n")

        return emit
    console = ConsoleNotifier(sys.stdout)
    return console.send


def summary(pipeline: Pipeline, seconds: float) -> str:
    s = pipeline.stats
    invalid = ", ".join(f"{k} {v:,}" for k, v in sorted(s.invalid.items())) or "none"
    rate = s.consumed / seconds if seconds > 0 else 0.0
    return (
        f"crisisd: {s.consumed:,} events in {seconds:.1f}s ({rate:,.0f}/s): {s.valid:,} valid, "
        f"{s.invalid_total:,} invalid ({invalid}), {s.late:,} late, {s.duplicate:,} duplicate, "
        f"{s.replies:,} brand replies; {s.notifications:,} notifications"
    )


def default_dead_letter(path: str) -> str:
    """Beside a regular input file; for stdin, a pipe or a device (no directory to write beside),
    in the working directory."""
    if path == "-":
        return "stdin.dead-letter.jsonl"
    if Path(path).is_file():
        return f"{path}.dead-letter.jsonl"
    return f"{Path(path).name}.dead-letter.jsonl"


def replay_main(args: argparse.Namespace) -> int:
    from daemon.cli import check_input, input_lines
    from daemon.log import configure_logging
    from daemon.pipeline import Pipeline

    settings = load(args.config)
    configure_logging(settings.log.format, settings.log.level)
    check_input(args.file)
    dl_path = args.dead_letter or settings.dead_letter_file or default_dead_letter(args.file)
    dead_letter = DeadLetterFile(Path(dl_path))
    dead_letter.check()
    pipeline = Pipeline(settings)
    started = time.perf_counter()
    try:
        run_stream(pipeline, input_lines(args.file, MAX_LINE_BYTES), _emitter(args.json), dead_letter)
    finally:
        dead_letter.close()
    sys.stdout.flush()
    print(summary(pipeline, time.perf_counter() - started), file=sys.stderr)
    if pipeline.stats.invalid_total:
        print(f"crisisd: invalid lines written to {dl_path}", file=sys.stderr)
    return 0


def demo_main(args: argparse.Namespace) -> int:
    from daemon.demo import DEMO_SCALE, run_demo
    from daemon.simulate.command import check_stream_size

    check_stream_size(args.days, args.seed, DEMO_SCALE)  # the bounds `simulate` has, named
    return run_demo(seed=args.seed, days=args.days, json_out=args.json)
