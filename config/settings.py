"""The settings schema: one frozen, validated object built at start-up.

Sources, later ones winning: built-in defaults, the YAML file (`--config` or `CRISISD_CONFIG`),
environment variables. Every field has an environment name derived from its path
(`kafka.bootstrap_servers` -> `CRISISD_KAFKA_BOOTSTRAP_SERVERS`); a secret field may also be given
as a file path in `<NAME>_FILE`. Errors name the field and its source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import msgspec
import yaml

from config.secrets import Secret
from daemon.kafka.settings import KafkaSettings
from daemon.staffing.settings import StaffingSettings
from daemon.windows import WindowSettings
from detectors.settings import DetectionSettings
from notifiers.slack.settings import SlackSettings

DEFAULT_CONFIG = Path(__file__).with_name("crisisd.yaml")


class ConfigError(ValueError):
    """A configuration problem; the message names the field or file."""


class LogSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `log:` section."""

    format: Literal["auto", "json", "console"] = "auto"
    """`auto`: readable on a terminal, JSON otherwise (containers); any case."""
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level written (to stderr; stdout is kept for `--json` output); any case (`DEBUG`, as
    Python's logging spells it), and `warn` for `warning`."""


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `http:` section: health, readiness, metrics and Slack interactivity endpoints."""

    enabled: bool = True
    """Serve `/healthz`, `/readyz`, `/metrics` and the Slack interactivity endpoint."""
    host: str = "0.0.0.0"
    """Address to listen on (`0.0.0.0`: every interface, as a container needs)."""
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080
    """0 picks a free port (tests); the bound port is logged (`http server listening`)."""
    liveness_timeout_seconds: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    """`/healthz` fails when the consumer loop has not turned for this long (a hung process)."""


class PipelineSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The `pipeline:` section."""

    dedup_capacity: Annotated[int, msgspec.Meta(ge=1000)] = 200_000
    """Recent event ids remembered per partition to drop duplicate deliveries (bounded memory)."""
    max_future_seconds: Annotated[int, msgspec.Meta(ge=60)] = 7 * 24 * 3600
    """Events further than this ahead of the stream's watermark are invalid (`too_far_in_future`)."""
    max_brands: Annotated[int, msgspec.Meta(ge=1)] = 20_000
    """Brands one partition's pipeline keeps state for (9 KB for a brand seen once, ~45 KB for a busy
    one): an event of one more brand is invalid (`too_many_brands`), so that a producer that puts
    user handles or garbage in `brand` fills the dead-letter topic (and trips its budget) instead of
    the memory. Raise it for more brands on one partition."""
    max_ahead_of_clock_seconds: Annotated[int, msgspec.Meta(ge=0)] = 3600
    """Events stamped further than this ahead of this machine's clock are invalid too
    (`too_far_in_future`): one event from a producer with a wrong clock or time zone would move its
    brand's windows ahead and make the brand's real events late. 0 turns the check off (a replay of
    a stream dated in the future)."""
    timeline_buckets: Annotated[int, msgspec.Meta(ge=10, le=2000)] = 180
    """Buckets of history sent with incident notifications for charts."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    state_dir: Annotated[str, msgspec.Meta(min_length=1, pattern=r"\S")] = "./state"
    """Where the daemon keeps what must survive a restart on this machine (the notification outbox)."""
    dead_letter_file: str | None = None
    """Replay mode: where invalid lines go (JSONL with reason); default `<input>.dead-letter.jsonl`."""
    log: LogSettings = LogSettings()
    http: HttpSettings = HttpSettings()
    kafka: KafkaSettings = KafkaSettings()
    windows: WindowSettings = WindowSettings()
    pipeline: PipelineSettings = PipelineSettings()
    detection: DetectionSettings = DetectionSettings()
    staffing: StaffingSettings = StaffingSettings()
    slack: SlackSettings = SlackSettings()


# Environment names the CLI contract fixes, beside the derived CRISISD_<PATH> ones.
ENV_ALIASES = {
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "CRISISD_SLACK_API_URL": ("slack", "api_url"),
}


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is Secret and isinstance(obj, str):
        return Secret(obj)
    if tp is Secret:  # msgspec turns a ValueError into a ValidationError naming the field
        raise ValueError("Expected a string (quote the secret)")
    raise NotImplementedError


def _enc_masked(obj: Any) -> Any:
    if isinstance(obj, Secret):
        return "***" if obj else ""
    raise NotImplementedError


def _leaves(tp: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every settable field of the schema (nested structs descended) with its type."""
    for name, hint in get_type_hints(tp, include_extras=True).items():
        if name.startswith("_"):
            continue
        base = _strip(hint)
        if isinstance(base, type) and issubclass(base, msgspec.Struct):
            yield from _leaves(base, (*path, name))
        else:
            yield (*path, name), base


def _strip(hint: Any) -> Any:
    while get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    args = [a for a in get_args(hint) if a is not type(None)]
    if args and get_origin(hint) is not None and type(None) in get_args(hint) and len(args) == 1:
        return _strip(args[0])
    return hint


def env_name(path: tuple[str, ...]) -> str:
    return "CRISISD_" + "_".join(path).upper()


def _is_secret(tp: Any) -> bool:
    return tp is Secret


# `[::1]:9092,...`: comma-separated items, the first an IPv6 host and port, not a YAML list
_BRACKETED_HOST = re.compile(r"^\[[0-9A-Fa-f:.]+\]:\d+\s*(,|$)")


def _parse_env(value: str, tp: Any) -> Any:
    if tp is str or _is_secret(tp) or get_origin(tp) is Literal:
        # as given, not as YAML reads it (`off` is no boolean here); a stray blank is no name
        return value.strip()
    origin = get_origin(tp)
    if origin in (list, tuple) and value:
        if value.lstrip().startswith("["):  # a YAML list, or an item that begins with `[` (`[::1]:9092`)
            try:
                items = yaml.safe_load(value)
            except yaml.YAMLError:
                items = None
            if isinstance(items, list):
                return items
            if not _BRACKETED_HOST.match(value.strip()):
                return value  # a broken YAML list, not comma-separated items: the type check refuses it
        return [v.strip() for v in value.split(",") if v.strip()]
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _env_overrides(env: Mapping[str, str]) -> Iterator[tuple[tuple[str, ...], Any, str]]:
    aliases = {path: name for name, path in ENV_ALIASES.items()}
    for path, tp in _leaves(Settings):
        names = [env_name(path)]
        if path in aliases:
            names.insert(0, aliases[path])
        for name in names:
            if _is_secret(tp) and f"{name}_FILE" in env:
                file = env[f"{name}_FILE"]
                try:
                    secret = Path(file).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ConfigError(f"{name}_FILE: cannot read {file}: {exc.strerror}") from None
                except UnicodeDecodeError:
                    raise ConfigError(f"{name}_FILE: {file} is not UTF-8 text") from None
                if not secret:  # an unpopulated secret mount would turn Slack off without a word
                    raise ConfigError(f"{name}_FILE: {file} is empty")
                yield path, secret, f"{name}_FILE"
                break
            if name in env:
                yield path, _parse_env(env[name], tp), name
                break


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping. PyYAML keeps the last one
    without a word, so a second `kafka:` section further down would silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the SafeLoader reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Defaults < YAML file < environment. Raises ConfigError naming the field or file.

    >>> load_settings(env={"CRISISD_KAFKA_TOPIC": "mentions-v1"}).kafka.topic
    'mentions-v1'
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get("CRISISD_CONFIG") or None
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        try:
            loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping of sections")
        data = loaded
    sources: dict[tuple[str, ...], str] = {}
    for field_path, value, name in _env_overrides(env):
        _set(data, field_path, value)
        sources[field_path] = name
    _fold_log_case(data)
    try:
        return msgspec.convert(data, Settings, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), path, sources, data)) from None


