"""Steps shared by several flows, in the order the seed documents give them: whose devices,
the kartabl password (with the stop when none exists), choosing a device, the activation code,
the confirmation, and telling the caller why the registry said no.

Each step returns what it found; when the operation ends there (a refusal, no password, a
question left unanswered, a cancelled confirmation), the step tells the caller and raises Ended
(ivr.flows.outcome), which the menu catches: a flow reads as the procedure, with no checks
between its steps. Who asks the registry is the call: handle_call binds the desk to Call.origin
once (AsyncRegistry.for_call); whether a device may be used is the registry's answer
(ivr.registry.devices.on_choice), never the flow's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import NoReturn

from ivr.call.api import Call, CallerHungUp, DeviceName, Digits, Number, Question, Say, Status
from ivr.flows import questions as q
from ivr.flows.outcome import End, Ended, Outcome
from ivr.registry.aio import AsyncRegistry
from ivr.registry.devices import on_choice
from ivr.registry.msisdn import normalize, try_normalize
from ivr.registry.types import (
    CodeCheck,
    Device,
    Grant,
    ImeiStatus,
    Owner,
    PasswordStatus,
    Refusal,
    Ruling,
    SimAnswer,
    SimCode,
    SimProof,
)

PAGE = 9  # devices read at a time when a kartabl holds ten or more

REFUSAL_PROMPTS: dict[Refusal, str] = {
    Refusal.INVALID_IMEI: "imei_invalid",
    Refusal.UNKNOWN_DEVICE: "imei_unknown",
    Refusal.NOT_REGISTERED: "refused_not_registered",
    Refusal.BLOCKED: "refused_blocked",
    Refusal.NOT_OWNER: "refused_not_owner",
    Refusal.NO_CODE: "refused_no_code",
    Refusal.WRONG_CODE: "wrong_code",
    Refusal.CODE_LOCKED: "locked",
    Refusal.INVALID_CODE: "invalid_code",
    Refusal.BUYER_INVALID: "buyer_invalid",
    Refusal.BUYER_IS_OWNER: "buyer_is_owner",
    Refusal.CHANGED: "changed_meanwhile",
    Refusal.THROTTLED: "throttled",
    Refusal.REPORTED: "refused_reported",
    Refusal.NO_SUCH_TRANSFER: "no_such_transfer",
    Refusal.RETURN_WINDOW_OVER: "return_window_over",
    Refusal.MOVED_ON: "return_moved_on",
    Refusal.NEEDS_SIM: "own_line_only",
    Refusal.ALREADY_REQUESTED: "return_already_requested",
}

# why an SMS code could not prove the SIM, as the caller hears it (ivr.registry.sim_codes)
SIM_CODE_PROMPTS: dict[SimCode, str] = {
    SimCode.NO_SMS: "own_line_only",
    SimCode.CAPPED: "sim_code_capped",
    SimCode.UNSENT: "sim_code_unsent",
    SimCode.VOID: "sim_code_void",
}


# the prompts an owner hears for a refusal, where they differ from a buyer's
OWNER_PROMPTS = {**REFUSAL_PROMPTS, Refusal.NO_CODE: "no_code_owner"}

# digit strings read in the groups people use, with a short pause between groups
MOBILE_GROUPS = (4, 3, 4)  # 0912 345 6789
IMEI_GROUPS = (5, 5, 5)
CODE_GROUPS = (4, 4)
REFERENCE_GROUPS = (3, 3, 4)


HOURS_FROM_MINUTES = 90  # a wait longer than this is said in hours


def minutes_until(moment: datetime | None) -> int:
    if moment is None:
        return 1
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(1, math.ceil((moment - datetime.now(UTC)).total_seconds() / 60))


def try_again_after(moment: datetime | None) -> list[Say]:
    """«you can try again in 15 minutes» / «… in 24 hours»: the number inside the sentence."""
    minutes = minutes_until(moment)
    if minutes <= HOURS_FROM_MINUTES:
        return ["try_again_after", Number(minutes), "minutes_later"]
    return ["try_again_after", Number(math.ceil(minutes / 60)), "hours_later"]


def attempts_left(count: int) -> list[Say]:
    """«you can try up to two more times»."""
    return ["attempts_left", Number(count), "attempts_left_end"]


def refusal_words(refused: Ruling,
                  prompts: Mapping[Refusal, str] = REFUSAL_PROMPTS) -> list[Say]:
    assert refused.refusal is not None
    words: list[Say] = [prompts[refused.refusal]]
    if isinstance(refused, CodeCheck) and refused.refusal is Refusal.WRONG_CODE \
            and refused.attempts_left is not None:
        words += attempts_left(refused.attempts_left)
    if isinstance(refused, CodeCheck) and refused.refusal is Refusal.CODE_LOCKED:
        words += try_again_after(refused.locked_until)
    return words


async def told(call: Call, refused: Ruling,
               prompts: Mapping[Refusal, str] = REFUSAL_PROMPTS) -> Outcome:
    """Tell the caller why the registry said no; the Outcome names the refusal."""
    await call.play(*refusal_words(refused, prompts))
    assert refused.refusal is not None
    return Outcome.refused(refused.refusal)


async def refuse(call: Call, refused: Ruling,
                 prompts: Mapping[Refusal, str] = REFUSAL_PROMPTS) -> NoReturn:
    """Tell the caller why the registry said no, and end the operation there."""
    raise Ended(await told(call, refused, prompts))


async def stop(call: Call, outcome: Outcome, *said: Say) -> NoReturn:
    """Say why the operation stops here, and end it with `outcome`."""
    await call.play(*said)
    raise Ended(outcome)


async def entered(call: Call, question: Question, prompt: Sequence[Say] | None = None) -> str:
    """What the caller keyed; a question left unanswered (its tries ran out, or `#` for the
    main menu) ends the operation."""
    answer = await call.ask(question, prompt=prompt)
    if not answer.ok:
        raise Ended.unanswered(answer)
    return answer.value


# --- seed step 2: whose devices ------------------------------------------------------------------
async def whose_number(call: Call) -> str:
    """`1` the number the caller is calling from, `2` another number (then its 11 digits). A
    withheld caller ID is not offered 'this number': the caller keys it."""
    own = try_normalize(call.caller_id)
    if own is None:
        await call.play("no_caller_id")
    elif await entered(call, q.WHOSE_DEVICES) == "1":
        return own
    return normalize(await entered(call, q.OTHER_NUMBER))


# --- seed step 3: the kartabl password -----------------------------------------------------------
async def sign_in(call: Call, registry: AsyncRegistry, msisdn: str) -> Owner:
    """The signed-in owner with the kartabl, or the stop: no password set (go to the web portal
    first), locked (said before the password is asked), or the tries ran out."""
    check = await registry.door(msisdn)
    proof: SimProof | None = None
    if check.status is PasswordStatus.SIM_FIRST:  # the SIM before the PIN (kartabl._gate)
        proof = (await sim_code(call, registry, msisdn, "sign_in")).proof
        check = dataclasses.replace(check, status=PasswordStatus.ASK)
    while check.status in (PasswordStatus.ASK, PasswordStatus.WRONG):
        if check.status is PasswordStatus.WRONG:
            await call.play("wrong_password", *attempts_left(check.attempts_left or 0))
        pin = await entered(call, q.PASSWORD)
        check = await registry.sign_in(msisdn, pin, proof=proof)
    if check.status is PasswordStatus.OK and check.owner is not None:
        return check.owner
    if check.status is PasswordStatus.LOCKED:
        await stop(call, Outcome.refused("locked"),
                   "locked", *try_again_after(check.locked_until))
    if check.status is PasswordStatus.THROTTLED:
        await stop(call, Outcome.refused(Refusal.THROTTLED), "throttled")
    if check.status is PasswordStatus.SIM_FIRST:  # the proof was refused (another call's?)
        await stop(call, Outcome.refused(Refusal.NEEDS_SIM), "sim_code_void")
    # none set (or removed through the portal meanwhile)
    await stop(call, Outcome(End.NO_PASSWORD), "no_password")


async def open_kartabl(call: Call, registry: AsyncRegistry, *, empty_ok: bool = False) -> Owner:
    """Seed steps 2-4: whose devices, the password, then the devices that number owns (an empty
    kartabl ends the operation unless `empty_ok`)."""
    owner = await sign_in(call, registry, await whose_number(call))
    if not owner.devices and not empty_ok:
        await stop(call, Outcome(End.NO_DEVICES), "no_devices")
    return owner


# --- seed step 4-5: the device list and the choice -----------------------------------------------
def device_entry(number: int, device: Device) -> list[Say]:
    """«device one: Samsung Galaxy A54, IMEI ending 4821» (and «this device is blocked», «…
    reported lost or stolen»)."""
    said: list[Say] = [
        "device_number", Number(number), DeviceName(device.brand, device.model),
        "imei_ending", Digits(device.imei[-4:]),
    ]
    if device.status is ImeiStatus.BLOCKED:
        said.append("device_blocked")
    if device.reported is not None:
        said.append("device_reported")
    return said


def device_list(devices: tuple[Device, ...], start: int = 0) -> list[Say]:
    said: list[Say] = []
    for number, device in enumerate(devices, start + 1):
        said += device_entry(number, device)
    return said


async def choose_device(call: Call, devices: tuple[Device, ...]) -> Device:
    """The caller presses the device's number: one key for up to nine devices; with ten or more,
    the number then `#`, the list read nine at a time, `0` for the next nine. A kartabl of one
    device is asked about too (`1` goes on with it): a caller who heard «device one» presses `1`,
    as every longer kartabl taught them, and that key must not become a secret's first digit."""
    if len(devices) == 1:
        await entered(call, q.ONE_DEVICE, [*device_entry(1, devices[0]), *q.ONE_DEVICE.prompt])
        return devices[0]
    if len(devices) <= PAGE:
        keys = "".join(str(n) for n in range(1, len(devices) + 1))
        choice = await entered(call, dataclasses.replace(q.DEVICE, keys=keys),
                               [*device_list(devices), *q.DEVICE.prompt])
        return devices[int(choice) - 1]

    def in_range(keyed: str) -> str | None:
        return None if keyed == "0" or 1 <= int(keyed) <= len(devices) else "invalid_choice"

    start = 0
    while True:
        page = device_list(devices[start:start + PAGE], start)
        last = start + PAGE >= len(devices)
        choose = "choose_device_long_last" if last else "choose_device_long"  # what 0 does
        if last:
            page.append("list_end")
        question = dataclasses.replace(q.DEVICE_LONG, validator=in_range, reprompt=(choose,))
        choice = await entered(call, question, [*page, choose])
        if choice != "0":
            return devices[int(choice) - 1]
        start = start + PAGE if start + PAGE < len(devices) else 0


