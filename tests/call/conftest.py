"""A FastAGI server on a demo registry of its own, in-process, for the fake Asterisk to call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ivr.app import Ivr
from ivr.call.fastagi import FastAgiServer, ServerSettings
from ivr.registry import demo
from ivr.registry.service import Registry
from ivr.testing.fake_asterisk import FakeAsterisk


@dataclass
class DemoServer:
    registry: Registry
    server: FastAgiServer
    asterisk: FakeAsterisk

    def outcomes(self) -> list[str]:
        """The call log's outcomes, oldest first."""
        return [row.outcome or "" for row in reversed(self.registry.call_log.calls())]


ServerFactory = Callable[..., AbstractAsyncContextManager[DemoServer]]


@pytest.fixture
def demo_server(sqlite_registry_factory: Any, tmp_path: Path) -> ServerFactory:
    """`async with demo_server(max_calls=2, command_timeout=0.5) as s:` a started server."""

    @asynccontextmanager
    async def start(**settings: Any) -> AsyncIterator[DemoServer]:
        registry = sqlite_registry_factory()
        demo.seed_demo(registry)
        ivr = Ivr(registry, server="127.0.0.1:0")
        settings.setdefault("sounds", tmp_path / "sounds")
        settings.setdefault("spool", tmp_path / "spool")
        server = FastAgiServer(ServerSettings(port=0, **settings), ivr.handle)
        await server.start()
        try:
            yield DemoServer(registry, server, FakeAsterisk("127.0.0.1", server.port))
        finally:
            await server.stop()
            ivr.desk.close()

    return start
