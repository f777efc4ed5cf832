"""`hamta-ivr db upgrade` (run the migrations) and `hamta-ivr db seed-demo` (the demo registry)."""

from __future__ import annotations

import argparse

from sqlalchemy import make_url

from ivr.cli.common import open_registry
from ivr.config import db_url
from ivr.registry.db import upgrade
from ivr.registry.demo import seed_demo


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="create/upgrade the registry database, seed demo data")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    up = db_sub.add_parser("upgrade", help="create or upgrade the registry tables (migrations)",
                           description="Run the Alembic migrations up to the latest revision. "
                           "Safe to run again: an up-to-date database is left as it is.")
    up.set_defaults(func=run_upgrade)

    seed = db_sub.add_parser("seed-demo", help="add the demo subscribers and devices",
                             description="Add the demo cast (numbers, PINs and activation codes "
                             "listed in docs/demo.md and ivr/registry/demo.py). Does nothing when "
                             "it is already there.")
    seed.set_defaults(func=run_seed)


def run_upgrade(args: argparse.Namespace) -> int:
    url = db_url(args.db)
    revision = upgrade(url)
    shown = make_url(url).render_as_string(hide_password=True)
    print(f"registry database {shown} is at revision {revision}")
    return 0


def run_seed(args: argparse.Namespace) -> int:
    with open_registry(args) as registry:
        added = seed_demo(registry)
    print("demo registry added (see docs/demo.md for its numbers, PINs and codes)" if added
          else "the demo registry is already there; nothing changed")
    return 0
