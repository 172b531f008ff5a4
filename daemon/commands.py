"""Registry of subcommands: each stage's module contributes its own `add_parser`."""

from __future__ import annotations

import argparse
import importlib

# (module, attribute) pairs; each `add_parser(subparsers)` adds one subcommand with `set_defaults(func=...)`.
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
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue  # a stage not built yet
        module.add_parser(sub)
