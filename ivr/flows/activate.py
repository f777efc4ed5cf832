"""Option 2 — activate a device you bought (the buyer's half of the indirect sale).

From the seed: the seller hands over the device with its activation code; when the buyer
activates it, the device leaves the seller's kartabl and enters the buyer's — the buyer's being
the number they call from.
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows.common import IMEI_LEN, Stop, ask_activation_code, confirm, refuse, valid_imei
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import national, try_normalize
from ivr.registry.types import Refusal


async def activate_device(call: Call, registry: AsyncRegistry) -> str:
    buyer = try_normalize(call.caller_id)
    if buyer is None:  # the kartabl to fill is the caller's own: it must be known
        await call.play("no_caller_id_activate")
        raise Stop("refused:no_caller_id")
    imei = await call.ask_digits(
        ["enter_imei"], min_len=IMEI_LEN, max_len=IMEI_LEN, validator=valid_imei, label="imei"
    )
    code = await ask_activation_code(call, registry, imei)
    await confirm(call, "activate_confirm", Digits(imei), "activate_confirm_to",
                  Digits(national(buyer)))
    outcome = await registry.activate(buyer, imei, code)
    if outcome.refusal is Refusal.BUYER_IS_OWNER:  # «buyer is the owner» means: already yours
        await call.play("already_yours")
        raise Stop("refused:already_yours")
    if not outcome.ok:
        raise await refuse(call, outcome)
    await call.play("activated", "reference_is", Digits(outcome.reference or ""),
                    "change_code_advice")
    return "completed"
