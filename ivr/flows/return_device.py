"""Option 5, then 4 — the 7-day mutual return (ivr.registry.returns).

The purchase guide gives a buyer 7 days to return an online purchase and asks them to return a
device at once when its IMEI does not match. Both sides use this option:
1. (main menu) `5`, then `4`  2. whose devices  3. the kartabl password (an empty kartabl is fine:
   the previous owner may have sold their only device)
4. returns waiting for this number, when there are any: «two return requests wait for you», `1`
   to hear them — each, oldest first: «take IMEI X back from number Y?», `1` confirm, `2` skip to
   the next — or `2` to start a return of one's own. Confirming needs the number's SIM: its own
   line as the network vouches for it, or an SMS code keyed first.
5. the new owner: the devices that came to the kartabl in the last 7 days and can still go back,
   each said with whom it came from and when; its key picks it (`0`, or none listed: the
   transfer's 10-digit reference number instead). Then the SIM the same way (a seller who knows
   the buyer's PIN cannot ask in the buyer's name), «return IMEI X to number Y?», `1` to confirm;
   the previous owner then has 72 hours to confirm. One request per transfer.
Both sides get an SMS receipt when the return starts and when it is done.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from ivr.call.api import RETRIES, Call, DeviceName, Digits, Number, Say
from ivr.config import TEHRAN
from ivr.flows import questions as q
from ivr.flows.common import (
    IMEI_GROUPS,
    MOBILE_GROUPS,
    REFERENCE_GROUPS,
    confirm,
    done,
    entered,
    open_kartabl,
    prove_sim,
    read_back,
    refuse,
    stop,
    told,
)
from ivr.flows.outcome import COMPLETED, End, Ended, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import national
from ivr.registry.types import Owner, Refusal, ReturnCase


async def return_device(call: Call, registry: AsyncRegistry) -> Outcome:
    owner = await open_kartabl(call, registry, empty_ok=True)
    waiting = await registry.returns_waiting(owner.msisdn)
    if waiting:
        await call.play(Number(len(waiting)), "returns_waiting")
        if await entered(call, q.RETURN_SIDE) == "1":
            owner = await prove_sim(call, registry, owner, "return_confirm")
            return await take_back(call, registry, owner, waiting)
    return await start_return(call, registry, owner)


async def start_return(call: Call, registry: AsyncRegistry, owner: Owner) -> Outcome:
    """The new owner: the device, chosen among what arrived in the last 7 days (`0`, or no such
    arrival: the transfer's reference number, a wrong one said and asked again), the SIM, the
    confirmation, the request."""
    if not owner.devices:
        await stop(call, Outcome(End.NO_DEVICES), "no_devices")
    arrivals = await registry.return_arrivals(owner)
    case = await choose_arrival(call, arrivals) if arrivals else None
    if case is None:
        case = await case_by_reference(call, registry, owner)
    owner = await prove_sim(call, registry, owner, "return_start")
    await confirm(call, "activate_confirm", Digits(case.imei, IMEI_GROUPS),
                  "transfer_confirm_to", Digits(national(case.previous_owner), MOBILE_GROUPS),
                  "return_confirm_end")
    started = await registry.start_return(owner, case)
    if started.case is None:
        await refuse(call, started)
    await done(call, "return_started")
    return Outcome(End.COMPLETED, "return_started")


async def choose_arrival(call: Call, arrivals: tuple[ReturnCase, ...]) -> ReturnCase | None:
    """«Devices that arrived in the last seven days»: each as in a kartabl list, from whom (the
    number's last four digits; the whole number is said at the confirmation) and when; its key
    picks it, `0` keys a reference number instead (None)."""
    said: list[Say] = ["returns_arrived"]
    for number, case in enumerate(arrivals, 1):
        said += ["device_number", Number(number), DeviceName(case.brand, case.model),
                 "imei_ending", Digits(case.imei[-4:]), "arrived_from",
                 Digits(case.previous_owner[-4:]), *days_ago(case)]
    keys = "".join(str(n) for n in range(1, len(arrivals) + 1)) + "0"
    question = dataclasses.replace(q.RETURN_ARRIVAL, keys=keys)
    choice = await entered(call, question, [*said, *question.prompt])
    return None if choice == "0" else arrivals[int(choice) - 1]


def days_ago(case: ReturnCase) -> list[Say]:
    """When it arrived, by the Tehran calendar: «today», «yesterday» or «N days ago»."""
    days = (datetime.now(TEHRAN).date() - case.transferred_at.astimezone(TEHRAN).date()).days
    return ["arrived_today"] if days <= 0 else ["arrived_yesterday"] if days == 1 else \
        [Number(days), "arrived_days_ago"]


async def case_by_reference(call: Call, registry: AsyncRegistry, owner: Owner) -> ReturnCase:
    """The transfer's 10-digit reference number (for those who have it, or an arrival past
    the list): a wrong one is said and asked again; any other refusal is told."""
    for _ in range(RETRIES):
        reference = await entered(call, q.TRANSFER_REFERENCE)
        check = await registry.returnable(owner, reference)
        if check.refusal is not Refusal.NO_SUCH_TRANSFER:
            break
        await call.play("no_such_transfer")
    else:
        raise Ended(Outcome.refused(Refusal.NO_SUCH_TRANSFER))
    if check.case is None:
        await refuse(call, check)
    return check.case


async def take_back(call: Call, registry: AsyncRegistry, owner: Owner,
                    waiting: tuple[ReturnCase, ...]) -> Outcome:
    """The previous owner, on their own line: each waiting return, oldest first; `1` takes the
    device back, `2` leaves it for now (it waits until its deadline) and goes to the next."""
    outcome = Outcome(End.CANCELLED)
    for case in waiting:
        try:
            await confirm(call, "return_take_back", Digits(case.imei, IMEI_GROUPS),
                          "return_take_back_from", Digits(national(case.new_owner), MOBILE_GROUPS),
                          "return_take_back_end")
        except Ended as ended:
            if ended.outcome.end is not End.CANCELLED:
                raise
            continue  # `2`: left for now, the next one
        back = await registry.confirm_return(owner, case)
        if not back.ok:
            outcome = await told(call, back)  # this one stays as it was: the next one
            continue
        await done(call, "returned")
        await read_back(call, "reference_is", Digits(back.reference or "", REFERENCE_GROUPS))
        outcome = COMPLETED
    return outcome
