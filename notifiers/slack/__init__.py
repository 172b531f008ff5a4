"""Slack: one living message per incident, its thread, escalation and buttons (see notifier.py)."""

from notifiers.slack.notifier import SlackNotifier, build_slack_notifier
from notifiers.slack.settings import EscalationLevel, EscalationSettings, SlackSettings

__all__ = ["EscalationLevel", "EscalationSettings", "SlackNotifier", "SlackSettings", "build_slack_notifier"]
