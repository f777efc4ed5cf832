"""`hamta-ivr`: one command, a sub-command group per module of this package.

Each module below has `register(subparsers)`, which adds its parsers and sets `func` (args ->
exit code). Bad input raises UsageError or ConfigError: printed as one line, exit code 2. As a
last resort, a database error that reaches `main` (e.g. a write to a read-only database) is
printed the same way, naming HAMTA_DB_URL/--db; `-v` also prints its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys
import traceback

from ivr.config import ConfigError

COMMAND_MODULES = [
    "ivr.cli.db",  # db upgrade, db seed-demo
    "ivr.cli.admin",  # subscriber …, device …, transfers, audit
    "ivr.cli.call",  # call (console caller), calls (call log)
    "ivr.cli.prompts",  # prompts build, prompts check
    "ivr.cli.serve",  # serve (FastAGI server)
    "ivr.cli.asterisk",  # asterisk up|down|status, dial
    "ivr.cli.doctor",  # doctor (is everything a call needs in place?)
    "ivr.cli.service",  # service install|uninstall|status|unit (systemd)
    "ivr.cli.sms",  # sms deliver|list|resend (receipts through Kannel)
    "ivr.cli.ussd",  # ussd serve|kannel-conf (USSD sessions and SMS inquiries over HTTP)
]
# Commands shipped beside `ivr` in the same distribution, found by entry point so that the
# runtime imports none of them: `bench = "bench.cli:register"` (pyproject.toml).
COMMAND_ENTRY_POINTS = "hamta_ivr.commands"


class UsageError(Exception):
    """Bad input on the command line; the message says what and how to fix it."""


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
    for entry in importlib.metadata.entry_points(group=COMMAND_ENTRY_POINTS):
        try:
            register = entry.load()
        except ImportError as exc:  # a half-installed copy: every other command still works
            print(f"hamta-ivr: warning: command {entry.name!r} ({entry.value}) not loaded: {exc};"
                  " reinstall hamta-ivr", file=sys.stderr)
            continue
        register(sub)
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
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    kinds: tuple[type[Exception], ...] = (SQLAlchemyError, sqlite3.Error)
    try:
        import psycopg

        kinds += (psycopg.Error,)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    if not isinstance(exc, kinds):
        return None
    from ivr.config import db_url
    from ivr.registry.db import explain

    try:
        url: str | None = db_url(getattr(args, "db", None))
    except ConfigError:
        url = None
    return explain(exc, url)


if __name__ == "__main__":
    sys.exit(main())
