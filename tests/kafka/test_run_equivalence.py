"""The simulated ash crisis through Kafka (`crisisd produce` + `crisisd run`) against replay."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka_helpers import PARTITIONS, crisisd, keys, notified, read_topic, start_crisisd, true_ends, wait_committed

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@dataclass
class Run:
    returncode: int
    notified: list[bytes]
    stdout: list[bytes]
    dead: list[Any]
    stderr: str


@pytest.fixture(scope="module")
def one_run(ash, bootstrap: str, tmp_path_factory: pytest.TempPathFactory, kafka_client: str) -> Run:
    """`crisisd produce` the stream into a 6-partition topic, `crisisd run --json` until every
    offset is committed, then SIGTERM (once per client backend)."""
    import os

    tmp = tmp_path_factory.mktemp("run")
    name = f"equivalence-{kafka_client}"
    topic = f"mentions-{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    env.update(
        CRISISD_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        CRISISD_KAFKA_CLIENT=kafka_client,
        CRISISD_KAFKA_TOPIC=topic,
        CRISISD_KAFKA_GROUP_ID=name,
        CRISISD_KAFKA_STATE_TOPIC=f"{name}-state",
        CRISISD_KAFKA_DEAD_LETTER_TOPIC=f"{name}-dead",
        CRISISD_KAFKA_NOTIFICATIONS_TOPIC=f"{name}-nflog",
        CRISISD_KAFKA_SESSION_TIMEOUT_MS="6000",
        CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS="500",
        CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS="1",
        CRISISD_STATE_DIR=str(tmp / "state"),
        CRISISD_LOG_FORMAT="json",
        CRISISD_HTTP_PORT="0",
    )
    done = crisisd("produce", str(ash.path), "--topic", topic, "--partitions", str(PARTITIONS), env=env)
    assert done.returncode == 0, done.stderr
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    ends = true_ends(reader, topic)
    out = tmp / "notified.jsonl"
    with open(tmp / "stdout", "wb") as so, open(tmp / "stderr", "wb") as se:
        proc = start_crisisd("run", "--json", "--notify-file", str(out), env=env, stdout=so, stderr=se)
        try:
            wait_committed(bootstrap, name, topic, ends, timeout=300)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    dead = read_topic(reader, f"{name}-dead")
    reader.close()
    return Run(
        proc.returncode,
        notified(out),
        (tmp / "stdout").read_bytes().splitlines(),
        dead,
        (tmp / "stderr").read_text(errors="replace"),
    )


def test_run_exits_0_on_sigterm(one_run: Run) -> None:
    assert one_run.returncode == 0, one_run.stderr[-3000:]


def test_run_notifies_what_the_pipelines_compute(ash, one_run: Run) -> None:
    """Byte-identical notification objects, in order per incident; `--json` prints the same."""
    assert ash.expected, "the scenario must raise incidents"
    assert sorted(one_run.notified) == sorted(ash.expected)
    assert sorted(one_run.stdout) == sorted(ash.expected)
    for incident in {k[0] for k in keys(ash.expected)}:
        got = [k for k in keys(one_run.notified) if k[0] == incident]
        assert got == [k for k in keys(ash.expected) if k[0] == incident]


def test_run_gives_the_same_incidents_as_replay(ash, one_run: Run) -> None:
    assert sorted(one_run.notified) == sorted(ash.replay)


def test_invalid_lines_are_dead_lettered_with_reasons(ash, one_run: Run) -> None:
    assert ash.invalid > 0
    assert len(one_run.dead) == ash.invalid
    reasons = {dict(r.headers)["crisisd.reason"].decode() for r in one_run.dead}
    assert reasons <= {
        "not_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "invalid_value",
        "bad_timestamp",
        "invalid_utf8",
        "text_too_long",
        "too_far_in_future",
    }
    original = set(Path(ash.path).read_bytes().splitlines())
    assert all(r.value in original for r in one_run.dead)


def test_run_without_kafka_configured_exits_2(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    env["CRISISD_STATE_DIR"] = str(tmp_path)
    done = crisisd("run", env=env)
    assert done.returncode == 2
    assert b"kafka.bootstrap_servers: not configured" in done.stderr
