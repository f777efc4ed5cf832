"""The registry for asyncio code (the FastAGI server, the console caller, the call flows): the
IVR's questions as coroutines, each run in a bounded thread pool, never on the event loop.

Two pools, because they queue differently: questions that hash or verify a secret (tens of
milliseconds of CPU each) run in the hashing pool, sized to leave a core to the event loop and
bounding how many hashes (~19 MiB each) run at once; quick database work (the call log, the
inquiry, the door, ownership moves granted by a verified code) runs in its own pool, so a new
caller's welcome never waits behind someone else's sign-in. Measured by `hamta-ivr bench`: with
one shared pool, the first prompt waited 350 ms at 1,000 callers. A third pool sends SMS codes
(ivr.registry.sim_codes): an HTTP request to Kannel that may take seconds must hold up neither.

Each question is declared once below with `_offload(part, method, pool)`: its signature and
docstring are the sync method's, so nothing is copied by hand, and the declared method is what
runs. That declaration also tells the observers attached to ivr.registry.observe (the Prometheus
metrics, the bench's timers) about each question: when it waits for a thread, and how long it
took, waited, ran and spent on CPU. This module imports neither of them.

Two things the server needs when the database fails (issue 17) are kept here, where every
question passes: whether the registry can write (for /readyz: `ping`), and the calls whose end
could not be written (closed as `interrupted` once the database is back: `close_unended`).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ivr.registry import meta, observe
from ivr.registry.call_log import CallLog
from ivr.registry.devices import Devices
from ivr.registry.kartabl import Kartabl
from ivr.registry.reports import Reports
from ivr.registry.returns import Returns
from ivr.registry.service import Registry
from ivr.registry.sim_codes import SimCodes
from ivr.registry.types import Origin

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

log = logging.getLogger(__name__)

DATABASE_WORKERS = 4  # quick queries; the engine's default pool holds 5 (+10 overflow)
SMS_WORKERS = 4  # SMS codes on their way to Kannel: a slow gateway never holds up a PIN check
HASHING, DATABASE, SMS = "hashing", "database", "sms"
UNENDED_MAX = 10_000  # calls whose end could not be written, remembered at most (the oldest go)
UNENDED_RETRY_SECONDS = 30.0  # `keep_closing_unended`'s timer


class NotReady(Exception):
    """Raised by a readiness check (`AsyncRegistry.ping`): its text is the reason /readyz gives
    (ivr.metrics re-exports it for the endpoint)."""


def default_workers() -> int:
    """Hashing threads: one per CPU but one (the event loop's), at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class _offload(Generic[S, P, T]):  # lower case: read as a declaration, like a decorator
    """A sync registry method as a coroutine method of AsyncRegistry, run in `pool`."""

    def __init__(self, part: Callable[[Registry], S], method: Callable[Concatenate[S, P], T],
                 pool: str, *, failed: Callable[..., None] | None = None,
                 then: Callable[[AsyncRegistry], Awaitable[object]] | None = None) -> None:
        """`failed(desk, *args, **kwargs)`: called with the question's arguments when it raises;
        `then(desk)`: awaited after it answered."""
        self.part, self.method, self.pool = part, method, pool
        self.failed, self.then = failed, then
        self.__doc__ = method.__doc__
        self.name = method.__name__
        self.takes_origin = "origin" in inspect.signature(method).parameters

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name  # as the flows ask it (`call_started`, not `started`)

    def __get__(self, owner: AsyncRegistry, kind: Any = None) -> Callable[P, Awaitable[T]]:
        method, part = self.method, self.part(owner.registry)
        name, pool_name, pool = self.name, self.pool, owner.pools[self.pool]
        failed, then, desk = self.failed, self.then, owner.root
        origin = owner.origin if self.takes_origin else None

        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            if origin is not None:  # a call's desk (for_call): asked as that call
                kwargs.setdefault("origin", origin)
            loop = asyncio.get_running_loop()
            watching = observe.observers()  # once: every +1 they see gets its -1
            queued = [True]  # popped once: by the thread that starts it, or here if it never does
            thread = [0.0, 0.0, 0.0]  # when its thread took it, wall and CPU there

            def dequeue() -> None:
                try:
                    queued.pop()
                except IndexError:
                    return
                for observer in watching:
                    observer.waiting(pool_name, -1)

            def job() -> T:
                dequeue()
                began, cpu = time.perf_counter(), time.thread_time()
                thread[0] = began
                try:
                    return method(part, *args, **kwargs)
                finally:
                    thread[1:] = time.perf_counter() - began, time.thread_time() - cpu

            for observer in watching:
                observer.waiting(pool_name, 1)
            started, ok = time.perf_counter(), False
            try:
                answer = await loop.run_in_executor(pool, job)
                ok = True
            except Exception as exc:
                desk.database_failed(exc)
                if failed is not None:
                    failed(desk, *args, **kwargs)
                raise
            finally:
                dequeue()  # cancelled or refused before a thread took it
                if watching:
                    took = time.perf_counter() - started
                    waited = thread[0] - started if thread[0] else took
                    asked = observe.Asked(name, pool_name, took, waited, thread[1], thread[2],
                                          ok)
                    for observer in watching:
                        observer.question(asked)
            if then is not None:
                await then(desk)
            return answer
        return run


def _kartabl(registry: Registry) -> Kartabl:
    return registry.kartabl


def _devices(registry: Registry) -> Devices:
    return registry.devices


def _reports(registry: Registry) -> Reports:
    return registry.reports


def _returns(registry: Registry) -> Returns:
    return registry.returns


def _sim_codes(registry: Registry) -> SimCodes:
    return registry.sim_codes


def _call_log(registry: Registry) -> CallLog:
    return registry.call_log


def _end_not_written(desk: AsyncRegistry, call_id: str, path: list[str], outcome: str,
                     at: datetime) -> None:
    """`call_ended` failed (CallLog.ended's arguments): the call stays "in progress" in the call
    log until `close_unended` closes it."""
    desk.remember_unended(call_id, at)


async def _close_unended_if_any(desk: AsyncRegistry) -> None:
    """After a call's start was written: the database takes writes again."""
    if desk.unended:
        await desk.close_unended()


def questions() -> dict[str, str]:
    """Every question the flows can ask, by name, and its pool, in declaration order (the
    metrics make a series of each before the first is asked)."""
    return {name: declared.pool for name, declared in vars(AsyncRegistry).items()
            if isinstance(declared, _offload)}


class AsyncRegistry:
    """What the call flows ask the registry. `close()` when done (waits for running questions);
    also an async context manager."""

    def __init__(self, registry: Registry, workers: int | None = None) -> None:
        """`workers`: hashing threads (default_workers())."""
        self.registry = registry
        self.root = self  # the server's desk, which keeps the health below (for_call's copies)
        self.origin: Origin | None = None  # who asks, on a call's desk (for_call)
        # the last registry question failed on the database (its reason) and no write has
        # succeeded since: `ping` then writes to tell whether the registry takes writes again
        self.write_failure: str | None = None
        self.unended: dict[str, datetime] = {}  # call id -> when its end could not be written
        self._heartbeat: asyncio.Future[None] | None = None
        self.pools: dict[str, Executor] = {
            HASHING: ThreadPoolExecutor(max_workers=workers or default_workers(),
                                        thread_name_prefix="registry_hash"),
            DATABASE: ThreadPoolExecutor(max_workers=DATABASE_WORKERS,
                                         thread_name_prefix="registry_db"),
            SMS: ThreadPoolExecutor(max_workers=SMS_WORKERS, thread_name_prefix="registry_sms"),
        }

    def for_call(self, origin: Origin) -> AsyncRegistry:
        """The registry as one call asks it: every question that takes an origin is asked with
        the call's (whose line, vouched for or not, which call: the lockouts, throttles and the
        audit count by it), so a flow never passes it. Same pools and health as this desk."""
        desk = copy.copy(self)
        desk.origin = origin
        return desk

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
    return_arrivals = _offload(_returns, Returns.arrivals, DATABASE)
    start_return = _offload(_returns, Returns.start, DATABASE)
    returns_waiting = _offload(_returns, Returns.waiting, DATABASE)
    confirm_return = _offload(_returns, Returns.confirm, DATABASE)
    send_sim_code = _offload(_sim_codes, SimCodes.send, SMS)
    check_sim_code = _offload(_sim_codes, SimCodes.check, HASHING)
    call_started = _offload(_call_log, CallLog.started, DATABASE, then=_close_unended_if_any)
    call_ended = _offload(_call_log, CallLog.ended, DATABASE, failed=_end_not_written)

    async def ping(self) -> None:
        """For readiness (/readyz): raises when a new call could not be served.

        Always a trivial read (SELECT 1) in the database pool. A full disk or a database that
        turned read-only still answers reads, though, while every call fails at its first write.
        A committed write on every probe would tell, but it would take SQLite's write lock
        between the calls' writes (and cost a WAL flush on PostgreSQL) every few seconds, all
        day, for nothing. So the probe writes only while the last registry question failed on
        the database (`database_failed`: any call's first step writes, so a call fails there
        first): one committed write (meta.heartbeat, which needs room like a call's row does),
        until one succeeds. Meanwhile NotReady names the database's complaint. A healthy
        probe stays the read alone."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.pools[DATABASE], self._ping)
        if self.write_failure is None:
            return
        if self._heartbeat is None or self._heartbeat.done():  # one at a time, however many ask
            self._heartbeat = asyncio.ensure_future(
                loop.run_in_executor(self.pools[DATABASE], self._write_heartbeat))
        try:
            await asyncio.shield(self._heartbeat)
        except DBAPIError as exc:
            self.write_failure = _complaint(exc)
        else:
            if self.write_failure is not None:
                log.warning("the registry takes writes again")
            self.write_failure = None
        if self.write_failure is not None:
            raise NotReady(f"the registry cannot write ({self.write_failure})")
        await _close_unended_if_any(self)

    def _ping(self) -> None:
        with self.registry.store.reading() as conn:
            conn.execute(text("SELECT 1"))

    def _write_heartbeat(self) -> None:
        self.registry.store.write(meta.heartbeat)

    def database_failed(self, exc: BaseException) -> None:
        """A question raised `exc`: when the database failed (not a constraint: a statement's
        own problem), the probe checks writes until one succeeds."""
        if isinstance(exc, DBAPIError) and not isinstance(exc, IntegrityError):
            self.write_failure = _complaint(exc)

    # --- calls whose end could not be written ---------------------------------------------------
    def remember_unended(self, call_id: str, at: datetime) -> None:
        self.unended[call_id] = at
        if len(self.unended) > UNENDED_MAX:  # the oldest: a restart's close_stale closes them
            del self.unended[next(iter(self.unended))]

    async def close_unended(self) -> int:
        """The calls whose end could not be written, ended as `interrupted` at the time their
        end was tried (CallLog.close_unended); the number closed. Run at the next call's start,
        when the probe's write succeeds, and on `keep_closing_unended`'s timer; a failure keeps
        them for the next try."""
        pending = dict(self.unended)
        if not pending:
            return 0
        loop = asyncio.get_running_loop()
        try:
            closed = await loop.run_in_executor(self.pools[DATABASE],
                                                self.registry.call_log.close_unended, pending)
        except Exception as exc:
            self.database_failed(exc)
            log.warning("%d call(s) cut by a database failure still wait to be closed (%s)",
                        len(pending), type(exc).__name__)
            return 0
        for call_id, at in pending.items():
            if self.unended.get(call_id) == at:
                del self.unended[call_id]
        if closed:
            log.warning("%d call(s) cut by a database failure closed as interrupted", closed)
        return closed

    async def keep_closing_unended(self, interval: float = UNENDED_RETRY_SECONDS) -> None:
        """Try `close_unended` every `interval` seconds while there are any (serve runs it: a
        server that nobody calls or probes closes them too). Runs until cancelled."""
        while True:
            await asyncio.sleep(interval)
            if self.unended:
                await self.close_unended()

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _complaint(exc: DBAPIError) -> str:
    """The database's complaint, one line (`database or disk is full`), for /readyz."""
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
