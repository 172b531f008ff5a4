"""`crisisd produce FILE --topic T`: load a JSONL stream of mention events into Kafka.

Each line becomes one message with the (lower-cased) brand as key, so one brand's events stay
ordered on one partition. Lines that are not JSON objects with a string `brand` are produced
as they are, with no key: that is how the dead-letter path is demonstrated. Empty lines are
skipped, and so is a line over 1 MiB (Kafka's default message size), reported by its number
with exit 1. The topic is created (`--partitions`, default 6) when it does not exist.

>>> brand_key(b'{"id": "t:1", "brand": "KLM", "text": "hi"}')
b'klm'
>>> brand_key(b'not json') is None, brand_key(b'[1, 2]') is None
(True, True)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from daemon.cli import MAX_LINE_BYTES, UsageError, check_input, input_lines
from daemon.events import brand_key

# room for the key and the record's framing beside a line of MAX_LINE_BYTES
_MAX_REQUEST_BYTES = MAX_LINE_BYTES + (64 << 10)


def read_lines(path: str, too_long: Callable[[int], object]) -> Iterator[bytes]:
    """The non-empty lines of FILE (`-` is stdin; plain or gzip), without their line ends; a line
    over MAX_LINE_BYTES is not read whole, and `too_long` gets its number instead."""
    for n, raw in enumerate(input_lines(path, MAX_LINE_BYTES), 1):
        line = raw.rstrip(b"\r\n")
        if len(line) > MAX_LINE_BYTES:
            too_long(n)
        elif line.strip():
            yield line


def produce_file(
    path: str,
    topic: str,
    settings: Any,
    *,
    partitions: int = 6,
    create: bool = True,
    too_long: Callable[[int], object],
) -> tuple[int, int]:
    """Produce every line of `path` to `topic`; returns (messages, messages without key). Lines
    over MAX_LINE_BYTES are not produced: `too_long` gets their numbers."""
    from daemon.kafka.clients import ensure_topics, make_admin, make_producer

    k = settings.kafka
    if create:
        admin = make_admin(k)
        try:
            ensure_topics(admin, {topic: (partitions, {})})
        finally:
            admin.close()
    producer = make_producer(k, linger_ms=5, batch_size=256 * 1024, acks="all", max_request_size=_MAX_REQUEST_BYTES)
    sent = unkeyed = 0
    try:
        for line in read_lines(path, too_long):
            key = brand_key(line)
            if key is None:
                unkeyed += 1
            producer.send(topic, key=key, value=line)
            sent += 1
        producer.flush()
    finally:
        producer.close()
    return sent, unkeyed


def main(args: argparse.Namespace) -> int:
    from config.settings import ConfigError, load_settings

    check_input(args.file)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.bootstrap_servers:
        from daemon.kafka.settings import server_problem

        servers = [s.strip() for s in args.bootstrap_servers.split(",") if s.strip()]
        for server in servers:  # struct replace skips the settings' own check
            problem = server_problem(server)
            if problem:
                raise UsageError(f"--bootstrap-servers: {problem}")
        settings = msgspec.structs.replace(
            settings, kafka=msgspec.structs.replace(settings.kafka, bootstrap_servers=servers)
        )
    if not settings.kafka.bootstrap_servers:
        raise UsageError("kafka.bootstrap_servers: not configured")
    skipped: list[int] = []

    def too_long(n: int) -> None:
        skipped.append(n)
        print(f"crisisd produce: line {n}: longer than {MAX_LINE_BYTES} bytes: not produced", file=sys.stderr)

    sent, unkeyed = produce_file(args.file, args.topic, settings, partitions=args.partitions, too_long=too_long)
    print(f"produced {sent} messages to {args.topic} ({unkeyed} without a brand key)", file=sys.stderr)
    if skipped:
        print(f"crisisd produce: {len(skipped)} line(s) not produced", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("produce", help="load a JSONL stream of mention events into a Kafka topic")
    p.add_argument("file", metavar="FILE", help="JSONL file of mention events (`-` for stdin)")
    p.add_argument("--topic", required=True, help="the topic to produce to")
    p.add_argument("--bootstrap-servers", help="comma-separated host:port list (overrides the configuration)")
    p.add_argument("--config", help="YAML configuration file (default: $CRISISD_CONFIG)")
    p.add_argument("--partitions", type=int, default=6, help="partitions when the topic has to be created (default 6)")
    p.set_defaults(func=main)
