"""The key-contract rows of issue 13 as a caller hears and keys them, through the console caller
against the demo registry (SQLite): a lost/stolen report and its withdrawal (`5` `3`), the 7-day
return from both sides (`5` `4`), the buyer's rights (`6`, `5` `5`, after an inquiry)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from ivr.registry.msisdn import normalize
from ivr.registry.store import utc_now
from ivr.registry.tables import outbox, transfers
from ivr.registry.types import Owner, Reported
from tests.registry.support import generate_code, transfer_direct

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
    said,
    snapshot,
)

RIGHTS = ["rights_inquire", "rights_transfer", "rights_return", "rights_deactivated",
          "rights_free"]


def owner_of(registry, imei: str) -> str | None:
    return registry.portal.device_info(imei).owner


def sale_reference(registry) -> str:
    """The demo's sale of the Moto G84 to the returner."""
    [sale] = registry.portal.transfers(imei=RETURNABLE)
    return sale.reference


def templates(registry) -> list[tuple[str, str]]:
    with registry.store.reading() as conn:
        return [(r.template, r.msisdn) for r in conn.execute(
            select(outbox.c.template, outbox.c.msisdn).order_by(outbox.c.id))]


# --- 5 3: lost or stolen -------------------------------------------------------------------------
async def test_the_owner_reports_a_device_stolen_and_hears_the_case_number(dial, registry):
    result = await dial(f"5 3 1 {SELLER_PIN}# 1 2 1")
    assert result.heard_in_order(
        "menu_more", "whose_devices", "enter_password", "device_number", "choose_device",
        "lost_or_stolen", "report_confirm", "report_confirm_stolen_end", "confirm_or_cancel",
        "reported", "case_is", "is_end", "code_repeat_or_finish", "main_menu_again")
    case = registry.reports.case_of(PHONE)
    assert result.digits_after("case_is") == case and said(case, 3, 3, 4) in result.text
    assert said(PHONE, 5, 5, 5) in result.text  # «report IMEI X as stolen?»
    assert registry.devices.inquire(PHONE).reported is Reported.STOLEN
    assert result.path == ["lost_stolen:completed:stolen"]
    assert templates(registry) == [("sms_reported_stolen", normalize(SELLER))]


async def test_a_lost_report_then_the_device_cannot_be_sold(dial, registry):
    await dial(f"5 3 1 {SELLER_PIN}# 1 1 1")
    assert registry.devices.inquire(PHONE).reported is Reported.LOST
    result = await dial(f"3 1 {SELLER_PIN}# 1")
    assert result.heard_in_order("device_number", "device_reported", "choose_device",
                                 "refused_reported", "main_menu_again")
    assert "enter_activation_code" not in result.heard
    assert result.path == ["transfer:refused:reported"]


async def test_an_inquiry_warns_a_would_be_buyer(dial):
    result = await dial(f"1 {STOLEN}", caller=BUYER)
    assert result.heard_in_order("enter_imei", "imei_reported_stolen", "rights_offer",
                                 "main_menu_again")
    assert "imei_registered" not in result.heard
    assert result.path == ["inquiry:reported_stolen"]


async def test_the_owner_withdraws_the_report_when_the_phone_is_found(dial, registry):
    case = registry.reports.case_of(STOLEN)
    result = await dial(f"5 3 1 {RETURNER_PIN}# 1 1", caller=RETURNER)
    assert result.heard_in_order("device_number", "device_reported", "choose_device",
                                 "report_exists", "case_is", "is_end", "withdraw_confirm",
                                 "confirm_or_cancel", "report_withdrawn", "main_menu_again")
    assert "lost_or_stolen" not in result.heard
    assert result.digits_after("case_is") == case
    assert registry.devices.inquire(STOLEN).reported is None
    assert result.path == ["lost_stolen:completed:withdrawn"]
    assert templates(registry) == [("sms_report_withdrawn", normalize(RETURNER))]


async def test_withdrawing_cancelled_changes_nothing(dial, registry):
    before = snapshot(registry)
    result = await dial(f"5 3 1 {RETURNER_PIN}# 1 2", caller=RETURNER)
    assert result.heard_in_order("withdraw_confirm", "cancelled", "main_menu_again")
    assert registry.devices.inquire(STOLEN).reported is Reported.STOLEN
    assert snapshot(registry) == before and templates(registry) == []


