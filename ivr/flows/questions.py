"""Every question the IVR asks, declared once: what is said, what a valid entry is, what a wrong
one hears. Flows `await call.ask(QUESTION)` and branch on the Answer.

The lengths and validity rules come from ivr.registry.validate (one place for each); a validator
here only names the prompt that tells the caller what was wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ivr.call.api import READ_FIRST_TIMEOUT, Validator, entry, menu
from ivr.registry import lockout, validate


def _rule(is_valid: Callable[[str], bool], prompt: str) -> Validator:
    def check(keyed: str) -> str | None:
        return None if is_valid(keyed) else prompt
    return check


valid_imei = _rule(validate.is_imei, "imei_invalid")
valid_mobile = _rule(validate.is_keyed_mobile, "invalid_number")


def valid_new_code(keyed: str) -> str | None:
    """Eight digits that are not one digit repeated or a run (12345678, 87654321)."""
    return None if validate.is_strong_code(keyed) else "code_too_simple"


# `6`, the buyer's rights, is not said in the main menu (it stays under 15 s of speech): it is
# offered after every inquiry verdict, and is `5` `5` as well
MAIN_MENU = menu("main menu", "main_menu", keys="123456")
# back at the menu after an operation: short; `*` hears the whole menu; one silence ends the call
MAIN_MENU_AGAIN = menu("main menu", "main_menu_again", keys="123456", star=["main_menu"],
                       patience=1)
# `0` to a person (ivr.flows.staff), when an operator configured a staff queue: the main menu
# says it after its options (and `*` at the short menu); the short menu says it first after a stop
STAFF_OFFER = "staff_offer"
MAIN_MENU_STAFF = dataclasses.replace(MAIN_MENU, keys="0" + MAIN_MENU.keys,
                                      prompt=(*MAIN_MENU.prompt, STAFF_OFFER))
MAIN_MENU_AGAIN_STAFF = dataclasses.replace(MAIN_MENU_AGAIN, keys="0" + MAIN_MENU_AGAIN.keys,
                                            star=(*MAIN_MENU_AGAIN.star, STAFF_OFFER))
MORE = menu("more", "menu_more", keys="12345")
WHOSE_DEVICES = menu("whose", "whose_devices", keys="12")
OTHER_NUMBER = entry("number", "enter_other_number", length=validate.MSISDN_LEN,
                     validator=valid_mobile)
PASSWORD = entry("password", "enter_password", length=(validate.PIN_MIN, validate.PIN_MAX),
                 secret=True)
# the list is read before it (ivr.flows.common.choose_device); the tries after the first ask only
# for the choice, and `*` hears the list again
DEVICE = menu("device", "choose_device", keys="123456789", reprompt=["choose_device"])
ONE_DEVICE = menu("device", "choose_one_device", keys="1", reprompt=["choose_one_device"])
DEVICE_LONG = entry("device", "choose_device_long", length=(1, 2), immediate="0",
                    reprompt=["choose_device_long"])
IMEI = entry("imei", "enter_imei", length=validate.IMEI_LEN, validator=valid_imei)
ACTIVATION_CODE = entry("activation code", "enter_activation_code", length=validate.CODE_LEN,
                        secret=True)
BUYER_NUMBER = entry("buyer", "enter_buyer_number", length=validate.MSISDN_LEN,
                     validator=valid_mobile)
CONFIRM = menu("confirm", "confirm_or_cancel", keys="12")
NEW_CODE = entry("new code", "enter_new_code", length=validate.CODE_LEN, secret=True,
                 validator=valid_new_code)
NEW_CODE_AGAIN = entry("new code again", "repeat_new_code", length=validate.CODE_LEN,
                       secret=True)
LOST_OR_STOLEN = menu("lost or stolen", "lost_or_stolen", keys="12")
TRANSFER_REFERENCE = entry("reference", "enter_reference", length=validate.REFERENCE_LEN)
# the SMS code that proves the SIM (ivr.flows.common.sim_code): the first try says it was sent.
# An SMS takes seconds to arrive, and reading it during the call means taking the phone from the
# ear: 30 seconds to start keying, not the 8 of other questions
SIM_CODE = dataclasses.replace(
    entry("sms code", "sim_code_sent", length=lockout.SIM_CODE_LEN, secret=True,
          reprompt=["enter_sim_code"]), first_timeout=READ_FIRST_TIMEOUT)
# the devices that came in the last 7 days are read before it (ivr.flows.return_device); the
# keys are set per list, with `0` for a reference number
RETURN_ARRIVAL = menu("arrival", "choose_arrival", keys="1234567890", reprompt=["choose_arrival"])
RETURN_SIDE = menu("return side", "return_side", keys="12")
# «hear it again?» after a code, a reference or the rights: silence goes on. Voice only: on a
# screen what was read stays shown, so a text channel goes on at once
REPEAT = dataclasses.replace(menu("repeat", "code_repeat_or_finish", keys="12", patience=1),
                             voice_only=True)
