"""Fixtures for the Slack tests: an emulator on loopback, a fake clock, a notifier factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_helpers import POLICY, SECRET, T0, TOKEN

from config.secrets import Secret
from daemon.clock import FakeClock
from notifiers.slack import SlackNotifier, SlackSettings, build_slack_notifier
from notifiers.slack.testing import SlackEmulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[SlackEmulator]:
    with SlackEmulator(token=TOKEN, clock=clock) as em:
        yield em


@pytest.fixture
def make_notifier(slack: SlackEmulator, clock: FakeClock, tmp_path: Path) -> Iterator[Callable[..., SlackNotifier]]:
    made: list[SlackNotifier] = []

    def make(**overrides: Any) -> SlackNotifier:
        fields: dict[str, Any] = {
            "bot_token": Secret(TOKEN),
            "signing_secret": Secret(SECRET),
            "api_url": slack.base_url,
            "channel": "#crisis",
            "http_timeout_seconds": 2.0,
            "escalation": POLICY,
            "rate_per_second": 1000.0,
            "burst": 1000,
        }
        hooks = {k: overrides.pop(k) for k in ("on_resolve", "languages_for") if k in overrides}
        state = tmp_path / overrides.pop("state", "state")  # another name: another replica's machine
        fields.update(overrides)
        n = build_slack_notifier(SlackSettings(**fields), state, clock, **hooks)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()