async def owned_device(call: Call, registry: AsyncRegistry, *, needs_code: bool = False,
                       reported_ok: bool = False, sim_for: str | None = None,
                       prompts: Mapping[Refusal, str] = REFUSAL_PROMPTS
                       ) -> tuple[Owner, Device]:
    """Seed steps 2-5 for an owner's operation: whose devices, the password, the list and the
    choice; then what stops the operation on the chosen device, as the registry answers it,
    told at once (`needs_code`: a sale, which needs the device's code; `reported_ok`: a device
    reported lost or stolen is what the operation is about); then, for an operation that moves
    a device or a secret (`sim_for`, its SMS code's purpose), the owner's SIM."""
    owner = await open_kartabl(call, registry)

    def answer_on(device: Device) -> CodeCheck:
        return on_choice(device, sale=needs_code, reported_ok=reported_ok)

    if len(owner.devices) == 1 and not answer_on(owner.devices[0]).ok:
        device = owner.devices[0]  # nothing to go on with: said, and why, without asking `1`
        await call.play(*device_entry(1, device))
    else:
        device = await choose_device(call, owner.devices)
    answer = answer_on(device)
    if not answer.ok:
        await refuse(call, answer, prompts)
    if sim_for is not None:
        owner = await prove_sim(call, registry, owner, sim_for)
    return owner, device


