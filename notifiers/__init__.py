"""Notifiers: where incident notifications go (console, Slack)."""
