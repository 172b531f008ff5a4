"""`crisisd run` finds a bad Slack token or channel at start; permanent Slack errors are counted and
turn /readyz's notifier check red."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from slack_helpers import note

from config.secrets import Secret
from daemon.cli import UsageError
from notifiers.slack.testing import SlackEmulator

ROOT = Path(__file__).resolve().parents[2]


def test_run_exits_2_at_start_when_slack_refuses_the_token(slack: SlackEmulator, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRISISD_", "SLACK_"))}
    env.update(
        CRISISD_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",  # never reached: Slack is checked first
        CRISISD_KAFKA_CONNECT_TIMEOUT_SECONDS="1",
        CRISISD_HTTP_ENABLED="false",
        CRISISD_STATE_DIR=str(tmp_path / "state"),
        CRISISD_SLACK_API_URL=slack.base_url,
        CRISISD_SLACK_CHANNEL="crisis",
        SLACK_BOT_TOKEN="xoxb-revoked-or-mistyped",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "crisisd: error: slack.bot_token: Slack says invalid_auth"
    assert "xoxb-revoked" not in proc.stderr
    assert [c.method for c in slack.calls] == ["auth.test"]


@pytest.mark.parametrize(
    ("fault", "channel", "message"),
    [
        ("error:token_revoked", "#crisis", "slack.bot_token: Slack says token_revoked"),
        ("error:account_inactive", "#crisis", "slack.bot_token: Slack says account_inactive"),
        (None, "C0NOTHERE", "slack.channel: Slack says channel_not_found"),
        (None, "#nowhere", "slack.channel: Slack says channel_not_found"),
        ("error:not_in_channel", "#crisis", "slack.channel: Slack says not_in_channel"),
    ],
)
def test_a_bad_token_or_channel_is_a_usage_error(
    slack: SlackEmulator, make_notifier, fault: str | None, channel: str, message: str
) -> None:
    from daemon.kafka.run_command import check_slack

    n = make_notifier(channel=channel)
    if fault == "error:not_in_channel":
        slack.fail(fault, "conversations.history")
    elif fault:
        slack.fail(fault, "auth.test")
    with pytest.raises(UsageError) as err:
        check_slack(n)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("trouble", ["500", "reset", "refused", "error:missing_scope"])
def test_slack_down_at_start_is_a_warning(slack: SlackEmulator, make_notifier, trouble: str) -> None:
    from structlog.testing import capture_logs

    from daemon.kafka.run_command import check_slack

    n = make_notifier()
    if trouble == "refused":
        slack.refuse()
    elif trouble.startswith("error:"):
        slack.fail(trouble, "conversations.list")
    else:
        slack.fail(trouble, "auth.test")
    with capture_logs() as logs:
        check_slack(n)  # goes on: Slack may be back in a moment, the outbox retries
    assert [r["log_level"] for r in logs] == ["warning"] and logs[0]["event"] == "slack check at start failed"
    if trouble == "refused":
        slack.resume()
    assert n.send(note(1)).ok


def test_a_good_configuration_passes_quietly(slack: SlackEmulator, make_notifier) -> None:
    from daemon.kafka.run_command import check_slack

    check_slack(make_notifier(channel="#crisis"))
    check_slack(make_notifier(channel="C0CRISIS", state="other"))
    assert sorted({c.method for c in slack.calls}) == ["auth.test", "conversations.history", "conversations.list"]


def test_permanent_slack_errors_are_counted(slack: SlackEmulator, make_notifier) -> None:
    from daemon import metrics

    def count(error: str) -> float:
        return metrics.REGISTRY.get_sample_value("crisisd_slack_errors_total", {"error": error}) or 0.0

    before = count("invalid_auth")
    n = make_notifier(bot_token=Secret("xoxb-wrong"))
    d = n.send(note(1))
    assert not d.ok and not d.retry
    assert count("invalid_auth") == before + 1


def test_a_token_that_cannot_post_is_a_usage_error_at_start(slack: SlackEmulator, make_notifier) -> None:
    """An app installed without chat:write passed the start (auth.test and the channel's history answer)
    and failed at the first incident's root post, at night, in the crisis. Slack names the token's scopes
    in every answer: the start refuses it now."""
    from daemon.kafka.run_command import check_slack

    slack.scopes = ("channels:history", "files:write")
    with pytest.raises(UsageError) as err:
        check_slack(make_notifier())
    assert str(err.value).startswith("slack.bot_token: Slack says missing_scope (the bot token lacks chat:write")
    assert [c.method for c in slack.calls] == ["auth.test"]


def test_each_other_missing_scope_is_a_warning_naming_what_will_not_work(slack: SlackEmulator, make_notifier) -> None:
    from structlog.testing import capture_logs

    from daemon.kafka.run_command import check_slack

    slack.scopes = ("chat:write", "channels:history", "channels:read")
    n = make_notifier()
    with capture_logs() as logs:
        check_slack(n)
    assert [(r["event"], r["scope"]) for r in logs] == [("slack.scope_missing", "files:write")]
    assert "chart" in logs[0]["without_it_crisisd_cannot"]
    assert n.send(note(1)).ok  # it runs: the chart is best effort
    assert not slack.uploads


def test_the_slack_app_manifest_asks_for_every_scope_crisisd_uses(slack: SlackEmulator) -> None:
    """config/slack-app-manifest.yaml (Slack: Create New App -> From an app manifest) grants what the
    notifier checks for at start and every method it calls needs; its interactivity points at the path
    the daemon serves."""
    import yaml

    from config.settings import load_settings
    from notifiers.slack.notifier import NEEDED_SCOPES, WANTED_SCOPES
    from notifiers.slack.testing import APP_SCOPES, METHOD_SCOPES

    manifest = yaml.safe_load((ROOT / "config" / "slack-app-manifest.yaml").read_text(encoding="utf-8"))
    bot = set(manifest["oauth_config"]["scopes"]["bot"])
    assert bot == set(APP_SCOPES)
    assert set(NEEDED_SCOPES) <= bot
    assert all(set(scopes) <= bot for scopes in WANTED_SCOPES)
    assert all(set(scopes) <= bot for scopes in METHOD_SCOPES.values())
    settings = manifest["settings"]
    path = load_settings(env={}).slack.interactions_path
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(path)
    assert settings["socket_mode_enabled"] is False
    assert manifest["features"]["bot_user"]["display_name"] == "crisisd"
