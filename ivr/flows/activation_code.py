"""Option 4 — get an activation code (the seller's half of the indirect sale).

Seed: the same whose-devices and password steps, then the device list; the caller chooses a
device and receives its activation code, which goes to the buyer with the device. A new code is
made each time (the old one stops working): the registry keeps only its hash, so it cannot read
an old one back.
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows.common import choose_device, open_kartabl, refuse
from ivr.registry.aio import AsyncRegistry


async def get_activation_code(call: Call, registry: AsyncRegistry) -> str:
    owner, devices = await open_kartabl(call, registry)
    device = await choose_device(call, devices)
    outcome = await registry.generate_activation_code(
        owner, device.imei, expected_version=device.version
    )
    if not outcome.ok:
        raise await refuse(call, outcome)
    await call.play("code_generated")
    while True:
        await call.play("code_is", Digits(outcome.code or "", secret=True))
        if await call.menu(["code_repeat_or_finish"], "12", label="repeat code") == "2":
            return "completed"
