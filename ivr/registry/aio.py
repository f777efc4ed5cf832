"""The registry for asyncio code (the FastAGI server, the console caller, the call flows): the
IVR's questions as coroutines, each run in a bounded thread pool, never on the event loop.

Two pools, because they queue differently: questions that hash or verify a secret (tens of
milliseconds of CPU each) run in the hashing pool, sized to leave a core to the event loop and
bounding how many hashes (~19 MiB each) run at once; quick database work (the call log, the
inquiry, the door, ownership moves granted by a verified code) runs in its own pool, so a new
caller's welcome never waits behind someone else's sign-in. Measured by `hamta-ivr bench`: with
one shared pool, the first prompt waited 350 ms at 1,000 callers.

Each question is declared once below with `_offload(part, method, pool)`: its signature and
docstring are the sync method's, so nothing is copied by hand. That declaration also measures it
(ivr.metrics): its latency, queueing included, by question; the questions waiting for a thread,
by pool; and the call's total time waiting for the registry (the call-end log line).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy import text

from ivr import metrics
from ivr.registry.call_log import CallLog
from ivr.registry.devices import Devices
from ivr.registry.kartabl import Kartabl
from ivr.registry.reports import Reports
from ivr.registry.returns import Returns
from ivr.registry.service import Registry

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

DATABASE_WORKERS = 4  # quick queries; the engine's default pool holds 5 (+10 overflow)
HASHING, DATABASE = "hashing", "database"


def default_workers() -> int:
    """Hashing threads: one per CPU but one (the event loop's), at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class _offload(Generic[S, P, T]):  # lower case: read as a declaration, like a decorator
    """A sync registry method as a coroutine method of AsyncRegistry, run in `pool`."""

    def __init__(self, part: Callable[[Registry], S], method: Callable[Concatenate[S, P], T],
                 pool: str) -> None:
        self.part, self.method, self.pool = part, method, pool
        self.__doc__ = method.__doc__
        self.queue = metrics.REGISTRY_QUEUE.labels(pool)

    def __set_name__(self, owner: type, name: str) -> None:
        # labelled as the flows ask it (`call_started`, not `started`)
        self.seconds = metrics.REGISTRY_SECONDS.labels(name)

    def bound(self, registry: Registry) -> Callable[P, T]:
        """The sync method on `registry`'s part (looked up by name, so a wrapped part — the
        bench's timers — is what runs)."""
        bound: Callable[P, T] = getattr(self.part(registry), self.method.__name__)
        return bound

    def __get__(self, owner: AsyncRegistry, kind: Any = None) -> Callable[P, Awaitable[T]]:
        method, pool = self.bound(owner.registry), owner.pools[self.pool]
        seconds, queue, hashing = self.seconds, self.queue, self.pool == HASHING

        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            loop = asyncio.get_running_loop()
            queued = [True]  # popped once: by the thread that starts it, or here if it never does

            def dequeue() -> None:
                try:
                    queued.pop()
                except IndexError:
                    return
                queue.dec()

            def job() -> T:
                dequeue()
                return method(*args, **kwargs)

            queue.inc()
            started = time.perf_counter()
            try:
                return await loop.run_in_executor(pool, job)
            finally:
                dequeue()  # cancelled or refused before a thread took it
                took = time.perf_counter() - started
                seconds.observe(took)
                metrics.registry_waited(took, hashing)
        return run


def _kartabl(registry: Registry) -> Kartabl:
    return registry.kartabl


def _devices(registry: Registry) -> Devices:
    return registry.devices


def _reports(registry: Registry) -> Reports:
    return registry.reports


def _returns(registry: Registry) -> Returns:
    return registry.returns


def _call_log(registry: Registry) -> CallLog:
    return registry.call_log


class AsyncRegistry:
    """What the call flows ask the registry. `close()` when done (waits for running questions);
    also an async context manager."""

    def __init__(self, registry: Registry, workers: int | None = None) -> None:
        """`workers`: hashing threads (default_workers())."""
        self.registry = registry
        self.pools = {
            HASHING: ThreadPoolExecutor(max_workers=workers or default_workers(),
                                        thread_name_prefix="registry_hash"),
            DATABASE: ThreadPoolExecutor(max_workers=DATABASE_WORKERS,
                                         thread_name_prefix="registry_db"),
        }

    door = _offload(_kartabl, Kartabl.door, DATABASE)
    sign_in = _offload(_kartabl, Kartabl.sign_in, HASHING)
    inquire = _offload(_devices, Devices.inquire, DATABASE)
    for_buyer = _offload(_devices, Devices.for_buyer, DATABASE)
    check_code = _offload(_devices, Devices.check_code, HASHING)
    transfer = _offload(_devices, Devices.transfer, DATABASE)
    activate = _offload(_devices, Devices.activate, DATABASE)
    generate_code = _offload(_devices, Devices.generate_code, HASHING)
    change_code = _offload(_devices, Devices.change_code, HASHING)
    report = _offload(_reports, Reports.report, DATABASE)
    withdraw = _offload(_reports, Reports.withdraw, DATABASE)
    report_case = _offload(_reports, Reports.case_of, DATABASE)
    returnable = _offload(_returns, Returns.returnable, DATABASE)
    start_return = _offload(_returns, Returns.start, DATABASE)
    returns_waiting = _offload(_returns, Returns.waiting, DATABASE)
    confirm_return = _offload(_returns, Returns.confirm, DATABASE)
    call_started = _offload(_call_log, CallLog.started, DATABASE)
    call_ended = _offload(_call_log, CallLog.ended, DATABASE)

    async def ping(self) -> None:
        """A trivial read (SELECT 1) in the database pool, for readiness; raises when the
        registry cannot answer."""
        await asyncio.get_running_loop().run_in_executor(self.pools[DATABASE], self._ping)

    def _ping(self) -> None:
        with self.registry.store.reading() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
