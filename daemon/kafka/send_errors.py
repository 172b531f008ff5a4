"""Which errors of a send refuse that one record for good, whichever client raised them.

A send fails for one of two kinds of reasons. The record itself can be unacceptable: larger than
the producer's request bound or the topic's `max.message.bytes`, in a batch too large, invalid or
corrupt in the broker's eyes, or with a timestamp outside the topic's bounds. Sending it again
fails again, for ever: it has to go somewhere else. Everything else (a broker down, a timeout, a
leader moving, too few replicas, no authorisation) is about the cluster, not the record: it has to
be retried, since a later attempt (or the one after the operator's fix) succeeds, and anything
skipped there would be lost.

Both clients give the Kafka protocol's error code (kafka-python's `errno`, librdkafka's
`KafkaError.code()`: the same numbers; librdkafka's own size check in `produce` answers 10 too)
and whether they would retry (`retriable`, `retriable()` and `fatal()`). A record is refused for
good when its error is one of `RECORD_ERRORS` and the client would not retry it.

>>> from kafka.errors import MessageSizeTooLargeError, NotLeaderForPartitionError, TopicAuthorizationFailedError
>>> refused_for_good(MessageSizeTooLargeError("too big")), refused_for_good(NotLeaderForPartitionError())
(True, False)
>>> refused_for_good(TopicAuthorizationFailedError()), refused_for_good(FileNotFoundError(2, "no"))
(False, False)
"""

from __future__ import annotations

from typing import Any

from kafka.errors import KafkaError

RECORD_ERRORS = frozenset(
    {
        2,  # CORRUPT_MESSAGE (librdkafka INVALID_MSG): the record fails the broker's checks
        10,  # MESSAGE_TOO_LARGE: over max.message.bytes, or over the producer's own bound
        18,  # RECORD_LIST_TOO_LARGE
        32,  # INVALID_TIMESTAMP: outside the topic's message.timestamp.*.max.ms
        87,  # INVALID_RECORD: refused by the broker's validation (e.g. a compacted topic without key)
    }
)


def refused_for_good(error: BaseException) -> bool:
    """Is `error` (raised by a send, or failing its future) about this record, and final?"""
    inner = error.args[0] if error.args else None
    if callable(getattr(inner, "code", None)) and callable(getattr(inner, "retriable", None)):
        # confluent-kafka: KafkaException(KafkaError)
        return inner.code() in RECORD_ERRORS and not inner.retriable() and not inner.fatal()  # type: ignore[union-attr]
    if isinstance(error, KafkaError):  # kafka-python
        return getattr(error, "errno", None) in RECORD_ERRORS and not error.retriable
    return False


def refusal(future: Any, timeout: float) -> BaseException | None:
    """Wait for a send: None once acknowledged, its error when the record was refused for good;
    raises any other error (not acknowledged in time, the cluster's)."""
    try:
        future.get(timeout)
    except Exception:
        error = future.exception if future.is_done else None
        if error is not None and refused_for_good(error):
            return error
        raise
    return None
