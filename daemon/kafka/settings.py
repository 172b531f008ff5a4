"""The `kafka:` section of the configuration.

Every field can be overridden from the environment as `CRISISD_KAFKA_<FIELD>` (see
config/settings.py), e.g. `CRISISD_KAFKA_BOOTSTRAP_SERVERS=k1:9092,k2:9092`.

>>> s = KafkaSettings(bootstrap_servers=["k1:9092"], sasl_mechanism="PLAIN",
...     security_protocol="SASL_SSL", sasl_plain_username="u", sasl_plain_password=Secret("p"))
>>> cfg = client_config(s)
>>> cfg["bootstrap_servers"], cfg["sasl_plain_password"], "ssl_cafile" in cfg
(['k1:9092'], 'p', False)
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from config.secrets import Secret

# an empty (or blank) topic or group name would fail only at run time
_Name = Annotated[str, msgspec.Meta(min_length=1, pattern=r"\S")]


class KafkaSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    bootstrap_servers: list[str] = []
    """`host:port` list (IPv6 as `[::1]:9092`); empty means Kafka is not configured (`crisisd run`
    exits 2)."""
    topic: _Name = "mentions"
    """The mentions topic."""
    rekey_topic: str = ""
    """Empty: off. For producers that cannot key the mentions by brand (a brand's state lives with
    the partition its messages are on): `crisisd run` then also re-keys, reading `topic` in the
    consumer group `<group_id>.rekey` and producing every message unchanged (value, headers,
    timestamp) to this topic with its brand as key and a `crisisd.rekey.source` header, and detects
    on this topic instead of `topic`; a message this topic refuses (too large) is dead-lettered.
    Every message crosses Kafka twice. Created with as many partitions as `topic` when missing
    (`create_topics`). See docs/operations.md, "Re-keying"."""
    group_id: _Name = "crisisd"
    """The consumer group; replicas with the same group share the partitions."""
    client_id: str = "crisisd"
    """Names this client in broker logs and quotas."""
    state_topic: _Name = "crisisd-state"
    """Compacted changelog topic holding per-partition checkpoints (key = `<group>/<topic>:<partition>`).
    Created with as many partitions as the mentions topic when missing (`create_topics`)."""
    dead_letter_topic: _Name = "crisisd-dead-letter"
    """Invalid events, with the original bytes and the reason in headers."""
    notifications_topic: _Name = "crisisd-notifications"
    """Compacted log of delivered notifications (key = `<group>/<incident_id>#<seq>`) shared by all
    replicas, so a notification one replica delivered is never delivered again by another after a takeover."""
    interactions_topic: _Name = "crisisd-interactions"
    """Slack button presses a replica received for an incident another replica runs, passed on to it."""
    create_topics: bool = True
    """Create the state, dead-letter, notifications and interactions topics (and `rekey_topic`) when
    they are missing."""
    client: Literal["kafka-python", "confluent"] = "kafka-python"
    """The Kafka client library: `kafka-python` (pure Python, always installed) or `confluent`
    (librdkafka through confluent-kafka, `pip install 'crisisd[confluent]'`: fetches in C
    threads, many times faster at reading small messages). Same semantics either way."""

    # -- security, passed through to the client --------------------------------------------------
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: Secret | None = None
    """Also settable as a file: `CRISISD_KAFKA_SASL_PLAIN_PASSWORD_FILE`."""
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_password: Secret | None = None
    ssl_check_hostname: bool = True

    # -- consumer group --------------------------------------------------------------------------
    session_timeout_ms: Annotated[int, msgspec.Meta(ge=1000)] = 10_000
    """A replica silent this long is presumed dead and its partitions move to the others."""
    heartbeat_interval_ms: Annotated[int, msgspec.Meta(ge=100)] = 3_000
    max_poll_records: Annotated[int, msgspec.Meta(ge=1)] = 500
    """Upper bound of one batch (what SIGTERM lets finish before stopping)."""
    poll_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=5000)] = 200
    """How long one poll waits for data; bounds how fast a stop request is noticed."""
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a partition with no checkpoint and no committed offset starts."""

    # -- commit policy ---------------------------------------------------------------------------
    commit_every_messages: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    """Checkpoint and commit after this many messages since the last commit ..."""
    commit_interval_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """... or this many seconds, whichever comes first (and on revoke and shutdown)."""

    # -- dead-letter budget ----------------------------------------------------------------------
    dead_letter_window: Annotated[int, msgspec.Meta(ge=10)] = 1000
    """Size (messages) of the sliding window the invalid ratio is measured over."""
    dead_letter_max_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    """Stop when more than this share of the window is invalid (once `dead_letter_min_messages` seen)."""
    dead_letter_min_messages: Annotated[int, msgspec.Meta(ge=1)] = 100
    """Messages needed in the window before the ratio rule applies."""
    dead_letter_max_consecutive: Annotated[int, msgspec.Meta(ge=1)] = 500
    """Stop after this many invalid messages in a row."""

    # -- backpressure and shutdown ---------------------------------------------------------------
    pause_above_pending: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """Pause the partitions while the outbox holds more undelivered notifications than this;
    resume when it is back to half of it."""
    connect_timeout_seconds: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    """At start, how long to wait for the brokers to answer (retrying with backoff, `/readyz`
    unready, a stop exits 0 at once) before exiting 1; a daemon started beside its broker waits
    for it instead of crash-looping. 0 waits for ever."""
    shutdown_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    """SIGTERM: time allowed for the final checkpoint, commit and outbox drain before exiting."""
    max_snapshot_bytes: Annotated[int, msgspec.Meta(ge=1 << 20)] = 64 << 20
    """Largest checkpoint record produced to the state topic (compressed); also the state
    producer's largest request (`max_request_size`, librdkafka `message.max.bytes`)."""
    client_options: dict[str, Any] = {}
    """Passed through to the clients; they win over everything above. kafka-python: keyword
    arguments of KafkaConsumer/KafkaProducer (e.g. `{request_timeout_ms: 30000}`); confluent:
    librdkafka properties (e.g. `{"fetch.wait.max.ms": 100}`), plus the kafka-python names
    crisisd itself sets, translated."""

    def __post_init__(self) -> None:
        for i, server in enumerate(self.bootstrap_servers):
            problem = server_problem(server)
            if problem:
                # a ValueError, so that msgspec adds where `kafka` is; the entry's own path goes
                # inside, for the configuration's error message to join them (as brand overrides do)
                raise ValueError(f"{problem} - at `$.bootstrap_servers[{i}]`")
        problem = self.rekey_problem()
        if problem:
            raise ValueError(f"{problem} - at `$.rekey_topic`")

    def rekey_problem(self) -> str | None:
        """Why `rekey_topic` cannot be used, or None (checked when the settings are made)."""
        name = self.rekey_topic
        if not name:
            return None
        if not name.strip():
            return "must not be blank (empty turns re-keying off)"
        if name == self.topic:
            return f"must not be kafka.topic ({name}): the re-keyer would read what it writes"
        for other in ("state_topic", "dead_letter_topic", "notifications_topic", "interactions_topic"):
            if name == getattr(self, other):
                return f"must not be kafka.{other} ({name})"
        return None


