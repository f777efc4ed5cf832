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
    origin_of,
    owned_device,
    refuse,
)
from ivr.flows.outcome import COMPLETED, End, Outcome
from ivr.registry.aio import AsyncRegistry

MATCH_TRIES = 3


async def change_activation_code(call: Call, registry: AsyncRegistry) -> Outcome:
    chosen = await owned_device(call, registry, sim_for="change_code")
    if isinstance(chosen, Outcome):
        return chosen
    owner, device = chosen
    new_code = await ask_new_code(call)
    if isinstance(new_code, Outcome):
        return new_code
    changed = await registry.change_code(owner, device, new_code, origin=origin_of(call))
    if not changed.ok:
        return await refuse(call, changed)
    await done(call, "code_changed")
    return COMPLETED


async def ask_new_code(call: Call) -> str | Outcome:
    """The new code keyed twice; three mismatches end the operation."""
    for _ in range(MATCH_TRIES):
        first = await call.ask(q.NEW_CODE)
        if not first.ok:
            return Outcome.unanswered(first)
        second = await call.ask(q.NEW_CODE_AGAIN)
        if not second.ok:
            return Outcome.unanswered(second)
        if first.value == second.value:
            return first.value
        await call.play("codes_mismatch")
    return Outcome(End.GAVE_UP)
