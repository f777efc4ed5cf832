"""Fixtures every test folder may use.

`sqlite_registry_factory()` gives a fresh registry on its own migrated SQLite file (a copy of one
template migrated once per session), with the test pepper and cheap argon2 costs (tests that are
about hashing pass `hash_params=OWASP_MINIMUM`).

The machine's /etc/hamta-ivr/config.toml (left by `./setup.sh install`) is never read by a
test, nor by the commands tests start: HAMTA_CONFIG is emptied for the whole run (tests of the
config file set it themselves).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.registry.support import SqliteFactory, migrated_sqlite

os.environ["HAMTA_CONFIG"] = ""


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory):
    return migrated_sqlite(tmp_path_factory.mktemp("template") / "registry.db")


@pytest.fixture
def sqlite_registry_factory(sqlite_template, tmp_path) -> Iterator[SqliteFactory]:
    factory = SqliteFactory(sqlite_template, tmp_path)
    yield factory
    factory.close()
