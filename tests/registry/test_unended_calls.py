"""Calls cut by a database outage do not stay "in progress" forever (issue 17): the server
remembers the calls whose end it could not write and closes them as `interrupted` once the
database takes writes again (at its next call, its next readiness probe, or on its timer), with
the code that closes a crashed server's calls at its start (CallLog.close_stale)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from ivr.registry.aio import AsyncRegistry
from ivr.registry.call_log import INTERRUPTED
from ivr.registry.service import Registry

T = TypeVar("T")
AT = datetime(2026, 3, 21, 9, 0, tzinfo=UTC)


class Outage:
    """Every write transaction of `registry` fails (as a lost database does) while `down`."""

    def __init__(self, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = False
        self.real = registry.store.write
        monkeypatch.setattr(registry.store, "write", self.write)

    def write(self, work: Callable[[Connection], T]) -> T:
        if self.down:
            raise OperationalError("UPDATE calls …", None,
                                   sqlite3.OperationalError("disk I/O error"))
        return self.real(work)


def states(registry: Registry) -> dict[str, tuple[str | None, datetime | None]]:
    return {row.call_id: (row.outcome, row.ended) for row in registry.call_log.calls()}


async def start(desk: AsyncRegistry, call_id: str, at: datetime = AT) -> None:
    await desk.call_started(call_id, "09121111111", "fastagi", at, "127.0.0.1:4573")


async def test_closed_at_the_next_call_once_the_database_is_back(
        sqlite_registry_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = sqlite_registry_factory()
    outage = Outage(registry, monkeypatch)
    async with AsyncRegistry(registry) as desk:
        await start(desk, "cut")
        await start(desk, "running")  # still on the line: must stay in progress
        outage.down = True
        cut_at = AT + timedelta(minutes=2)
        with pytest.raises(OperationalError):
            await desk.call_ended("cut", ["inquiry:registered"], "inquiry:registered", cut_at)
        with pytest.raises(OperationalError):  # still down: nothing is lost
            await start(desk, "refused")
        assert states(registry)["cut"] == (None, None)
        outage.down = False
        await start(desk, "next")
    after = states(registry)
    assert after["cut"] == (INTERRUPTED, cut_at)  # ended when its end was tried
    assert after["running"] == (None, None) and after["next"] == (None, None)
    assert desk.unended == {}


async def test_closed_by_the_readiness_probe_or_the_timer(
        sqlite_registry_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = sqlite_registry_factory()
    outage = Outage(registry, monkeypatch)
    async with AsyncRegistry(registry) as desk:
        for call_id in ("a", "b"):
            await start(desk, call_id)
        outage.down = True
        for call_id in ("a", "b"):
            with pytest.raises(OperationalError):
                await desk.call_ended(call_id, [], "hung_up", AT)
        with pytest.raises(Exception):  # noqa: B017 - the probe: not ready while down
            await desk.ping()
        outage.down = False
        await desk.ping()  # the probe's write succeeds: the remembered calls are closed
        assert {k: v[0] for k, v in states(registry).items()} == {"a": INTERRUPTED,
                                                                  "b": INTERRUPTED}
        # the timer, for a server nobody probes and nobody calls
        await start(desk, "c")
        outage.down = True
        with pytest.raises(OperationalError):
            await desk.call_ended("c", [], "hung_up", AT)
        outage.down = False
        timer = asyncio.create_task(desk.keep_closing_unended(interval=0.01))
        try:
            for _ in range(200):
                if not desk.unended:
                    break
                await asyncio.sleep(0.01)
        finally:
            timer.cancel()
    assert states(registry)["c"][0] == INTERRUPTED


async def test_a_call_ended_meanwhile_is_left_alone(
        sqlite_registry_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An end that did get written (a retry by someone else) is not overwritten."""
    registry = sqlite_registry_factory()
    outage = Outage(registry, monkeypatch)
    async with AsyncRegistry(registry) as desk:
        await start(desk, "x")
        outage.down = True
        with pytest.raises(OperationalError):
            await desk.call_ended("x", ["transfer:completed"], "transfer:completed", AT)
        outage.down = False
        registry.call_log.ended("x", ["transfer:completed"], "transfer:completed", AT)
        assert await desk.close_unended() == 0
    assert states(registry)["x"] == ("transfer:completed", AT)
