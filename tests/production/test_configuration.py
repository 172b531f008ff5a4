"""The configuration reference and default file stay true to the schema; errors name nested fields."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import config.reference
from config.reference import fields, render_markdown, render_yaml
from config.settings import DEFAULT_CONFIG, ConfigError, Settings, _leaves, env_name, load_settings

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = (
    "python -m config.reference > docs/configuration.md && python -m config.reference --yaml > config/crisisd.yaml"
)


def test_doctests() -> None:
    result = doctest.testmod(config.reference, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_committed_reference_is_the_rendered_one() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), f"docs/configuration.md is stale; regenerate: {REGENERATE}"


def test_committed_default_file_is_the_rendered_one() -> None:
    assert DEFAULT_CONFIG.read_text(encoding="utf-8") == render_yaml(), f"config/crisisd.yaml is stale: {REGENERATE}"


def test_default_file_loads_to_the_built_in_defaults() -> None:
    assert load_settings(DEFAULT_CONFIG, env={}) == Settings()


def test_every_environment_name_in_the_reference_is_the_one_the_loader_reads() -> None:
    documented = {f.path: f.env for f in fields() if f.env}
    leaves = {".".join(path) for path, _ in _leaves(Settings)}
    assert set(documented) == leaves
    for path, names in documented.items():
        assert env_name(tuple(path.split("."))) in names


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ({"CRISISD_DETECTION_VOLUME_THRESHOLD": "9.5"}, lambda s: s.detection.volume.threshold == 9.5),
        ({"CRISISD_STAFFING_ROSTER_ON_SHIFT": "7"}, lambda s: s.staffing.roster.on_shift == 7),
        ({"CRISISD_SLACK_ESCALATION_MIN_SEVERITY": "sev2"}, lambda s: s.slack.escalation.min_severity == "sev2"),
        ({"CRISISD_KAFKA_BOOTSTRAP_SERVERS": "a:1, b:2"}, lambda s: s.kafka.bootstrap_servers == ["a:1", "b:2"]),
        ({"CRISISD_HTTP_PORT": "0"}, lambda s: s.http.port == 0),
    ],
)  # fmt: skip
def test_nested_fields_are_overridable_by_environment(env: dict[str, str], value: object) -> None:
    assert value(load_settings(DEFAULT_CONFIG, env=env))  # type: ignore[operator]


def file_error(tmp_path: Path, yaml_text: str) -> tuple[Path, str]:
    """The configuration file with this text, and the error loading it gives."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    return path, str(err.value)


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("detection:\n  volume:\n    threshold: -1\n", "detection.volume.threshold:"),
        ("slack: {escalation: {levels: [{timeout_seconds: 0}]}}", "slack.escalation.levels[0].timeout_seconds:"),
        ("slack:\n  escalation:\n    levels:\n      - users: [nobody]\n", "slack.escalation: escalation level 1"),
        ("staffing:\n  roster:\n    bogus: 1\n", "staffing.roster: Object contains unknown field `bogus`"),
        ("staffing:\n  roster:\n    agents:\n      - languages: [en]\n", "staffing.roster.agents[0]:"),
        ("kafka:\n  sasl_plain_password: 5\n", "kafka.sasl_plain_password:"),
        ("http:\n  port: 70000\n", "http.port:"),
        ("windows:\n  bucket_seconds: fast\n", "windows.bucket_seconds:"),
        ("detection:\n  brands:\n    klm:\n      sensitivity: -1\n", "detection.brands.klm.sensitivity: Expected"),
        ("detection:\n  brands:\n    klm:\n      volume: {threshold: x}\n", "detection.brands.klm.volume.threshold:"),
        ("staffing: {platforms: {twitter: {aht_minutes: -1}}}", "staffing.platforms.twitter.aht_minutes: Expected"),
        ("staffing:\n  platforms:\n    twitter: {aht_minutes: 3}\n    instagram: {target: bad}\n",
         "staffing.platforms.instagram: target:"),
        ("staffing:\n  platforms:\n    instagram: {sla_seconds: 5}\n",
         "staffing.platforms.instagram: Object contains unknown field `sla_seconds`"),
        ("staffing:\n  skill_mix: {community_responder: x}\n", "staffing.skill_mix.community_responder: Expected"),
        ("staffing:\n  skill_mix: {tech_specialist: 1}\n",  # a misspelt skill no one can be asked for
         "staffing.skill_mix: unknown key 'tech_specialist'; expected one of community_responder, technical"),
        ("slack: {escalation: {urgency: {sev1: 0.5, sev2: 0}}}", "slack.escalation.urgency.sev2: Expected"),
    ],
)  # fmt: skip
def test_validation_errors_name_nested_fields(tmp_path: Path, yaml_text: str, named: str) -> None:
    path, error = file_error(tmp_path, yaml_text)
    assert error.startswith(named) and str(path) in error