# --- the SIM as a second factor (ivr.registry.sim_codes) -----------------------------------------
async def prove_sim(call: Call, registry: AsyncRegistry, owner: Owner, purpose: str) -> Owner:
    """What moves a device or a secret needs the number's SIM as well as its PIN: on the
    number's own line (as the network vouches for it) the owner has it already; otherwise a code
    is sent by SMS to the number and keyed now. The owner, now holding the SIM, or the stop."""
    if owner.sim:
        return owner
    found = await sim_code(call, registry, owner.msisdn, purpose, owner=owner)
    assert found.owner is not None
    return found.owner


async def sim_code(call: Call, registry: AsyncRegistry, msisdn: str, purpose: str, *,
                   owner: Owner | None = None) -> SimAnswer:
    """Send an SMS code to `msisdn` for `purpose` and take it keyed (a wrong one hears so, with
    the tries left): the registry's OK answer, or the stop — SMS not configured (only the own
    line can), today's codes used up, not sent, or spent."""
    sent = await registry.send_sim_code(msisdn, purpose)
    if sent.status is not SimCode.SENT:
        await stop(call, Outcome.refused(Refusal.NEEDS_SIM), SIM_CODE_PROMPTS[sent.status])
    said = None  # the first time «a code was sent …», then «enter the code»
    while True:
        code = await entered(call, q.SIM_CODE, said)
        said = q.SIM_CODE.reprompt
        check = await registry.check_sim_code(msisdn, code, owner=owner)
        if check.status is SimCode.OK:
            return check
        if check.status is not SimCode.WRONG:
            await stop(call, Outcome.refused(Refusal.NEEDS_SIM), SIM_CODE_PROMPTS[check.status])
        await call.play("wrong_sim_code", *attempts_left(check.attempts_left or 0))


