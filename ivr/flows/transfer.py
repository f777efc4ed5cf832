"""Option 3 — direct transfer of ownership, step by step as the seed document gives it.

1. (main menu) «transfer ownership»  2. the calling number's devices, or another number's
3. the kartabl password (none set: stop, set one on the web portal first)  4. the devices that
number owns are read  5. choose one and key its activation code  6. the buyer's number, then
«transfer IMEI X to mobile number Y», `1` to confirm.
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows.common import (
    MSISDN_LEN,
    ask_activation_code,
    choose_device,
    confirm,
    open_kartabl,
    refuse,
    valid_mobile,
)
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import national, normalize


async def transfer_ownership(call: Call, registry: AsyncRegistry) -> str:
    owner, devices = await open_kartabl(call, registry)
    device = await choose_device(call, devices)
    code = await ask_activation_code(call, registry, device.imei, owner=owner)
    buyer = await ask_buyer(call, owner)
    await confirm(call, "transfer_confirm", Digits(device.imei), "transfer_confirm_to",
                  Digits(national(buyer)))
    outcome = await registry.transfer_direct(
        owner, device.imei, code, buyer, expected_version=device.version
    )
    if not outcome.ok:
        raise await refuse(call, outcome)
    await call.play("transferred", "reference_is", Digits(outcome.reference or ""))
    return "completed"


async def ask_buyer(call: Call, owner: str) -> str:
    """The buyer's 11-digit number; the owner's own number is refused and asked again."""

    def not_owner(entry: str) -> str | None:
        return valid_mobile(entry) or ("buyer_is_owner" if normalize(entry) == owner else None)

    entry = await call.ask_digits(
        ["enter_buyer_number"], min_len=MSISDN_LEN, max_len=MSISDN_LEN, validator=not_owner,
        label="buyer",
    )
    return normalize(entry)
