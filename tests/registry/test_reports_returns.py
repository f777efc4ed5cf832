"""Lost or stolen by phone and the 7-day mutual return, on SQLite and PostgreSQL: what each
writes (the device, the audit, the SMS receipts in the same transaction), every refusal, the
store's clock for the windows, and two confirmations racing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ivr.registry.msisdn import normalize
from ivr.registry.returns import CONFIRM_WINDOW, RETURN_WINDOW
from ivr.registry.tables import outbox
from ivr.registry.types import Origin, PasswordStatus, Refusal, Reported

from .cast import BUYER, BUYER_PIN, CODE, PHONE, PHONE_NO_CODE, SELLER, STRANGER, populate
from .support import activate, change_code, devices_of, generate_code, owner, transfer_direct
from .test_concurrency import run_together

SELLER_LINE = Origin(normalize(SELLER), "call-seller")
BUYER_LINE = Origin(normalize(BUYER), "call-buyer")


@pytest.fixture
def reg(registry):
    populate(registry)
    return registry


def phone_of(registry, msisdn: str):
    return next(d for d in devices_of(registry, msisdn) if d.imei == PHONE)


def messages(registry, template: str) -> list:
    with registry.store.reading() as conn:
        return conn.execute(select(outbox).where(outbox.c.template == template)
                            .order_by(outbox.c.id)).all()


def events(registry) -> list[str]:
    return [e.event for e in registry.portal.audit()]


# --- lost or stolen ------------------------------------------------------------------------------
def test_a_report_freezes_the_device_and_tells_would_be_buyers(reg):
    device = phone_of(reg, SELLER)
    made = reg.reports.report(owner(SELLER), device, Reported.STOLEN, origin=SELLER_LINE)
    assert made.ok and len(made.reference) == 10 and made.reference.isdigit()
    assert reg.devices.inquire(PHONE).reported is Reported.STOLEN
    assert reg.portal.device_info(PHONE).version == device.version + 1
    assert reg.portal.device_info(PHONE).reported == "stolen"  # what `hamta-ivr device show` says
    assert phone_of(reg, SELLER).reported is Reported.STOLEN
    assert reg.reports.case_of(PHONE) == made.reference
    [audit] = [e for e in reg.portal.audit() if e.event == "reported_stolen"]
    assert (audit.caller, audit.call_id) == (normalize(SELLER), "call-seller")
    assert made.reference in audit.detail
    [sms] = messages(reg, "sms_reported_stolen")
    assert sms.msisdn == normalize(SELLER) and sms.imei == PHONE
    assert sms.params == {"reference": made.reference}
    # frozen: no sale, no activation, no new code
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER).refusal is Refusal.REPORTED
    assert activate(reg, BUYER, PHONE, CODE).refusal is Refusal.REPORTED
    assert generate_code(reg, SELLER, PHONE).refusal is Refusal.REPORTED
    assert reg.devices.for_buyer(PHONE, BUYER).refusal is Refusal.REPORTED
    assert reg.portal.device_info(PHONE).owner == normalize(SELLER)


def test_a_report_refuses_a_transfer_already_in_flight(reg):
    check = reg.devices.check_code(PHONE, CODE, owner=owner(SELLER))
    assert check.grant is not None  # the code was verified on the seller's call …
    reg.reports.report(owner(SELLER), phone_of(reg, SELLER), Reported.LOST)
    moved = reg.devices.transfer(owner(SELLER), check.grant, BUYER)  # … then it was reported
    assert moved.refusal is Refusal.CHANGED
    assert reg.portal.transfers(imei=PHONE) == []


def test_withdrawing_the_report_lets_the_device_be_sold_again(reg):
    made = reg.reports.report(owner(SELLER), phone_of(reg, SELLER), Reported.LOST)
    withdrawn = reg.reports.withdraw(owner(SELLER), phone_of(reg, SELLER), origin=SELLER_LINE)
    assert withdrawn.ok and withdrawn.reference == made.reference
    assert reg.devices.inquire(PHONE).reported is None
    assert reg.reports.case_of(PHONE) is None
    assert [m.params for m in messages(reg, "sms_report_withdrawn")] == [
        {"reference": made.reference}]
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER).ok


@pytest.mark.parametrize("who", [BUYER, STRANGER])
def test_only_the_owner_reports(reg, who):
    refused = reg.reports.report(owner(who), phone_of(reg, SELLER), Reported.STOLEN)
    assert refused.refusal is Refusal.NOT_OWNER
    assert reg.devices.inquire(PHONE).reported is None
    assert messages(reg, "sms_reported_stolen") == []
    assert "refused" in events(reg)


def test_a_stale_choice_is_refused_and_nothing_written(reg):
    seen = phone_of(reg, SELLER)
    reg.reports.report(owner(SELLER), seen, Reported.STOLEN)
    assert reg.reports.report(owner(SELLER), seen, Reported.LOST).refusal is Refusal.CHANGED
    fresh = phone_of(reg, SELLER)
    assert reg.reports.report(owner(SELLER), fresh, Reported.LOST).refusal is Refusal.REPORTED
    reg.reports.withdraw(owner(SELLER), fresh)
    assert reg.reports.withdraw(owner(SELLER), fresh).refusal is Refusal.CHANGED
    assert len(messages(reg, "sms_reported_stolen")) == 1
    assert messages(reg, "sms_reported_lost") == []


# --- the 7-day return ----------------------------------------------------------------------------
def sold(reg) -> str:
    """The seller's phone transferred to the buyer; the transfer's reference."""
    moved = transfer_direct(reg, SELLER, PHONE, CODE, BUYER)
    assert moved.ok
    return moved.reference


def test_a_return_moves_the_device_back_in_one_transaction(reg):
    reference = sold(reg)
    check = reg.returns.returnable(owner(BUYER), reference)
    assert check.ok and check.case.previous_owner == normalize(SELLER)
    started = reg.returns.start(owner(BUYER), check.case, origin=BUYER_LINE)
    assert started.ok and started.case.confirm_by - started.case.requested_at == CONFIRM_WINDOW
    assert [m.msisdn for m in messages(reg, "sms_return_started_new")] == [normalize(BUYER)]
    [to_seller] = messages(reg, "sms_return_started_previous")
    assert to_seller.msisdn == normalize(SELLER)
    assert to_seller.params == {"number": BUYER, "reference": reference}
    [waiting] = reg.returns.waiting(normalize(SELLER))
    assert waiting.reference == reference and waiting.imei == PHONE
    done = reg.returns.confirm(owner(SELLER), waiting, origin=SELLER_LINE)
    assert done.ok
    assert reg.portal.device_info(PHONE).owner == normalize(SELLER)
    back = reg.portal.transfers(imei=PHONE)[-1]
    assert (back.kind, back.reference, back.to_msisdn) == ("return", done.reference,
                                                           normalize(SELLER))
    assert len(messages(reg, "sms_return_done_previous")) == 1
    assert [m.msisdn for m in messages(reg, "sms_return_done_new")] == [normalize(BUYER)]
    assert reg.returns.waiting(normalize(SELLER)) == ()
    assert {"return_started", "return"} <= set(events(reg))
    # a return is not itself returnable, and the old transfer is no longer the latest
    assert reg.returns.returnable(owner(SELLER), done.reference).refusal \
        is Refusal.NO_SUCH_TRANSFER
    assert reg.returns.returnable(owner(BUYER), reference).refusal is Refusal.MOVED_ON


def test_an_activation_can_be_returned_too(reg):
    code = generate_code(reg, SELLER, PHONE).code
    reference = activate(reg, BUYER, PHONE, code).reference
    assert reg.returns.returnable(owner(BUYER), reference).ok


def test_after_day_seven_the_return_is_refused(reg, clock):
    reference = sold(reg)
    clock.advance(days=RETURN_WINDOW.days, seconds=1)
    assert reg.returns.returnable(owner(BUYER), reference).refusal is Refusal.RETURN_WINDOW_OVER
    assert messages(reg, "sms_return_started_new") == []


def test_a_request_on_day_seven_lasts_its_72_hours_and_no_longer(reg, clock):
    reference = sold(reg)
    clock.advance(days=6, hours=23)
    case = reg.returns.start(owner(BUYER), reg.returns.returnable(owner(BUYER), reference).case)
    clock.advance(hours=71)
    [waiting] = reg.returns.waiting(normalize(SELLER))
    clock.advance(hours=1, seconds=1)
    assert reg.returns.waiting(normalize(SELLER)) == ()
    late = reg.returns.confirm(owner(SELLER), waiting, origin=SELLER_LINE)
    assert late.refusal is Refusal.RETURN_WINDOW_OVER
    assert case.ok and reg.portal.device_info(PHONE).owner == normalize(BUYER)


def test_arrivals_are_what_can_still_be_returned_newest_first(reg, clock):
    """What the new owner picks from instead of keying the reference number (option 5 4)."""
    assert reg.returns.arrivals(owner(BUYER)) == ()
    first = sold(reg)
    clock.advance(hours=1)
    code = generate_code(reg, SELLER, PHONE_NO_CODE).code
    second = activate(reg, BUYER, PHONE_NO_CODE, code).reference
    arrived = reg.returns.arrivals(owner(BUYER))
    assert [c.reference for c in arrived] == [second, first]
    assert arrived[1].previous_owner == normalize(SELLER) and arrived[1].imei == PHONE
    assert reg.returns.arrivals(owner(SELLER)) == ()  # the seller got nothing
    reg.returns.start(owner(BUYER), arrived[0])  # asked for once: no longer listed
    assert [c.reference for c in reg.returns.arrivals(owner(BUYER))] == [first]
    clock.advance(days=RETURN_WINDOW.days)  # the week is over
    assert reg.returns.arrivals(owner(BUYER)) == ()


def test_a_device_moved_on_cannot_be_returned(reg):
    reference = sold(reg)
    case = reg.returns.start(owner(BUYER), reg.returns.returnable(owner(BUYER), reference).case,
                             origin=BUYER_LINE).case
    code = generate_code(reg, BUYER, PHONE).code
    assert transfer_direct(reg, BUYER, PHONE, code, STRANGER).ok  # sold on meanwhile
    refused = reg.returns.confirm(owner(SELLER), case, origin=SELLER_LINE)
    assert refused.refusal is Refusal.MOVED_ON
    assert reg.portal.device_info(PHONE).owner == normalize(STRANGER)
    assert reg.returns.returnable(owner(BUYER), reference).refusal is Refusal.MOVED_ON
    assert messages(reg, "sms_return_done_new") == []


def test_a_change_since_the_request_voids_it(reg):
    reference = sold(reg)
    case = reg.returns.start(owner(BUYER),
                             reg.returns.returnable(owner(BUYER), reference).case).case
    assert change_code(reg, BUYER, PHONE, "24681357").ok
    assert reg.returns.confirm(owner(SELLER), case, origin=SELLER_LINE).refusal \
        is Refusal.CHANGED
    assert reg.portal.device_info(PHONE).owner == normalize(BUYER)


@pytest.mark.parametrize(("who", "sim", "line", "refusal"), [
    # the password without the SIM: another line, a withheld one, or the seller's own number
    # forged on a VoIP trunk (not vouched for)
    (SELLER, False, Origin(normalize(STRANGER), "c", vouched=True), Refusal.NEEDS_SIM),
    (SELLER, False, Origin(None, "c"), Refusal.NEEDS_SIM),
    (SELLER, False, Origin(normalize(SELLER), "c"), Refusal.NEEDS_SIM),
    (STRANGER, True, Origin(normalize(STRANGER), "c"), Refusal.NO_SUCH_TRANSFER),  # not theirs
])
def test_only_the_previous_owner_with_their_sim_confirms(reg, who, sim, line, refusal):
    reference = sold(reg)
    case = reg.returns.start(owner(BUYER),
                             reg.returns.returnable(owner(BUYER), reference).case).case
    assert reg.returns.confirm(owner(who, sim=sim), case, origin=line).refusal is refusal
    assert reg.portal.device_info(PHONE).owner == normalize(BUYER)
    assert [e for e in reg.portal.audit() if e.event == "refused"][-1].caller == line.caller


def test_only_the_new_owner_starts_a_return(reg):
    reference = sold(reg)
    assert reg.returns.returnable(owner(STRANGER), reference).refusal \
        is Refusal.NO_SUCH_TRANSFER
    assert reg.returns.returnable(owner(BUYER), "123").refusal is Refusal.NO_SUCH_TRANSFER
    reg.reports.report(owner(BUYER), phone_of(reg, BUYER), Reported.LOST)
    assert reg.returns.returnable(owner(BUYER), reference).refusal is Refusal.REPORTED


def test_two_confirmations_racing_move_the_device_once(reg, registry_factory):
    reference = sold(reg)
    case = reg.returns.start(owner(BUYER),
                             reg.returns.returnable(owner(BUYER), reference).case).case
    other = registry_factory()  # another IVR process on the same database
    outcomes = run_together(
        lambda: reg.returns.confirm(owner(SELLER), case, origin=SELLER_LINE),
        lambda: other.returns.confirm(owner(SELLER), case, origin=SELLER_LINE))
    assert sorted(o.refusal.value if o.refusal else "ok" for o in outcomes) == ["changed", "ok"]
    assert [t.kind for t in reg.portal.transfers(imei=PHONE)] == ["direct", "return"]
    assert len(messages(reg, "sms_return_done_previous")) == 1


def test_a_case_number_taken_meanwhile_by_another_call_is_retried_not_an_error(reg,
                                                                               monkeypatch):
    """Two reports drawing one random case number at once: the second insert trips the unique
    constraint, and the write is retried with a fresh number (as a transfer's reference is)."""
    taken = reg.reports.report(owner(SELLER), phone_of(reg, SELLER), Reported.LOST)
    assert taken.ok
    reg.reports.withdraw(owner(SELLER), phone_of(reg, SELLER))
    store = type(reg.store)
    real = store.unused_number
    draws = iter([taken.reference])  # first: the number the other call just committed

    def racing(conn, column):
        return next(draws, None) or real(conn, column)

    monkeypatch.setattr(store, "unused_number", staticmethod(racing))
    again = reg.reports.report(owner(SELLER), phone_of(reg, SELLER), Reported.STOLEN)
    assert again.ok and again.reference != taken.reference


def test_fifty_renewals_of_a_return_send_the_seller_one_sms(reg, clock):
    """Issue 17: asking again renewed the request and sent the seller an SMS each time (50
    renewals, 50 SMS). One request per transfer now; asking again is told so."""
    reference = sold(reg)
    case = reg.returns.returnable(owner(BUYER), reference).case
    assert reg.returns.start(owner(BUYER), case, origin=BUYER_LINE).ok
    for _ in range(49):
        clock.advance(minutes=10)
        assert reg.returns.returnable(owner(BUYER), reference).refusal \
            is Refusal.ALREADY_REQUESTED
        assert reg.returns.start(owner(BUYER), case, origin=BUYER_LINE).refusal \
            is Refusal.ALREADY_REQUESTED
    assert len(messages(reg, "sms_return_started_previous")) == 1
    clock.advance(hours=72)  # the request lapsed: not renewed either
    assert reg.returns.returnable(owner(BUYER), reference).refusal \
        is Refusal.RETURN_WINDOW_OVER
    assert len(messages(reg, "sms_return_started_previous")) == 1


def test_a_seller_who_knows_the_buyers_pin_cannot_ask_for_the_return(reg):
    """Issue 17: from the seller's own line, signed in to the buyer's kartabl with the buyer's
    PIN: the buyer's SIM is missing, so nothing is asked, nothing sent, nothing waits."""
    reference = sold(reg)
    signed = reg.kartabl.sign_in(BUYER, BUYER_PIN, Origin(normalize(SELLER), "s", vouched=True))
    assert signed.status is PasswordStatus.OK and not signed.owner.sim
    case = reg.returns.returnable(signed.owner, reference).case
    refused = reg.returns.start(signed.owner, case, origin=SELLER_LINE)
    assert refused.refusal is Refusal.NEEDS_SIM
    assert reg.returns.waiting(normalize(SELLER)) == ()
    assert messages(reg, "sms_return_started_previous") == []
    assert reg.portal.device_info(PHONE).owner == normalize(BUYER)
