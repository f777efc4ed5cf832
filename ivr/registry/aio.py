"""The registry for asyncio code (the FastAGI server, the console caller, the call flows).

Every method runs the synchronous Registry method in a bounded thread pool: argon2 hashing is slow
and memory-hard on purpose, and database calls block, so neither may run on the event loop.

Two pools, because they queue differently: operations that hash a secret (tens of milliseconds of
CPU each) run in the hashing pool, sized to leave a core to the event loop and bounding how many
hashes (~19 MiB each) run at once; quick database work (the call log, listings, inquiries) runs
in its own pool, so a new caller's welcome never waits behind someone else's sign-in. Measured by
`hamta-ivr bench`: with one shared pool, the first prompt waited 350 ms at 1,000 callers.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from ivr.registry.service import GATEWAY_IVR, Registry
from ivr.registry.types import Device, Inquiry, Outcome, PasswordCheck

T = TypeVar("T")


DATABASE_WORKERS = 4  # quick queries; the engine's default pool holds 5 (+10 overflow)


def default_workers() -> int:
    """Hashing threads: one per CPU but one (the event loop's), at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class AsyncRegistry:
    """The same operations as Registry, as coroutines. `close()` when done (waits for running
    operations); also an async context manager."""

    def __init__(self, registry: Registry, workers: int | None = None) -> None:
        """`workers`: hashing threads (default_workers())."""
        self.registry = registry
        self._hash_pool = ThreadPoolExecutor(max_workers=workers or default_workers(),
                                             thread_name_prefix="registry_hash")
        self._db_pool = ThreadPoolExecutor(max_workers=DATABASE_WORKERS,
                                           thread_name_prefix="registry_db")

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Quick database work."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    async def _hashing(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Work that hashes or verifies a secret."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._hash_pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._hash_pool.shutdown(wait=True)
        self._db_pool.shutdown(wait=True)

    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # --- administration and listings -----------------------------------------------------------
    async def add_subscriber(self, msisdn: str, *, password: str | None = None,
                             national_id: str | None = None) -> None:
        return await self._hashing(self.registry.add_subscriber, msisdn, password=password,
                               national_id=national_id)

    async def set_password(self, msisdn: str, pin: str) -> None:
        return await self._hashing(self.registry.set_password, msisdn, pin)

    async def add_device(self, imei: str, *, owner: str | None, brand: str, model: str,
                         status: str = "registered", activation_code: str | None = None) -> None:
        return await self._hashing(self.registry.add_device, imei, owner=owner, brand=brand,
                               model=model, status=status, activation_code=activation_code)

    async def set_device_status(self, imei: str, status: str) -> None:
        return await self._run(self.registry.set_device_status, imei, status)

    async def device_info(self, imei: str) -> dict | None:
        return await self._run(self.registry.device_info, imei)

    async def subscriber_info(self, msisdn: str) -> dict | None:
        return await self._run(self.registry.subscriber_info, msisdn)

    async def transfers(self, *, imei: str | None = None, msisdn: str | None = None
                        ) -> list[dict]:
        return await self._run(self.registry.transfers, imei=imei, msisdn=msisdn)

    async def audit(self, *, msisdn: str | None = None, imei: str | None = None,
                    limit: int | None = None) -> list[dict]:
        return await self._run(self.registry.audit, msisdn=msisdn, imei=imei, limit=limit)

    async def calls(self) -> list[dict]:
        return await self._run(self.registry.calls)

    # --- queries -------------------------------------------------------------------------------
    async def inquire_imei(self, imei: str) -> Inquiry:
        return await self._run(self.registry.inquire_imei, imei)

    async def devices_of(self, msisdn: str) -> list[Device]:
        return await self._run(self.registry.devices_of, msisdn)

    # --- secrets and ownership -----------------------------------------------------------------
    async def check_password(self, msisdn: str, pin: str, gateway: str = GATEWAY_IVR
                             ) -> PasswordCheck:
        return await self._hashing(self.registry.check_password, msisdn, pin, gateway)

    async def check_activation_code(self, imei: str, code: str, *, owner: str | None = None,
                                    gateway: str = GATEWAY_IVR) -> Outcome:
        return await self._hashing(self.registry.check_activation_code, imei, code, owner=owner,
                               gateway=gateway)

    async def generate_activation_code(self, owner: str, imei: str, *,
                                       expected_version: int | None = None,
                                       gateway: str = GATEWAY_IVR) -> Outcome:
        return await self._hashing(self.registry.generate_activation_code, owner, imei,
                               expected_version=expected_version, gateway=gateway)

    async def change_activation_code(self, owner: str, imei: str, new_code: str, *,
                                     expected_version: int | None = None,
                                     gateway: str = GATEWAY_IVR) -> Outcome:
        return await self._hashing(self.registry.change_activation_code, owner, imei, new_code,
                               expected_version=expected_version, gateway=gateway)

    async def transfer_direct(self, owner: str, imei: str, code: str, buyer: str, *,
                              expected_version: int | None = None,
                              gateway: str = GATEWAY_IVR) -> Outcome:
        return await self._hashing(self.registry.transfer_direct, owner, imei, code, buyer,
                               expected_version=expected_version, gateway=gateway)

    async def activate(self, buyer: str, imei: str, code: str, *, gateway: str = GATEWAY_IVR
                       ) -> Outcome:
        return await self._hashing(self.registry.activate, buyer, imei, code, gateway=gateway)

    # --- call log ------------------------------------------------------------------------------
    async def call_started(self, call_id: str, msisdn: str | None, channel: str,
                           at: datetime) -> None:
        return await self._run(self.registry.call_started, call_id, msisdn, channel, at)

    async def call_ended(self, call_id: str, path: list[str], outcome: str,
                         at: datetime) -> None:
        return await self._run(self.registry.call_ended, call_id, path, outcome, at)
