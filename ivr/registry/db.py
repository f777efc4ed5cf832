"""Engines and migrations: one code path for SQLite (embedded default) and PostgreSQL.

SQLite: pysqlite defers BEGIN until the first write, so two transactions can both read a row,
then both write: a read-then-write race. Following the SQLAlchemy recipe, the driver's own
transaction handling is switched off and the `begin` event emits `BEGIN IMMEDIATE` for write
transactions (the write lock is taken at BEGIN; others wait up to the busy timeout) and a plain
`BEGIN` for reads. WAL mode lets readers run beside the one writer.

PostgreSQL: READ COMMITTED with `SELECT … FOR UPDATE` row locks in write transactions; the guarded
`UPDATE … WHERE version = :seen` re-checks the row after a lock wait.

`upgrade(url)` runs the Alembic migrations programmatically, found via HAMTA_MIGRATIONS_DIR or,
by default, `db/migrations` next to the `ivr` package (the project is installed editable).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL

from ivr.registry.errors import SchemaNotReady

# Alembic announces every plugin it loads at INFO; the CLI logs INFO by default.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

SQLITE_BUSY_TIMEOUT_S = 30
WRITE = {"hamta_write": True}  # execution option: this transaction will write


def normalize_url(url: str) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3 here (psycopg2 is not a dependency)."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str, **kwargs: Any) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "the registry needs a SQLite file (sqlite:////path/registry.db): an in-memory "
                "database is private to one connection"
            )
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            **kwargs,
        )
        _sqlite_events(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get("hamta_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def migrations_dir() -> Path:
    explicit = os.environ.get("HAMTA_MIGRATIONS_DIR")
    if explicit:
        return Path(explicit)
    import ivr.migrations  # db/migrations, mapped into the package by pyproject.toml

    return Path(ivr.migrations.__file__).resolve().parent


def _alembic_config(engine_url: str) -> Any:
    from alembic.config import Config

    where = migrations_dir()
    if not (where / "env.py").exists():
        raise SchemaNotReady(
            f"the registry migrations are not at {where}; set HAMTA_MIGRATIONS_DIR to the "
            "db/migrations folder of the hamta-ivr source"
        )
    config = Config()
    config.set_main_option("script_location", str(where))
    config.set_main_option("sqlalchemy.url", engine_url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database at `url` up to `revision`; the revision it is at afterwards."""
    from alembic import command

    return _migrate(url, revision, command.upgrade)


def downgrade(url: str, revision: str) -> str:
    """Take the database at `url` back to `revision` (rolling a release back)."""
    from alembic import command

    return _migrate(url, revision, command.downgrade)


def _migrate(url: str, revision: str, step: Any) -> str:
    engine = make_engine(url)
    try:
        config = _alembic_config(url)
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":  # batch migrations copy tables that rows refer to
                raw = connection.connection.driver_connection
                assert raw is not None
                raw.execute("PRAGMA foreign_keys=OFF")
            config.attributes["connection"] = connection
            step(config, revision)
        return current_revision(engine) or ""
    finally:
        engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    try:
        config = _alembic_config("sqlite://")
    except SchemaNotReady:
        return None
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def check_schema(engine: Engine) -> None:
    """Raise SchemaNotReady (one line naming the fix) unless the database is at the head."""
    current = current_revision(engine)
    head = head_revision()
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaNotReady(
            f"the registry database {where} has no tables yet; run `hamta-ivr db upgrade`"
        )
    if head is not None and current != head:
        raise SchemaNotReady(
            f"the registry database {where} is at revision {current}, this program needs "
            f"{head}; run `hamta-ivr db upgrade`"
        )
