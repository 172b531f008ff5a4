"""`crisisd produce FILE --topic T`: load a JSONL stream of mention events into Kafka.

Each line becomes one message with the (lower-cased) brand as key, so one brand's events stay
ordered on one partition. Lines that are not JSON objects with a string `brand` are produced
as they are, with no key: that is how the dead-letter path is demonstrated. Empty lines are
skipped. The topic is created (`--partitions`, default 6) when it does not exist.

>>> brand_key(b'{"id": "t:1", "brand": "KLM", "text": "hi"}')
b'klm'
>>> brand_key(b'not json') is None, brand_key(b'[1, 2]') is None
(True, True)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

import msgspec

from daemon.cli import UsageError, check_input, input_lines


class _BrandOnly(msgspec.Struct):
    brand: str


_brand_decoder = msgspec.json.Decoder(_BrandOnly)


def brand_key(line: bytes) -> bytes | None:
    """The message key for one line: its brand, or None when the line has no usable brand."""
    try:
        return _brand_decoder.decode(line).brand.strip().lower().encode("utf-8")
    except (msgspec.DecodeError, UnicodeError, RecursionError):  # bad UTF-8 in a field, deep nesting
        return None


def read_lines(path: str) -> Iterator[bytes]:
    """The non-empty lines of FILE (`-` is stdin; plain or gzip), without their line ends."""
    for raw in input_lines(path):
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield line


def produce_file(path: str, topic: str, settings: Any, *, partitions: int = 6, create: bool = True) -> tuple[int, int]:
    """Produce every line of `path` to `topic`; returns (messages, messages without key)."""
    from daemon.kafka.clients import ensure_topics, make_admin, make_producer

    k = settings.kafka
    if create:
        admin = make_admin(k)
        try:
            ensure_topics(admin, {topic: (partitions, {})})
        finally:
            admin.close()
    producer = make_producer(k, linger_ms=5, batch_size=256 * 1024, acks="all")
    sent = unkeyed = 0
    try:
        for line in read_lines(path):
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
    sent, unkeyed = produce_file(args.file, args.topic, settings, partitions=args.partitions)
    print(f"produced {sent} messages to {args.topic} ({unkeyed} without a brand key)", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("produce", help="load a JSONL stream of mention events into a Kafka topic")
    p.add_argument("file", metavar="FILE", help="JSONL file of mention events (`-` for stdin)")
    p.add_argument("--topic", required=True, help="the topic to produce to")
    p.add_argument("--bootstrap-servers", help="comma-separated host:port list (overrides the configuration)")
    p.add_argument("--config", help="YAML configuration file (default: $CRISISD_CONFIG)")
    p.add_argument("--partitions", type=int, default=6, help="partitions when the topic has to be created (default 6)")
    p.set_defaults(func=main)
