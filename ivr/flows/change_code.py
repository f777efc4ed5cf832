"""Option 6 — change a device's activation code.

The purchase guide tells the buyer to change the code received with the device at once, so that
it stays secret: the owner (after the password) chooses the device and keys the new code twice.
Off the number's own vouched line the SIM comes first (an SMS code): a guessed PIN must not set a
code the guesser knows.
A code of one repeated digit or a run (12345678) is refused and asked again.
"""

from __future__ import annotations

from ivr.call.api import Call
from ivr.flows import questions as q
from ivr.flows.common import (
    done,
    entered,
    owned_device,
    refuse,
)
from ivr.flows.outcome import COMPLETED, End, Ended, Outcome
from ivr.registry.aio import AsyncRegistry

MATCH_TRIES = 3


async def change_activation_code(call: Call, registry: AsyncRegistry) -> Outcome:
    owner, device = await owned_device(call, registry, sim_for="change_code")
    new_code = await ask_new_code(call)
    changed = await registry.change_code(owner, device, new_code)
    if not changed.ok:
        await refuse(call, changed)
    await done(call, "code_changed")
    return COMPLETED


async def ask_new_code(call: Call) -> str:
    """The new code keyed twice; three mismatches end the operation."""
    for _ in range(MATCH_TRIES):
        first = await entered(call, q.NEW_CODE)
        if await entered(call, q.NEW_CODE_AGAIN) == first:
            return first
        await call.play("codes_mismatch")
    raise Ended(Outcome(End.GAVE_UP))
