"""Alembic environment for the registry.

Run through `hamta-ivr db upgrade` (ivr.registry.db.upgrade), which hands over a connection from
the registry's own engine (SQLite pragmas, BEGIN IMMEDIATE). With the `alembic` command instead,
use db/alembic.ini; the URL comes from `-x url=…`, else HAMTA_DB_URL, else the default SQLite file.
"""

from __future__ import annotations

from alembic import context

from ivr.registry.tables import metadata

config = context.config
target_metadata = metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER goes via a copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection.execution_options(hamta_write=True))
        return
    from ivr.config import db_url
    from ivr.registry.db import make_engine

    url = context.get_x_argument(as_dictionary=True).get("url") or db_url()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_with(connection.execution_options(hamta_write=True))
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `hamta-ivr db upgrade`")
run_migrations_online()
