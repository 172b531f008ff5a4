"""The `slack:` section of the configuration: where incidents go and who gets chased.

Example (YAML)::

    slack:
      channel: C0123CRISIS            # or "#crisis"; env CRISISD_SLACK_CHANNEL
      escalation:
        levels:
          - name: care on-call
            user_groups: [S0CAREONCALL]
            timeout_seconds: 600
          - name: care leads
            users: [U0LEAD1, U0LEAD2]
            channel: C0CARELEADS
            timeout_seconds: 900
          - name: head of care
            users: [U0HEAD]
            timeout_seconds: 1800
        urgency: {sev1: 0.5, sev2: 1.0, sev3: 2.0}

>>> s = msgspec.convert({"escalation": {"levels": [{"users": ["U0LEAD"], "timeout_seconds": 60}]}},
...                     SlackSettings)
>>> s.escalation.timeout(0, "sev1")
30.0
>>> msgspec.convert({"escalation": {"levels": [{"users": ["<!channel>"]}]}}, SlackSettings)
Traceback (most recent call last):
...
msgspec.ValidationError: escalation level 1: user id '<!channel>' is not a Slack user id (U.../W...) - at `$.escalation`
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from config.secrets import Secret

Severity = Literal["sev1", "sev2", "sev3"]
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_RANK = {"sev1": 1, "sev2": 2, "sev3": 3}


class EscalationLevel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One rung of the escalation ladder: who is paged, and how long they have to acknowledge."""

    name: str = ""
    """Shown in the page ("Escalating to care leads")."""
    channel: str = ""
    """Also post the page in this channel (id or name); empty: the incident thread only."""
    user_groups: list[str] = []
    """Slack user-group ids (`S...`), mentioned as `<!subteam^ID>`."""
    users: list[str] = []
    """Slack user ids (`U...`/`W...`), mentioned as `<@ID>`."""
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 900.0
    """Time to acknowledge before the next level is paged (scaled by `urgency`)."""


class EscalationSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `slack.escalation:` section. Wall-clock driven; its state survives restarts."""

    levels: tuple[EscalationLevel, ...] = (EscalationLevel(name="incident channel"),)
    """Paged in order: level 1 when the incident opens, the next one when a timeout passes unacknowledged."""
    repeat: Literal["last", "cycle", "none"] = "last"
    """After the last level: page it again every timeout (`last`), start over at level 1 (`cycle`), or stop."""
    urgency: dict[str, Annotated[float, msgspec.Meta(gt=0)]] = msgspec.field(
        default_factory=lambda: {"sev1": 0.5, "sev2": 1.0, "sev3": 2.0}
    )
    """Timeout multiplier per severity: sev1 is chased twice as fast as sev2 by default."""
    min_severity: Severity = "sev2"
    """Incidents less severe than this are posted but never paged (sev1 is the most severe): by
    default a sev3 watch is posted, not escalated, and pages once it becomes sev2 or sev1."""
    broadcast: tuple[Severity, ...] = ("sev1",)
    """Severities whose pages are also broadcast from the thread to the channel."""
    snooze_seconds: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    """How long the Snooze button pauses escalation."""
    tick_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """How often the background thread checks for due escalations and queued button presses."""

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("escalation needs at least one level")
        for i, level in enumerate(self.levels, 1):
            for u in level.users:
                if not _USER.match(u):
                    raise ValueError(f"escalation level {i}: user id {u!r} is not a Slack user id (U.../W...)")
            for g in level.user_groups:
                if not _GROUP.match(g):
                    raise ValueError(f"escalation level {i}: user group {g!r} is not a Slack user-group id (S...)")

    def mentions_nobody(self) -> bool:
        """No level names users or user groups (the shipped default): a page mentions no one."""
        return not any(level.users or level.user_groups for level in self.levels)

    def timeout(self, level: int, severity: str) -> float:
        """Seconds level `level` (0-based) has to acknowledge an incident of `severity`."""
        index = min(level, len(self.levels) - 1)
        return self.levels[index].timeout_seconds * self.urgency.get(severity, 1.0)

    def pages(self, severity: str) -> bool:
        return _RANK.get(severity, 3) <= _RANK[self.min_severity]

    @staticmethod
    def worse(severity: str, than: str) -> bool:
        """`severity` is more severe than `than` (sev1 is the most severe)."""
        return _RANK.get(severity, 3) < _RANK.get(than, 3)


class SlackSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `slack:` section. With no `bot_token`, notifications go to the console notifier."""

    bot_token: Secret | None = None
    """Bot token (`xoxb-...`); env SLACK_BOT_TOKEN or SLACK_BOT_TOKEN_FILE. Never logged."""
    signing_secret: Secret | None = None
    """Verifies interactive requests (buttons) over HTTP; env SLACK_SIGNING_SECRET(_FILE)."""
    app_token: Secret | None = None
    """App-level token (`xapp-...`) for Socket Mode (no inbound HTTP); env SLACK_APP_TOKEN(_FILE)."""
    api_url: str = "https://slack.com/api/"
    """Web API base URL (GovSlack and test servers differ); env CRISISD_SLACK_API_URL."""
    channel: str = ""
    """The incident channel, id (`C...`) or name; env CRISISD_SLACK_CHANNEL."""
    interactivity: Literal["http", "socket", "off"] = "http"
    """How button presses arrive: the daemon's HTTP endpoint, Socket Mode (needs `app_token`), or not at all."""
    interactions_path: str = "/slack/interactions"
    """Path of the interactivity endpoint on the daemon's HTTP server (Slack's Request URL)."""
    rate_per_second: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    """Messages per second per channel (Slack allows about one), a token bucket."""
    burst: Annotated[int, msgspec.Meta(ge=1)] = 3
    """Messages a channel may take at once before `rate_per_second` applies."""
    http_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """Per-request timeout; a timed-out post is looked up before it is re-sent."""
    chart: bool = True
    """Upload a PNG chart (volume and negativity against the expected band) to the thread."""
    escalation: EscalationSettings = EscalationSettings()

    def __post_init__(self) -> None:
        # caught by check-config, not first by `run` (without a bot token Slack is off anyway)
        if self.interactivity == "socket" and self.bot_token and not self.app_token:  # an empty Secret is falsy
            raise ValueError("app_token: needed for interactivity: socket (SLACK_APP_TOKEN or SLACK_APP_TOKEN_FILE)")


def check_startup(settings: SlackSettings) -> None:
    """What the daemon refuses in the `slack:` settings when it starts the Slack notifier, found
    without contacting Slack: raises ValueError naming the field. `build_slack_notifier` runs it,
    and `crisisd check-config` too (daemon/kafka/run_command.py `check_notifier`), so a file that
    check-config passes is not refused by `run` for these. (Socket Mode without an app token is
    refused when the settings are loaded, by `SlackSettings.__post_init__`.)"""
    if settings.bot_token is None or not settings.bot_token:
        raise ValueError("slack.bot_token: not set (SLACK_BOT_TOKEN or SLACK_BOT_TOKEN_FILE)")
    if not settings.channel:
        raise ValueError("slack.channel: not set (CRISISD_SLACK_CHANNEL)")
