"""Kafka clients built from `KafkaSettings`, and topic creation.

Two backends behind one interface (`kafka.client`): kafka-python (the default, pure Python)
and confluent-kafka (librdkafka, `pip install 'crisisd[confluent]'`, daemon/kafka/confluent_client.py).
The interface is the part of kafka-python's API crisisd uses, spelled out in `Consumer`,
`Producer` and `Admin` below; the confluent backend adapts librdkafka to it.

`client_options` from the settings are offered to every client; each client only receives
the options it knows (kafka-python rejects unknown keyword arguments).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from kafka import AsyncConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, TopicAlreadyExistsError

from daemon.kafka.settings import KafkaSettings, client_config

log = logging.getLogger(__name__)


def _known(cls: Any, cfg: Mapping[str, Any]) -> dict[str, Any]:
    defaults = getattr(cls, "DEFAULT_CONFIG", None)
    if defaults is None:  # pragma: no cover
        return dict(cfg)
    return {k: v for k, v in cfg.items() if k in defaults}


def _merge(s: KafkaSettings, own: Mapping[str, Any]) -> dict[str, Any]:
    """Our defaults for this client, then the common settings, then client_options (they win)."""
    cfg = dict(own)
    base = client_config(s)
    options = base.keys() & s.client_options.keys()
    cfg.update({k: v for k, v in base.items() if k not in options})
    cfg.update({k: base[k] for k in options})
    return cfg


class PartitionOwner(Protocol):
    """What a consumer group member does when partitions move (the runner, the re-keyer)."""

    def _on_revoked(self, revoked: set[TopicPartition]) -> None: ...
    def _on_assigned(self, assigned: set[TopicPartition]) -> None: ...
    def _on_lost(self, lost: set[TopicPartition]) -> None: ...


class RebalanceListener(AsyncConsumerRebalanceListener):
    """Hands a rebalance to its `PartitionOwner`. Runs while the owner's thread is inside `poll()` or
    `close()` (kafka-python: on its IO thread): blocking consumer calls are not allowed here, the
    producer (and the runner's outbox) are fine."""

    def __init__(self, owner: PartitionOwner) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.owner._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner._on_assigned(assigned)

    async def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.owner._on_lost(lost)


class Consumer(Protocol):
    """What crisisd asks of a consumer (kafka-python's names). `poll` returns records by
    partition, each with `offset`, `value`, `key`, `topic`, `partition`, `timestamp`, `headers`;
    offsets to commit are `tp -> OffsetAndMetadata`; the listener of `subscribe` has
    `on_partitions_revoked/assigned/lost(set[TopicPartition])`."""

    def subscribe(self, topics: list[str], listener: Any = ...) -> Any: ...
    def assign(self, partitions: list[TopicPartition]) -> Any: ...
    def poll(self, timeout_ms: int = ..., max_records: int | None = ...) -> Mapping[TopicPartition, list[Any]]: ...
    def pause(self, *partitions: TopicPartition) -> Any: ...
    def resume(self, *partitions: TopicPartition) -> Any: ...
    def seek(self, partition: TopicPartition, offset: int) -> Any: ...
    def seek_to_beginning(self, *partitions: TopicPartition) -> Any: ...
    def position(self, partition: TopicPartition) -> int: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def committed(self, partition: TopicPartition) -> int | None: ...
    def beginning_offsets(self, partitions: Iterable[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    def end_offsets(self, partitions: Iterable[TopicPartition]) -> Mapping[TopicPartition, int]: ...
    def partitions_for_topic(self, topic: str) -> set[int] | None: ...
    def commit(self, offsets: Any) -> Any: ...
    def commit_async(self, offsets: Any) -> Any: ...
    def close(self, autocommit: bool = ..., timeout_ms: int | None = ...) -> Any: ...


class SendFuture(Protocol):
    """The result of one send (kafka-python's `FutureRecordMetadata`; the confluent adapter's)."""

    @property
    def is_done(self) -> bool: ...
    @property
    def exception(self) -> BaseException | None:
        """Why the send failed (the client's error, with its code), once done; else None."""

    def get(self, timeout: float | None = ...) -> Any: ...


class Producer(Protocol):
    """`send(...).get(timeout)` waits for the acknowledgement; `flush` for every send, and raises
    `SendFailed` when a send since the last flush failed (so nothing is committed past a lost
    record); `on_error(exception)` is called (from any thread) when that send fails, to tell
    which. `send` raises when the client refuses the record itself (e.g. over `max_request_size`).
    `timestamp_ms` None: the record's timestamp is the time of the send."""

    def send(
        self,
        topic: str,
        value: bytes | None = ...,
        key: bytes | None = ...,
        headers: list[tuple[str, bytes]] | None = ...,
        partition: int | None = ...,
        timestamp_ms: int | None = ...,
        on_error: Callable[[BaseException], None] | None = ...,
    ) -> SendFuture: ...
    def flush(self, timeout: float | None = ...) -> Any: ...
    def close(self, timeout: float | None = ...) -> Any: ...


class Admin(Protocol):
    def list_topics(self) -> Any: ...
    def describe_cluster(self) -> Any: ...
    def create_topics(self, new_topics: Any, raise_errors: bool = ...) -> Any: ...
    def close(self) -> Any: ...


def make_consumer(s: KafkaSettings, **own: Any) -> Consumer:
    cfg = _merge(s, own)
    if s.client == "confluent":
        from daemon.kafka.confluent_client import ConfluentConsumer, translate

        return ConfluentConsumer(translate(cfg, "consumer"), max_poll_records=int(cfg.get("max_poll_records", 500)))
    return KafkaConsumer(**_known(KafkaConsumer, cfg))


def make_producer(s: KafkaSettings, **own: Any) -> Producer:
    cfg = _merge(s, own)
    if s.client == "confluent":
        from daemon.kafka.confluent_client import ConfluentProducer, translate

        return ConfluentProducer(translate(cfg, "producer"))
    return CheckedProducer(KafkaProducer(**_known(KafkaProducer, cfg)))


class SendFailed(KafkaError):
    """Raised by `flush`: sends failed since the last one; `errors` are the clients' exceptions."""

    def __init__(self, errors: list[BaseException]) -> None:
        super().__init__(f"{len(errors)} records not delivered: {errors[0]}")
        self.errors = errors


class SendFailures:
    """The sends that failed since the last `flush`, recorded from the client's IO thread; `flush`
    raises for them (both backends: a record lost must stop the commit that would follow it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def add(self, err: BaseException) -> None:
        with self._lock:
            self._errors.append(err)

    def raise_any(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise SendFailed(errors)


class CheckedProducer:
    """kafka-python's producer with a `flush` that raises when a send failed.

    kafka-python's own `flush` only waits: a record the broker refused (too large for the topic,
    not authorised, retries exhausted) fails its future and nothing else, so a dead letter or a
    checkpoint could be lost silently and its offsets committed after it. The confluent adapter
    has the same rule (daemon/kafka/confluent_client.py)."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._p = producer
        self._failures = SendFailures()

    def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> Any:
        future = self._p.send(
            topic, value=value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
        )
        future.add_errback(self._failures.add)
        if on_error is not None:
            future.add_errback(on_error)
        return future

    def flush(self, timeout: float | None = None) -> None:
        self._p.flush(timeout)
        self._failures.raise_any()

    def close(self, timeout: float | None = None) -> None:
        self._p.close(timeout=timeout)


def resume(consumer: Consumer, *partitions: TopicPartition) -> None:
    """`consumer.resume(...)`, and with kafka-python, its records of them held back while paused
    dropped, so that they are fetched again from their position.

    kafka-python 3.0.12 holds the records of a partition paused halfway through a fetch and hands
    them back on resume only while no other partition's records were read since; otherwise the
    partition is never fetched again (it has held records, which are never returned). Dropping
    them costs one fetch: the position is that of the last record returned."""
    consumer.resume(*partitions)
    fetcher = getattr(consumer, "_fetcher", None)
    held = getattr(fetcher, "_paused_partition_records", None)
    if not isinstance(held, dict):
        return
    for tp in partitions:
        records = held.pop(tp, None)
        if records is not None:
            records.drain()


def client_errors(s: KafkaSettings) -> tuple[type[Exception], ...]:
    """What the configured client raises when the brokers do not answer (or refuse us)."""
    if s.client == "confluent":
        from confluent_kafka import KafkaException

        return (KafkaError, KafkaException)
    return (KafkaError,)


def make_admin(s: KafkaSettings, **own: Any) -> Admin:
    cfg = _merge(s, own)
    if s.client == "confluent":
        from daemon.kafka.confluent_client import ConfluentAdmin, translate

        return ConfluentAdmin(translate(cfg, "admin"))
    return KafkaAdminClient(**_known(KafkaAdminClient, cfg))


def partition_count(consumer: Consumer, topic: str) -> int:
    """Partitions of `topic` (0 when it does not exist)."""
    return len(consumer.partitions_for_topic(topic) or ())


def ensure_topics(admin: Admin, wanted: Mapping[str, tuple[int, Mapping[str, str]]]) -> list[str]:
    """Create each missing topic `name -> (partitions, configs)`; returns the names created.

    Replication factor 1 on a one-broker cluster, else 3 capped by the broker count. Losing a
    creation race to another replica is fine.
    """
    existing = set(admin.list_topics())
    missing = {name: spec for name, spec in wanted.items() if name not in existing}
    if not missing:
        return []
    brokers = max(1, len(admin.describe_cluster().get("brokers") or [1]))
    rf = min(3, brokers)
    spec = {
        name: {"num_partitions": partitions, "replication_factor": rf, "configs": dict(configs)}
        for name, (partitions, configs) in missing.items()
    }
    result = admin.create_topics(spec, raise_errors=False)
    created = []
    for topic in result.get("topics", []):
        code = topic.get("error_code", 0)
        if code == 0:
            created.append(topic["name"])
            log.info("created topic %s", topic["name"])
        elif code != TopicAlreadyExistsError.errno:  # losing a creation race to another replica is fine
            raise RuntimeError(f"cannot create topic {topic['name']}: {topic.get('error_message') or code}")
    return created