def test_an_environment_error_names_the_variable() -> None:
    named = r"^detection.volume.threshold: .*\(from CRISISD_DETECTION_VOLUME_THRESHOLD\)"
    with pytest.raises(ConfigError, match=named):
        load_settings(None, env={"CRISISD_DETECTION_VOLUME_THRESHOLD": "-2"})


@pytest.mark.parametrize("server", ["broker", "host:", "host:abc", "host:99999", "host:0", "::1:9092", "k 1:9092"])
def test_a_bootstrap_server_without_a_valid_port_is_an_error_naming_the_entry(server: str) -> None:
    named = rf"^kafka.bootstrap_servers\[1\]: '{re.escape(server)}'.* \(from CRISISD_KAFKA_BOOTSTRAP_SERVERS\)$"
    with pytest.raises(ConfigError, match=named):
        load_settings(None, env={"CRISISD_KAFKA_BOOTSTRAP_SERVERS": f"k1:9092,{server}"})


def test_a_bootstrap_server_error_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("kafka:\n  bootstrap_servers: [k1:9092, k2]\n", encoding="utf-8")
    named = rf"^kafka.bootstrap_servers\[1\]: 'k2' is not host:port .*\(in {re.escape(str(path))}\)$"
    with pytest.raises(ConfigError, match=named):
        load_settings(path, env={})


@pytest.mark.parametrize(
    ("value", "servers"),
    [
        ("[::1]:9092", ["[::1]:9092"]),
        ("[::1]:9092,k2:9093", ["[::1]:9092", "k2:9093"]),
        ("[k1:9092, k2:9093]", ["k1:9092", "k2:9093"]),
        ('["[::1]:9092"]', ["[::1]:9092"]),
        ("SASL_SSL://k1:9093", ["SASL_SSL://k1:9093"]),
    ],
)  # fmt: skip
def test_ipv6_and_listener_style_bootstrap_servers_pass(value: str, servers: list[str]) -> None:
    assert load_settings(None, env={"CRISISD_KAFKA_BOOTSTRAP_SERVERS": value}).kafka.bootstrap_servers == servers


@pytest.mark.parametrize(
    ("name", "value"),
    [("CRISISD_STAFFING_ACTIONABLE_INTENTS", "[complaint, question"),
     ("CRISISD_KAFKA_BOOTSTRAP_SERVERS", "[k1:9092, k2:9092"),
     ("CRISISD_DETECTION_VOLUME_WINDOWS_MINUTES", "[1, 5")],
)  # fmt: skip
def test_a_broken_yaml_list_is_refused_not_split_at_commas(name: str, value: str) -> None:
    """`[complaint, question` split at commas read as '[complaint' and 'question': complaints would
    quietly stop counting as needing a reply."""
    with pytest.raises(ConfigError, match=rf"Expected `array`, got `str` \(from {name}\)$"):
        load_settings(None, env={name: value})


@pytest.mark.parametrize(
    "name",
    ["CRISISD_KAFKA_TOPIC", "CRISISD_KAFKA_GROUP_ID", "CRISISD_KAFKA_STATE_TOPIC", "CRISISD_KAFKA_DEAD_LETTER_TOPIC",
     "CRISISD_KAFKA_NOTIFICATIONS_TOPIC", "CRISISD_STATE_DIR"],
)  # fmt: skip
def test_an_empty_or_blank_topic_group_or_state_dir_is_an_error(tmp_path: Path, name: str) -> None:
    field = name.removeprefix("CRISISD_").lower().replace("kafka_", "kafka.", 1)
    for value in ("", "  "):
        with pytest.raises(ConfigError, match=rf"^{field}: must not be empty \(from {name}\)$"):
            load_settings(None, env={name: value})
    path = tmp_path / "c.yaml"
    path.write_text(f"{field.replace('.', ': {', 1)}: '  '{'}' if '.' in field else ''}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{field}: must not be empty \(in {path}\)$"):
        load_settings(path, env={})


def test_an_empty_value_in_the_environment_is_refused_with_the_way_back_to_the_default() -> None:
    for name, field in (
        ("CRISISD_HTTP_PORT", "http.port"),
        ("CRISISD_KAFKA_BOOTSTRAP_SERVERS", "kafka.bootstrap_servers"),
    ):
        with pytest.raises(
            ConfigError, match=rf"^{field}: must not be empty \(unset it for the default\) \(from {name}\)$"
        ):
            load_settings(None, env={name: ""})


