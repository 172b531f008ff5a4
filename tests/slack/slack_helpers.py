"""Helpers for the Slack tests: notifications, signed interactive requests, the escalation policy."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any
from urllib.parse import urlencode

from daemon.notification import (
    NegativityFigures,
    Notification,
    SampleMention,
    StaffingFigures,
    Timeline,
    VolumeFigures,
)
from notifiers.slack.settings import EscalationLevel, EscalationSettings

TOKEN = "xoxb-test-token-123"
SECRET = "signing-secret-abc"
T0 = 1_700_000_000.0

POLICY = EscalationSettings(
    levels=(
        EscalationLevel(name="on-call", user_groups=["S0ONCALL"], timeout_seconds=600),
        EscalationLevel(name="leads", users=["U0LEAD1", "U0LEAD2"], timeout_seconds=900),
        EscalationLevel(name="head of care", users=["U0HEAD"], timeout_seconds=1800),
    ),
    urgency={"sev1": 0.5, "sev2": 1.0, "sev3": 2.0},
    snooze_seconds=1800,
)


def note(
    seq: int = 1,
    type: str = "incident.opened",
    incident_id: str = "klm-20100416T0740Z-volume",
    severity: str = "sev1",
    **extra: Any,
) -> Notification:
    fields: dict[str, Any] = dict(
        type=type,
        incident_id=incident_id,
        brand="klm",
        severity=severity,
        signals=["volume", "negativity"],
        started_at="2010-04-16T05:40:00Z",
        detected_at=f"2010-04-16T05:{42 + seq:02d}:00Z",
        volume=VolumeFigures(5400 + 100 * seq, 310, 17.4),
        negativity=NegativityFigures(0.71, 0.24),
        top_terms=["ash", "cancelled", "refund"],
        sample_mentions=[
            SampleMention(id="twitter:1", text="All flights cancelled, no info!", url="https://twitter.com/x/status/1")
        ],
        staffing=StaffingFigures(agents_needed=34, to_schedule=42, on_shift=6, call_in=36, by_language={"en": 18}),
        seq=seq,
    )
    if type == "incident.resolved":
        fields.update(resolved_at="2010-04-16T09:40:00Z", peak_per_hour=8000.0, mentions=12000, replies=800)
    fields.update(extra)
    return Notification(**fields)


def timeline() -> Timeline:
    return Timeline(
        start="2010-04-16T04:00:00Z",
        bucket_seconds=300,
        observed_per_hour=[300, 320, 2000, 5400],
        expected_per_hour=[300, 310, 310, 310],
        upper_per_hour=[400, 410, 410, 410],
        negativity_share=[0.2, 0.25, 0.6, 0.71],
        baseline_negativity_share=[0.24] * 4,
    )


def signed(payload: dict[str, Any], timestamp: float, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A Slack interactive request: form body `payload=<json>` plus its signature headers."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(timestamp))
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }


_TRIGGER = itertools.count(1)


def press(
    action: str,
    user: str = "U0MANAGER",
    incident_id: str = "klm-20100416T0740Z-volume",
    response_url: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "trigger_id": f"trigger-{next(_TRIGGER)}",  # Slack's payloads differ per press
        "user": {"id": user},
        "actions": [{"action_id": action, "value": incident_id, "type": "button"}],
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return payload
