"""/readyz says "not ready" while the registry cannot write (issue 17): on a full disk every call
failed while the trivial read of the probe still answered, so Asterisk never failed over.

The full disk is SQLite's own: `PRAGMA max_page_count` at the database's size, and its free room
filled, makes a real "database or disk is full" (as root too, where a read-only file would not)."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from ivr.registry.aio import AsyncRegistry
from ivr.registry.db import sqlite_path
from ivr.registry.service import Registry


class FullDisk:
    """Caps the registry's SQLite file at its size for every new connection, once `fill()`ed."""

    def __init__(self, registry: Registry) -> None:
        self.engine = registry.store.engine
        path = sqlite_path(self.engine.url)
        assert path is not None
        self.path: Path = path
        self.pages = 0
        event.listen(self.engine, "connect", self._cap)

    def _cap(self, dbapi_connection: Any, _record: Any) -> None:
        if self.pages:
            dbapi_connection.execute(f"PRAGMA max_page_count={self.pages}")

    def fill(self) -> None:
        """No page more, and no room left in the free pages nor in registry_meta's."""
        raw = sqlite3.connect(self.path, isolation_level=None)
        try:
            self.pages = raw.execute("PRAGMA page_count").fetchone()[0]
            raw.execute(f"PRAGMA max_page_count={self.pages}")
            for size in (255, 16, 1):
                for index in range(100_000):
                    try:
                        raw.execute("INSERT INTO registry_meta (key, value) VALUES (?, ?)",
                                    (f"fill-{size}-{index}", "x" * size))
                    except sqlite3.OperationalError as exc:
                        assert "full" in str(exc)
                        break
        finally:
            raw.close()
        self.engine.dispose()  # the pooled connections: capped from now on

    def free(self) -> None:
        self.pages = 0
        self.engine.dispose()


async def fill_calls(desk: AsyncRegistry) -> OperationalError:
    """Calls start until the database takes no more: the error the next caller gets."""
    for index in range(100_000):
        try:
            await desk.call_started(f"fill-{index}", None, "fastagi", datetime.now(UTC), "s")
        except OperationalError as exc:
            return exc
    raise AssertionError("the database never filled")


async def test_readyz_is_503_while_the_registry_cannot_write(demo_server: Any) -> None:
    async with demo_server() as s:
        desk = AsyncRegistry(s.registry)
        disk = FullDisk(s.registry)
        try:
            assert await s.server.readiness(desk.ping) is None
            disk.fill()
            failed = await fill_calls(desk)
            assert "database or disk is full" in str(failed.orig)
            # the trivial read still answers; readiness must not
            reason = await s.server.readiness(desk.ping)
            assert reason is not None and "cannot write" in reason, reason
            assert "database or disk is full" in reason
            assert await s.server.readiness(desk.ping) == reason  # and stays so
            disk.free()
            assert await s.server.readiness(desk.ping) is None
            await desk.call_started("after", None, "fastagi", datetime.now(UTC), "s")
        finally:
            desk.close()


async def test_a_healthy_probe_writes_nothing(sqlite_registry_factory: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """While no registry question has failed, a probe is the trivial read alone."""
    registry = sqlite_registry_factory()
    writes: list[object] = []
    real = registry.store.write

    def counted(work: Any) -> Any:
        writes.append(work)
        return real(work)

    monkeypatch.setattr(registry.store, "write", counted)
    async with AsyncRegistry(registry) as desk:
        started = time.perf_counter()
        for _ in range(50):
            await desk.ping()
        took = (time.perf_counter() - started) / 50
    assert writes == []
    assert took < 0.05, took
