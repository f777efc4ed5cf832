"""Option 5, then 1 — hear my devices: how many the kartabl holds, then each one (a blocked one
says so). A key pressed during the list stops it and means nothing more: the caller hears the
short main menu (a softphone's `1` pressed during the list once started an IMEI inquiry)."""

from __future__ import annotations

from ivr.call.api import Call, Number
from ivr.flows.common import device_list, open_kartabl
from ivr.flows.outcome import COMPLETED, Outcome
from ivr.registry.aio import AsyncRegistry


async def list_my_devices(call: Call, registry: AsyncRegistry) -> Outcome:
    owner = await open_kartabl(call, registry)
    await call.play("device_count", Number(len(owner.devices)), "device_count_end",
                    *device_list(owner.devices), "list_end")
    call.forget_keys()  # a key that cut the list short is not the next menu choice
    return COMPLETED
