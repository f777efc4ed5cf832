"""Option 4 — get an activation code (the seller's half of the indirect sale).

Seed: the same whose-devices and password steps, then the device list; the caller chooses a
device and receives its activation code, which goes to the buyer with the device. A new code is
made each time (the old one stops working): the registry keeps only its hash, so it cannot read
an old one back.
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows import questions as q
from ivr.flows.common import choose_device, open_kartabl, origin_of, refuse
from ivr.flows.outcome import COMPLETED, Outcome
from ivr.registry.aio import AsyncRegistry


async def get_activation_code(call: Call, registry: AsyncRegistry) -> Outcome:
    owner = await open_kartabl(call, registry)
    if isinstance(owner, Outcome):
        return owner
    device = await choose_device(call, owner.devices)
    if isinstance(device, Outcome):
        return device
    generated = await registry.generate_code(owner, device, origin=origin_of(call))
    if not generated.ok:
        return await refuse(call, generated)
    await call.play("code_generated")
    while True:
        await call.play("code_is", Digits(generated.code or "", secret=True))
        again = await call.ask(q.CODE_REPEAT)
        if not again.ok:
            return Outcome.unanswered(again)
        if again.value == "2":
            return COMPLETED
