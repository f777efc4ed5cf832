"""Every path of the seed procedures as a caller hears and keys it, through the console caller
against a real SQLite registry. Key strings read like what a caller types: spaces separate steps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import normalize

from .conftest import (
    BUYER,
    CODE,
    EMPTY,
    EMPTY_PIN,
    MANY,
    MANY_IMEIS,
    MANY_PIN,
    NO_PIN,
    PHONE,
    PHONE_BLOCKED,
    PHONE_NO_CODE,
    SELLER,
    SELLER_PIN,
    SIM_CODE,
    STRANGER,
    UNKNOWN,
    UNREGISTERED,
    said,
    snapshot,
)

SIGN_IN = f"3 1 {SELLER_PIN}#"  # transfer, my own number, password


def owner_of(registry, imei: str) -> str | None:
    return registry.portal.device_info(imei).owner


# --- main menu -----------------------------------------------------------------------------------
async def test_silence_at_the_main_menu_ends_politely(dial):
    result = await dial("")
    assert result.outcome == "timed_out"
    assert result.heard == ["welcome", "main_menu", "no_input", "main_menu", "no_input",
                            "main_menu", "no_input", "goodbye"]


async def test_star_repeats_the_menu_and_a_wrong_key_is_explained(dial):
    result = await dial("* 9")
    assert result.heard[:5] == ["welcome", "main_menu", "main_menu", "invalid_choice",
                                "main_menu"]


async def test_after_an_operation_the_caller_is_back_at_the_main_menu(dial):
    result = await dial(f"1 {PHONE} 1 {PHONE}")
    assert result.heard.count("imei_registered") == 2
    assert result.path == ["inquiry:registered", "inquiry:registered"]
    assert result.outcome == "inquiry:registered"


# --- 1: IMEI inquiry -----------------------------------------------------------------------------
@pytest.mark.parametrize(("imei", "answer"), [
    (PHONE, "imei_registered"), (UNREGISTERED, "imei_unregistered"),
    (PHONE_BLOCKED, "imei_blocked"), (UNKNOWN, "imei_unknown"),
])
async def test_inquiry_answers(dial, imei, answer):
    result = await dial(f"1 {imei}")
    assert result.heard_in_order("enter_imei", answer, "main_menu_again")


async def test_inquiry_of_a_registered_phone_says_its_name(dial):
    result = await dial(f"1 {PHONE}")
    assert "> (device) Samsung Galaxy A54" in result.text


async def test_invalid_imei_is_explained_and_asked_again(dial):
    bad_luhn = PHONE[:-1] + str((int(PHONE[-1]) + 1) % 10)
    result = await dial(f"1 {bad_luhn} {PHONE}")
    assert result.heard_in_order("enter_imei", "imei_invalid", "enter_imei", "imei_registered")


async def test_short_imei_then_silence_counts_as_a_try(dial):
    result = await dial("1 12345")
    assert result.heard_in_order("enter_imei", "invalid_entry", "enter_imei", "no_input")
    assert result.outcome == "timed_out"


async def test_three_invalid_imeis_end_with_a_goodbye(dial):
    bad = "1" * 15
    result = await dial(f"1 {bad} {bad} {bad}")
    assert result.outcome == "gave_up"
    assert result.heard[-2:] == ["too_many_attempts", "goodbye"]


# --- 3: direct transfer --------------------------------------------------------------------------
async def test_direct_transfer_moves_the_device(dial, registry):
    result = await dial(f"{SIGN_IN} 1 {CODE} {BUYER} 1")
    assert result.heard_in_order(
        "whose_devices", "enter_password", "device_number", "choose_device",
        "enter_activation_code", "enter_buyer_number", "transfer_confirm",
        "transfer_confirm_to", "transfer_confirm_end", "confirm_or_cancel", "transferred",
        "reference_is", "is_end", "code_repeat_or_finish", "main_menu_again", "goodbye",
    )
    assert owner_of(registry, PHONE) == normalize(BUYER)
    transfers = registry.portal.transfers(imei=PHONE)
    assert len(transfers) == 1
    assert transfers[0].reference == result.digits_after("reference_is")
    assert said(PHONE, 5, 5, 5) in result.text  # «transfer IMEI X …»
    assert said(BUYER, 4, 3, 4) in result.text  # «… to mobile number Y?»
    assert result.outcome == "transfer:completed"
    assert not registry.portal.device_info(PHONE).has_activation_code  # the old code is gone


async def test_the_device_list_reads_name_and_imei_ending_in_kartabl_order(dial):
    result = await dial(SIGN_IN)
    lines = [line for line in result.text.splitlines() if "(device)" in line]
    assert lines[:3] == ["> (device) Samsung Galaxy A54", "> (device) Xiaomi Redmi Note 12",
                         "> (device) Apple iPhone 13"]
    assert said(PHONE[-4:]) in result.text


async def test_transfer_for_another_number(dial, registry, sms_codes):
    """From another line the PIN alone moves nothing: the SIM's SMS code comes after the
    device is chosen, before its activation code."""
    result = await dial(f"3 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} {CODE} {BUYER} 1",
                        caller=STRANGER)
    assert result.heard_in_order("whose_devices", "enter_other_number", "enter_password",
                                 "device_number", "sim_code_sent", "enter_activation_code",
                                 "transferred")
    assert owner_of(registry, PHONE) == normalize(BUYER)
    assert [(n, t) for n, t, _ in sms_codes] == [(normalize(SELLER), "sms_sim_code_transfer")]


async def test_a_withheld_caller_is_not_offered_this_number_but_asked_for_it(dial, registry):
    result = await dial(f"3 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} {CODE} {BUYER} 1", caller=None)
    assert result.heard_in_order("no_caller_id", "enter_other_number", "enter_password",
                                 "transferred")
    assert "whose_devices" not in result.heard
    assert owner_of(registry, PHONE) == normalize(BUYER)


async def test_invalid_other_number_is_asked_again(dial):
    result = await dial(f"3 2 01234567890 {SELLER} {SELLER_PIN}#")
    assert result.heard_in_order("enter_other_number", "invalid_number", "enter_other_number",
                                 "enter_password")


@pytest.mark.parametrize("caller", [NO_PIN, STRANGER])
async def test_no_password_stops_and_sends_the_caller_to_the_web_portal(dial, registry, caller):
    before = snapshot(registry)
    result = await dial("3 1", caller=caller)
    assert result.heard_in_order("whose_devices", "no_password", "main_menu_again")
    assert "enter_password" not in result.heard
    assert result.path == ["transfer:no_password"]
    assert snapshot(registry) == before


async def test_wrong_password_is_told_with_attempts_left_then_locks(dial, registry):
    result = await dial("3 1 0000# 0000# 0000#")
    assert result.heard_in_order("enter_password", "wrong_password", "attempts_left",
                                 "attempts_left_end", "enter_password", "wrong_password",
                                 "attempts_left", "attempts_left_end", "enter_password",
                                 "locked", "try_again_after", "minutes_later", "main_menu_again")
    assert "> (number) 2: دو" in result.text  # «you can try up to two more times»
    assert "> (number) 15: پانزده" in result.text  # «… again in fifteen minutes»
    assert result.path == ["transfer:refused:locked"]
    assert registry.portal.subscriber_info(SELLER).locked_until is not None
    # locked: said before the password is asked, so even the right one is never keyed
    again = await dial(SIGN_IN)
    assert again.heard_in_order("whose_devices", "locked", "try_again_after", "main_menu_again")
    assert "enter_password" not in again.heard


async def test_wrong_then_right_password(dial, registry):
    result = await dial(f"3 1 9999# {SELLER_PIN}# 1 {CODE} {BUYER} 1")
    assert result.heard_in_order("wrong_password", "enter_password", "device_number",
                                 "transferred")


async def test_no_devices(dial):
    result = await dial(f"3 1 {EMPTY_PIN}#", caller=EMPTY)
    assert result.heard_in_order("enter_password", "no_devices", "main_menu_again")
    assert result.path == ["transfer:no_devices"]


async def test_ten_or_more_devices_read_nine_at_a_time(dial, registry):
    # first page (9), 0 = next page (3), then device 12 followed by #
    result = await dial(f"3 1 {MANY_PIN}# 0 12# {CODE} {BUYER} 1", caller=MANY)
    device_lines = [line for line in result.text.splitlines() if "(device)" in line]
    assert len(device_lines) == 12
    assert result.heard_in_order("choose_device_long", "list_end", "choose_device_long_last",
                                 "transferred")  # the last page says 0 starts the list again
    assert owner_of(registry, MANY_IMEIS[11]) == normalize(BUYER)
    assert owner_of(registry, MANY_IMEIS[0]) == normalize(MANY)


async def test_ten_or_more_devices_choose_from_the_first_page(dial, registry):
    await dial(f"3 1 {MANY_PIN}# 3# {CODE} {BUYER} 1", caller=MANY)
    assert owner_of(registry, MANY_IMEIS[2]) == normalize(BUYER)


async def test_device_number_out_of_range_is_refused(dial):
    result = await dial(f"3 1 {MANY_PIN}# 13# 2#", caller=MANY)
    assert result.heard_in_order("choose_device_long", "invalid_choice", "choose_device_long",
                                 "enter_activation_code")


async def test_wrong_activation_code_is_told_and_asked_again(dial, registry):
    result = await dial(f"{SIGN_IN} 1 87654321 {CODE} {BUYER} 1")
    assert result.heard_in_order("enter_activation_code", "wrong_code", "attempts_left",
                                 "enter_activation_code", "enter_buyer_number", "transferred")


async def test_wrong_activation_code_three_times_locks_the_device(dial, registry):
    before = snapshot(registry)
    result = await dial(f"{SIGN_IN} 1 87654321 87654321 87654321")
    assert result.heard_in_order("wrong_code", "wrong_code", "locked", "try_again_after",
                                 "main_menu_again")
    assert result.path == ["transfer:refused:code_locked"]
    assert snapshot(registry)["transfers"] == before["transfers"]
    assert owner_of(registry, PHONE) == normalize(SELLER)


async def test_a_device_without_a_code_is_refused_as_soon_as_it_is_chosen(dial, registry):
    result = await dial(f"{SIGN_IN} 2")
    assert result.heard_in_order("choose_device", "no_code_owner", "main_menu_again")
    assert "enter_activation_code" not in result.heard  # the owner has no code to key
    assert result.path == ["transfer:refused:no_code"]
    assert owner_of(registry, PHONE_NO_CODE) == normalize(SELLER)


async def test_a_blocked_device_is_refused_as_soon_as_it_is_chosen(dial, registry):
    result = await dial(f"{SIGN_IN} 3")
    assert result.heard_in_order("choose_device", "refused_blocked", "main_menu_again")
    assert "enter_activation_code" not in result.heard
    assert result.path == ["transfer:refused:blocked"]
    assert owner_of(registry, PHONE_BLOCKED) == normalize(SELLER)


async def test_buyer_equal_to_owner_is_refused_and_asked_again(dial, registry):
    result = await dial(f"{SIGN_IN} 1 {CODE} {SELLER} {BUYER} 1")
    assert result.heard_in_order("enter_buyer_number", "buyer_is_owner", "enter_buyer_number",
                                 "transferred")


async def test_invalid_buyer_number_is_refused_and_asked_again(dial, registry):
    result = await dial(f"{SIGN_IN} 1 {CODE} 12345678901 {BUYER} 1")
    assert result.heard_in_order("enter_buyer_number", "invalid_number", "enter_buyer_number",
                                 "transferred")


async def test_cancel_at_the_confirmation_changes_nothing(dial, registry):
    before = snapshot(registry)
    result = await dial(f"{SIGN_IN} 1 {CODE} {BUYER} 2")
    assert result.heard_in_order("confirm_or_cancel", "cancelled", "main_menu_again")
    assert result.path == ["transfer:cancelled"]
    assert snapshot(registry) == before


async def test_a_strangers_wrong_passwords_never_lock_the_owner_out(dial, registry):
    stranger = await dial(f"3 2 {SELLER} 0000# 0000# 0000#", caller=STRANGER)
    assert stranger.path == ["transfer:refused:locked"]
    again = await dial(f"3 2 {SELLER}", caller=BUYER)  # other lines: locked for everyone
    assert again.heard_in_order("enter_other_number", "locked")
    owner = await dial(f"{SIGN_IN} 1 {CODE} {BUYER} 1")  # the owner, from the owner's own line
    assert owner.path == ["transfer:completed"]
    [attempt, *_] = [e for e in registry.portal.audit(msisdn=SELLER)
                     if e.event == "login_failed"]
    assert attempt.caller == normalize(STRANGER) and attempt.call_id == stranger.call.call_id


async def test_a_call_that_tries_a_third_number_is_refused_before_its_password(dial):
    result = await dial(f"5 1 2 {SELLER} {SELLER_PIN}# 5 1 2 {MANY} {MANY_PIN}# 5 1 2 {EMPTY}",
                        caller=BUYER)
    assert result.path == ["my_devices:completed", "my_devices:completed",
                           "my_devices:refused:throttled"]
    assert result.heard.count("enter_password") == 2
    assert result.heard_in_order("enter_other_number", "throttled", "main_menu_again")


# --- silence and hang-up at every step of a transfer ---------------------------------------------
TRANSFER_STEPS = ["3", "1", f"{SELLER_PIN}#", "1", CODE, BUYER]


@pytest.mark.parametrize("steps", range(1, len(TRANSFER_STEPS) + 1))
async def test_silence_at_each_transfer_question_changes_nothing(dial, registry, steps):
    before = snapshot(registry)
    result = await dial(" ".join(TRANSFER_STEPS[:steps]))
    assert result.outcome == "timed_out"
    assert result.heard[-2:] == ["too_many_attempts", "goodbye"]
    assert snapshot(registry) == before


@pytest.mark.parametrize("steps", range(0, len(TRANSFER_STEPS) + 1))
async def test_hang_up_at_each_transfer_step_changes_nothing(dial, registry, steps):
    before = snapshot(registry)
    result = await dial(" ".join(TRANSFER_STEPS[:steps]) + " h")
    assert result.outcome == "hung_up"
    assert snapshot(registry) == before
    logged = registry.call_log.calls()[0]
    assert logged.outcome == "hung_up"
    assert logged.path == (["transfer"] if steps else [])


# --- 4: activation code (indirect sale, seller's half) -------------------------------------------
async def test_get_activation_code_then_the_buyer_activates_with_it(dial, registry):
    result = await dial(f"4 1 {SELLER_PIN}# 2 1 2", caller=SELLER)
    assert result.heard_in_order("choose_device", "code_generated", "code_is", "is_end",
                                 "code_repeat_or_finish", "code_is", "code_repeat_or_finish",
                                 "main_menu_again")
    assert "code_replace_confirm" not in result.heard  # that device had no code to replace
    code = result.digits_after("code_is")
    assert len(code) == 8 and code.isdigit()
    assert registry.portal.device_info(PHONE_NO_CODE).has_activation_code

    activated = await dial(f"2 {PHONE_NO_CODE} {code} 1", caller=BUYER)
    assert activated.heard_in_order("enter_imei", "enter_activation_code", "activate_confirm",
                                    "activate_confirm_to", "activate_confirm_end",
                                    "confirm_or_cancel", "activated", "change_code_advice",
                                    "reference_is", "is_end", "main_menu_again")
    assert owner_of(registry, PHONE_NO_CODE) == normalize(BUYER)
    assert activated.outcome == "activate:completed"


async def test_a_new_activation_code_replaces_the_old_one_once_confirmed(dial, registry):
    result = await dial(f"4 1 {SELLER_PIN}# 1 1 2")
    assert result.heard_in_order("choose_device", "code_replace_confirm", "confirm_or_cancel",
                                 "code_generated", "code_is")
    result = await dial(f"2 {PHONE} {CODE}", caller=BUYER)  # the old code
    assert "wrong_code" in result.heard
    assert owner_of(registry, PHONE) == normalize(SELLER)


async def test_activation_code_for_a_blocked_device_is_refused(dial, registry):
    result = await dial(f"4 1 {SELLER_PIN}# 3")
    assert result.heard_in_order("choose_device", "refused_blocked", "main_menu_again")


# --- 2: activate a bought device -----------------------------------------------------------------
async def test_activate_with_withheld_caller_id_is_refused_politely(dial):
    result = await dial(f"2 {PHONE} {CODE} 1", caller=None)
    assert result.heard_in_order("no_caller_id_activate", "main_menu_again")
    assert result.path[0] == "activate:refused:no_caller_id"


async def test_activate_cancelled_changes_nothing(dial, registry):
    before = snapshot(registry)
    result = await dial(f"2 {PHONE} {CODE} 2", caller=BUYER)
    assert "cancelled" in result.heard
    assert snapshot(registry) == before


async def test_activate_a_device_you_already_own(dial, registry):
    before = snapshot(registry)
    result = await dial(f"2 {PHONE}", caller=SELLER)
    assert result.heard_in_order("enter_imei", "already_yours", "main_menu_again")
    assert "enter_activation_code" not in result.heard  # told right after the IMEI
    assert result.path == ["activate:refused:already_yours"]
    assert snapshot(registry) == before


@pytest.mark.parametrize(("imei", "refusal"), [
    (PHONE_NO_CODE, "refused_no_code"), (PHONE_BLOCKED, "refused_blocked"),
    (UNKNOWN, "imei_unknown"), (UNREGISTERED, "refused_not_registered"),
])
async def test_activation_refusals_come_right_after_the_imei(dial, registry, imei, refusal):
    result = await dial(f"2 {imei}", caller=BUYER)
    assert result.heard_in_order("enter_imei", refusal, "main_menu_again")
    assert "enter_activation_code" not in result.heard
    assert registry.portal.transfers(imei=imei) == []


# --- 5 1: my devices ------------------------------------------------------------------------------
async def test_my_devices_says_how_many_and_lists_them(dial):
    result = await dial(f"5 1 1 {SELLER_PIN}#")
    assert result.heard_in_order("menu_more", "enter_password", "device_count",
                                 "device_count_end", "device_number", "device_blocked",
                                 "list_end", "main_menu_again")
    assert result.heard.count("device_blocked") == 1  # the iPhone 13, the third
    assert "> (number) 3: سه" in result.text
    assert result.outcome == "my_devices:completed"


# --- 5 2: change activation code ------------------------------------------------------------------
async def test_change_activation_code(dial, registry):
    result = await dial(f"5 2 1 {SELLER_PIN}# 1 11112222 11113333 11112222 11112222")
    assert result.heard_in_order("enter_new_code", "repeat_new_code", "codes_mismatch",
                                 "enter_new_code", "repeat_new_code", "code_changed")
    assert "11112222" not in result.text  # a secret entry is masked in the transcript
    old = await dial(f"2 {PHONE} {CODE}", caller=BUYER)
    assert "wrong_code" in old.heard
    new = await dial(f"2 {PHONE} 11112222 1", caller=BUYER)
    assert "activated" in new.heard
    assert owner_of(registry, PHONE) == normalize(BUYER)


# --- secrets -------------------------------------------------------------------------------------
async def test_password_and_codes_are_masked_and_never_in_the_call_log(dial, registry):
    result = await dial(f"{SIGN_IN} 1 {CODE} {BUYER} 1")
    assert SELLER_PIN not in result.text and CODE not in result.text
    logged = str(registry.call_log.calls())
    assert SELLER_PIN not in logged and CODE not in logged


# --- a transfer racing another on the same device ------------------------------------------------
class RacingRegistry(AsyncRegistry):
    """Holds every transfer at a barrier until both calls have confirmed."""

    def __init__(self, registry, barrier: asyncio.Barrier) -> None:
        super().__init__(registry)
        self.barrier = barrier

    async def transfer(self, *args, **kwargs):
        await self.barrier.wait()
        return await super().transfer(*args, **kwargs)


async def test_two_transfers_of_one_device_at_once_exactly_one_wins(dial, registry):
    shared = RacingRegistry(registry, asyncio.Barrier(2))
    try:
        first, second = await asyncio.gather(
            dial(f"{SIGN_IN} 1 {CODE} {BUYER} 1", aregistry=shared),
            dial(f"3 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} {CODE} {STRANGER} 1", caller=BUYER,
                 aregistry=shared),
        )
    finally:
        shared.close()
    outcomes = sorted([first.path[0], second.path[0]])
    assert outcomes == ["transfer:completed", "transfer:refused:changed"]
    loser = first if first.path[0].endswith("changed") else second
    assert "changed_meanwhile" in loser.heard
    assert len(registry.portal.transfers(imei=PHONE)) == 1


# --- the caller's experience: navigation, short menus, early refusals ----------------------------
async def test_star_restarts_an_entry_without_costing_a_try(dial):
    """`5 1 1 1* 1* 1* 1234#` once hung up: three restarts used the three tries."""
    result = await dial(f"5 1 1 1* 1* 1* {SELLER_PIN}#")
    assert result.path == ["my_devices:completed"]
    assert "invalid_entry" not in result.heard


async def test_after_an_operation_a_short_menu_and_one_silence_ends_the_call(dial):
    result = await dial(f"1 {PHONE}")
    assert result.heard[-4:] == ["imei_registered", "rights_offer", "main_menu_again", "goodbye"]
    assert result.heard.count("main_menu") == 1  # the long menu only once
    assert result.outcome == "inquiry:registered"


async def test_star_at_the_short_menu_reads_the_whole_menu(dial):
    result = await dial(f"1 {PHONE} * 1 {PHONE}")
    assert result.heard_in_order("imei_registered", "main_menu_again", "main_menu", "enter_imei")


async def test_a_wrong_choice_does_not_read_the_device_list_again(dial):
    result = await dial(f"{SIGN_IN} 7 1 {CODE} {BUYER} 1")
    assert result.heard_in_order("choose_device", "invalid_choice", "choose_device",
                                 "enter_activation_code")
    assert result.heard.count("device_number") == 3  # read once, not once per try


async def test_star_at_the_device_choice_reads_the_list_again(dial):
    result = await dial(f"{SIGN_IN} * 1")
    assert result.heard.count("device_number") == 6


async def test_the_reference_number_can_be_heard_again(dial, registry):
    result = await dial(f"{SIGN_IN} 1 {CODE} {BUYER} 1 1 2")
    assert result.heard.count("reference_is") == 2
    reference = registry.portal.transfers(imei=PHONE)[0].reference
    assert result.digits_after("reference_is") == reference
    assert said(reference, 3, 3, 4) in result.text  # read in groups


async def test_cancelling_a_new_code_keeps_the_old_one(dial, registry):
    result = await dial(f"4 1 {SELLER_PIN}# 1 2")
    assert result.heard_in_order("code_replace_confirm", "confirm_or_cancel", "cancelled")
    assert "code_generated" not in result.heard
    assert result.path == ["activation_code:cancelled"]
    assert (await dial(f"2 {PHONE} {CODE} 1", caller=BUYER)).path == ["activate:completed"]


@pytest.mark.parametrize("trivial", ["00000000", "12345678", "87654321", "90123456"])
async def test_a_trivial_new_code_is_refused_and_asked_again(dial, trivial):
    result = await dial(f"5 2 1 {SELLER_PIN}# 1 {trivial} 11112222 11112222")
    assert result.heard_in_order("enter_new_code", "code_too_simple", "enter_new_code",
                                 "repeat_new_code", "code_changed")


async def test_a_long_lock_is_told_in_hours(dial, registry):
    from sqlalchemy import update

    from ivr.registry.tables import subscribers

    until = datetime.now(UTC) + timedelta(hours=23, minutes=10)
    with registry.store.engine.begin() as conn:
        conn.execute(update(subscribers).values(locked_until=until, lock_level=3))
    result = await dial(SIGN_IN)
    assert result.heard_in_order("locked", "try_again_after", "hours_later")
    assert "> (number) 24: بیست و چهار" in result.text


async def test_the_code_is_read_in_two_groups_of_four(dial):
    result = await dial(f"4 1 {SELLER_PIN}# 2")
    code = result.digits_after("code_is")
    assert said(code, 4, 4) in result.text


@pytest.mark.parametrize(("keys", "where"), [
    ("1 #", "enter_imei"), ("3 #", "whose_devices"), ("3 1 #", "enter_password"),
    (f"{SIGN_IN} #", "choose_device"), (f"{SIGN_IN} 1 #", "enter_activation_code"),
    (f"{SIGN_IN} 1 {CODE} #", "enter_buyer_number"), ("5 #", "menu_more"),
])
async def test_hash_alone_goes_back_to_the_main_menu_from_any_question(dial, registry, keys,
                                                                       where):
    before = snapshot(registry)
    result = await dial(f"{keys} 1 {PHONE}")
    assert result.heard_in_order(where, "main_menu", "enter_imei", "imei_registered")
    assert result.path[-1] == "inquiry:registered"
    assert snapshot(registry) == before


async def test_star_hash_06_hash_at_the_imei_question_is_explained_without_a_try(dial):
    result = await dial(f"1 *#06# *#06# *#06# {PHONE}")
    assert result.heard_in_order("enter_imei", "phone_code", "enter_imei", "phone_code",
                                 "enter_imei", "phone_code", "enter_imei", "imei_registered")
    assert "invalid_entry" not in result.heard
    assert result.path == ["inquiry:registered"]


async def test_the_imei_prompt_never_asks_to_dial_on_this_phone():
    from ivr.prompts import catalogue

    assert "ستاره" not in catalogue.text("enter_imei") and "مربع" not in catalogue.text(
        "enter_imei")


@pytest.mark.parametrize(("keys", "caller", "logged"), [
    (f"{SIGN_IN} 1 {CODE} {BUYER} 1 h", SELLER, "transfer:completed"),
    (f"2 {PHONE} {CODE} 1 h", BUYER, "activate:completed"),
    (f"4 1 {SELLER_PIN}# 2 h", SELLER, "activation_code:completed"),
])
async def test_hanging_up_while_a_number_is_read_back_keeps_the_operation_done(
        dial, registry, keys, caller, logged):
    result = await dial(keys, caller=caller)
    assert result.outcome == logged
    assert registry.call_log.calls()[0].outcome == logged
