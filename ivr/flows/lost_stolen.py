"""Option 5, then 3 — a lost or stolen phone, reported by its owner (and withdrawn when found).

A phone that is lost or stolen keeps its owner's kartabl entry and could be sold on with its code.
1. (main menu) `5`, then `3`  2. whose devices  3. the kartabl password  4. the list, choose one
5. a device not reported: `1` lost or `2` stolen, then «report IMEI X as stolen?», `1` to confirm;
   the case number, which can be heard again. From then on an inquiry warns would-be buyers, and
   transfer, activation and codes are refused.
5'. a device already reported: its case number, the SIM (an SMS code, off the number's own
   vouched line: a thief may have learnt the PIN), then «found it: withdraw the report?», `1` to
   confirm; the device works again. Reporting needs no SIM: it may be in the stolen phone.
Both send the owner an SMS receipt, written with the change (ivr.registry.reports).
"""

from __future__ import annotations

from ivr.call.api import Call, Digits
from ivr.flows import questions as q
from ivr.flows.common import (
    IMEI_GROUPS,
    REFERENCE_GROUPS,
    confirm,
    done,
    entered,
    owned_device,
    prove_sim,
    read_back,
    refuse,
)
from ivr.flows.outcome import End, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.types import Device, Owner, Reported

KINDS = {"1": Reported.LOST, "2": Reported.STOLEN}


async def lost_or_stolen(call: Call, registry: AsyncRegistry) -> Outcome:
    owner, device = await owned_device(call, registry, reported_ok=True)
    if device.reported is not None:
        return await withdraw_report(call, registry, owner, device)
    reported = KINDS[await entered(call, q.LOST_OR_STOLEN)]
    await confirm(call, "report_confirm", Digits(device.imei, IMEI_GROUPS),
                  f"report_confirm_{reported.value}_end")
    made = await registry.report(owner, device, reported)
    if not made.ok:
        await refuse(call, made)
    await done(call, "reported")
    await read_back(call, "case_is", Digits(made.reference or "", REFERENCE_GROUPS))
    return Outcome(End.COMPLETED, reported.value)


async def withdraw_report(call: Call, registry: AsyncRegistry, owner: Owner,
                          device: Device) -> Outcome:
    """The owner found the device: its case number, then withdraw the report."""
    case = await registry.report_case(device.imei)
    await call.play("report_exists", "case_is", Digits(case or "", REFERENCE_GROUPS), "is_end")
    owner = await prove_sim(call, registry, owner, "withdraw")  # a thief may know the PIN
    await confirm(call, "withdraw_confirm")
    withdrawn = await registry.withdraw(owner, device)
    if not withdrawn.ok:
        await refuse(call, withdrawn)
    await done(call, "report_withdrawn")
    return Outcome(End.COMPLETED, "withdrawn")
