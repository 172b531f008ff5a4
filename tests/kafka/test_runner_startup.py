"""Starting without a reachable broker: wait and report unready, exit 0 on a stop, 1 after the bound.

A daemon started beside its broker (compose, a rolling restart) must not crash-loop while Kafka
comes up, and a SIGTERM in that window must not wait for the client's own bootstrap timeout.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path
from unittest import mock

import pytest

from config.settings import Settings, load_settings
from daemon.kafka.runner import KafkaUnreachable, Runner
from daemon.notification import Notification
from notifiers.base import Delivery

pytestmark = pytest.mark.kafka


class Discard:
    def send(self, n: Notification) -> Delivery:
        return Delivery.done()

    def close(self) -> None:
        pass


class Beats:
    def __init__(self, beats: list[float]) -> None:
        self.beats = beats

    def beat(self) -> None:
        self.beats.append(time.monotonic())


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable(tmp_path: Path, kafka_client: str, **env: str) -> Settings:
    return load_settings(
        env={
            "CRISISD_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}",
            "CRISISD_KAFKA_CLIENT": kafka_client,
            "CRISISD_STATE_DIR": str(tmp_path / "state"),
            **env,
        }
    )


def test_a_stop_while_waiting_for_the_brokers_exits_0_within_seconds(tmp_path: Path, kafka_client: str) -> None:
    beats: list[float] = []
    runner = Runner(unreachable(tmp_path, kafka_client), Discard(), heartbeat=Beats(beats))
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while runner.readiness()["brokers"]["error"] in ("", "connecting") and time.monotonic() < deadline:
        time.sleep(0.05)
    checks = runner.readiness()
    assert checks["brokers"]["ok"] is False and checks["brokers"]["error"]  # /readyz says why
    assert beats  # /healthz stays live: waiting for the brokers is not a hung loop
    stopped = time.monotonic()
    runner.request_stop()
    t.join(15)
    assert not t.is_alive(), "the runner kept waiting for the brokers after a stop"
    assert result == [0]
    assert time.monotonic() - stopped < 12  # one bootstrap attempt at most, not the client's 30 s


def test_brokers_that_never_answer_fail_after_the_bound_and_name_the_servers(tmp_path: Path, kafka_client: str) -> None:
    s = unreachable(tmp_path, kafka_client, CRISISD_KAFKA_CONNECT_TIMEOUT_SECONDS="2")
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable, match=r"Kafka at 127\.0\.0\.1:\d+ did not answer within 2 s"):
        Runner(s, Discard()).run()
    assert time.monotonic() - started < 20


def test_the_heartbeat_beats_through_a_backoff(tmp_path: Path, kafka_client: str) -> None:
    """A 30 s backoff must not outlast a shorter liveness timeout: beats come about every second."""
    beats: list[float] = []
    runner = Runner(unreachable(tmp_path, kafka_client), Discard(), heartbeat=Beats(beats))
    stop = threading.Event()
    with (
        mock.patch.object(Runner, "_discover_topics", side_effect=KafkaUnreachable("closed")),
        mock.patch("daemon.kafka.runner.client_errors", return_value=(KafkaUnreachable,)),
    ):
        t = threading.Thread(target=lambda: (runner._await_brokers(), stop.set()), daemon=True)
        t.start()
        time.sleep(4.5)  # attempts at 0, 1 and 3 s, then a 4 s backoff
        runner.request_stop()
        t.join(5)
    assert stop.is_set()
    assert len(beats) >= 4
    assert max(b - a for a, b in itertools.pairwise(beats)) < 2.0


def test_checkpoint_age_counts_unsaved_work_only(tmp_path: Path) -> None:
    """The documented alert (`checkpoint_age_seconds > 300`) must not page on a quiet night:
    an idle replica with everything saved reads 0; work waiting for a checkpoint reads its wait."""
    from daemon import metrics
    from daemon.clock import FakeClock
    from daemon.kafka.runner import PartitionTask

    def age() -> float:
        value = metrics.REGISTRY.get_sample_value("crisisd_checkpoint_age_seconds")
        assert value is not None
        return value

    clock = FakeClock(1_000.0)
    runner = Runner(unreachable(tmp_path, "kafka-python"), Discard(), clock=clock)
    task = PartitionTask(tp=mock.Mock(), pipeline=mock.Mock(), next_offset=10, checkpointed=10)
    runner._tasks = {task.tp: task}
    runner._publish_checkpoint_age()
    clock.advance(3_600)  # an hour without a message
    runner._publish_checkpoint_age()
    assert age() == 0.0
    task.next_offset = 12  # two messages processed, not yet saved
    runner._publish_checkpoint_age()
    clock.advance(400)
    runner._publish_checkpoint_age()
    assert age() == 400.0
    task.checkpointed = 12  # the checkpoint is written
    runner._publish_checkpoint_age()
    assert age() == 0.0
