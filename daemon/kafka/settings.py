"""The `kafka:` section of the configuration."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from config.secrets import Secret


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bootstrap_servers: list[str] = []
    """`host:port` list; empty means Kafka is not configured (`crisisd run` exits 2)."""
    topic: str = "mentions"
    """The mentions topic."""
    group_id: str = "crisisd"
    """The consumer group; replicas with the same group share the partitions."""
    client_id: str = "crisisd"
    state_topic: str = "crisisd-state"
    """Compacted changelog topic holding per-partition checkpoints."""
    dead_letter_topic: str = "crisisd-dead-letter"
    """Invalid events, with the original bytes and the reason in headers."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: Secret | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: Secret | None = None
    session_timeout_ms: Annotated[int, msgspec.Meta(ge=1000)] = 10_000
    heartbeat_interval_ms: Annotated[int, msgspec.Meta(ge=100)] = 3_000
    max_poll_records: Annotated[int, msgspec.Meta(ge=1)] = 500
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    client_options: dict[str, Any] = {}
    """Passed through to kafka-python's KafkaConsumer/KafkaProducer as keyword arguments."""
