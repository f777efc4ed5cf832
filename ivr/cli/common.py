"""What several command groups share: opening the registry named by --db / HAMTA_DB_URL, and
checking a caller's --from and --keys (the console caller and `dial` take the same), and printing
a registry record."""

from __future__ import annotations

import argparse
import dataclasses
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
