"""Option 5 — hear my devices: how many the kartabl holds, then each one."""

from __future__ import annotations

from ivr.call.api import Call, Number
from ivr.flows.common import open_kartabl, read_devices
from ivr.registry.aio import AsyncRegistry


async def list_my_devices(call: Call, registry: AsyncRegistry) -> str:
    _, devices = await open_kartabl(call, registry)
    await call.play("device_count", Number(len(devices)))
    await read_devices(call, devices)
    await call.play("list_end")
    return "completed"
