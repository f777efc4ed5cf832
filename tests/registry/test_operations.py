"""Every registry operation and every refusal, on SQLite and PostgreSQL (see conftest.db_url)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ivr.registry.errors import AlreadyExists, InvalidInput, NotFound
from ivr.registry.msisdn import InvalidMsisdn, normalize
from ivr.registry.types import ImeiStatus, PasswordStatus, Refusal, TransferRecord

from .cast import (
    BAD_LUHN,
    BUYER,
    BUYER_PIN,
    CODE,
    NO_PIN,
    PHONE,
    PHONE_BLOCKED,
    PHONE_NO_CODE,
    SELLER,
    SELLER_PIN,
    STRANGER,
    UNKNOWN,
    UNREGISTERED,
    UNREGISTERED_OWNED,
    populate,
)
from .support import activate, change_code, devices_of, generate_code, owner, transfer_direct


@pytest.fixture
def reg(registry):
    populate(registry)
    return registry


def owner_of(registry, imei):
    return registry.portal.device_info(imei).owner


def events(registry):
    return [e.event for e in registry.portal.audit()]


# --- administration ------------------------------------------------------------------------------
def test_subscriber_is_stored_in_e164_whatever_the_spelling(registry):
    registry.portal.add_subscriber("9121234567", password="1234", national_id="0012345679")
    info = registry.portal.subscriber_info("+989121234567")
    assert info.msisdn == "+989121234567"
    assert info.national_id == "0012345679"
    assert info.has_password and info.failed_attempts == 0 and info.locked_until is None
    for spelling in ("09121234567", "989121234567", "+98 912 123 4567", "00989121234567"):
        assert registry.portal.subscriber_info(spelling).msisdn == "+989121234567"


def test_adding_a_subscriber_twice_is_refused(registry):
    registry.portal.add_subscriber(SELLER)
    with pytest.raises(AlreadyExists):
        registry.portal.add_subscriber(normalize(SELLER))


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"msisdn": "0212345678"}, InvalidMsisdn),
    ({"msisdn": SELLER, "password": "123"}, InvalidInput),
    ({"msisdn": SELLER, "password": "123456789"}, InvalidInput),
    ({"msisdn": SELLER, "password": "12a4"}, InvalidInput),
    ({"msisdn": SELLER, "national_id": "0012345678"}, InvalidInput),
])
def test_bad_subscriber_input_is_refused(registry, kwargs, error):
    args = dict(kwargs)
    msisdn = args.pop("msisdn")
    with pytest.raises(error):
        registry.portal.add_subscriber(msisdn, **args)
    assert registry.portal.audit() == []


def test_set_password_needs_a_known_subscriber_and_a_valid_pin(reg):
    with pytest.raises(NotFound):
        reg.portal.set_password(STRANGER, "7391")
    with pytest.raises(InvalidInput):
        reg.portal.set_password(NO_PIN, "12")
    reg.portal.set_password(NO_PIN, "73916482")
    assert reg.portal.subscriber_info(NO_PIN).has_password
    assert reg.kartabl.sign_in(NO_PIN, "73916482").status is PasswordStatus.OK


def test_device_info_and_bad_device_input(reg):
    info = reg.portal.device_info(PHONE)
    assert info.imei == PHONE and info.owner == normalize(SELLER)
    assert info.status == "registered" and info.has_activation_code is True
    assert info.brand == "Samsung" and info.model == "Galaxy A54" and info.version == 1
    assert reg.portal.device_info(PHONE_NO_CODE).has_activation_code is False
    assert reg.portal.device_info(UNREGISTERED).owner is None
    assert reg.portal.device_info(UNKNOWN) is None
    with pytest.raises(InvalidInput):
        reg.portal.device_info(BAD_LUHN)
    with pytest.raises(AlreadyExists):
        reg.portal.add_device(PHONE, owner=SELLER, brand="X", model="Y")
    for bad in [{"status": "stolen"}, {"activation_code": "1234567"}, {"brand": " "}]:
        args = {"owner": SELLER, "brand": "LG", "model": "G8", **bad}
        with pytest.raises(InvalidInput):
            reg.portal.add_device(UNKNOWN, **args)
    with pytest.raises(InvalidInput):
        reg.portal.add_device(BAD_LUHN, owner=SELLER, brand="LG", model="G8")
    assert reg.portal.device_info(UNKNOWN) is None


def test_a_device_for_a_new_number_creates_its_kartabl(reg):
    reg.portal.add_device(UNKNOWN, owner=STRANGER, brand="LG", model="G8")
    assert reg.portal.subscriber_info(STRANGER).has_password is False
    assert [d.imei for d in devices_of(reg, STRANGER)] == [UNKNOWN]


def test_set_device_status_bumps_the_version(reg):
    reg.portal.set_device_status(PHONE, "blocked")
    assert reg.portal.device_info(PHONE).status == "blocked"
    assert reg.portal.device_info(PHONE).version == 2
    with pytest.raises(NotFound):
        reg.portal.set_device_status(UNKNOWN, "blocked")


# --- queries -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("imei", "status"), [
    (PHONE, ImeiStatus.REGISTERED), (UNREGISTERED, ImeiStatus.UNREGISTERED),
    (PHONE_BLOCKED, ImeiStatus.BLOCKED), (UNKNOWN, ImeiStatus.UNKNOWN),
    (BAD_LUHN, ImeiStatus.INVALID), (PHONE[:14], ImeiStatus.INVALID),
    (PHONE + "0", ImeiStatus.INVALID), ("", ImeiStatus.INVALID), ("35000000000001x", "invalid"),
])
def test_imei_inquiry(reg, imei, status):
    answer = reg.devices.inquire(imei)
    assert answer.status == status
    assert answer.imei == imei
    if status in (ImeiStatus.REGISTERED, ImeiStatus.BLOCKED, ImeiStatus.UNREGISTERED):
        assert answer.brand and answer.model
    else:
        assert answer.brand is None


def test_devices_of_lists_the_kartabl_oldest_first(reg, clock):
    assert [d.imei for d in devices_of(reg, SELLER)] == [
        PHONE, PHONE_NO_CODE, PHONE_BLOCKED, UNREGISTERED_OWNED]
    first = devices_of(reg, "+989121111111")[0]
    assert (first.brand, first.model, first.status, first.version) == (
        "Samsung", "Galaxy A54", ImeiStatus.REGISTERED, 1)
    assert devices_of(reg, STRANGER) == [] and devices_of(reg, "not a number") == []
    # a device entering a kartabl later comes last, even with a lower id
    clock.advance(minutes=1)
    reg.portal.add_device(UNKNOWN, owner=BUYER, brand="LG", model="G8", activation_code=CODE)
    clock.advance(minutes=1)
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER).ok
    assert [d.imei for d in devices_of(reg, BUYER)] == [UNKNOWN, PHONE]
    assert PHONE not in [d.imei for d in devices_of(reg, SELLER)]


# --- kartabl password ----------------------------------------------------------------------------
def test_password_ok(reg):
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.OK
    assert reg.kartabl.sign_in("+989122222222", BUYER_PIN).status is PasswordStatus.OK


@pytest.mark.parametrize("number", [NO_PIN, STRANGER, "12345", ""])
def test_no_password_and_unknown_number_answer_alike(reg, number):
    assert reg.kartabl.sign_in(number, "1234").status is PasswordStatus.NO_PASSWORD


def test_three_wrong_passwords_lock_and_the_right_one_is_then_refused(reg, clock):
    first = reg.kartabl.sign_in(SELLER, "0000")
    assert (first.status, first.attempts_left) == (PasswordStatus.WRONG, 2)
    second = reg.kartabl.sign_in(SELLER, "99999999")
    assert (second.status, second.attempts_left) == (PasswordStatus.WRONG, 1)
    third = reg.kartabl.sign_in(SELLER, "0001")
    assert third.status is PasswordStatus.LOCKED
    assert third.locked_until == clock.now + timedelta(minutes=15)
    assert third.locked_until.tzinfo is not None
    right = reg.kartabl.sign_in(SELLER, SELLER_PIN)
    assert (right.status, right.locked_until) == (PasswordStatus.LOCKED, third.locked_until)
    info = reg.portal.subscriber_info(SELLER)  # no calling line: counted as another line's
    assert info.others_locked_until == third.locked_until
    assert info.others_failed_attempts == 3
    assert info.locked_until is None and info.failed_attempts == 0
    assert {"login_failed", "login_locked", "login_while_locked"} <= set(events(reg))


def test_a_malformed_pin_counts_as_wrong(reg):
    assert reg.kartabl.sign_in(SELLER, "12").attempts_left == 2
    assert reg.kartabl.sign_in(SELLER, "abcd").attempts_left == 1


def test_a_right_password_resets_the_count(reg):
    reg.kartabl.sign_in(SELLER, "0000")
    reg.kartabl.sign_in(SELLER, "0000")
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.OK
    assert reg.portal.subscriber_info(SELLER).others_failed_attempts == 0
    assert reg.kartabl.sign_in(SELLER, "0000").attempts_left == 2


def lock(registry, msisdn):
    for _ in range(3):
        answer = registry.kartabl.sign_in(msisdn, "0000")
    assert answer.status is PasswordStatus.LOCKED
    return answer.locked_until


def test_locks_grow_on_repeat_and_expire(reg, clock):
    durations = []
    for _ in range(4):
        until = lock(reg, SELLER)
        durations.append(until - clock.now)
        clock.now = until - timedelta(seconds=1)
        assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.LOCKED
        clock.now = until  # the lock has run out: a fresh round of three
        assert reg.portal.subscriber_info(SELLER).others_locked_until is None
    assert durations == [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24),
                         timedelta(hours=24)]
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.OK
    assert lock(reg, SELLER) - clock.now == timedelta(minutes=15)  # success reset the ladder


def test_after_a_lock_runs_out_the_count_starts_again(reg, clock):
    until = lock(reg, SELLER)
    clock.now = until + timedelta(seconds=1)
    assert reg.kartabl.sign_in(SELLER, "0000").attempts_left == 2


def test_setting_a_password_lifts_the_lock(reg):
    lock(reg, SELLER)
    reg.portal.set_password(SELLER, "24682468")
    assert reg.portal.subscriber_info(SELLER).others_locked_until is None
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.WRONG
    assert reg.kartabl.sign_in(SELLER, "24682468").status is PasswordStatus.OK


def test_an_interrupted_third_attempt_still_locks(reg, clock):
    """Attempts are counted before verification: a crash mid-check cannot give a 4th guess."""
    reg.kartabl.sign_in(SELLER, "0000")
    reg.kartabl.sign_in(SELLER, "0000")
    with reg.store.engine.begin() as conn:  # as if a third check died after counting
        from ivr.registry.tables import subscribers

        conn.execute(subscribers.update().values(others_failed_attempts=3))
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.LOCKED


# --- activation codes ----------------------------------------------------------------------------
def test_check_activation_code(reg):
    answer = reg.devices.check_code(PHONE, CODE)
    assert answer.ok and answer.device.imei == PHONE
    assert reg.devices.check_code(PHONE, CODE, owner=owner("9121111111")).ok


@pytest.mark.parametrize(("imei", "seller", "refusal"), [
    (BAD_LUHN, None, Refusal.INVALID_IMEI),
    (UNKNOWN, None, Refusal.UNKNOWN_DEVICE),
    (PHONE, BUYER, Refusal.NOT_OWNER),
    (PHONE, "not a number", Refusal.NOT_OWNER),
    (PHONE_BLOCKED, SELLER, Refusal.BLOCKED),
    (UNREGISTERED_OWNED, SELLER, Refusal.NOT_REGISTERED),
    (PHONE_NO_CODE, SELLER, Refusal.NO_CODE),
])
def test_check_activation_code_refusals(reg, imei, seller, refusal):
    by = owner(seller) if seller else None
    assert reg.devices.check_code(imei, CODE, owner=by).refusal is refusal


def test_wrong_codes_lock_the_device_not_the_number(reg, clock):
    first = reg.devices.check_code(PHONE, "87654321", owner=owner(SELLER))
    assert (first.refusal, first.attempts_left) == (Refusal.WRONG_CODE, 2)
    assert reg.devices.check_code(PHONE, "1234", owner=owner(SELLER)).attempts_left == 1
    third = reg.devices.check_code(PHONE, "87654321", owner=owner(SELLER))
    assert third.refusal is Refusal.CODE_LOCKED
    assert third.locked_until == clock.now + timedelta(minutes=15)
    assert reg.devices.check_code(PHONE, CODE, owner=owner(SELLER)).refusal \
        is Refusal.CODE_LOCKED
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER).refusal is Refusal.CODE_LOCKED
    assert reg.portal.device_info(PHONE).code_locked_until == third.locked_until
    # the number is not locked, and the lock runs out
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.OK
    clock.now = third.locked_until
    assert reg.devices.check_code(PHONE, CODE, owner=owner(SELLER)).ok
    assert "code_locked" in events(reg)


def test_buyers_wrong_codes_never_stop_the_owner_from_selling(reg, clock):
    """Anyone who knows an IMEI (it is on the box) can key codes for it through option 2: that
    locks the buyers' door only, never the signed-in owner's."""
    for _ in range(3):
        last = activate(reg, STRANGER, PHONE, "87654321")
    assert last.refusal is Refusal.CODE_LOCKED
    assert activate(reg, BUYER, PHONE, CODE).refusal is Refusal.CODE_LOCKED  # buyers wait
    info = reg.portal.device_info(PHONE)
    assert info.buyer_locked_until is not None and info.code_locked_until is None
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER).ok  # the owner sells all the same


def test_code_locks_grow_on_repeat(reg, clock):
    seen = []
    for _ in range(3):
        for _ in range(3):
            answer = reg.devices.check_code(PHONE, "87654321")
        seen.append(answer.locked_until - clock.now)
        clock.now = answer.locked_until
    assert seen == [timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24)]


def test_generate_activation_code(reg):
    before = reg.portal.device_info(PHONE).version
    answer = generate_code(reg, SELLER, PHONE, expected_version=before)
    assert answer.ok and len(answer.code) == 8 and answer.code.isdigit()
    assert answer.device.version == before + 1 == reg.portal.device_info(PHONE).version
    assert reg.devices.check_code(PHONE, CODE).refusal is Refusal.WRONG_CODE  # old: gone
    assert reg.devices.check_code(PHONE, answer.code).ok
    assert generate_code(reg, SELLER, PHONE).ok  # a fresh one each time
    assert reg.devices.check_code(PHONE, answer.code).refusal is Refusal.WRONG_CODE
    # a device without a code gets its first one
    fresh = generate_code(reg, SELLER, PHONE_NO_CODE)
    assert reg.portal.device_info(PHONE_NO_CODE).has_activation_code
    assert activate(reg, BUYER, PHONE_NO_CODE, fresh.code).ok
    assert "code_generated" in events(reg)


def test_generated_codes_are_random(reg):
    codes = {generate_code(reg, SELLER, PHONE).code for _ in range(20)}
    assert len(codes) == 20


@pytest.mark.parametrize(("owner", "imei", "version", "refusal"), [
    (SELLER, UNKNOWN, None, Refusal.UNKNOWN_DEVICE),
    (BUYER, PHONE, None, Refusal.NOT_OWNER),
    ("123", PHONE, None, Refusal.NOT_OWNER),
    (SELLER, PHONE_BLOCKED, None, Refusal.BLOCKED),
    (SELLER, UNREGISTERED_OWNED, None, Refusal.NOT_REGISTERED),
    (SELLER, PHONE, 7, Refusal.CHANGED),
])
def test_generate_and_change_code_refusals(reg, owner, imei, version, refusal):
    assert generate_code(reg, owner, imei, expected_version=version).refusal is refusal
    assert change_code(reg, owner, imei, "11112222",
                                      expected_version=version).refusal is refusal
    assert reg.devices.check_code(PHONE, CODE).ok  # nothing changed


def test_change_activation_code(reg):
    assert change_code(reg, SELLER, PHONE, "1111222").refusal is Refusal.INVALID_CODE
    assert change_code(reg, SELLER, PHONE, "1111222x").refusal is Refusal.INVALID_CODE
    answer = change_code(reg, SELLER, PHONE, "11112222", expected_version=1)
    assert answer.ok and answer.code is None and answer.device.version == 2
    assert reg.devices.check_code(PHONE, CODE).refusal is Refusal.WRONG_CODE
    assert reg.devices.check_code(PHONE, "11112222").ok
    assert "code_changed" in events(reg)


def test_a_new_code_lifts_the_code_lock(reg):
    for _ in range(3):
        reg.devices.check_code(PHONE, "87654321")
    assert change_code(reg, SELLER, PHONE, "11112222").ok
    assert reg.devices.check_code(PHONE, "11112222").ok


# --- direct transfer -----------------------------------------------------------------------------
def test_direct_transfer(reg, clock):
    answer = transfer_direct(reg, "+989121111111", PHONE, CODE, "9122222222", expected_version=1)
    assert answer.ok and answer.reference.isdigit() and len(answer.reference) == 10
    assert answer.device.imei == PHONE and answer.device.version == 2
    info = reg.portal.device_info(PHONE)
    assert info.owner == normalize(BUYER) and info.has_activation_code is False
    assert info.owner_since == clock.now
    [record] = reg.portal.transfers(imei=PHONE)
    assert record == TransferRecord(
        reference=answer.reference, imei=PHONE, from_msisdn=normalize(SELLER),
        to_msisdn=normalize(BUYER), kind="direct", gateway="ivr", at=clock.now,
    )
    # the old code stopped working, for everyone
    assert reg.devices.check_code(PHONE, CODE).refusal is Refusal.NO_CODE
    assert activate(reg, STRANGER, PHONE, CODE).refusal is Refusal.NO_CODE
    assert transfer_direct(reg, SELLER, PHONE, CODE, STRANGER).refusal is Refusal.NOT_OWNER
    assert "transfer" in events(reg)


def test_transfer_to_a_number_new_to_the_registry(reg):
    assert transfer_direct(reg, SELLER, PHONE, CODE, STRANGER).ok
    assert owner_of(reg, PHONE) == normalize(STRANGER)
    assert reg.portal.subscriber_info(STRANGER).has_password is False


@pytest.mark.parametrize(("owner", "imei", "code", "buyer", "version", "refusal"), [
    (SELLER, BAD_LUHN, CODE, BUYER, None, Refusal.INVALID_IMEI),
    (SELLER, UNKNOWN, CODE, BUYER, None, Refusal.UNKNOWN_DEVICE),
    (BUYER, PHONE, CODE, STRANGER, None, Refusal.NOT_OWNER),
    (SELLER, PHONE_BLOCKED, CODE, BUYER, None, Refusal.BLOCKED),
    (SELLER, UNREGISTERED_OWNED, CODE, BUYER, None, Refusal.NOT_REGISTERED),
    (SELLER, PHONE, CODE, "+989121111111", None, Refusal.BUYER_IS_OWNER),
    (SELLER, PHONE, CODE, "0212345678", None, Refusal.BUYER_INVALID),
    (SELLER, PHONE, CODE, "", None, Refusal.BUYER_INVALID),
    (SELLER, PHONE_NO_CODE, CODE, BUYER, None, Refusal.NO_CODE),
    (SELLER, PHONE, "87654321", BUYER, None, Refusal.WRONG_CODE),
    (SELLER, PHONE, CODE, BUYER, 2, Refusal.CHANGED),
])
def test_direct_transfer_refusals(reg, owner, imei, code, buyer, version, refusal):
    before = {i: reg.portal.device_info(i) for i in (PHONE, PHONE_NO_CODE, PHONE_BLOCKED)}
    answer = transfer_direct(reg, owner, imei, code, buyer, expected_version=version)
    assert answer.refusal is refusal
    assert answer.reference is None
    assert reg.portal.transfers() == []
    after = {i: reg.portal.device_info(i) for i in before}
    if refusal is not Refusal.WRONG_CODE:  # a wrong code only counts the attempt
        assert after == before
    assert after[PHONE].owner == normalize(SELLER)
    if refusal not in (Refusal.INVALID_IMEI, Refusal.BUYER_INVALID):
        assert any(e.event in ("refused", "code_failed") for e in reg.portal.audit())


def test_a_device_that_changed_since_it_was_chosen_is_refused(reg):
    [chosen, *_] = devices_of(reg, SELLER)
    assert change_code(reg, SELLER, PHONE, "11112222").ok  # another call, meanwhile
    answer = transfer_direct(reg, SELLER, PHONE, "11112222", BUYER,
                                 expected_version=chosen.version)
    assert answer.refusal is Refusal.CHANGED
    assert generate_code(reg, SELLER, PHONE,
                                        expected_version=chosen.version).refusal \
        is Refusal.CHANGED
    assert owner_of(reg, PHONE) == normalize(SELLER)


def test_checking_a_code_does_not_change_the_version(reg):
    [chosen, *_] = devices_of(reg, SELLER)
    reg.devices.check_code(PHONE, "87654321")
    assert reg.devices.check_code(PHONE, CODE).ok
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER, expected_version=chosen.version).ok


# --- activation by the buyer ---------------------------------------------------------------------
def test_activation_by_the_buyer(reg):
    answer = activate(reg, "989122222222", PHONE, CODE, gateway="ussd")
    assert answer.ok and answer.reference and answer.device.version == 2
    assert owner_of(reg, PHONE) == normalize(BUYER)
    assert not reg.portal.device_info(PHONE).has_activation_code
    [record] = reg.portal.transfers(msisdn=BUYER)
    assert (record.kind, record.gateway, record.from_msisdn) == (
        "activation", "ussd", normalize(SELLER))
    assert activate(reg, STRANGER, PHONE, CODE).refusal is Refusal.NO_CODE
    assert "activation" in events(reg)


@pytest.mark.parametrize(("buyer", "imei", "code", "refusal"), [
    ("anonymous", PHONE, CODE, Refusal.BUYER_INVALID),
    (BUYER, BAD_LUHN, CODE, Refusal.INVALID_IMEI),
    (BUYER, UNKNOWN, CODE, Refusal.UNKNOWN_DEVICE),
    (BUYER, PHONE_BLOCKED, CODE, Refusal.BLOCKED),
    (BUYER, UNREGISTERED, CODE, Refusal.NOT_REGISTERED),
    (SELLER, PHONE, CODE, Refusal.BUYER_IS_OWNER),
    (BUYER, PHONE_NO_CODE, CODE, Refusal.NO_CODE),
    (BUYER, PHONE, "87654321", Refusal.WRONG_CODE),
])
def test_activation_refusals(reg, buyer, imei, code, refusal):
    assert activate(reg, buyer, imei, code).refusal is refusal
    assert reg.portal.transfers() == []
    assert owner_of(reg, PHONE) == normalize(SELLER)


# --- transfers, audit, call log ------------------------------------------------------------------
def test_transfer_listing_filters(reg, clock):
    first = transfer_direct(reg, SELLER, PHONE, CODE, BUYER).reference
    clock.advance(seconds=1)
    code = generate_code(reg, BUYER, PHONE).code
    second = activate(reg, STRANGER, PHONE, code).reference
    assert first != second
    assert [t.reference for t in reg.portal.transfers()] == [first, second]
    assert [t.reference for t in reg.portal.transfers(msisdn=SELLER)] == [first]
    assert [t.reference for t in reg.portal.transfers(msisdn=BUYER)] == [first, second]
    assert [t.reference for t in reg.portal.transfers(imei=PHONE, msisdn=STRANGER)] == [second]
    assert reg.portal.transfers(imei=PHONE_NO_CODE) == []
    with pytest.raises(InvalidInput):
        reg.portal.transfers(imei=BAD_LUHN)


def test_audit_filters_and_limit(reg):
    reg.kartabl.sign_in(SELLER, "0000")
    reg.kartabl.sign_in(BUYER, BUYER_PIN)
    last = reg.portal.audit(limit=2)
    assert [e.event for e in last] == ["login_failed", "login_ok"]
    assert {e.msisdn for e in reg.portal.audit(msisdn=BUYER)} == {normalize(BUYER)}
    assert {e.imei for e in reg.portal.audit(imei=PHONE)} == {PHONE}
    assert all(e.gateway for e in reg.portal.audit())


def test_call_log(reg, clock):
    reg.call_log.started("c1", "09121111111", "PJSIP/1-0001", clock.now)
    reg.call_log.started("c2", None, "console", clock.advance(seconds=5))
    reg.call_log.ended("c1", ["inquiry:registered", "transfer"], "hung_up",
                   clock.advance(seconds=5))
    reg.call_log.ended("c3", [], "error", clock.now)  # its start was never logged
    logged = reg.call_log.calls()
    assert [c.call_id for c in logged] == ["c3", "c2", "c1"]
    c1 = logged[2]
    assert c1.msisdn == "+989121111111" and c1.channel == "PJSIP/1-0001"
    assert c1.path == ["inquiry:registered", "transfer"] and c1.outcome == "hung_up"
    assert c1.ended is not None
    assert logged[1].msisdn is None and logged[1].outcome is None
    assert logged[1].path == [] and logged[1].ended is None


def test_a_restarted_server_closes_only_its_own_stale_calls(reg, clock):
    reg.call_log.started("a", SELLER, "PJSIP/1", clock.now, server="host1:4573")
    reg.call_log.started("b", SELLER, "PJSIP/2", clock.now, server="host2:4573")
    reg.call_log.started("c", SELLER, "PJSIP/3", clock.now, server="host1:4573")
    reg.call_log.ended("c", [], "hung_up", clock.now)
    assert reg.call_log.close_stale("host1:4573", clock.advance(minutes=1)) == 1
    outcomes = {c.call_id: c.outcome for c in reg.call_log.calls()}
    assert outcomes == {"a": "interrupted", "b": None, "c": "hung_up"}


def test_hostile_call_ids_and_channels_are_cut_to_their_columns(reg, clock):
    reg.call_log.started("x" * 5000, "${EXEC(rm -rf)}", "C" * 5000, clock.now)
    reg.call_log.ended("x" * 5000, ["inquiry:registered"], "hung_up", clock.now)
    [call] = reg.call_log.calls()
    assert len(call.call_id) == 64 and len(call.channel) == 128 and call.msisdn is None
    assert call.outcome == "hung_up"


def test_device_names_are_bounded_and_cleaned_on_every_engine(reg):
    with pytest.raises(InvalidInput, match="at most 64"):
        reg.portal.add_device(UNKNOWN, owner=SELLER, brand="x" * 10_000, model="M")
    reg.portal.add_device(UNKNOWN, owner=SELLER, brand="\x1b[31mLG\x1b[0m", model="G8\x07")
    info = reg.portal.device_info(UNKNOWN)
    assert (info.brand, info.model) == ("LG", "G8")
