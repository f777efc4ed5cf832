"""AsyncRegistry.for_call: a call's desk asks every question that takes an origin as that call,
so no flow passes one (and none can forget it); the server's desk keeps the health."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from ivr.registry.aio import DATABASE, AsyncRegistry, _offload
from ivr.registry.types import ADMIN, Origin

CALL = Origin("+989121234567", "call-1", vouched=True)


def _who(part, number: str, origin: Origin = ADMIN) -> Origin:
    return origin


def _no_origin(part, number: str) -> str:
    return number


def _down(part, number: str, origin: Origin = ADMIN) -> None:
    raise OperationalError("SELECT 1", {}, Exception("the database is down"))


class Desk(AsyncRegistry):
    who = _offload(lambda registry: registry, _who, DATABASE)
    plain = _offload(lambda registry: registry, _no_origin, DATABASE)
    down = _offload(lambda registry: registry, _down, DATABASE)


async def test_a_call_desk_asks_as_the_call_and_the_server_desk_as_before(registry):
    async with Desk(registry) as desk:
        call_desk = desk.for_call(CALL)
        assert await call_desk.who("09121234567") == CALL
        assert await desk.who("09121234567") == ADMIN  # the server's own desk is unchanged
        assert await call_desk.plain("0912") == "0912"  # a question without an origin as is
        other = Origin("+989350000000", "call-2")
        assert await call_desk.who("0912", origin=other) == other  # said outright, it wins


async def test_a_database_failure_on_a_call_desk_reaches_the_server_desk(registry):
    async with Desk(registry) as desk:
        call_desk = desk.for_call(CALL)
        with pytest.raises(OperationalError):
            await call_desk.down("0912")
        assert desk.write_failure is not None  # /readyz sees it
        assert call_desk.pools is desk.pools  # one set of threads
