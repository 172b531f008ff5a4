"""Button presses passed between replicas through Kafka.

Slack delivers a press to one replica of its choosing: whichever one the Request URL's load
balancer picks, or one of the Socket Mode connections. The incident's escalation (who
acknowledged, the next page) runs on the replica that owns the brand's partition. A replica that
receives a press for an incident it does not run appends it to the interactions topic; every
replica of the group reads that topic from where it stood at its start, and the owner applies
the press as its own (`SlackNotifier.relayed`).

One small JSON record per press, keyed by incident. Presses are rare, so one partition does.

>>> _decode(_encode(Press("crisisd", "crisisd.ack", "klm-20100416T0740Z-volume", "U0ANA", "a:1")))
Press(group='crisisd', action_id='crisisd.ack', incident_id='klm-20100416T0740Z-volume', user='U0ANA', by='a:1')
>>> _decode(b"not json") is None
True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import msgspec
from kafka import TopicPartition

from daemon.kafka.clients import Consumer, Producer

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 2.0
"""Slack wants its answer within 3 s; the press is relayed before the answer."""


class Press(msgspec.Struct, frozen=True):
    group: str
    action_id: str
    incident_id: str
    user: str
    by: str  # the replica that received it


_encode = msgspec.json.Encoder().encode
_decoder = msgspec.json.Decoder(Press)


def _decode(raw: bytes | None) -> Press | None:
    try:
        return _decoder.decode(raw) if raw else None
    except msgspec.DecodeError:
        return None


class InteractionRelay:
    """`send` appends a press; the reader thread (`start`) hands the group's presses from other
    replicas to `apply(action_id, incident_id, user)`."""

    def __init__(
        self,
        topic: str,
        reader: Consumer,
        producer: Producer,
        *,
        group: str,
        replica: str,
        apply: Callable[[str, str, str], None],
        poll_ms: int = 100,
    ) -> None:
        self.topic = topic
        self.group = group
        self.replica = replica
        self.apply = apply
        self._reader = reader
        self._producer = producer
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        parts = self._reader.partitions_for_topic(self.topic) or {0}
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        self._reader.assign(tps)
        for tp in tps:  # presses from before this replica started were answered by the others
            self._reader.seek(tp, self._reader.position(tp))  # the end, pinned now (not at the first poll)
        self._thread = threading.Thread(target=self._run, name="crisisd-relay", daemon=True)
        self._thread.start()

    def send(self, action_id: str, incident_id: str, user: str) -> bool:
        """Pass a press on; False when the brokers did not take it (the notifier keeps it and tries again)."""
        press = Press(self.group, action_id, incident_id, user, self.replica)
        try:
            self._producer.send(self.topic, key=incident_id.encode(), value=_encode(press)).get(SEND_TIMEOUT_SECONDS)
        except Exception as exc:
            log.warning("button press not relayed: %s", exc, extra={"incident_id": incident_id, "action": action_id})
            return False
        log.info("button press relayed", extra={"incident_id": incident_id, "action": action_id})
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._reader.poll(timeout_ms=self._poll_ms)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("interactions topic: read failed: %s", exc)
                self._stop.wait(1.0)
                continue
            for records in batch.values():
                for r in records:
                    press = _decode(r.value)
                    if press is None or press.group != self.group or press.by == self.replica:
                        continue
                    try:
                        self.apply(press.action_id, press.incident_id, press.user)
                    except Exception:
                        log.exception("relayed press failed", extra={"incident_id": press.incident_id})

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._reader.close()
        self._producer.close(timeout)
