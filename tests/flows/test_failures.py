"""When the IVR itself fails mid-call the caller hears an apology, the call log says `error`, and
the registry is as it was."""

from __future__ import annotations

from ivr.registry.aio import AsyncRegistry

from .conftest import BUYER, CODE, SELLER_PIN, snapshot


class BrokenRegistry(AsyncRegistry):
    async def transfer(self, *args, **kwargs):
        raise RuntimeError("database went away")


async def test_a_crash_mid_transfer_apologises_and_changes_nothing(dial, registry):
    before = snapshot(registry)
    broken = BrokenRegistry(registry)
    try:
        result = await dial(f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1", aregistry=broken)
    finally:
        broken.close()
    assert result.outcome == "error"
    assert result.heard[-1] == "system_error"
    assert result.call.hung_up
    assert snapshot(registry) == before
    assert registry.call_log.calls()[0].outcome == "error"
