"""What several command groups share: opening the registry named by --db / HAMTA_DB_URL,
checking a caller's --from and --keys (the console caller and `dial` take the same), and printing
registry records (one, or a listing)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ivr.call.console import scripted_keys
from ivr.config import db_url
from ivr.registry.msisdn import InvalidMsisdn, normalize
from ivr.registry.service import Registry
from ivr.usage import UsageError


def open_registry(args: argparse.Namespace) -> Registry:
    return Registry.open(db_url(getattr(args, "db", None)))


def plain(record: Any) -> dict[str, Any]:
    """A registry record (a dataclass) as JSON-ready values: times in ISO 8601."""
    return {key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in dataclasses.asdict(record).items()}


def caller_keys(args: argparse.Namespace, ask: str = "") -> str:
    """Check --from (a mobile number, or omitted for a withheld caller ID) and --keys; return the
    keys without spaces (`ask`: one more key this command understands). Raises UsageError naming
    the option."""
    if args.caller:
        try:
            normalize(args.caller)
        except InvalidMsisdn as exc:
            raise UsageError(f"--from: {exc}") from None
    try:
        keys = "".join((args.keys or "").split())
        scripted_keys(keys.replace(ask, "") if ask else keys)
        return keys
    except ValueError as exc:
        raise UsageError(f"--keys: {exc}") from None


def print_json(value: Any, *, ascii_only: bool = False) -> None:
    json.dump(value, sys.stdout, ensure_ascii=ascii_only, indent=2, default=str)
    print()


def print_rows(rows: Sequence[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str],
               empty: str | None = None, *, ascii_only: bool = False) -> int:
    """A listing: JSON (a list), else one `line(row)` each (`empty` when there is none); 0."""
    if as_json:
        print_json(rows, ascii_only=ascii_only)
        return 0
    if not rows and empty:
        print(empty)
    for row in rows:
        print(line(row))
    return 0