# `host:port` or `[ipv6]:port`, optionally behind the `PROTOCOL://` both clients strip
_SERVER = re.compile(r"^(?:[A-Za-z_]+://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d+)$")


def server_problem(server: str) -> str | None:
    """Why a bootstrap server entry is not `host:port`, or None. The clients would quietly assume
    port 9092 for a bare host, and fail only at connect time on a bad port.

    >>> server_problem("k1:9092"), server_problem("[::1]:9092")
    (None, None)
    >>> server_problem("broker")
    "'broker' is not host:port (e.g. broker:9092; IPv6 as [::1]:9092)"
    >>> server_problem("k1:99999")
    "'k1:99999': port 99999 is not within 1 to 65535"
    """
    m = _SERVER.match(server)
    if m is None:
        return f"{server!r} is not host:port (e.g. broker:9092; IPv6 as [::1]:9092)"
    if not 1 <= int(m.group(1)) <= 65535:
        return f"{server!r}: port {int(m.group(1))} is not within 1 to 65535"
    return None


def client_config(s: KafkaSettings) -> dict[str, Any]:
    """The keyword arguments common to kafka-python's consumer, producer and admin client."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": list(s.bootstrap_servers),
        "client_id": s.client_id,
        "security_protocol": s.security_protocol,
    }
    if s.sasl_mechanism is not None:
        cfg["sasl_mechanism"] = s.sasl_mechanism
    if s.sasl_plain_username is not None:
        cfg["sasl_plain_username"] = s.sasl_plain_username
    if s.sasl_plain_password is not None:
        cfg["sasl_plain_password"] = s.sasl_plain_password.reveal()
    if s.security_protocol in ("SSL", "SASL_SSL"):
        cfg["ssl_check_hostname"] = s.ssl_check_hostname
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(s, name) is not None:
                cfg[name] = getattr(s, name)
        if s.ssl_password is not None:
            cfg["ssl_password"] = s.ssl_password.reveal()
    cfg.update(s.client_options)
    return cfg
