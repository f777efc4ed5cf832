"""Issue 17 as a caller meets it: a caller ID counts only where the network vouches for it, and
what moves a device or a secret needs the number's SIM as well as its PIN — the kartabl's own
vouched line, or an SMS code keyed on the call (console caller, demo registry, a fake SMS
gateway whose codes are all SIM_CODE)."""

from __future__ import annotations

import pytest

from ivr.registry import lockout
from ivr.registry.msisdn import normalize

from .conftest import (
    BUYER,
    CODE,
    PHONE,
    RETURNABLE,
    RETURNER,
    RETURNER_PIN,
    SELLER,
    SELLER_PIN,
    SIM_CODE,
    STOLEN,
    STRANGER,
    snapshot,
)

SMS_CODE_PROMPTS = {"sim_code_sent", "enter_sim_code", "wrong_sim_code", "sim_code_void"}


def owner_of(registry, imei: str) -> str | None:
    return registry.portal.device_info(imei).owner


def sent(sms_codes) -> list[tuple[str, str]]:
    return [(number, template) for number, template, _ in sms_codes]


async def test_the_own_line_vouched_for_needs_no_sms_code(dial, registry, sms_codes):
    result = await dial(f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1")
    assert "transferred" in result.heard
    assert not SMS_CODE_PROMPTS & set(result.heard) and sms_codes == []


async def test_the_own_number_forged_on_a_voip_trunk_needs_the_sms_code(dial, registry,
                                                                         sms_codes):
    """A caller ID the network does not vouch for is one more other line: the attacker who
    guessed the PIN and forged the seller's number still needs the seller's SIM."""
    before = snapshot(registry)
    result = await dial(f"3 1 {SELLER_PIN}# 1 000000 000001 000002", trusted=False)
    assert result.heard_in_order("enter_password", "device_number", "sim_code_sent",
                                 "wrong_sim_code", "sim_code_void", "main_menu_again")
    assert "enter_activation_code" not in result.heard
    assert result.path == ["transfer:refused:needs_sim"]
    assert snapshot(registry) == before
    assert sent(sms_codes) == [(normalize(SELLER), "sms_sim_code_transfer")]


async def test_a_guessed_pin_can_neither_change_the_code_nor_then_transfer(dial, registry,
                                                                           sms_codes):
    """The old path: sign in with the PIN, `5 2` set a code of one's own, `3` sell with it."""
    before = snapshot(registry)
    changed = await dial(f"5 2 2 {SELLER} {SELLER_PIN}# 1 999999", caller=STRANGER)
    assert changed.heard_in_order("sim_code_sent", "wrong_sim_code")
    assert "enter_new_code" not in changed.heard
    generated = await dial(f"4 2 {SELLER} {SELLER_PIN}# 1", caller=STRANGER)
    assert "code_is" not in generated.heard and "sim_code_sent" in generated.heard
    assert snapshot(registry) == before


@pytest.mark.parametrize(("keys", "purpose"), [
    (f"5 2 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} 24681357 24681357", "change_code"),
    (f"4 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} 1", "activation_code"),
])
async def test_the_sms_code_lets_the_owner_change_a_secret_from_another_phone(
        dial, registry, sms_codes, keys, purpose):
    result = await dial(keys, caller=STRANGER)
    assert "sim_code_sent" in result.heard
    assert result.path[0].endswith(":completed")
    assert sent(sms_codes) == [(normalize(SELLER), f"sms_sim_code_{purpose}")]


async def test_without_sms_only_the_own_line_can_and_the_caller_is_told(dial, registry):
    registry.sim_codes.sender = None  # kannel_url not configured
    before = snapshot(registry)
    result = await dial(f"3 2 {SELLER} {SELLER_PIN}# 1", caller=STRANGER)
    assert result.heard_in_order("device_number", "own_line_only", "main_menu_again")
    assert result.path == ["transfer:refused:needs_sim"]
    assert snapshot(registry) == before
    own = await dial(f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1")  # the own line still sells
    assert "transferred" in own.heard


async def test_a_gateway_that_refuses_the_sms_is_said_and_changes_nothing(dial, registry,
                                                                         sms_codes):
    sms_codes.taken = False
    result = await dial(f"3 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE}", caller=STRANGER)
    assert result.heard_in_order("device_number", "sim_code_unsent", "main_menu_again")
    assert "enter_sim_code" not in result.heard and owner_of(registry, PHONE) == normalize(SELLER)


async def test_a_number_gets_five_sms_codes_a_day_whoever_asks(dial, registry, sms_codes):
    for _ in range(lockout.SIM_CODES_PER_DAY):
        await dial(f"3 {SELLER} {SELLER_PIN}# 1", caller=None)
    result = await dial(f"3 {SELLER} {SELLER_PIN}# 1", caller=None)
    assert result.heard_in_order("device_number", "sim_code_capped")
    assert len(sms_codes) == lockout.SIM_CODES_PER_DAY
    own = await dial(f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1")  # the owner's own line still can
    assert "transferred" in own.heard


async def test_a_code_keyed_on_another_call_is_worth_nothing(dial, registry, sms_codes):
    """The code is good only on the call that asked for it."""
    await dial(f"3 2 {SELLER} {SELLER_PIN}# 1", caller=STRANGER)  # code sent, call dropped
    registry.sim_codes.sender = None  # no new code can be sent: only the old one could help
    result = await dial(f"3 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE}", caller=STRANGER)
    assert "own_line_only" in result.heard and owner_of(registry, PHONE) == normalize(SELLER)


# --- the return: both sides need their SIM; one request, one SMS ------------------------------
async def test_a_seller_who_knows_the_buyers_pin_cannot_take_the_phone_back(dial, registry,
                                                                            sms_codes):
    """Issue 17: from the seller's own line, as "another number" with the buyer's PIN, then
    confirmed from the same line. The return's request needs the buyer's SIM."""
    [sale] = registry.portal.transfers(imei=RETURNABLE)
    asked = await dial(f"5 4 2 {RETURNER} {RETURNER_PIN}# 0 {sale.reference} 123456 654321 "
                       "111111")
    assert asked.heard_in_order("enter_reference", "sim_code_sent", "wrong_sim_code",
                                "sim_code_void")
    assert "return_started" not in asked.heard
    assert sent(sms_codes) == [(normalize(RETURNER), "sms_sim_code_return_start")]
    confirm = await dial(f"5 4 1 {SELLER_PIN}# 1 1")
    assert "returns_waiting" not in confirm.heard
    assert owner_of(registry, RETURNABLE) == normalize(RETURNER)
    assert registry.returns.waiting(normalize(SELLER)) == ()


async def test_asking_again_for_a_pending_return_sends_nothing(dial, registry):
    [sale] = registry.portal.transfers(imei=RETURNABLE)
    await dial(f"5 4 1 {RETURNER_PIN}# 1 1", caller=RETURNER)  # the arrival listed
    again = await dial(f"5 4 1 {RETURNER_PIN}# {sale.reference}", caller=RETURNER)
    assert again.heard_in_order("enter_reference", "return_already_requested")
    assert "confirm_or_cancel" not in again.heard
    assert again.path == ["return:refused:already_requested"]


# --- lost or stolen: reporting from any phone, withdrawing with the SIM ------------------------
async def test_a_report_needs_no_sim_but_its_withdrawal_does(dial, registry, sms_codes):
    """The SIM may be in the stolen phone: a report from a friend's phone takes the PIN alone;
    a thief who knows the PIN cannot withdraw it and sell the phone."""
    reported = await dial(f"5 3 2 {SELLER} {SELLER_PIN}# 1 2 1", caller=STRANGER)
    assert "reported" in reported.heard and sms_codes == []
    thief = await dial(f"5 3 2 {SELLER} {SELLER_PIN}# 1 000000", caller=BUYER)
    assert thief.heard_in_order("report_exists", "sim_code_sent", "wrong_sim_code")
    assert registry.devices.inquire(PHONE).reported is not None
    owner = await dial(f"5 3 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} 1", caller=BUYER)
    assert owner.heard_in_order("sim_code_sent", "withdraw_confirm", "report_withdrawn")
    assert registry.devices.inquire(PHONE).reported is None


async def test_the_stolen_phone_of_the_demo_is_withdrawn_from_its_own_line_without_a_code(
        dial, registry, sms_codes):
    result = await dial(f"5 3 1 {RETURNER_PIN}# 1 1", caller=RETURNER)
    assert "report_withdrawn" in result.heard and sms_codes == []
    assert registry.devices.inquire(STOLEN).reported is None


# --- sign-ins: the SIM first once the budget is spent, and for a withheld crowd ------------------
async def test_once_the_failed_sign_in_budget_is_spent_the_sim_comes_before_the_pin(
        dial, registry, sms_codes, monkeypatch):
    monkeypatch.setattr(lockout, "FAILURE_BUDGET", 2)
    for n in range(2):  # two wrong PINs from other lines spend it
        await dial(f"5 1 2 {SELLER} 0000#", caller=f"0913000000{n}")
    result = await dial(f"5 1 2 {SELLER} {SIM_CODE} {SELLER_PIN}# ", caller=STRANGER)
    assert result.heard_in_order("enter_other_number", "sim_code_sent", "enter_password",
                                 "device_count")
    assert sent(sms_codes) == [(normalize(SELLER), "sms_sim_code_sign_in")]
    own = await dial(f"5 1 1 {SELLER_PIN}#")  # the own vouched line is not slowed down
    assert "sim_code_sent" not in own.heard and "device_count" in own.heard
    guesser = await dial(f"5 1 2 {SELLER} 000000 000000 000000", caller=STRANGER)
    assert "enter_password" not in guesser.heard  # no PIN is even tried without the SIM


async def test_withheld_callers_never_lock_out_a_withheld_owner_with_the_sim(
        dial, registry, sms_codes):
    """Issue 17: 30 withheld calls with one wrong PIN each once made every withheld caller hear
    "throttled" for 24 h, the owner too. Now the crowd's cap asks for the SIM instead."""
    for n in range(lockout.WITHHELD_NUMBERS):
        registry.portal.add_subscriber(f"0915{n:07d}", password="7391")
        await dial(f"5 1 0915{n:07d} 0000#", caller=None)
    result = await dial(f"5 1 {SELLER} {SIM_CODE} {SELLER_PIN}#", caller=None)
    assert result.heard_in_order("sim_code_sent", "enter_password", "device_count")
    assert "throttled" not in result.heard


async def test_the_sim_shown_before_the_pin_counts_for_the_operation_too(
        dial, registry, sms_codes, monkeypatch):
    """One SMS code a call, not two: the owner who proved the SIM to sign in sells at once."""
    monkeypatch.setattr(lockout, "FAILURE_BUDGET", 0)
    result = await dial(f"3 2 {SELLER} {SIM_CODE} {SELLER_PIN}# 1 {CODE} {BUYER} 1",
                        caller=STRANGER)
    assert result.heard.count("sim_code_sent") == 1 and "transferred" in result.heard
    assert sent(sms_codes) == [(normalize(SELLER), "sms_sim_code_sign_in")]
    assert owner_of(registry, PHONE) == normalize(BUYER)


def test_the_operator_is_told_once_at_start_when_sms_codes_are_off(registry, caplog):
    from ivr.app import Ivr

    ivr = Ivr(registry)
    try:
        with caplog.at_level("WARNING", logger="ivr.app"):
            ivr.warn_without_sms()  # the fake gateway: on
            registry.sim_codes.sender = None
            ivr.warn_without_sms()
    finally:
        ivr.desk.close()
    [line] = [r.getMessage() for r in caplog.records]
    assert "kannel_url" in line and "own line" in line


def test_the_sms_code_question_waits_long_enough_to_read_the_sms():
    """The SMS arrives during the call and is read with the phone off the ear: 30 s to start
    keying (other questions: 8), and serve's silent-peer limit allows for it."""
    from ivr.call.api import FIRST_DIGIT_TIMEOUT
    from ivr.flows import questions as q

    assert q.SIM_CODE.first_timeout == 30.0 > FIRST_DIGIT_TIMEOUT == q.PASSWORD.first_timeout
