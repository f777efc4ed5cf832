"""Option 1 — IMEI inquiry: is this phone registered, and so legal on the network?

From the purchase guide: before buying, read the 15-digit IMEI (box, body or `*#06#`) and check
it through a Hamta gateway.
"""

from __future__ import annotations

from ivr.call.api import Call, DeviceName, Say
from ivr.flows import questions as q
from ivr.flows.outcome import End, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.types import ImeiStatus

ANSWERS = {
    ImeiStatus.INVALID: "imei_invalid",
    ImeiStatus.UNKNOWN: "imei_unknown",
    ImeiStatus.REGISTERED: "imei_registered",
    ImeiStatus.UNREGISTERED: "imei_unregistered",
    ImeiStatus.BLOCKED: "imei_blocked",
}


async def imei_inquiry(call: Call, registry: AsyncRegistry) -> Outcome:
    imei = await call.ask(q.IMEI)
    if not imei.ok:
        return Outcome.unanswered(imei)
    answer = await registry.inquire(imei.value)
    words: list[Say] = [ANSWERS[answer.status]]
    if answer.status is ImeiStatus.REGISTERED and answer.brand:
        words.append(DeviceName(answer.brand, answer.model or ""))
    await call.play(*words)
    return Outcome(End.ANSWERED, answer.status.value)
