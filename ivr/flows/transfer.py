"""Option 3 — direct transfer of ownership, step by step as the seed document gives it.

1. (main menu) «transfer ownership»  2. the calling number's devices, or another number's
3. the kartabl password (none set: stop, set one on the web portal first)  4. the devices that
number owns are read  5. choose one and key its activation code  6. the buyer's number, then
«transfer IMEI X to mobile number Y?», `1` to confirm; the reference number, which can be heard
again. What stops the sale (blocked, unregistered, no code, code locked) is told as soon as the
device is chosen; then, unless the call comes from the number's own line as the network vouches
for it, the SIM: a code sent by SMS to the number, keyed now (a PIN alone never moves a device).

The password and the code are each verified once: signing in answers the kartabl, the code
answers a Grant, and the move itself hashes nothing.
"""

from __future__ import annotations

import dataclasses

from ivr.call.api import Call, Digits
from ivr.flows import questions as q
from ivr.flows.common import (
    IMEI_GROUPS,
    MOBILE_GROUPS,
    OWNER_PROMPTS,
    REFERENCE_GROUPS,
    ask_activation_code,
    confirm,
    done,
    entered,
    owned_device,
    read_back,
    refuse,
)
from ivr.flows.outcome import COMPLETED, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import national, normalize
from ivr.registry.types import Owner


async def transfer_ownership(call: Call, registry: AsyncRegistry) -> Outcome:
    # 1. the main menu's `3`; 2.-5. whose devices, the password, the list, the chosen device
    owner, device = await owned_device(call, registry, needs_code=True, sim_for="transfer",
                                       prompts=OWNER_PROMPTS)
    # 5. its activation code
    grant = await ask_activation_code(call, registry, device.imei, owner=owner,
                                      expected_version=device.version)
    # 6. the buyer, «transfer IMEI X to mobile number Y?», `1` to confirm
    buyer = await ask_buyer(call, owner)
    await confirm(call, "transfer_confirm", Digits(device.imei, IMEI_GROUPS),
                  "transfer_confirm_to", Digits(national(buyer), MOBILE_GROUPS),
                  "transfer_confirm_end")
    moved = await registry.transfer(owner, grant, buyer)
    if not moved.ok:
        await refuse(call, moved)
    await done(call, "transferred")
    await read_back(call, "reference_is", Digits(moved.reference or "", REFERENCE_GROUPS))
    return COMPLETED


async def ask_buyer(call: Call, owner: Owner) -> str:
    """The buyer's 11-digit number; the owner's own number is refused and asked again."""

    def not_the_owner(keyed: str) -> str | None:
        return q.valid_mobile(keyed) or (
            "buyer_is_owner" if normalize(keyed) == owner.msisdn else None)

    return normalize(await entered(call, dataclasses.replace(q.BUYER_NUMBER,
                                                             validator=not_the_owner)))
