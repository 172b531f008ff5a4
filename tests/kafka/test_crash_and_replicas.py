"""Crashes and scale-out: SIGKILL at random points, and a replica lost mid-stream.

"Notified" is the `--notify-file` (JSONL, one line per delivery, appended by whichever replica
delivers): a notification notified twice shows up as two lines with the same (incident_id, seq).
Expected is what one pipeline per partition computes (test_run_equivalence shows the daemon
gives exactly that when nothing goes wrong).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from kafka_helpers import PARTITIONS, crisisd, keys, notified, start_crisisd, true_ends, wait_committed

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _env(bootstrap: str, name: str, state: Path, client: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    env.update(
        CRISISD_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CRISISD_KAFKA_CLIENT=client,
        CRISISD_KAFKA_TOPIC=f"{name}-mentions",
        CRISISD_KAFKA_GROUP_ID=name,
        CRISISD_KAFKA_STATE_TOPIC=f"{name}-state",
        CRISISD_KAFKA_DEAD_LETTER_TOPIC=f"{name}-dead",
        CRISISD_KAFKA_NOTIFICATIONS_TOPIC=f"{name}-nflog",
        CRISISD_KAFKA_SESSION_TIMEOUT_MS="6000",
        CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS="500",
        CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS="1",
        CRISISD_KAFKA_MAX_POLL_RECORDS="200",
        CRISISD_STATE_DIR=str(state),
        CRISISD_LOG_FORMAT="json",
        CRISISD_HTTP_PORT="0",
    )
    return env


def _produce(ash, env: dict[str, str], bootstrap: str) -> dict[int, int]:
    topic = env["CRISISD_KAFKA_TOPIC"]
    done = crisisd("produce", str(ash.path), "--topic", topic, "--partitions", str(PARTITIONS), env=env)
    assert done.returncode == 0, done.stderr
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    try:
        return true_ends(reader, topic)
    finally:
        reader.close()


def _check(ash, lines: list[bytes]) -> None:
    counts = Counter(keys(lines))
    assert [k for k, n in counts.items() if n > 1] == [], "notified twice"
    assert sorted(lines) == sorted(ash.expected), "lost or different notifications"


def test_sigkill_ten_times_during_one_replay(ash, bootstrap: str, tmp_path: Path, kafka_client: str) -> None:
    group = f"crash-{kafka_client}"
    env = _env(bootstrap, group, tmp_path / "state", kafka_client)
    # a killed member holds its partitions until its session times out: keep that short
    env.update(CRISISD_KAFKA_SESSION_TIMEOUT_MS="3000", CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS="300")
    ends = _produce(ash, env, bootstrap)
    out = tmp_path / "notified.jsonl"
    rng = random.Random(20100415)
    kills = 0
    log = tmp_path / "stderr"
    with open(log, "ab") as se:
        while kills < 10:
            joined = log.read_bytes().count(b"partitions assigned")
            proc = start_crisisd("run", "--notify-file", str(out), env=env, stderr=se)
            # wait for the group join, then kill at a random point of what follows: the restore,
            # processing, checkpoints, commits, deliveries
            deadline = time.monotonic() + 60
            while log.read_bytes().count(b"partitions assigned") == joined and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 6.0))
            assert proc.poll() is None, log.read_text()[-3000:]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        joined = log.read_bytes().count(b"partitions assigned")
        proc = start_crisisd("run", "--notify-file", str(out), env=env, stderr=se)
        deadline = time.monotonic() + 60
        while log.read_bytes().count(b"partitions assigned") == joined and time.monotonic() < deadline:
            time.sleep(0.05)  # a SIGTERM before the daemon set up its handlers would just kill it
        try:
            wait_committed(bootstrap, group, env["CRISISD_KAFKA_TOPIC"], ends, timeout=400)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert kills >= 10
    _check(ash, notified(out))


def _owned(log: Path) -> set[int]:
    """The partitions a replica holds now, from its log lines."""
    import json

    owned: set[int] = set()
    for line in log.read_bytes().splitlines():
        try:
            ev = json.loads(line).get("event", "")
        except ValueError:
            continue
        if ev.startswith("partitions assigned: "):
            owned |= set(json.loads(ev.split(": ", 1)[1]))
        elif ev.startswith(("partitions revoked: ", "partitions lost: ")):
            owned -= set(json.loads(ev.split(": ", 1)[1]))
    return owned


def test_three_replicas_one_killed_mid_stream(ash, bootstrap: str, tmp_path: Path, kafka_client: str) -> None:
    """Each replica has its own state dir (its own machine and outbox); they share the group,
    the changelog, the notification log and the notified file (the Slack channel). The replica
    killed is the one holding the crisis brand's partition, mid-crisis."""
    from kafka_helpers import _partition

    group = f"replicas-{kafka_client}"
    base = _env(bootstrap, group, tmp_path / "unused", kafka_client)
    ends = _produce(ash, base, bootstrap)
    crisis = max(ends, key=lambda p: ends[p])  # the partition with the crisis brand's flood
    assert crisis == _partition(b"klm", PARTITIONS)
    out = tmp_path / "notified.jsonl"
    procs = []
    logs = [tmp_path / f"stderr-{i}" for i in range(3)]
    files = [open(log, "ab") for log in logs]  # noqa: SIM115 - closed below
    try:
        for i in range(3):
            env = dict(base, CRISISD_STATE_DIR=str(tmp_path / f"state-{i}"))
            procs.append(start_crisisd("run", "--notify-file", str(out), env=env, stderr=files[i]))
        # mid-stream: some of the crisis notified, the rest still ahead
        deadline = time.monotonic() + 240
        while len(notified(out)) < max(1, len(ash.expected) // 4) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert notified(out), "nothing notified before the kill"
        assert len(notified(out)) < len(ash.expected), "the stream was over before the kill"
        (victim,) = [i for i in range(3) if crisis in _owned(logs[i])]
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        survivors = [p for i, p in enumerate(procs) if i != victim]
        try:
            wait_committed(bootstrap, group, base["CRISISD_KAFKA_TOPIC"], ends, timeout=400)
        finally:
            for p in survivors:
                p.send_signal(signal.SIGTERM)
            for p in survivors:
                p.wait(timeout=60)
    finally:
        for f in files:
            f.close()
    errors = "".join(log.read_text()[-1500:] for log in logs)
    assert [p.returncode for p in survivors] == [0, 0], errors
    restored = f"restored {group}-mentions:{crisis} at offset".encode()
    took_over = [i for i in range(3) if i != victim and restored in logs[i].read_bytes()]
    assert took_over, errors
    _check(ash, notified(out))
