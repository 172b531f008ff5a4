"""kafka-python clients built from `KafkaSettings`, and topic creation.

`client_options` from the settings are offered to every client; each client only receives
the options it knows (kafka-python rejects unknown keyword arguments).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import TopicAlreadyExistsError

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


def make_consumer(s: KafkaSettings, **own: Any) -> KafkaConsumer:
    return KafkaConsumer(**_known(KafkaConsumer, _merge(s, own)))


def make_producer(s: KafkaSettings, **own: Any) -> KafkaProducer:
    return KafkaProducer(**_known(KafkaProducer, _merge(s, own)))


def make_admin(s: KafkaSettings, **own: Any) -> KafkaAdminClient:
    return KafkaAdminClient(**_known(KafkaAdminClient, _merge(s, own)))


def partition_count(consumer: KafkaConsumer, topic: str) -> int:
    """Partitions of `topic` (0 when it does not exist)."""
    return len(consumer.partitions_for_topic(topic) or ())


def ensure_topics(admin: KafkaAdminClient, wanted: Mapping[str, tuple[int, Mapping[str, str]]]) -> list[str]:
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
