"""`crisisd check-config FILE`: validate a configuration and print it with secrets masked.

It refuses (exit 2, the same line) what `crisisd run` refuses in a configuration at start, Kafka's
address aside, and warns on stderr when Slack pages would mention nobody."""

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
    from daemon.kafka.run_command import check_notifier

    try:
        settings = load_settings(args.file)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    # what `run` refuses at start, without contacting Slack or Kafka; not Kafka's address, which a
    # file for replay, demo or the score commands need not have (the packaged default leaves it to
    # CRISISD_KAFKA_BOOTSTRAP_SERVERS)
    check_notifier(settings)
    if settings.slack.escalation.mentions_nobody():
        print(
            "crisisd: warning: slack.escalation.levels: no level names users or user_groups, so pages "
            "will mention nobody (posted in the incident thread and level channels only)",
            file=sys.stderr,
        )
    if args.json:
        sys.stdout.write(msgspec.json.encode(masked(settings)).decode() + "\n")
    else:
        sys.stdout.write(effective_yaml(settings))
    return 0
