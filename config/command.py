"""`crisisd check-config FILE`: validate a configuration and print it with secrets masked."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate a configuration file and print the effective configuration")
    p.add_argument("file", help="YAML configuration file")
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import msgspec

    from config.settings import ConfigError, effective_yaml, load_settings, masked
    from daemon.cli import UsageError

    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(msgspec.json.encode(masked(settings)).decode() + "\n")
    else:
        sys.stdout.write(effective_yaml(settings))
    return 0
