"""AsyncRegistry: the same operations as coroutines, run in a bounded thread pool, never on the
event loop's thread."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

from ivr.registry.aio import AsyncRegistry
from ivr.registry.errors import NotFound
from ivr.registry.types import PasswordStatus

from .cast import CODE, PHONE, SELLER, SELLER_PIN, populate


class WatchingHasher:
    """Records on which thread secrets are verified, and how many at once."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.threads: set[int] = set()
        self.running = self.most = 0
        self._lock = threading.Lock()

    def verify(self, *args, **kwargs):
        with self._lock:
            self.threads.add(threading.get_ident())
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        try:
            return self.inner.verify(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name):
        return getattr(self.inner, name)


async def test_every_call_runs_off_the_event_loop_and_the_pool_is_bounded(registry):
    populate(registry)
    watcher = WatchingHasher(registry.hasher)
    registry.hasher = watcher
    loop_thread = threading.get_ident()
    async with AsyncRegistry(registry, workers=2) as aregistry:
        checks = await asyncio.gather(*[aregistry.check_password(SELLER, SELLER_PIN)
                                        for _ in range(6)])
        assert all(c.status is PasswordStatus.OK for c in checks)
        assert watcher.most == 2
        assert loop_thread not in watcher.threads
        outcome = await aregistry.check_activation_code(PHONE, CODE, owner=SELLER)
        assert outcome.ok


async def test_the_async_methods_mirror_the_registry(registry):
    from ivr.registry.service import Registry

    public = {n for n in vars(Registry) if not n.startswith("_")} - {"open", "close"}
    missing = {n for n in public
               if not inspect.iscoroutinefunction(getattr(AsyncRegistry, n, None))}
    assert not missing


async def test_an_error_in_the_registry_reaches_the_caller(registry):
    async with AsyncRegistry(registry, workers=1) as aregistry:
        with pytest.raises(NotFound, match="not a subscriber"):
            await aregistry.set_password(SELLER, "1234")
