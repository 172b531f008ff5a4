"""Helpers for the Kafka tests (imported by the test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parents[2]


def read_topic(consumer: KafkaConsumer, topic: str, timeout: float = 20.0) -> list[Any]:
    """Every record of `topic` (all partitions), reading until the high watermarks."""
    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=100).values():
            out.extend(records)
        if all((h := consumer.highwater(tp)) is not None and consumer.position(tp) >= h for tp in tps):
            return out
    raise TimeoutError(f"{topic} not read to its end")


def crisisd(*args: str, env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], env=env, cwd=REPO, capture_output=True, **kw)


def start_crisisd(*args: str, env: dict[str, str], stderr: Any = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
    )
