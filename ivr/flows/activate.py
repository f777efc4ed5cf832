"""Option 2 — activate a device you bought (the buyer's half of the indirect sale).

From the seed: the seller hands over the device with its activation code; when the buyer
activates it, the device leaves the seller's kartabl and enters the buyer's — the buyer's being
the number they call from. What stops it (unknown, unregistered, blocked, already yours, no code)
is told right after the IMEI, before the code; afterwards the reference number and the next step
(the device has no code now: get one with option 4 to sell it on).
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows import questions as q
from ivr.flows.common import (
    IMEI_GROUPS,
    MOBILE_GROUPS,
    REFERENCE_GROUPS,
    REFUSAL_PROMPTS,
    ask_activation_code,
    confirm,
    done,
    entered,
    read_back,
    refuse,
    stop,
)
from ivr.flows.outcome import COMPLETED, Ended, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import national, try_normalize
from ivr.registry.types import Refusal

# «the buyer is the owner» said to the caller activating it means: the device is already yours
BUYER_PROMPTS = {**REFUSAL_PROMPTS, Refusal.BUYER_IS_OWNER: "already_yours"}


async def activate_device(call: Call, registry: AsyncRegistry) -> Outcome:
    try:
        return await take_over(call, registry)
    except Ended as ended:  # the call log says `already_yours`, as the caller heard it
        if ended.outcome.detail == Refusal.BUYER_IS_OWNER:
            raise Ended(Outcome.refused("already_yours")) from None
        raise


async def take_over(call: Call, registry: AsyncRegistry) -> Outcome:
    """The buyer's steps: the IMEI (what stops it told at once), the activation code, «add
    IMEI X to the kartabl of number Y?», `1` to confirm; the reference number."""
    buyer = try_normalize(call.caller_id)
    if buyer is None:  # the kartabl to fill is the caller's own: it must be known
        await stop(call, Outcome.refused("no_caller_id"), "no_caller_id_activate")
    imei = await entered(call, q.IMEI)
    check = await registry.for_buyer(imei, buyer)
    if not check.ok:
        await refuse(call, check, BUYER_PROMPTS)
    grant = await ask_activation_code(call, registry, imei, buyer=buyer, prompts=BUYER_PROMPTS)
    await confirm(call, "activate_confirm", Digits(imei, IMEI_GROUPS),
                  "activate_confirm_to", Digits(national(buyer), MOBILE_GROUPS),
                  "activate_confirm_end")
    activated = await registry.activate(buyer, grant)
    if not activated.ok:
        await refuse(call, activated, BUYER_PROMPTS)
    await done(call, "activated", "change_code_advice")
    await read_back(call, "reference_is", Digits(activated.reference or "", REFERENCE_GROUPS))
    return COMPLETED