def _fold_log_case(data: dict[str, Any]) -> None:
    """`CRISISD_LOG_LEVEL=DEBUG` (Python's logging spells levels in capitals) means `debug`;
    likewise `JSON` for the format."""
    log = data.get("log")
    if isinstance(log, dict):
        for name in ("level", "format"):
            if isinstance(log.get(name), str):
                log[name] = log[name].strip().lower()
        if log.get("level") == "warn":  # Python's logging takes WARN for WARNING too
            log["level"] = "warning"


def _explain(message: str, path: Any, sources: dict[tuple[str, ...], str], data: Any = None) -> str:
    """'Expected `int`, got `str` - at `$.kafka.port`' -> 'kafka.port: Expected `int`, got `str` (from ...)'."""
    field = ""
    if " - at `key` in `$." in message:  # a map key of the wrong type (`5:` where names go)
        message, _, where = message.rpartition(" - at `key` in `$.")
        field = where.rstrip("`")
        if message.startswith("Invalid enum value"):  # a map keyed by a fixed set of names (skills)
            message = f"unknown key {message.removeprefix('Invalid enum value ')}"
        else:
            message = f"every key must be a name: {message[0].lower()}{message[1:]}"
    elif " - at `$." in message:
        message, _, where = message.rpartition(" - at `$.")
        field = where.rstrip("`")
        while " - at `$." in message:  # an error from inside a section's own check (a brand's override)
            message, _, inner = message.rpartition(" - at `$.")
            field += "." + inner.rstrip("`")
    elif message.startswith("Object contains unknown field"):
        field = message.split("`")[1] if "`" in message else ""
        message = "unknown field"
    if field.startswith("$."):
        field = field[2:]
    field = _name_map_keys(field, data)
    if message == "Expected `str` of length >= 1" or message.startswith("Expected `str` matching regex"):
        message = "must not be empty"
    elif message.startswith(("Invalid enum value", "unknown key")):
        from config.reference import fields

        kind = next((f.type for f in fields() if f.path == field), "")
        if message.startswith("unknown key"):  # the map's key type: "map of one of a, b to float"
            kind = kind.removeprefix("map of ").partition(" to ")[0]
        if kind.startswith("one of "):
            message = f"{message}; expected {kind}"
    parts = tuple(p for p in field.replace("[", ".").replace("]", "").split(".") if p)
    origin = _origin(parts, message, sources)
    if origin and message.endswith("got `null`"):  # `CRISISD_HTTP_PORT=` reads as YAML's null
        message = "must not be empty (unset it for the default)"
    src = f" (from {origin})" if origin else (f" (in {path})" if path else "")
    return f"{field or 'configuration'}: {message}{src}"


