"""Test helpers shared by tests/conftest.py and the registry tests: a migrated SQLite template
copied per test, the test pepper, and the cheap hash costs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.registry.db import upgrade
from ivr.registry.hashing import TEST_ONLY_FAST, HashParams
from ivr.registry.service import Registry

TEST_PEPPER = bytes.fromhex("5e" * 32)


class FakeClock:
    """An injectable clock: stands still until advanced."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def migrated_sqlite(path: Path) -> Path:
    upgrade(f"sqlite:///{path}")
    return path


class SqliteFactory:
    """Fresh registries on copies of one migrated SQLite file; closes them at teardown."""

    def __init__(self, template: Path, where: Path) -> None:
        self.template, self.where = template, where
        self.made: list[Registry] = []

    def url(self) -> str:
        path = self.where / f"registry-{len(self.made)}-{id(self)}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def __call__(self, *, hash_params: HashParams = TEST_ONLY_FAST,
                 clock: Callable[[], datetime] | None = None) -> Registry:
        registry = Registry.open(self.url(), pepper=TEST_PEPPER, hash_params=hash_params,
                                 clock=clock)
        self.made.append(registry)
        return registry

    def close(self) -> None:
        for registry in self.made:
            registry.close()
