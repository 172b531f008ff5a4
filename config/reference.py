"""The configuration reference and the commented default file, rendered from the `Settings` schema.

Both are generated so they cannot drift from the code: field meanings are the docstrings under each
field of the settings structs, types and bounds come from the annotations, defaults from the structs.
Tests compare the committed files with what this module renders.

    python -m config.reference > docs/configuration.md
    python -m config.reference --yaml > config/crisisd.yaml

>>> port = next(f for f in fields() if f.path == "http.port")
>>> port.env, port.type, port.default, port.doc.startswith("0 picks a free port")
(('CRISISD_HTTP_PORT',), 'int, 0 to 65535', '8080', True)
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import msgspec
import yaml

from config.secrets import Secret


@dataclass(frozen=True)
class Field:
    path: str
    """Dotted path; `[]` marks the items of a list, `.*` the values of a map."""
    type: str
    default: str
    """JSON text of the default, `(required)` when the field has none."""
    doc: str
    env: tuple[str, ...]
    """Environment names that set it (empty inside lists and maps)."""


@dataclass(frozen=True)
class Section:
    path: str
    doc: str
    fields: list[Field]


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The string literal written under each annotated attribute of a class body (its docstring)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not _is_struct(klass) or klass is msgspec.Struct:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        statements = body.body
        for stmt, nxt in zip(statements, [*statements[1:], None], strict=True):
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def class_doc(cls: type) -> str:
    """The first paragraph of a class docstring, on one line."""
    doc = inspect.getdoc(cls) if cls.__doc__ else ""
    return " ".join((doc or "").split("\n\n", 1)[0].split())


def _unwrap(hint: Any) -> tuple[Any, list[Any]]:
    metas: list[Any] = []
    while get_origin(hint) is Annotated:
        hint, *extra = get_args(hint)
        metas.extend(m for m in extra if isinstance(m, msgspec.Meta))
    return hint, metas


def _bounds(metas: list[Any]) -> str:
    lo = hi = ""
    for m in metas:
        if m.ge is not None:
            lo = f"{m.ge}"
        if m.gt is not None:
            lo = f"> {m.gt}"
        if m.le is not None:
            hi = f"{m.le}"
        if m.lt is not None:
            hi = f"< {m.lt}"
        if m.min_length is not None:
            lo = f"length ≥ {m.min_length}"
    if lo and hi and not lo.startswith(">") and not hi.startswith("<"):
        return f"{lo} to {hi}"
    parts = [p if p.startswith((">", "<", "length")) else None for p in (lo, hi)]
    out = []
    if lo:
        out.append(parts[0] or f"≥ {lo}")
    if hi:
        out.append(parts[1] or f"≤ {hi}")
    return ", ".join(out)


def type_name(hint: Any) -> str:
    """A reader's name for a type annotation.

    >>> type_name(Annotated[float, msgspec.Meta(gt=0, le=1)] | None)
    'float, > 0, ≤ 1, or null'
    >>> type_name(Literal["auto", "json"]), type_name(dict[str, list[int]])
    ('one of auto, json', 'map of str to list of int')
    """
    hint, metas = _unwrap(hint)
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        args = get_args(hint)
        rest = [a for a in args if a is not NoneType]
        text = " or ".join(type_name(a) for a in rest)
        return f"{text}, or null" if NoneType in args else text
    bounds = _bounds(metas)
    if origin is Literal:
        text = "one of " + ", ".join(str(v) for v in get_args(hint))
    elif origin in (list, tuple, set, frozenset):
        items = [a for a in get_args(hint) if a is not Ellipsis]
        text = "list of " + (type_name(items[0]) if items else "any")
    elif origin is dict:
        key, value = get_args(hint)
        text = f"map of {type_name(key)} to {type_name(value)}"
    elif hint is Secret:
        text = "secret"
    elif hint is Any:
        text = "any"
    elif isinstance(hint, type):
        text = hint.__name__
    else:
        text = str(hint)
    return f"{text}, {bounds}" if bounds else text


def _enc(obj: Any) -> Any:
    if isinstance(obj, Secret):
        return "***" if obj else ""
    raise NotImplementedError


def compact(value: Any) -> Any:
    """Plain data for a default; inside structs, only the fields that differ from their own defaults."""
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        for f in msgspec.structs.fields(value):
            v = getattr(value, f.name)
            if f.default is not msgspec.NODEFAULT and v == f.default:
                continue
            if f.default_factory is not msgspec.NODEFAULT and v == f.default_factory():
                continue
            out[f.encode_name] = compact(v)
        return out
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [compact(v) for v in value]
    return msgspec.to_builtins(value, enc_hook=_enc)


def _default(f: msgspec.structs.FieldInfo) -> tuple[bool, Any]:
    if f.default is not msgspec.NODEFAULT:
        return True, f.default
    if f.default_factory is not msgspec.NODEFAULT:
        return True, f.default_factory()
    return False, None


def _item_struct(hint: Any) -> tuple[str, Any] | None:
    """('[]', Struct) for a list of structs, ('.*', Struct) for a map to structs, else None."""
    hint, _ = _unwrap(hint)
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        rest = [a for a in get_args(hint) if a is not NoneType]
        return _item_struct(rest[0]) if len(rest) == 1 else None
    if origin in (list, tuple, set, frozenset):
        args = [_unwrap(a)[0] for a in get_args(hint) if a is not Ellipsis]
        return ("[]", args[0]) if args and _is_struct(args[0]) else None
    if origin is dict:
        value = _unwrap(get_args(hint)[1])[0]
        return (".*", value) if _is_struct(value) else None
    return None


def _env_names(path: tuple[str, ...], hint: Any) -> tuple[str, ...]:
    from config.settings import ENV_ALIASES, env_name

    names = [alias for alias, p in ENV_ALIASES.items() if p == path]
    derived = env_name(path)
    if derived not in names:
        names.append(derived)
    base, _ = _unwrap(hint)
    if Secret in (base, *get_args(base)):
        names = [n for name in names for n in (name, f"{name}_FILE")]
    return tuple(names)


def sections(root: type | None = None, path: tuple[str, ...] = (), env: bool = True) -> Iterator[Section]:
    """The schema as sections (one per struct), depth first, the fields of each in declaration order."""
    if root is None:
        from config.settings import Settings

        root = Settings
    hints = get_type_hints(root, include_extras=True)
    docs = field_docs(root)
    own: list[Field] = []
    later: list[tuple[tuple[str, ...], type, bool]] = []
    for f in msgspec.structs.fields(root):
        hint = hints[f.name]
        base, _ = _unwrap(hint)
        sub = (*path, f.encode_name)
        if _is_struct(base):
            later.append((sub, base, env))
            continue
        has, value = _default(f)
        default = json.dumps(compact(value), ensure_ascii=False) if has else "(required)"
        doc = docs.get(f.name, "")
        item = _item_struct(hint)
        if item is not None and not doc:
            doc = class_doc(item[1])
        own.append(Field(_dotted(sub), type_name(hint), default, doc, _env_names(sub, hint) if env else ()))
        if item is not None:
            suffix, cls = item
            later.append(((*sub[:-1], sub[-1] + suffix), cls, False))
    yield Section(_dotted(path), class_doc(root), own)
    for sub, cls, sub_env in later:
        yield from sections(cls, sub, sub_env)


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


def fields(root: type | None = None) -> list[Field]:
    return [f for s in sections(root) for f in s.fields]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown() -> str:
    """docs/configuration.md: one table per section."""
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m config.reference > docs/configuration.md`; do not edit by hand. -->",
        "",
        "crisisd reads one YAML file (`crisisd run --config FILE`, or `CRISISD_CONFIG`); every field can be",
        "overridden by an environment variable, named after its path (`kafka.group_id` ->",
        "`CRISISD_KAFKA_GROUP_ID`). Environment values are parsed as YAML (`true`, `15`, `[a, b]`); list fields",
        "also take a comma-separated list. A secret may instead be given as a file path in `<NAME>_FILE`",
        "(Docker and Kubernetes secrets). Precedence: built-in defaults < file < environment.",
        "`crisisd check-config FILE` validates a file and prints the effective configuration, secrets masked;",
        "an invalid value is reported with the field's path. It also refuses what `crisisd run` refuses at",
        "start (with a bot token, a blank `slack.channel`), Kafka's address aside, and warns when no",
        "escalation level names users or user groups. `config/crisisd.yaml` is a commented file with every",
        "default.",
        "",
        "Paths with `[]` are the fields of each item of a list, `.*` those of each value of a map; they are",
        "set in the file (or as a whole, in YAML, through the list's variable).",
    ]
    for section in sections():
        if not section.fields:
            continue
        title = f"`{section.path}`" if section.path else "top level"
        out += ["", f"## {title}", ""]
        if section.doc:
            out += [section.doc, ""]
        out += ["| field | environment | type | default | meaning |", "|---|---|---|---|---|"]
        for f in section.fields:
            env = "<br>".join(f"`{n}`" for n in f.env) or "-"
            out.append(
                f"| `{f.path}` | {env} | {_cell(f.type)} | `{_cell(f.default)}` | {_cell(f.doc)} |"
                if f.default != "(required)"
                else f"| `{f.path}` | {env} | {_cell(f.type)} | (required) | {_cell(f.doc)} |"
            )
    return "\n".join(out) + "\n"


def _comment(text: str, indent: str, width: int = 100) -> list[str]:
    if not text:
        return []
    lines = textwrap.wrap(" ".join(text.split()), width=width - len(indent) - 2)
    return [f"{indent}# {line}" for line in lines]


def _flat(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
    return not any(isinstance(v, dict | list) for v in items)


def _yaml_value(key: str, value: Any, indent: str) -> list[str]:
    """`key: value`, inline for scalars and flat lists/maps, block style for nested data."""
    if _flat(value):
        text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=1 << 16).strip()
        return [f"{indent}{key}: {text[1:-1]}"]
    text = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return [indent + line for line in text.rstrip("\n").split("\n")]


def _yaml_struct(cls: type, indent: str) -> list[str]:
    hints = get_type_hints(cls, include_extras=True)
    docs = field_docs(cls)
    out: list[str] = []
    for f in msgspec.structs.fields(cls):
        base, _ = _unwrap(hints[f.name])
        if _is_struct(base):
            out.append("")
            out += _comment(class_doc(base), indent)
            out.append(f"{indent}{f.encode_name}:")
            out += _yaml_struct(base, indent + "  ")
            continue
        has, value = _default(f)
        doc = docs.get(f.name, "")
        item = _item_struct(hints[f.name])
        if item is not None and not doc:
            doc = class_doc(item[1])
        out += _comment(f"{doc} ({type_name(hints[f.name])})" if doc else f"({type_name(hints[f.name])})", indent)
        out += _yaml_value(f.encode_name, compact(value) if has else None, indent)
    return out


def render_yaml() -> str:
    """config/crisisd.yaml: every section and field with its default, commented."""
    from config.settings import Settings

    head = [
        "# crisisd configuration: every field with its default value.",
        "# Generated by `python -m config.reference --yaml > config/crisisd.yaml`; the reference with the",
        "# environment variable of each field is docs/configuration.md. Secrets belong in the environment",
        "# (SLACK_BOT_TOKEN, or SLACK_BOT_TOKEN_FILE pointing at a mounted secret), not in this file.",
        "",
    ]
    return "\n".join(head + _yaml_struct(Settings, "")) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(render_yaml() if "--yaml" in args else render_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
