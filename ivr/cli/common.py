"""What several command groups share: opening the registry named by --db / HAMTA_DB_URL."""

from __future__ import annotations

import argparse

from ivr.config import db_url
from ivr.registry.service import Registry


def open_registry(args: argparse.Namespace) -> Registry:
    return Registry.open(db_url(getattr(args, "db", None)))