async def done(call: Call, *said: Say) -> None:
    """Say that the operation is done. It is, whatever the caller does now: one who hangs up
    during these words ends the call after it, and the call log keeps the operation's outcome
    (the next prompt notices the hang-up), never `hung_up`."""
    try:
        await call.play(*said)
    except CallerHungUp:
        return


async def read_back(call: Call, intro: str, digits: Digits) -> None:
    """«your reference number is …», then `1` to hear it again, `2` (or silence: it was heard)
    to go on. The operation is done by then: a caller who hangs up here ends the call after it
    (the next prompt notices), and the call log keeps the operation's outcome; one whose tries
    ran out here, or who pressed `#`, ends it as that."""
    while True:
        try:
            await call.play(intro, digits, "is_end")
            again = await call.ask(q.REPEAT)
        except CallerHungUp:
            return
        if again.status is Status.TIMED_OUT or again.value == "2":
            return
        if not again.ok:
            raise Ended.unanswered(again)


# --- seed step 5: the device's activation code ---------------------------------------------------
async def ask_activation_code(
    call: Call, registry: AsyncRegistry, imei: str, *, owner: Owner | None = None,
    buyer: str | None = None, expected_version: int | None = None,
    prompts: Mapping[Refusal, str] = REFUSAL_PROMPTS,
) -> Grant:
    """The device's 8-digit code, verified once by the registry as soon as it is keyed: a wrong
    code hears so (with the attempts left) and tries again until the device's own lockout; any
    other refusal ends the operation. A right code is the Grant the move needs."""
    while True:
        code = await entered(call, q.ACTIVATION_CODE)
        check = await registry.check_code(imei, code, owner=owner, buyer=buyer,
                                          expected_version=expected_version)
        if check.grant is not None:
            return check.grant
        if check.refusal is not Refusal.WRONG_CODE:
            await refuse(call, check, prompts)
        await call.play(*refusal_words(check))


async def confirm(call: Call, *question: Say) -> None:
    """`1` confirm: go ahead; `2` cancel: «cancelled», and the operation ends, nothing changed."""
    if await entered(call, q.CONFIRM, [*question, *q.CONFIRM.prompt]) == "2":
        await stop(call, Outcome(End.CANCELLED), "cancelled")
