"""Fuzz campaign: hostile input through the decoder, the pipeline and Kafka; zero crashes allowed.

The messages come from `tests/fuzz/fuzz_inputs.py` (seeded, so a run is reproducible): about half
valid mention events (late ones, upper-case brands, unknown fields, all timestamp forms), and the
rest raw random bytes, truncated JSON, wrong types, missing fields, invalid UTF-8, JSON that is not
an object (nesting up to 100,000 deep), extreme timestamps, duplicate ids, byte-mutated events and
10 MB texts. Each message is checked against an independent oracle of docs/mention-event.md
(the standard library's `json`, not msgspec).

Phases (each prints its figures; the exit code is 1 when any check fails):

A. decoder + pipeline, in process: `decode` and `Pipeline.process` never raise nor take longer
   than `--hang-seconds` on one message; every invalid message comes back as
   `Processed.invalid` with a reason; exactly one of valid / invalid / duplicate is counted per
   message, so consumed == valid + invalid + duplicate; and what is counted is what the oracle
   expects (a decoder that rejects a valid event fails; one that accepts a timestamp spelling
   RFC 3339 does not allow is reported as "lenient", not failed).
B. hypothesis: `--examples` generated messages (mention-shaped objects with wrong or missing
   fields, any JSON, any bytes) through `decode`, same checks.
P. probes: single hostile sequences, timed (a new brand first seen decades ago, a 10 MB text,
   a 64 KiB text without a language, deep nesting).
K. Kafka (`--kafka`): the phase-A messages produced to a loopback Tansu topic (key = brand),
   consumed by crisisd's Runner (dead-letter budget off), then the dead-letter topic read back:
   consumed == produced, dead-lettered == the invalid ones expected per partition, each
   dead-letter record has a reason header.

    python bench/fuzz_campaign.py                                    # 20,000 messages, ~1 min
    python bench/fuzz_campaign.py --messages 100000 --examples 20000 --kafka   # the full campaign
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "fuzz"))

import fuzz_inputs as fz  # noqa: E402

from config.settings import load_settings  # noqa: E402
from daemon.events import InvalidEvent, Mention, decode  # noqa: E402
from daemon.pipeline import Pipeline  # noqa: E402

REASONS = {
    "not_json",
    "invalid_utf8",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "bad_timestamp",
    "text_too_long",
    "too_far_in_future",
}


class Hang(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


class Findings:
    """Failures and notes, with a few examples each."""

    def __init__(self) -> None:
        self.failures: collections.Counter[str] = collections.Counter()
        self.notes: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, list[str]] = {}

    def fail(self, kind: str, raw: bytes, detail: str = "") -> None:
        self.failures[kind] += 1
        self._example(kind, raw, detail)

    def note(self, kind: str, raw: bytes, detail: str = "") -> None:
        self.notes[kind] += 1
        self._example(kind, raw, detail)

    def _example(self, kind: str, raw: bytes, detail: str) -> None:
        ex = self.examples.setdefault(kind, [])
        if len(ex) < 3:
            shown = raw[:160] + (f"... ({len(raw):,} bytes)".encode() if len(raw) > 160 else b"")
            ex.append(f"{shown!r} {detail}"[:400])

    def print(self) -> None:
        for title, counter in (("FAILURES", self.failures), ("notes", self.notes)):
            if not counter:
                print(f"{title}: none")
                continue
            print(f"{title}:")
            for kind, n in counter.most_common():
                print(f"  {kind}: {n:,}")
                for ex in self.examples.get(kind, []):
                    print(f"      e.g. {ex}")


# -- phase A --------------------------------------------------------------------------------------


def corpus(args: argparse.Namespace) -> Iterator[tuple[str, bytes]]:
    c = fz.Corpus(seed=args.seed, huge_every=max(1, args.messages // max(1, args.huge)) if args.huge else 0)
    for raw in c.warmup():
        yield "warmup", raw
    yield from c.messages(args.messages)


def phase_a(args: argparse.Namespace, findings: Findings) -> list[bytes]:
    settings = load_settings(env={})
    limit, ahead = settings.pipeline.max_future_seconds, settings.pipeline.max_ahead_of_clock_seconds
    now = time.time()

    def fresh() -> tuple[Pipeline, fz.Ledger]:
        return Pipeline(settings, wall_clock=lambda: now), fz.Ledger(limit, ahead, now)

    pipe, ledger = fresh()
    pipe.process(b"{}")  # warm the language models; counted below as one invalid message
    offset = 1
    by_cat: collections.Counter[str] = collections.Counter()
    outcome: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    totals = [0, 0, 0, 0]  # consumed, valid, invalid, duplicate over every pipeline used
    slowest = (0.0, b"")
    lines: list[bytes] = []
    signal.signal(signal.SIGALRM, _alarm)
    started = time.perf_counter()
    for cat, raw in corpus(args):
        by_cat[cat] += 1
        lines.append(raw)
        # the decoder alone
        try:
            signal.setitimer(signal.ITIMER_REAL, args.hang_seconds)
            t0 = time.perf_counter()
            dec = decode(raw)
            signal.setitimer(signal.ITIMER_REAL, 0)
        except Hang:
            findings.fail("decode: hang", raw, f"> {args.hang_seconds}s")
            continue
        except Exception as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            findings.fail(f"decode: raised {type(exc).__name__}", raw, str(exc)[:200])
            continue
        expected = fz.oracle_reason(raw)
        if isinstance(dec, InvalidEvent):
            if dec.reason not in REASONS or not dec.detail:
                findings.fail("decode: invalid without a known reason", raw, repr(dec))
            if expected is None:
                findings.fail("decode: valid event rejected", raw, f"{dec.reason}: {dec.detail[:120]}")
        elif not isinstance(dec, Mention):
            findings.fail("decode: returned neither Mention nor InvalidEvent", raw, repr(dec)[:200])
        elif expected is not None:
            if expected == "field:created_at":
                findings.note("decode: lenient timestamp (not RFC 3339, accepted)", raw)
            elif expected == "invalid_utf8" and _ignored_utf8(raw, dec):
                findings.note("decode: invalid UTF-8 only in an ignored unknown field, accepted", raw)
            else:
                findings.fail(f"decode: accepted, oracle says {expected}", raw)
        # the pipeline
        before = (pipe.stats.valid, pipe.stats.invalid_total, pipe.stats.duplicate)
        try:
            signal.setitimer(signal.ITIMER_REAL, args.hang_seconds)
            t0 = time.perf_counter()
            out = pipe.process(raw)
            took = time.perf_counter() - t0
            signal.setitimer(signal.ITIMER_REAL, 0)
        except Hang:
            findings.fail("pipeline: hang", raw, f"> {args.hang_seconds}s on one message; pipeline rebuilt")
            _add(totals, pipe, offset)
            pipe, ledger = fresh()
            offset = 0
            continue
        except Exception as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            findings.fail(f"pipeline: raised {type(exc).__name__}", raw, str(exc)[:200])
            _add(totals, pipe, offset)
            pipe, ledger = fresh()
            offset = 0
            continue
        if took > slowest[0]:
            slowest = (took, raw)
        after = (pipe.stats.valid, pipe.stats.invalid_total, pipe.stats.duplicate)
        moved = [n for n, b, a in zip(("valid", "invalid", "duplicate"), before, after, strict=True) if a != b]
        if len(moved) != 1 or sum(after) - sum(before) != 1:
            findings.fail("pipeline: not counted exactly once", raw, f"moved {moved}")
            continue
        got = moved[0]
        outcome[f"{cat}->{got}"] += 1
        if (out.invalid is not None) != (got == "invalid"):
            findings.fail("pipeline: counted invalid but not reported (never dead-lettered)", raw)
        if out.invalid is not None:
            reasons[out.invalid.reason] += 1
            if out.invalid.reason not in REASONS or not out.invalid.detail:
                findings.fail("pipeline: invalid without a known reason", raw, repr(out.invalid))
        want = ledger.expect(raw)
        if want == "invalid" and isinstance(dec, Mention) and _lenient(raw, dec):
            want = ledger.count(dec.id, dec.ts)  # the daemon decodes it (noted above): future, dedup
        if want != got:
            findings.fail(f"pipeline: counted {got}, oracle expects {want}", raw)
    for raw in [b"flush"]:
        try:
            pipe.flush()
        except Exception as exc:
            findings.fail(f"pipeline: flush raised {type(exc).__name__}", raw, str(exc)[:200])
    seconds = time.perf_counter() - started
    _add(totals, pipe, offset)
    consumed, valid, invalid, dup = totals
    print(f"\n== phase A: decoder + pipeline, {len(lines):,} messages in {seconds:.1f}s ==")
    print(f"by category   {dict(by_cat.most_common())}")
    print(f"counted       consumed {consumed:,} = valid {valid:,} + invalid {invalid:,} + duplicate {dup:,}", end="")
    print("  OK" if consumed == valid + invalid + dup == len(lines) else "  MISMATCH")
    if consumed != valid + invalid + dup or consumed != len(lines):
        findings.fail("pipeline: consumed != valid + invalid + duplicate", b"", f"{totals} for {len(lines)}")
    print(f"reasons       {dict(reasons.most_common())}")
    print(f"outcomes      {dict(sorted(outcome.items()))}")
    print(f"slowest       {slowest[0]:.2f}s for one message ({len(slowest[1]):,} bytes: {slowest[1][:80]!r})")
    return lines


def _ignored_utf8(raw: bytes, dec: Mention) -> bool:
    """The bad bytes changed nothing the daemon reads (msgspec skips unknown keys unchecked)."""
    fixed = raw.decode("utf-8", "replace").encode("utf-8")
    return fz.oracle_reason(fixed) is None and decode(fixed) == dec


def _lenient(raw: bytes, dec: Mention) -> bool:
    reason = fz.oracle_reason(raw)
    return reason == "field:created_at" or (reason == "invalid_utf8" and _ignored_utf8(raw, dec))


def _add(totals: list[int], pipe: Pipeline, offset: int) -> None:
    s = pipe.stats
    totals[0] += s.consumed - offset
    totals[1] += s.valid
    totals[2] += s.invalid_total - offset
    totals[3] += s.duplicate


# -- phase B --------------------------------------------------------------------------------------


def phase_b(args: argparse.Namespace, findings: Findings) -> None:
    from hypothesis import HealthCheck, given, settings

    seen = collections.Counter[str]()

    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(fz.messages)
    def check(raw: bytes) -> None:
        try:
            dec = decode(raw)
        except Exception as exc:
            findings.fail(f"hypothesis decode: raised {type(exc).__name__}", raw, str(exc)[:200])
            return
        expected = fz.oracle_reason(raw)
        if isinstance(dec, InvalidEvent):
            seen[dec.reason] += 1
            if dec.reason not in REASONS:
                findings.fail("hypothesis decode: unknown reason", raw, repr(dec))
            if expected is None:
                findings.fail("hypothesis decode: valid event rejected", raw, f"{dec.reason}: {dec.detail[:120]}")
        else:
            seen["valid"] += 1
            if expected == "invalid_utf8" and _ignored_utf8(raw, dec):
                findings.note("hypothesis decode: invalid UTF-8 only in an ignored unknown field", raw)
            elif expected == "field:created_at":
                findings.note("hypothesis decode: lenient timestamp", raw)
            elif expected is not None:
                findings.fail(f"hypothesis decode: accepted, oracle says {expected}", raw)

    started = time.perf_counter()
    check()
    print(f"\n== phase B: hypothesis, {sum(seen.values()):,} examples in {time.perf_counter() - started:.1f}s ==")
    print(f"outcomes      {dict(seen.most_common())}")


# -- probes ---------------------------------------------------------------------------------------


def _event(i: int, brand: str, ts: Any, text: str = "flight cancelled", lang: str | None = "en") -> bytes:
    obj: dict[str, Any] = {"id": f"probe:{i}", "brand": brand, "platform": "twitter", "created_at": ts}
    obj.update(text=text, author={"id": f"u{i}"})
    if lang:
        obj["lang"] = lang
    return fz._enc(obj)


def _probe_cases() -> list[tuple[str, list[bytes], list[bytes]]]:
    """(name, set-up messages, timed messages)."""
    klm = [_event(i, "klm", fz.BASE_TS + i) for i in range(50)]
    return [
        ("new brand first seen in 1970, then at stream time", [*klm, _event(100, "newbrand", 1)],
         [_event(101, "newbrand", fz.BASE_TS + 60)]),
        ("new brand first seen 30 days before the stream, then at stream time",
         [*klm, _event(100, "newbrand", fz.BASE_TS - 30 * 86400)], [_event(101, "newbrand", fz.BASE_TS + 60)]),
        ("known brand jumps 6.9 days ahead", klm, [_event(100, "klm", fz.BASE_TS + int(6.9 * 86400))]),
        ("10 MB text", [], [_event(1, "klm", fz.BASE_TS, "ash " * (10 << 18))]),
        ("64 KiB text, no lang", [], [_event(1, "klm", fz.BASE_TS, ("ash cloud " * 7000)[: 64 * 1024 - 10], None)]),
        ("nesting 100,000 deep", [], [b'{"a":' * 100_000]),
    ]  # fmt: skip


def run_probe(index: int, hang_seconds: float) -> int:
    """In a child process: one probe, its figures as one line on stdout; exit 3 on a hang.
    Only the timed messages are under the alarm (imports and set-up are not)."""
    _name, setup, timed = _probe_cases()[index]
    pipe = Pipeline(load_settings(env={}))
    for raw in setup:
        pipe.process(raw)
    signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, hang_seconds)
        for raw in timed:
            out = pipe.process(raw)
        signal.setitimer(signal.ITIMER_REAL, 0)
    except Hang:
        print(f"HANG (> {hang_seconds:.0f}s; {pipe.stats.buckets:,} buckets closed before)")
        return 3
    took = time.perf_counter() - t0
    verdict = f"invalid ({out.invalid.reason})" if out.invalid else "accepted"
    print(f"{took:7.3f}s  {verdict}, {pipe.stats.buckets:,} buckets closed")
    return 0


def probes(args: argparse.Namespace, findings: Findings) -> None:
    """Each probe in a child process with 4 GB of address space: a probe that hangs may also be
    filling memory (a list of every closed bucket)."""
    print(f"\n== probes (each in a child process with 4 GB; one message over {args.hang_seconds:.0f}s is a hang) ==")
    import resource
    import subprocess

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    for i, (name, _setup, timed) in enumerate(_probe_cases()):
        cmd = [sys.executable, __file__, "--probe", str(i), "--hang-seconds", str(args.hang_seconds)]
        try:
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=args.hang_seconds + 300, preexec_fn=limit, cwd=REPO
            )
        except subprocess.TimeoutExpired:
            out = None
        if out is None or out.returncode == 3:
            findings.fail(f"probe: {name}: hang", timed[-1], f"> {args.hang_seconds:.0f}s")
            print(f"  {name:<70} {out.stdout.strip() if out else 'HANG'}", flush=True)
            continue
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            findings.fail(f"probe: {name}: crashed", timed[-1], last[:200])
            print(f"  {name:<70} CRASHED ({last[:80]})", flush=True)
            continue
        print(f"  {name:<70} {out.stdout.strip()}", flush=True)


# -- phase K --------------------------------------------------------------------------------------


class NullNotifier:
    def send(self, notification: object) -> Any:
        from notifiers.base import Delivery

        return Delivery.done()

    def close(self) -> None:
        pass


def phase_k(args: argparse.Namespace, lines: list[bytes], findings: Findings) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

    from daemon.kafka.local_broker import LocalBroker
    from daemon.kafka.produce_command import brand_key
    from daemon.kafka.runner import Runner

    broker = None if args.bootstrap_servers else LocalBroker().start()
    bootstrap = args.bootstrap_servers or broker.bootstrap_servers  # type: ignore[union-attr]
    topic = f"fuzz-{os.getpid()}-{int(time.time())}"
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([_new_topic(topic, args.partitions)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=16 << 20)
        futures = [(raw, producer.send(topic, key=brand_key(raw), value=raw)) for raw in lines]
        producer.flush()
        by_partition: dict[int, list[bytes]] = collections.defaultdict(list)
        refused = 0
        for raw, fut in futures:
            try:
                md = fut.get(timeout=30)
            except Exception as exc:
                refused += 1
                findings.note(f"kafka: produce refused ({type(exc).__name__})", raw, str(exc)[:120])
                continue
            by_partition[md.partition].append(raw)
        producer.close()
        produced = sum(len(v) for v in by_partition.values())
        settings = load_settings(env={})
        limit, ahead = settings.pipeline.max_future_seconds, settings.pipeline.max_ahead_of_clock_seconds
        expected_invalid = 0
        for values in by_partition.values():
            ledger = fz.Ledger(limit, ahead, time.time())  # the daemon's clock, within a few minutes
            for raw in values:
                want = ledger.expect(raw)
                if want == "invalid":
                    dec = decode(raw)
                    if isinstance(dec, Mention) and _lenient(raw, dec):  # the daemon decodes it
                        want = ledger.count(dec.id, dec.ts)
                expected_invalid += want == "invalid"
        state = tempfile.mkdtemp(prefix="fuzz-kafka-")
        env = {
            "CRISISD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CRISISD_KAFKA_TOPIC": topic,
            "CRISISD_KAFKA_GROUP_ID": f"{topic}-group",
            "CRISISD_KAFKA_STATE_TOPIC": f"{topic}-state",
            "CRISISD_KAFKA_NOTIFICATIONS_TOPIC": f"{topic}-nflog",
            "CRISISD_KAFKA_DEAD_LETTER_TOPIC": f"{topic}-dead",
            "CRISISD_KAFKA_DEAD_LETTER_MAX_RATIO": "1.0",
            "CRISISD_KAFKA_DEAD_LETTER_MAX_CONSECUTIVE": str(10**9),
            "CRISISD_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "CRISISD_STATE_DIR": state,
        }
        runner = Runner(load_settings(env=env), NullNotifier())
        done = threading.Event()

        def watch() -> None:
            deadline = time.monotonic() + args.kafka_timeout
            while runner.counters.consumed < produced and time.monotonic() < deadline and not done.is_set():
                time.sleep(0.05)
            runner.request_stop()

        started = time.perf_counter()
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        try:
            code = runner.run()
        except Exception as exc:
            findings.fail(f"kafka: runner raised {type(exc).__name__}", b"", str(exc)[:300])
            code = -1
        done.set()
        t.join()
        seconds = time.perf_counter() - started
        c = runner.counters
        # read the dead-letter topic back
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )
        dl_topic = f"{topic}-dead"
        parts = consumer.partitions_for_topic(dl_topic) or set()
        consumer.assign([TopicPartition(dl_topic, p) for p in parts])
        dl_reasons: collections.Counter[str] = collections.Counter()
        dead = 0
        for rec in consumer:
            dead += 1
            headers = dict(rec.headers or [])
            reason = headers.get("crisisd.reason", b"").decode()
            dl_reasons[reason or "<none>"] += 1
            if reason not in REASONS:
                findings.fail("kafka: dead-letter record without a known reason", rec.value or b"", reason)
        consumer.close()
    finally:
        if broker is not None:
            broker.stop()
    print(f"\n== phase K: Kafka ({args.partitions} partitions, {bootstrap}) in {seconds:.1f}s, runner exit {code} ==")
    print(f"produced      {produced:,} (refused by client or broker: {refused:,})")
    print(f"consumed      {c.consumed:,}  dead-lettered {c.dead_lettered:,}  expected invalid {expected_invalid:,}")
    print(f"dead letters  {dead:,} records read back; reasons {dict(dl_reasons.most_common())}")
    # a rebalance restores a partition from its last checkpoint and processes some messages again
    print(f"runner        {c}")
    if c.consumed != produced:
        findings.fail("kafka: consumed != produced", b"", f"{c.consumed} != {produced}")
    if c.dead_lettered != expected_invalid:
        findings.fail("kafka: dead-lettered != expected invalid", b"", f"{c.dead_lettered} != {expected_invalid}")
    if dead != c.dead_lettered:
        findings.fail("kafka: dead-letter topic != dead-lettered count", b"", f"{dead} != {c.dead_lettered}")


def _new_topic(name: str, partitions: int) -> Any:
    from kafka.admin import NewTopic

    return NewTopic(name, partitions, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=20_000, help="phase-A messages (default 20,000)")
    ap.add_argument("--huge", type=int, default=5, help="how many of them carry a 10 MB text (default 5)")
    ap.add_argument(
        "--examples", type=int, default=3_000, help="hypothesis examples in phase B (default 3,000; 0 skips it)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hang-seconds", type=float, default=30.0, help="one message taking longer is a hang (30)")
    ap.add_argument("--kafka", action="store_true", help="also run phase K through a loopback broker")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--kafka-timeout", type=float, default=900.0, help="give up on phase K after this (s)")
    ap.add_argument("--bootstrap-servers", help="use this broker instead of a local Tansu")
    ap.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe is not None:
        return run_probe(args.probe, args.hang_seconds)

    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    findings = Findings()
    lines = phase_a(args, findings)
    probes(args, findings)
    if args.examples:
        phase_b(args, findings)  # after A and the probes: hypothesis installs a gc callback a SIGALRM may hit
    if args.kafka:
        phase_k(args, lines, findings)
    print()
    findings.print()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return 1 if findings.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
