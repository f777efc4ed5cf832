"""Steps shared by several flows, in the order the seed documents give them: whose devices,
the kartabl password (with the stop when none exists), choosing a device, the activation code,
and telling the caller why the registry said no."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from stdnum import imei as stdnum_imei

from ivr.call.api import Call, DeviceName, Digits, Number, Say
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import normalize, try_normalize
from ivr.registry.types import Device, Outcome, PasswordStatus, Refusal

PAGE = 9  # devices read at a time when a kartabl holds ten or more
PIN_MIN, PIN_MAX = 4, 8
CODE_LEN = 8
IMEI_LEN = 15
MSISDN_LEN = 11


class Stop(Exception):
    """The operation ends here, already explained to the caller; `outcome` goes to the call log."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


# --- validators: return the prompt key that says what is wrong -----------------------------------
def valid_mobile(entry: str) -> str | None:
    return None if re.fullmatch(r"09\d{9}", entry) else "invalid_number"


def valid_imei(entry: str) -> str | None:
    return None if stdnum_imei.is_valid(entry) and len(entry) == IMEI_LEN else "imei_invalid"


# --- refusals ----------------------------------------------------------------------------------
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
    Refusal.NO_CALLER_ID: "no_caller_id_activate",
}


def minutes_until(moment: datetime | None) -> int:
    if moment is None:
        return 1
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(1, math.ceil((moment - datetime.now(UTC)).total_seconds() / 60))


def refusal_words(outcome: Outcome) -> list[Say]:
    assert outcome.refusal is not None
    words: list[Say] = [REFUSAL_PROMPTS[outcome.refusal]]
    if outcome.refusal is Refusal.WRONG_CODE and outcome.attempts_left is not None:
        words += ["attempts_left", Number(outcome.attempts_left)]
    if outcome.refusal is Refusal.CODE_LOCKED:
        words += ["try_again_after", Number(minutes_until(outcome.locked_until))]
    return words


async def refuse(call: Call, outcome: Outcome) -> Stop:
    """Tell the caller why, and give the Stop to raise (so the call log says which refusal)."""
    await call.play(*refusal_words(outcome))
    assert outcome.refusal is not None
    return Stop(f"refused:{outcome.refusal.value}")


# --- seed step 2: whose devices ------------------------------------------------------------------
async def whose_number(call: Call) -> str:
    """`1` the number the caller is calling from, `2` another number (then its 11 digits)."""
    choice = await call.menu(["whose_devices"], "12", label="whose")
    if choice == "1":
        own = try_normalize(call.caller_id)
        if own:
            return own
        await call.play("no_caller_id")  # withheld: the caller keys the number instead
    entry = await call.ask_digits(
        ["enter_other_number"], min_len=MSISDN_LEN, max_len=MSISDN_LEN, validator=valid_mobile,
        label="number",
    )
    return normalize(entry)


# --- seed step 3: the kartabl password -----------------------------------------------------------
async def sign_in(call: Call, registry: AsyncRegistry, msisdn: str) -> None:
    """Verified, or Stop: no password set (go to the web portal first) or locked."""
    info = await registry.subscriber_info(msisdn)
    if not info or not info["has_password"]:
        await call.play("no_password")
        raise Stop("no_password")
    while True:
        pin = await call.ask_digits(
            ["enter_password"], min_len=PIN_MIN, max_len=PIN_MAX, secret=True, label="password"
        )
        check = await registry.check_password(msisdn, pin)
        if check.status is PasswordStatus.OK:
            return
        if check.status is PasswordStatus.NO_PASSWORD:  # removed meanwhile, through the portal
            await call.play("no_password")
            raise Stop("no_password")
        if check.status is PasswordStatus.LOCKED:
            minutes = minutes_until(check.locked_until)
            await call.play("locked", "try_again_after", Number(minutes))
            raise Stop("refused:locked")
        await call.play("wrong_password", "attempts_left", Number(check.attempts_left or 0))


async def open_kartabl(call: Call, registry: AsyncRegistry) -> tuple[str, list[Device]]:
    """Seed steps 2-4: whose devices, the password, then the devices that number owns."""
    msisdn = await whose_number(call)
    await sign_in(call, registry, msisdn)
    devices = await registry.devices_of(msisdn)
    if not devices:
        await call.play("no_devices")
        raise Stop("no_devices")
    return msisdn, devices


# --- seed step 4-5: the device list and the choice -----------------------------------------------
def device_entry(number: int, device: Device) -> list[Say]:
    """«device one: Samsung Galaxy A54, IMEI ending 4821»."""
    return [
        "device_number", Number(number), DeviceName(device.brand, device.model),
        "imei_ending", Digits(device.imei[-4:]),
    ]


async def read_devices(call: Call, devices: list[Device], start: int = 0) -> None:
    for number, device in enumerate(devices[start:], start + 1):
        await call.play(*device_entry(number, device))


async def choose_device(call: Call, devices: list[Device]) -> Device:
    """The caller presses the device's number: one key for up to nine devices; with ten or more,
    the number then `#`, the list read nine at a time, `0` for the next nine."""
    if len(devices) < 10:
        keys = "".join(str(n) for n in range(1, len(devices) + 1))
        prompt: list[Say] = []
        for number, device in enumerate(devices, 1):
            prompt += device_entry(number, device)
        choice = await call.menu([*prompt, "choose_device"], keys, label="device")
        return devices[int(choice) - 1]

    def in_range(entry: str) -> str | None:
        return None if entry == "0" or 1 <= int(entry) <= len(devices) else "invalid_choice"

    start = 0
    while True:
        page = devices[start:start + PAGE]
        prompt = []
        for number, device in enumerate(page, start + 1):
            prompt += device_entry(number, device)
        if start + PAGE >= len(devices):
            prompt.append("list_end")
        entry = await call.ask_digits(
            [*prompt, "choose_device_long"], min_len=1, max_len=2, validator=in_range,
            immediate="0", label="device",
        )
        if entry != "0":
            return devices[int(entry) - 1]
        start = start + PAGE if start + PAGE < len(devices) else 0


# --- seed step 5: the device's activation code ---------------------------------------------------
async def ask_activation_code(
    call: Call, registry: AsyncRegistry, imei: str, *, owner: str | None = None
) -> str:
    """The device's 8-digit code, checked at once: a wrong code hears so and tries again until
    the device's own lockout; any other refusal stops the operation."""
    while True:
        code = await call.ask_digits(
            ["enter_activation_code"], min_len=CODE_LEN, max_len=CODE_LEN, secret=True,
            label="activation code",
        )
        outcome = await registry.check_activation_code(imei, code, owner=owner)
        if outcome.ok:
            return code
        if outcome.refusal is not Refusal.WRONG_CODE:
            raise await refuse(call, outcome)
        await call.play(*refusal_words(outcome))


async def confirm(call: Call, *question: Say) -> None:
    """`1` confirm, `2` cancel (nothing changed)."""
    if await call.menu([*question, "confirm_or_cancel"], "12", label="confirm") == "2":
        await call.play("cancelled")
        raise Stop("cancelled")
