from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from config.secrets import Secret
from config.settings import ConfigError, effective_yaml, load_settings
from daemon.dedup import RecentIds


def test_recent_ids_are_bounded() -> None:
    r = RecentIds(capacity=1000)
    for i in range(10_000):
        assert not r.seen(str(i))
    assert len(r) == 1000
    assert r.seen("9999") and not r.seen("0")


def test_recent_ids_forget_oldest_first_and_pickle_in_order() -> None:
    r = RecentIds(capacity=3)
    for x in "abcdb":
        r.seen(x)
    assert [r.seen(x) for x in "bcda"] == [True, True, True, False]  # "a" was forgotten, then "b"
    blob = pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL)
    again = pickle.loads(blob)
    assert pickle.dumps(again, protocol=pickle.HIGHEST_PROTOCOL) == blob  # byte-exact checkpoints
    assert [again.seen(x) for x in "cdab"] == [True, True, True, False]


# A RecentIds pickled by the ordered-dict version (ids b, c, d; capacity 3): old checkpoints load.
_OLD_PICKLE = (
    b"\x80\x05\x95o\x00\x00\x00\x00\x00\x00\x00\x8c\x0cdaemon.dedup\x94\x8c\tRecentIds\x94\x93\x94)\x81"
    b"\x94N}\x94(\x8c\x04_ids\x94\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94(\x8c\x01b"
    b"\x94N\x8c\x01c\x94N\x8c\x01d\x94Nu\x8c\x08capacity\x94K\x03u\x86\x94b."
)


def test_recent_ids_load_from_an_old_checkpoint() -> None:
    r = pickle.loads(_OLD_PICKLE)
    assert isinstance(r, RecentIds) and r.capacity == 3 and len(r) == 3
    assert r.seen("d") and r.seen("b")
    assert not r.seen("e")  # forgets "b", the oldest
    assert not r.seen("b")


def test_env_overrides_file_and_secret_files(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafka:\n  topic: from-file\n  group_id: g1\nwindows:\n  bucket_seconds: 30\n")
    token = tmp_path / "token"
    token.write_text("xoxb-from-file\n")
    s = load_settings(
        cfg,
        env={"CRISISD_KAFKA_TOPIC": "from-env", "SLACK_BOT_TOKEN_FILE": str(token), "CRISISD_STATE_DIR": "/var/x"},
    )
    assert s.kafka.topic == "from-env" and s.kafka.group_id == "g1" and s.windows.bucket_seconds == 30
    assert isinstance(s.slack.bot_token, Secret) and s.slack.bot_token.reveal() == "xoxb-from-file"
    assert s.state_dir == "/var/x"
    text = effective_yaml(s)
    assert "xoxb-from-file" not in text and "***" in text


def test_config_from_crisisd_config_env(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kafka:\n  bootstrap_servers: [a:1]\n")
    assert load_settings(env={"CRISISD_CONFIG": str(cfg)}).kafka.bootstrap_servers == ["a:1"]
    assert load_settings(env={"CRISISD_KAFKA_BOOTSTRAP_SERVERS": "a:1, b:2"}).kafka.bootstrap_servers == ["a:1", "b:2"]


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("kafka:\n  session_timeout_ms: fast\n", {}, "kafka.session_timeout_ms"),
        ("windows:\n  bucket_seconds: 1\n", {}, "windows.bucket_seconds"),
        ("kafka:\n  nope: 1\n", {}, "nope"),
        ("kafka: [1\n", {}, "line"),
        ("- 1\n- 2\n", {}, "mapping"),
        ("", {"CRISISD_HTTP_PORT": "99999"}, "CRISISD_HTTP_PORT"),
        ("", {"SLACK_BOT_TOKEN_FILE": "/nonexistent/token"}, "SLACK_BOT_TOKEN_FILE"),
        ("", {"SLACK_BOT_TOKEN_FILE": "/dev/null"}, "SLACK_BOT_TOKEN_FILE: /dev/null is empty"),
        ("slack:\n  interactivity: socket\n", {"SLACK_BOT_TOKEN": "xoxb-1"}, "slack: app_token: needed"),
        ("http:\n  port: \udcff\n", {}, "not UTF-8 text"),
        ("", {"CRISISD_STAFFING_BACKLOG_WITHIN": "15 minutes"}, "(from CRISISD_STAFFING_BACKLOG_WITHIN)"),
        ("", {"CRISISD_SLACK_ESCALATION_BROADCAST": "sev1,sev9"}, "(from CRISISD_SLACK_ESCALATION_BROADCAST)"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env=env)
    assert needle in str(err.value)


def test_socket_mode_without_a_bot_token_is_not_an_error() -> None:
    """Without a bot token Slack is off, so a file checked without the secrets still passes."""
    assert load_settings(env={"CRISISD_SLACK_INTERACTIVITY": "socket"}).slack.interactivity == "socket"


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_settings(tmp_path / "missing.yaml", env={})


def test_kafka_client_options_holding_secrets_are_masked(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        'kafka:\n  client_options: {"sasl.password": s3cret, "ssl.key.location": /k.pem, "fetch.min.bytes": 1}\n'
    )
    s = load_settings(cfg, env={})
    text = effective_yaml(s)
    assert "s3cret" not in text and "sasl.password: '***'" in text
    assert "/k.pem" in text and "fetch.min.bytes: 1" in text  # paths and tuning stay readable
    assert s.kafka.client_options["sasl.password"] == "s3cret"  # the client still gets it
