"""AsyncRegistry: the IVR's questions as coroutines, run in bounded thread pools, never on the
event loop's thread, each with the signature of the registry method it runs."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from datetime import datetime

import pytest

from ivr.registry.aio import AsyncRegistry, _offload
from ivr.registry.call_log import CallLog
from ivr.registry.devices import Devices
from ivr.registry.kartabl import Kartabl
from ivr.registry.reports import Reports
from ivr.registry.returns import Returns
from ivr.registry.sim_codes import SimCodes
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
    watcher = WatchingHasher(registry.store.hasher)
    registry.store.hasher = watcher
    loop_thread = threading.get_ident()
    async with AsyncRegistry(registry, workers=2) as aregistry:
        checks = await asyncio.gather(*[aregistry.sign_in(SELLER, SELLER_PIN)
                                        for _ in range(6)])
        assert all(c.status is PasswordStatus.OK for c in checks)
        assert watcher.most == 2
        assert loop_thread not in watcher.threads
        check = await aregistry.check_code(PHONE, CODE, owner=checks[0].owner)
        assert check.ok and check.grant is not None


async def test_each_question_has_the_signature_of_the_registry_method_it_runs(registry):
    parts = {"kartabl": Kartabl, "devices": Devices, "call_log": CallLog, "reports": Reports,
             "returns": Returns, "sim_codes": SimCodes}
    async with AsyncRegistry(registry, workers=1) as aregistry:
        for name, declared in vars(AsyncRegistry).items():
            if not isinstance(declared, _offload):
                continue
            part = next(p for p, cls in parts.items() if declared.method.__qualname__
                        .startswith(cls.__name__ + "."))
            method = getattr(getattr(registry, part), declared.method.__name__)
            question = getattr(aregistry, name)
            assert inspect.iscoroutinefunction(question), name
            assert declared.__doc__ == method.__doc__, name
            assert inspect.signature(declared.method).parameters.keys() - {"self"} \
                == inspect.signature(method).parameters.keys(), name


async def test_an_error_in_the_registry_reaches_the_caller(registry):
    populate(registry)
    registry.store.clock = lambda: datetime(2026, 1, 1)  # naive: refused
    async with AsyncRegistry(registry, workers=1) as aregistry:
        with pytest.raises(ValueError, match="aware UTC"):
            await aregistry.door(SELLER)
