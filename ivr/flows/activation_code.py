"""Option 4 — get an activation code (the seller's half of the indirect sale).

Seed: the same whose-devices and password steps, then the device list; the caller chooses a
device and receives its activation code, which goes to the buyer with the device. A new code is
made each time (the old one stops working, so the owner is told and asked to confirm first):
the registry keeps only its hash, so it cannot read an old one back. Off the number's own vouched
line the SIM comes first (an SMS code), as for every change of a secret.
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows.common import (
    CODE_GROUPS,
    confirm,
    done,
    owned_device,
    read_back,
    refuse,
)
from ivr.flows.outcome import COMPLETED, Outcome
from ivr.registry.aio import AsyncRegistry


async def get_activation_code(call: Call, registry: AsyncRegistry) -> Outcome:
    owner, device = await owned_device(call, registry, sim_for="activation_code")
    if device.has_code:  # the old one stops working: asked first
        await confirm(call, "code_replace_confirm")
    generated = await registry.generate_code(owner, device)
    if not generated.ok:
        await refuse(call, generated)
    await done(call, "code_generated")
    await read_back(call, "code_is", Digits(generated.code or "", CODE_GROUPS, secret=True))
    return COMPLETED