def _name_map_keys(field: str, data: Any) -> str:
    """msgspec writes the key of a map as `[...]`: name it, as brand overrides are named
    (`staffing.platforms.twitter.aht_minutes`). The key is that of the map's first value that does
    not convert on its own, the one msgspec stopped at."""
    if "[...]" not in field:
        return field
    hint: Any = Settings
    node: Any = data
    out = ""
    for token in re.findall(r"[^.\[\]]+|\[[^\]]*\]", field):
        base = _strip(hint)
        origin = get_origin(base)
        if token == "[...]" and origin is dict and isinstance(node, dict):
            hint = get_args(base)[1]
            key = next((k for k, v in node.items() if not _converts(v, hint)), None)
            if key is None:
                return field
            out, node = f"{out}.{key}", node[key]
        elif token.startswith("[") and origin in (list, tuple):
            hint = get_args(base)[0]
            i = int(token[1:-1]) if token[1:-1].isdigit() else -1
            out, node = out + token, node[i] if isinstance(node, list) and 0 <= i < len(node) else None
        elif not token.startswith("[") and origin is dict:  # a key already named (brand overrides)
            hint = get_args(base)[1]
            out, node = f"{out}.{token}", node.get(token) if isinstance(node, dict) else None
        elif not token.startswith("[") and isinstance(base, type) and issubclass(base, msgspec.Struct):
            hint = get_type_hints(base, include_extras=True).get(token, Any)
            out, node = f"{out}.{token}", node.get(token) if isinstance(node, dict) else None
        else:  # past what the schema tells: keep the rest as msgspec wrote it
            hint, node = Any, None
            out += token if token.startswith("[") else f".{token}"
    return out.lstrip(".")


def _converts(value: Any, hint: Any) -> bool:
    try:
        msgspec.convert(value, hint, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError:
        return False
    return True


def _origin(parts: tuple[str, ...], message: str, sources: dict[tuple[str, ...], str]) -> str | None:
    """The environment variable behind the failing field: the field itself, the list or map it is
    an item of (`broadcast[1]`), or the field a section's own check names first ("staffing:
    backlog_within: ...")."""
    for k in range(len(parts), 0, -1):
        if parts[:k] in sources:
            return sources[parts[:k]]
    for path, name in sources.items():
        if len(path) > len(parts) and path[: len(parts)] == parts and message.startswith(f"{path[len(parts)]}:"):
            return name
    return None


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, secrets shown as '***' (also the Kafka client's
    own options that hold one, e.g. librdkafka's `sasl.password`)."""
    data: dict[str, Any] = msgspec.to_builtins(settings, enc_hook=_enc_masked)
    options = data.get("kafka", {}).get("client_options", {})
    for key in options:
        if _SECRET_OPTION.search(key):
            options[key] = "***"
    return data


_SECRET_OPTION = re.compile(r"password|secret|token|credential|key\.pem$|(^|[._])key$", re.IGNORECASE)


def effective_yaml(settings: Settings) -> str:
    return yaml.safe_dump(masked(settings), sort_keys=False, allow_unicode=True)
