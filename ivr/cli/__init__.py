"""`hamta-ivr`: one command, a sub-command group per module of this package.

Each module below has `register(subparsers)`, which adds its parsers and sets `func` (args ->
exit code); its imports are at its top. The one lazy mechanism, for start-up time: only the
module of the command on the line is imported (COMMANDS); every module when there is none
(`--help`) or it is unknown, and then the commands shipped beside `ivr` (the bench), found by
entry point so that the runtime imports none of them.

Bad input raises UsageError or ConfigError: printed as one line, exit code 2. As a last resort,
a database error that reaches `main` (e.g. a write to a read-only database) is printed the same
way, naming HAMTA_DB_URL/--db; `-v` also prints its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sqlite3
import sys
import traceback

from sqlalchemy.exc import SQLAlchemyError

from ivr.config import ConfigError, db_url
from ivr.registry.db import explain
from ivr.usage import UsageError

__all__ = ["UsageError", "build_parser", "main"]

COMMANDS = {  # command: the module (in ivr.cli) that registers it, in `--help` order
    "db": "db",  # db upgrade, db seed-demo
    "subscriber": "admin", "device": "admin", "transfers": "admin", "audit": "admin",
    "call": "call", "calls": "call",  # the console caller, the call log
    "prompts": "prompts",  # prompts build|check|script|timing|ear
    "serve": "serve",  # the FastAGI server
    "asterisk": "asterisk", "dial": "asterisk",  # the development Asterisk, a real call
    "doctor": "doctor",  # is everything a call needs in place?
    "service": "service",  # service paths|dropin|status (systemd; installed by deploy/install.sh)
    "sms": "sms",  # sms deliver|list|resend|lab (receipts through Kannel)
    "ussd": "ussd",  # ussd serve|lab|kannel-conf (USSD sessions and SMS inquiries over HTTP)
}
# Commands shipped beside `ivr` in the same distribution: `bench = "bench.cli:register"`
COMMAND_ENTRY_POINTS = "hamta_ivr.commands"


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`'s command (every command when `argv` names none)."""
    parser = argparse.ArgumentParser(
        prog="hamta-ivr", description="The Hamta registry telephone IVR and its tools."
    )
    parser.add_argument(
        "--db", metavar="URL",
        help="registry database URL (default: HAMTA_DB_URL, else a SQLite file in the data dir)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    word = _command_word(argv or [])
    if word in COMMANDS:
        importlib.import_module(f"ivr.cli.{COMMANDS[word]}").register(sub)
        return parser
    for name in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"ivr.cli.{name}").register(sub)
    for entry in importlib.metadata.entry_points(group=COMMAND_ENTRY_POINTS):
        try:
            register = entry.load()
        except ImportError as exc:  # a half-installed copy: every other command still works
            print(f"hamta-ivr: warning: command {entry.name!r} ({entry.value}) not loaded: {exc};"
                  " reinstall hamta-ivr", file=sys.stderr)
            continue
        register(sub)
    return parser


def _command_word(argv: list[str]) -> str | None:
    """The command `argv` names: its first word that is no option nor --db's value."""
    words = iter(argv)
    for word in words:
        if word == "--db":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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
    psycopg = sys.modules.get("psycopg")  # not imported: none of its errors can be here
    kinds = (SQLAlchemyError, sqlite3.Error, *([psycopg.Error] if psycopg else []))
    if not isinstance(exc, kinds):
        return None
    try:
        url: str | None = db_url(getattr(args, "db", None))
    except ConfigError:
        url = None
    return explain(exc, url)


if __name__ == "__main__":
    sys.exit(main())
