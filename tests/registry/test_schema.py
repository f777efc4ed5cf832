"""Migrations, models and engines agree; a database that was never migrated says what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ivr.config import ConfigError
from ivr.registry.db import (
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    normalize_url,
    upgrade,
)
from ivr.registry.errors import SchemaNotReady
from ivr.registry.service import Registry
from ivr.registry.tables import metadata

from .support import TEST_PEPPER

HEAD = "0005"


def test_the_migrations_build_exactly_the_models(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
        assert current_revision(engine) == head_revision() == HEAD
    finally:
        engine.dispose()


def test_upgrade_again_changes_nothing(db_url):
    assert upgrade(db_url) == HEAD


def test_0002_keeps_the_rows_of_a_0001_registry_and_counts_from_zero(db_url):
    """A registry in production at 0001 (with subscribers and devices) upgrades in place."""
    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        registry.portal.add_subscriber("09121111111", password="1234")
        registry.portal.add_device("350000000000014", owner="09121111111", brand="S",
                                   model="A", activation_code="12345678")
    finally:
        registry.close()
    assert downgrade(db_url, "0001") == "0001"
    assert upgrade(db_url) == HEAD
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT others_failed_attempts, others_lock_level, others_locked_until "
                "FROM subscribers").one()
            assert tuple(row) == (0, 0, None)
            row = conn.exec_driver_sql(
                "SELECT buyer_failed_attempts, code_hash IS NOT NULL FROM devices").one()
            assert tuple(row) == (0, True)
    finally:
        engine.dispose()


def test_an_unmigrated_database_names_the_fix(tmp_path):
    with pytest.raises(SchemaNotReady, match="hamta-ivr db upgrade"):
        Registry.open(f"sqlite:///{tmp_path / 'empty.db'}", pepper=TEST_PEPPER)


def test_upgrade_from_any_directory_and_with_an_explicit_migrations_dir(tmp_path, monkeypatch):
    from ivr.registry import db

    monkeypatch.chdir(tmp_path)
    assert upgrade(f"sqlite:///{tmp_path / 'a.db'}") == HEAD
    monkeypatch.setenv("HAMTA_MIGRATIONS_DIR", str(db.migrations_dir()))
    assert upgrade(f"sqlite:///{tmp_path / 'b.db'}") == HEAD
    monkeypatch.setenv("HAMTA_MIGRATIONS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SchemaNotReady, match="HAMTA_MIGRATIONS_DIR"):
        upgrade(f"sqlite:///{tmp_path / 'c.db'}")


def test_times_come_back_aware_utc(registry, clock):
    clock.now = datetime(2026, 3, 21, 12, 30, tzinfo=timezone(timedelta(hours=3, minutes=30)))
    registry.portal.add_subscriber("09121111111")
    created = registry.portal.subscriber_info("09121111111").created_at
    assert created == datetime(2026, 3, 21, 9, 0, tzinfo=UTC)
    assert created.utcoffset() == timedelta(0)


def test_urls():
    assert normalize_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:////tmp/x.db").drivername == "sqlite"
    for in_memory in ("sqlite://", "sqlite:///:memory:",
                      "sqlite:///file::memory:?uri=true", "sqlite:///file:x?mode=memory&uri=true"):
        with pytest.raises(ConfigError, match=r"HAMTA_DB_URL/--db.*SQLite file"):
            make_engine(in_memory)


def test_sqlite_pragmas_and_immediate_writes(sqlite_registry_factory):
    registry = sqlite_registry_factory()
    with registry.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    # a write transaction holds the write lock from BEGIN: a second writer cannot start
    import sqlite3

    path = registry.store.engine.url.database
    def second_writer(_conn: object) -> None:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()

    registry.store.write(second_writer)