# --- 5 4: the 7-day return -----------------------------------------------------------------------
async def test_the_new_owner_picks_the_device_among_what_arrived_this_week(dial, registry):
    result = await dial(f"5 4 1 {RETURNER_PIN}# 1 1", caller=RETURNER)
    assert result.heard_in_order(
        "menu_more", "whose_devices", "enter_password", "returns_arrived", "device_number",
        "imei_ending", "arrived_from", "arrived_today", "choose_arrival", "activate_confirm",
        "transfer_confirm_to", "return_confirm_end", "confirm_or_cancel", "return_started")
    assert "> (device) Motorola Moto G84" in result.text  # the one sale; the stolen one is not
    listed = result.text[:result.text.index("choose_arrival")]
    assert said(RETURNABLE[-4:]) in listed and said(SELLER[-4:]) in listed
    assert said(SELLER, 4, 3, 4) in result.text  # at the confirmation
    assert "enter_reference" not in result.heard
    assert result.path == ["return:completed:return_started"]
    # asked once: the next call lists nothing and goes straight to the reference number
    again = await dial(f"5 4 1 {RETURNER_PIN}# {sale_reference(registry)}", caller=RETURNER)
    assert "returns_arrived" not in again.heard
    assert again.heard_in_order("enter_reference", "return_already_requested")


async def test_the_arrival_is_said_with_its_day(dial, registry):
    registry.store.write(lambda conn: conn.execute(
        update(transfers).where(transfers.c.imei == RETURNABLE)
        .values(at=utc_now() - timedelta(days=3))))
    result = await dial(f"5 4 1 {RETURNER_PIN}# #", caller=RETURNER)
    assert result.heard_in_order("arrived_from", "arrived_days_ago", "choose_arrival")


async def test_the_new_owner_starts_a_return_with_the_reference(dial, registry):
    reference = sale_reference(registry)
    result = await dial(f"5 4 1 {RETURNER_PIN}# 0 1111111111 {reference} 1", caller=RETURNER)
    assert result.heard_in_order(
        "menu_more", "whose_devices", "enter_password", "returns_arrived", "choose_arrival",
        "enter_reference", "no_such_transfer",
        "enter_reference", "activate_confirm", "transfer_confirm_to", "return_confirm_end",
        "confirm_or_cancel", "return_started", "main_menu_again")
    assert said(RETURNABLE, 5, 5, 5) in result.text and said(SELLER, 4, 3, 4) in result.text
    assert result.path == ["return:completed:return_started"]
    assert owner_of(registry, RETURNABLE) == normalize(RETURNER)  # until the seller confirms
    assert templates(registry) == [("sms_return_started_new", normalize(RETURNER)),
                                   ("sms_return_started_previous", normalize(SELLER))]


async def test_the_previous_owner_confirms_from_their_line_and_it_moves_back(dial, registry):
    await dial(f"5 4 1 {RETURNER_PIN}# 1 1", caller=RETURNER)  # the arrival listed
    result = await dial(f"5 4 1 {SELLER_PIN}# 1 1")
    assert result.heard_in_order(
        "enter_password", "returns_waiting", "return_side", "return_take_back",
        "return_take_back_from", "return_take_back_end", "confirm_or_cancel", "returned",
        "reference_is", "is_end", "main_menu_again")
    assert "> (number) 1: یک" in result.text
    assert said(RETURNER, 4, 3, 4) in result.text
    assert owner_of(registry, RETURNABLE) == normalize(SELLER)
    back = registry.portal.transfers(imei=RETURNABLE)[-1]
    assert back.kind == "return" and back.reference == result.digits_after("reference_is")
    assert result.path == ["return:completed"]
    assert templates(registry)[-2:] == [("sms_return_done_previous", normalize(SELLER)),
                                        ("sms_return_done_new", normalize(RETURNER))]


async def test_several_waiting_returns_are_heard_oldest_first_one_skipped(dial, registry):
    await dial(f"5 4 1 {RETURNER_PIN}# 1 1", caller=RETURNER)  # the arrival listed
    second = transfer_direct(registry, SELLER, PHONE, CODE, RETURNER).reference
    returner = Owner(normalize(RETURNER), (), sim=True)
    registry.returns.start(returner, registry.returns.returnable(returner, second).case)
    result = await dial(f"5 4 1 {SELLER_PIN}# 1 2 1")
    assert "> (number) 2: دو" in result.text
    assert result.heard_in_order("returns_waiting", "return_side", "return_take_back",
                                 "cancelled", "return_take_back", "returned")
    assert owner_of(registry, RETURNABLE) == normalize(RETURNER)  # the older one, skipped
    assert owner_of(registry, PHONE) == normalize(SELLER)  # the newer one, taken back
    assert [c.imei for c in registry.returns.waiting(normalize(SELLER))] == [RETURNABLE]


