"""Main menu `6` (offered after every inquiry verdict), or `5` then `5` — the buyer's rights, from
the purchase guide, with no password: inquire before buying; the seller transfers the device or
hands over its code, the buyer checks the kartabl and changes the code at once; a mismatched or
illegal phone goes back at once, an online purchase within 7 days; a phone deactivated after the
sale goes back to the seller, who must take it back or swap it after 30 days; every step is free.
"""

from __future__ import annotations

from ivr.call.api import Call, Status
from ivr.flows import questions as q
from ivr.flows.outcome import COMPLETED, Ended, Outcome
from ivr.registry.aio import AsyncRegistry

RIGHTS = ("rights_inquire", "rights_transfer", "rights_return", "rights_deactivated",
          "rights_free")


async def buyer_rights(call: Call, registry: AsyncRegistry) -> Outcome:
    """Read the rights; `1` to hear them again, `2` or silence to go on."""
    while True:
        await call.play(*RIGHTS)
        again = await call.ask(q.REPEAT)
        if again.status is Status.TIMED_OUT or again.value == "2":
            return COMPLETED
        if not again.ok:
            raise Ended.unanswered(again)
