"""Option 1 — IMEI inquiry: is this phone registered, and so legal on the network?

From the purchase guide: before buying, read the 15-digit IMEI (box, body or `*#06#`) and check
it through a Hamta gateway. A device its owner reported lost or stolen is said so, whatever its
status: the buyer should not buy it. Every verdict offers the buyer's rights (`6`).
"""

from __future__ import annotations

from ivr.call.api import Call, DeviceName, Say
from ivr.flows import questions as q
from ivr.flows.common import entered
from ivr.flows.outcome import End, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.types import ImeiStatus, Reported

ANSWERS = {
    ImeiStatus.INVALID: "imei_invalid",
    ImeiStatus.UNKNOWN: "imei_unknown",
    ImeiStatus.REGISTERED: "imei_registered",
    ImeiStatus.UNREGISTERED: "imei_unregistered",
    ImeiStatus.BLOCKED: "imei_blocked",
}
REPORTED = {Reported.LOST: "imei_reported_lost", Reported.STOLEN: "imei_reported_stolen"}


async def imei_inquiry(call: Call, registry: AsyncRegistry) -> Outcome:
    answer = await registry.inquire(await entered(call, q.IMEI))
    if answer.reported is not None:
        await call.play(REPORTED[answer.reported], "rights_offer")
        return Outcome(End.ANSWERED, f"reported_{answer.reported.value}")
    words: list[Say] = [ANSWERS[answer.status]]
    if answer.status is ImeiStatus.REGISTERED and answer.brand:
        words.append(DeviceName(answer.brand, answer.model or ""))
    await call.play(*words, "rights_offer")
    return Outcome(End.ANSWERED, answer.status.value)