async def test_another_line_confirms_a_return_only_with_the_sms_code(dial, registry, sms_codes):
    """The previous owner's PIN from another line (known to shop staff, say) is not enough:
    three wrong SMS codes move nothing; the code sent to the seller's phone does."""
    await dial(f"5 4 1 {RETURNER_PIN}# 1 1", caller=RETURNER)  # the arrival listed
    wrong = await dial(f"5 4 2 {SELLER} {SELLER_PIN}# 1 000000 111111 222222", caller=BUYER)
    assert wrong.heard_in_order("enter_password", "returns_waiting", "return_side",
                                "sim_code_sent", "wrong_sim_code", "enter_sim_code",
                                "wrong_sim_code", "enter_sim_code", "sim_code_void")
    assert "return_take_back" not in wrong.heard
    assert wrong.path == ["return:refused:needs_sim"]
    assert owner_of(registry, RETURNABLE) == normalize(RETURNER)
    right = await dial(f"5 4 2 {SELLER} {SELLER_PIN}# 1 {SIM_CODE} 1", caller=BUYER)
    assert right.heard_in_order("sim_code_sent", "return_take_back", "returned")
    assert owner_of(registry, RETURNABLE) == normalize(SELLER)
    assert [t for _, t, _ in sms_codes] == ["sms_sim_code_return_confirm"] * 2


async def test_after_day_seven_a_return_is_refused(dial, registry):
    reference = sale_reference(registry)
    registry.store.clock = lambda: utc_now() + timedelta(days=7, minutes=1)
    before = snapshot(registry)
    result = await dial(f"5 4 1 {RETURNER_PIN}# {reference}", caller=RETURNER)
    assert result.heard_in_order("enter_reference", "return_window_over", "main_menu_again")
    assert "confirm_or_cancel" not in result.heard
    assert result.path == ["return:refused:return_window_over"]
    assert snapshot(registry) == before and templates(registry) == []


async def test_a_device_moved_on_cannot_be_returned(dial, registry):
    reference = sale_reference(registry)
    code = generate_code(registry, RETURNER, RETURNABLE).code
    assert transfer_direct(registry, RETURNER, RETURNABLE, code, BUYER).ok
    result = await dial(f"5 4 1 {RETURNER_PIN}# {reference}", caller=RETURNER)
    assert result.heard_in_order("enter_reference", "return_moved_on", "main_menu_again")
    assert result.path == ["return:refused:moved_on"]
    assert owner_of(registry, RETURNABLE) == normalize(BUYER)


# --- the buyer's rights --------------------------------------------------------------------------
async def test_the_buyers_rights_need_no_password(dial):
    for keys in ("6", "5 5"):
        result = await dial(keys, caller=None)
        assert result.heard_in_order(*RIGHTS, "code_repeat_or_finish", "main_menu_again")
        assert "enter_password" not in result.heard and "whose_devices" not in result.heard
        assert result.path == ["buyer_rights:completed"]


async def test_the_buyers_rights_are_offered_after_an_inquiry(dial):
    result = await dial(f"1 {PHONE} 6 1 2", caller=BUYER)
    assert result.heard_in_order("imei_registered", "rights_offer", "main_menu_again", *RIGHTS,
                                 "code_repeat_or_finish", *RIGHTS, "code_repeat_or_finish")
    assert result.path == ["inquiry:registered", "buyer_rights:completed"]


async def test_a_reported_device_blocked_since_can_still_be_withdrawn(dial, registry):
    registry.portal.set_device_status(STOLEN, "blocked")
    result = await dial(f"5 3 1 {RETURNER_PIN}# 1 1", caller=RETURNER)
    assert result.heard_in_order("device_blocked", "device_reported", "report_exists",
                                 "withdraw_confirm", "report_withdrawn")
    assert "refused_blocked" not in result.heard
    assert registry.devices.inquire(STOLEN).reported is None
