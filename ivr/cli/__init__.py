"""`hamta-ivr`: one command, a sub-command group per module of this package.

Each module below has `register(subparsers)`, which adds its parsers and sets `func` (args ->
exit code). Bad input raises UsageError or ConfigError: printed as one line, exit code 2. As a
last resort, a database error that reaches `main` (e.g. a write to a read-only database) is
printed the same way, naming HAMTA_DB_URL/--db; `-v` also prints its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys
import traceback

import psycopg
from sqlalchemy.exc import SQLAlchemyError

from ivr.config import ConfigError, db_url
from ivr.registry.db import explain
from ivr.usage import UsageError

__all__ = ["UsageError", "build_parser", "main"]

COMMAND_MODULES = [
    "ivr.cli.db",  # db upgrade, db seed-demo
    "ivr.cli.admin",  # subscriber …, device …, transfers, audit
    "ivr.cli.call",  # call (console caller), calls (call log)
    "ivr.cli.prompts",  # prompts build, prompts check
    "ivr.cli.serve",  # serve (FastAGI server)
    "ivr.cli.asterisk",  # asterisk up|down|status, dial
    "ivr.cli.bench",  # bench
    "ivr.cli.doctor",  # doctor (is everything a call needs in place?)
    "ivr.cli.service",  # service install|uninstall|status|unit (systemd)
    "ivr.cli.sms",  # sms deliver|list|resend (receipts through Kannel)
    "ivr.cli.ussd",  # ussd serve|kannel-conf (USSD sessions and SMS inquiries over HTTP)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hamta-ivr", description="The Hamta registry telephone IVR and its tools."
    )
    parser.add_argument(
        "--db", metavar="URL",
        help="registry database URL (default: HAMTA_DB_URL, else a SQLite file in the data dir)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as exc:
        return _error(exc)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hamta-ivr calls | head -1`: the reader had enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit's flush does not fail again
        return 141  # 128 + SIGPIPE, as a shell tool ends
    except Exception as exc:
        explained = _database_error(exc, args)
        if explained is None:
            raise
        if args.verbose:
            traceback.print_exc()
        return _error(explained)


def _error(exc: Exception) -> int:
    line = " ".join(str(exc).split())  # one line, whatever the message holds
    print(f"hamta-ivr: error: {line}", file=sys.stderr)
    return 2


def _database_error(exc: Exception, args: argparse.Namespace) -> ConfigError | None:
    """A database failure as a ConfigError naming HAMTA_DB_URL/--db; None for anything else."""
    if not isinstance(exc, (SQLAlchemyError, sqlite3.Error, psycopg.Error)):
        return None
    try:
        url: str | None = db_url(getattr(args, "db", None))
    except ConfigError:
        url = None
    return explain(exc, url)


if __name__ == "__main__":
    sys.exit(main())
