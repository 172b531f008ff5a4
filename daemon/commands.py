"""Registry of subcommands: each stage's module contributes its own `add_parser`."""

from __future__ import annotations

import argparse
import importlib

# Modules whose `add_parser(subparsers)` adds one subcommand with `set_defaults(func=...)`.
_COMMANDS = [
    "daemon.replay_command",
    "daemon.simulate.command",
    "detectors.command",
    "daemon.enrich.command",
    "daemon.staffing.command",
    "config.command",
    "daemon.kafka.run_command",
    "daemon.kafka.produce_command",
]


def register_all(sub: argparse._SubParsersAction) -> None:
    for name in _COMMANDS:
        importlib.import_module(name).add_parser(sub)
