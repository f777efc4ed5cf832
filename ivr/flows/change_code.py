"""Option 6 — change a device's activation code.

The purchase guide tells the buyer to change the code received with the device at once, so that
it stays secret: the owner (after the password) chooses the device and keys the new code twice.
"""

from __future__ import annotations

from ivr.call.api import Call, NoMoreTries
from ivr.flows.common import CODE_LEN, choose_device, open_kartabl, refuse
from ivr.registry.aio import AsyncRegistry

MATCH_TRIES = 3


async def change_activation_code(call: Call, registry: AsyncRegistry) -> str:
    owner, devices = await open_kartabl(call, registry)
    device = await choose_device(call, devices)
    new_code = await ask_new_code(call)
    outcome = await registry.change_activation_code(
        owner, device.imei, new_code, expected_version=device.version
    )
    if not outcome.ok:
        raise await refuse(call, outcome)
    await call.play("code_changed")
    return "completed"


async def ask_new_code(call: Call) -> str:
    for _ in range(MATCH_TRIES):
        first = await call.ask_digits(["enter_new_code"], min_len=CODE_LEN, max_len=CODE_LEN,
                                      secret=True, label="new code")
        second = await call.ask_digits(["repeat_new_code"], min_len=CODE_LEN, max_len=CODE_LEN,
                                       secret=True, label="new code again")
        if first == second:
            return first
        await call.play("codes_mismatch")
    raise NoMoreTries(silent=False)
