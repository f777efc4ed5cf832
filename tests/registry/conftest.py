"""Engines for the registry tests: every test taking `db_url`/`registry` runs on a real SQLite
file AND on a real PostgreSQL server.

PostgreSQL comes from HAMTA_TEST_PG_URL, else this starts db/pg-test-server.sh itself (installing
PostgreSQL when root and it is missing), so `pytest` alone works. Each test session works in its
own freshly created database (several runs at once do not meet), emptied before each test.
When PostgreSQL cannot be reached the postgres tests FAIL under CI (CI=true) and are skipped
with the reason elsewhere.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from ivr.registry.db import make_engine, upgrade
from ivr.registry.hashing import TEST_ONLY_FAST, HashParams
from ivr.registry.service import Registry
from ivr.registry.tables import metadata
from tests.registry.support import TEST_PEPPER, FakeClock

ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = ROOT / "db" / "pg-test-server.sh"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _start_server() -> str:
    done = subprocess.run(["bash", str(PG_SCRIPT), "start"], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"db/pg-test-server.sh start failed: {done.stderr.strip()[-800:]}")
    found = re.search(r"HAMTA_TEST_PG_URL=(\S+?);", done.stdout)
    if not found:
        raise RuntimeError(f"db/pg-test-server.sh printed no URL: {done.stdout!r}")
    return found.group(1)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server's URL (its test database); fails in CI, skips elsewhere."""
    try:
        url = os.environ.get("HAMTA_TEST_PG_URL") or _start_server()
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return url
    except Exception as exc:
        reason = f"PostgreSQL not reachable ({str(exc).splitlines()[0][:300]})"
        if in_ci():
            pytest.fail(f"{reason}; CI=true: the postgres tests must run", pytrace=False)
        pytest.skip(reason)


SESSION_DB = re.compile(r"^hamta_t_(\d+)_[0-9a-f]+$")


def _drop_leftovers(admin) -> None:
    """Drop databases of earlier sessions whose process is gone (killed runs leave them)."""
    with admin.connect() as conn:
        names = conn.execute(text("SELECT datname FROM pg_database")).scalars().all()
        for name in names:
            found = SESSION_DB.match(name)
            if not found:
                continue
            try:
                os.kill(int(found.group(1)), 0)
            except ProcessLookupError:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except PermissionError:
                pass


@pytest.fixture(scope="session")
def pg_session_url(pg_server_url: str) -> Iterator[str]:
    """A database of this session's own, migrated, dropped at the end; when the account may not
    create databases, the given database itself (migrated, emptied before each test)."""
    base = make_url(pg_server_url).set(drivername="postgresql+psycopg")
    name = f"hamta_t_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        _drop_leftovers(admin)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:  # no CREATEDB privilege: share the given database
        admin.dispose()
        url = base.render_as_string(hide_password=False)
        upgrade(url)
        yield url
        return
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


TABLES = ", ".join(t.name for t in metadata.sorted_tables)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_registry_factory) -> str:
    """An empty, migrated registry database: a SQLite file, or this session's PostgreSQL one."""
    if request.param == "sqlite":
        return sqlite_registry_factory.url()
    url = request.getfixturevalue("pg_session_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry_factory(db_url: str, clock: FakeClock) -> Iterator[Callable[..., Registry]]:
    """More registries on the same database (as separate IVR processes would have)."""
    made: list[Registry] = []

    def make(*, hash_params: HashParams = TEST_ONLY_FAST, use_clock: bool = True) -> Registry:
        registry = Registry.open(db_url, pepper=TEST_PEPPER, hash_params=hash_params,
                                 clock=clock if use_clock else None)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def registry(registry_factory: Callable[..., Registry]) -> Registry:
    """An empty registry on the FakeClock `clock`, with cheap hashing."""
    return registry_factory()