def test_names_from_the_environment_lose_stray_blanks() -> None:
    assert load_settings(None, env={"CRISISD_KAFKA_TOPIC": " mentions-v2 "}).kafka.topic == "mentions-v2"


def test_an_error_in_a_map_from_the_environment_names_the_key_and_the_variable() -> None:
    named = r"^staffing.platforms.fb.aht_minutes: .*\(from CRISISD_STAFFING_PLATFORMS\)$"
    with pytest.raises(ConfigError, match=named):
        load_settings(None, env={"CRISISD_STAFFING_PLATFORMS": "{twitter: {aht_minutes: 3}, fb: {aht_minutes: 0}}"})


@pytest.mark.parametrize("level", ["debug", "DEBUG", "Debug", " debug "])
def test_the_log_level_is_read_in_any_case(tmp_path: Path, level: str) -> None:
    assert load_settings(None, env={"CRISISD_LOG_LEVEL": level}).log.level == "debug"
    path = tmp_path / "c.yaml"
    path.write_text(f"log: {{level: '{level}', format: JSON}}\n", encoding="utf-8")
    assert (load_settings(path, env={}).log.level, load_settings(path, env={}).log.format) == ("debug", "json")


def test_warn_is_warning_as_in_pythons_logging() -> None:
    assert load_settings(None, env={"CRISISD_LOG_LEVEL": "WARN"}).log.level == "warning"


@pytest.mark.parametrize("level", ["verbose", "off", "no", ""])
def test_an_unknown_log_level_is_an_error_listing_the_levels(level: str) -> None:
    named = (  # `off` and `no` as written, not as YAML's booleans
        rf"^log.level: Invalid enum value '{level}'; expected one of debug, info, warning, error "
        r"\(from CRISISD_LOG_LEVEL\)$"
    )
    with pytest.raises(ConfigError, match=named):
        load_settings(None, env={"CRISISD_LOG_LEVEL": level})


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("kafka:\n  topic: a\nlog:\n  level: info\nkafka:\n  group_id: b\n",
         "line 5 not valid YAML: duplicate key 'kafka' (first on line 1)"),
        ("staffing:\n  platforms:\n    twitter: {aht_minutes: 3}\n    twitter: {aht_minutes: 4}\n",
         "line 4 not valid YAML: duplicate key 'twitter' (first on line 3)"),
        ("kafka: {topic: a, topic: b}\n", "line 1 not valid YAML: duplicate key 'topic' (first on line 1)"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_an_error_naming_the_key_and_line(tmp_path: Path, yaml_text: str, named: str) -> None:
    path, error = file_error(tmp_path, yaml_text)
    assert error == f"{path}: {named}"


def test_a_merged_key_may_still_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("staffing:\n  default_platform: &p {aht_minutes: 3}\n  platforms:\n    x:\n      <<: *p\n"
                    "      aht_minutes: 5\n", encoding="utf-8")  # fmt: skip
    assert load_settings(path, env={}).staffing.platforms["x"].aht_minutes == 5


def test_check_config_exit_codes_and_masking(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("detection:\n  incidents:\n    quiet_minutes: 0\n", encoding="utf-8")
    cmd = [str(Path(sys.executable).with_name("crisisd")), "check-config"]
    run = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert run.returncode == 2 and "detection.incidents.quiet_minutes" in run.stderr
    # with Slack on (a bot token), `run` and so check-config need the channel too
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-very-secret-token", "CRISISD_SLACK_CHANNEL": "C0CRISIS"}
    env |= {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}  # the sources under test
    run = subprocess.run([*cmd, str(DEFAULT_CONFIG)], capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0 and "bot_token: '***'" in run.stdout
    assert "xoxb-very-secret-token" not in run.stdout + run.stderr
    assert "pages will mention nobody" in run.stderr  # the packaged ladder names no one
    env.pop("CRISISD_SLACK_CHANNEL")
    run = subprocess.run([*cmd, str(DEFAULT_CONFIG)], capture_output=True, text=True, env=env, check=False)
    assert (run.returncode, run.stderr) == (2, "crisisd: error: slack.channel: not set (CRISISD_SLACK_CHANNEL)\n")


def test_a_map_key_that_is_not_a_name_is_an_error_naming_the_map_and_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^staffing.platforms: every key must be a name: .*\(from CRISISD_STAFF"):
        load_settings(None, env={"CRISISD_STAFFING_PLATFORMS": "{twitter: {aht_minutes: 3}, 5: {}}"})
    path = tmp_path / "k.yaml"
    path.write_text("staffing:\n  platforms:\n    1: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^staffing.platforms: every key must be a name: .*\(in {path}\)$"):
        load_settings(path, env={})
