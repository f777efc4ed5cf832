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
    origin_of,
    read_back,
    refuse,
)
from ivr.flows.outcome import COMPLETED, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import national, try_normalize
from ivr.registry.types import Refusal

# «the buyer is the owner» said to the caller activating it means: the device is already yours
BUYER_PROMPTS = {**REFUSAL_PROMPTS, Refusal.BUYER_IS_OWNER: "already_yours"}


async def activate_device(call: Call, registry: AsyncRegistry) -> Outcome:
    buyer = try_normalize(call.caller_id)
    if buyer is None:  # the kartabl to fill is the caller's own: it must be known
        await call.play("no_caller_id_activate")
        return Outcome.refused("no_caller_id")
    imei = await call.ask(q.IMEI)
    if not imei.ok:
        return Outcome.unanswered(imei)
    check = await registry.for_buyer(imei.value, buyer, origin_of(call))
    if not check.ok:
        return _already_yours(await refuse(call, check, BUYER_PROMPTS))
    grant = await ask_activation_code(call, registry, imei.value, buyer=buyer,
                                      prompts=BUYER_PROMPTS)
    if isinstance(grant, Outcome):
        return _already_yours(grant)
    declined = await confirm(call, "activate_confirm", Digits(imei.value, IMEI_GROUPS),
                             "activate_confirm_to", Digits(national(buyer), MOBILE_GROUPS),
                             "activate_confirm_end")
    if declined:
        return declined
    activated = await registry.activate(buyer, grant, origin=origin_of(call))
    if not activated.ok:
        return _already_yours(await refuse(call, activated, BUYER_PROMPTS))
    await done(call, "activated", "change_code_advice")
    return await read_back(call, "reference_is", Digits(activated.reference or "",
                                                         REFERENCE_GROUPS)) or COMPLETED


def _already_yours(outcome: Outcome) -> Outcome:
    return Outcome.refused("already_yours") if outcome.detail == Refusal.BUYER_IS_OWNER else outcome
