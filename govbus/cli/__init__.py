"""The ``govbus`` command line. Each command group lives in its own module and registers itself here.

Exit codes: 0 success, 1 a govbus error (message on stderr), 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bus.errors import GovbusError, LocalKafkaError
from bus.logging import configure_logging
from bus.settings import load_settings
from govbus.cli import (
    acl,
    agreement,
    audit,
    bench,
    consume,
    demo,
    dlq,
    gateway,
    kafka,
    lag,
    org,
    outbox,
    readmodel,
    schemas,
    simulate,
    stack,
    topics,
)

COMMAND_GROUPS = (
    stack,
    kafka,
    topics,
    schemas,
    gateway,
    org,
    agreement,
    audit,
    acl,
    consume,
    readmodel,
    lag,
    dlq,
    simulate,
    outbox,
    demo,
    bench,
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(prog="govbus", description="govbus: the government data-sharing bus")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``govbus`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.log_format)
        code: int = args.handler(args, settings)
    except LocalKafkaError as exc:
        print(f"govbus: error: {exc}", file=sys.stderr)
        if exc.log_tail:
            print(exc.log_tail, file=sys.stderr)
        return 1
    except GovbusError as exc:
        print(f"govbus: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("govbus: interrupted", file=sys.stderr)
        return 130
    return code
