"""Prometheus metrics of the daemon (served at /metrics).

Hot-path code keeps plain integer counters (see `PipelineStats`); the run loop adds their deltas here
once per batch, so a metric costs nothing per event.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_CONSUMED = Counter("crisisd_events_consumed", "Messages read from the source", registry=REGISTRY)
EVENTS_INVALID = Counter("crisisd_events_invalid", "Invalid events, by reason", ["reason"], registry=REGISTRY)
EVENTS_LATE = Counter("crisisd_events_late", "Events behind the watermark, counted not windowed", registry=REGISTRY)
EVENTS_DUPLICATE = Counter("crisisd_events_duplicate", "Repeated deliveries of an event id", registry=REGISTRY)
BRAND_MENTIONS = Counter("crisisd_brand_mentions", "Customer mentions per brand", ["brand"], registry=REGISTRY)
BRAND_REPLIES = Counter("crisisd_brand_replies", "Brand replies per brand", ["brand"], registry=REGISTRY)
INCIDENTS_OPEN = Gauge("crisisd_incidents_open", "Open incidents by severity", ["severity"], registry=REGISTRY)
NOTIFICATIONS_SENT = Counter("crisisd_notifications_sent", "Notifications delivered", registry=REGISTRY)
NOTIFICATIONS_RETRIED = Counter("crisisd_notifications_retried", "Delivery attempts retried", registry=REGISTRY)
NOTIFICATIONS_FAILED = Counter("crisisd_notifications_failed", "Notifications given up", registry=REGISTRY)
SLACK_ERRORS = Counter(
    "crisisd_slack_errors",
    "Slack answers retrying cannot fix (invalid_auth, channel_not_found, not_in_channel...), by error",
    ["error"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge("crisisd_outbox_pending", "Notifications waiting in the outbox", registry=REGISTRY)
OUTBOX_OLDEST = Gauge(
    "crisisd_outbox_oldest_pending_timestamp_seconds",
    "When the oldest notification still waiting in the outbox was handed in (Unix time; 0 when none waits)",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge("crisisd_consumer_lag", "Messages behind the partition end", ["partition"], registry=REGISTRY)
PARTITIONS_ASSIGNED = Gauge("crisisd_partitions_assigned", "Partitions this replica owns", registry=REGISTRY)
CHECKPOINT_AGE = Gauge(
    "crisisd_checkpoint_age_seconds",
    "Seconds processed events have waited for a checkpoint (0 when all is saved)",
    registry=REGISTRY,
)
PAUSED = Gauge("crisisd_consumer_paused", "1 while partitions are paused for backpressure", registry=REGISTRY)
MESSAGES_UNKEYED = Counter("crisisd_messages_unkeyed", "Mentions read without a message key", registry=REGISTRY)
BRANDS_SPLIT = Gauge(
    "crisisd_brands_split",
    "Brands this replica sees on more than one partition (messages not keyed by brand)",
    registry=REGISTRY,
)
REKEYED = Counter(
    "crisisd_rekeyed_messages",
    "Messages the re-keyer forwarded from kafka.topic to kafka.rekey_topic",
    registry=REGISTRY,
)
REKEY_UNREADABLE = Counter(
    "crisisd_rekey_unreadable",
    "Messages forwarded without a readable brand (the detection stage dead-letters them)",
    registry=REGISTRY,
)
REKEY_REFUSED = Counter(
    "crisisd_rekey_refused",
    "Messages refused for good on kafka.rekey_topic (too large, invalid), dead-lettered by the re-keyer instead",
    registry=REGISTRY,
)
REKEY_ERRORS = Counter("crisisd_rekey_errors", "Errors the re-keyer met and retried", registry=REGISTRY)
REKEY_LAG = Gauge(
    "crisisd_rekey_lag", "Messages of kafka.topic not yet forwarded, by partition", ["partition"], registry=REGISTRY
)
