"""Helpers for the Kafka tests (imported by the test modules; fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from daemon.notification import NegativityFigures, Notification, VolumeFigures

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 6


def note(seq: int) -> Notification:
    """Notification `seq` of one test incident."""
    return Notification(
        type="incident.updated",
        incident_id="klm-1",
        brand="klm",
        severity="sev2",
        signals=["volume"],
        started_at="t0",
        detected_at="t1",
        seq=seq,
        volume=VolumeFigures(900, 300, 3.0),
        negativity=NegativityFigures(0.5, 0.2),
    )


def _partition(key: bytes | None, partitions: int) -> int:
    """The partition kafka-python's default partitioner picks for a key."""
    from kafka.partitioner.default import murmur2

    return 0 if key is None else (murmur2(key) & 0x7FFFFFFF) % partitions


# `python -m daemon.cli` would load the CLI twice (as __main__ and as daemon.cli): two UsageErrors.
_MAIN = "import sys; from daemon.cli import main; sys.exit(main(sys.argv[1:]))"


def read_topic(consumer: KafkaConsumer, topic: str, timeout: float = 20.0, settle: float = 0.5) -> list[Any]:
    """Every record of `topic` (all partitions), reading until the high watermarks, then on while records
    still come within `settle` seconds: the loopback broker's high watermark can fall short of the last
    batch (a CI run once missed a partition's records)."""
    parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        got = [r for records in consumer.poll(timeout_ms=100).values() for r in records]
        out.extend(got)
        if all((h := consumer.highwater(tp)) is not None and consumer.position(tp) >= h for tp in tps):
            now = time.monotonic()
            quiet_since = now if got or quiet_since is None else quiet_since
            if now - quiet_since >= settle:
                return out
        else:
            quiet_since = None
    raise TimeoutError(f"{topic} not read to its end")


def crisisd(*args: str, env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", _MAIN, *args], env=env, cwd=REPO, capture_output=True, **kw)


def start_crisisd(*args: str, env: dict[str, str], stdout: Any = None, stderr: Any = None) -> subprocess.Popen[bytes]:
    """A daemon in the background. Give files for stdout/stderr: a pipe nobody reads fills up and
    blocks the daemon on its next `--json` line."""
    return subprocess.Popen(
        [sys.executable, "-c", _MAIN, *args],
        env=env,
        cwd=REPO,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=stderr if stderr is not None else subprocess.DEVNULL,
    )


def true_ends(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    """Partition -> offset after its last record (read, since Tansu's ListOffsets can fall short)."""
    ends: dict[int, int] = {p: 0 for p in consumer.partitions_for_topic(topic) or ()}
    for r in read_topic(consumer, topic):
        ends[r.partition] = max(ends[r.partition], r.offset + 1)
    return ends


def wait_committed(bootstrap: str, group: str, topic: str, ends: dict[int, int], timeout: float) -> None:
    """Until the group's committed offsets reach `ends` (every message processed and checkpointed)."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        left = dict(ends)
        while left:
            for p, end in list(left.items()):
                if (c.committed(TopicPartition(topic, p)) or 0) >= end:
                    del left[p]
            if left and time.monotonic() > deadline:
                now = {p: c.committed(TopicPartition(topic, p)) for p in left}
                raise TimeoutError(f"group {group} did not commit to the end of {topic}: ends {left}, committed {now}")
            if left:
                time.sleep(0.2)
    finally:
        c.close(autocommit=False)


def notified(path: Path) -> list[bytes]:
    """The lines of a --notify-file (what was delivered), [] when nothing was."""
    if not path.exists():
        return []
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def keys(lines: list[bytes]) -> list[tuple[str, int]]:
    import json

    return [(d["incident_id"], d.get("seq", 1)) for d in map(json.loads, lines)]
