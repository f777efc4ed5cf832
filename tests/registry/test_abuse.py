"""What a stranger, a PIN sprayer and an IMEI-on-the-box guesser get (ivr.registry.lockout), on
SQLite and PostgreSQL. The figures the abuse table in docs/security.md states are asserted here."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from ivr.registry import lockout
from ivr.registry.msisdn import normalize
from ivr.registry.types import Origin, PasswordStatus, Refusal, SimCode

from .cast import BUYER, CODE, PHONE, SELLER, SELLER_PIN, STRANGER, populate
from .support import SmsGateway, activate, owner, transfer_direct

OWN_LINE = Origin(normalize(SELLER), "owner-call", vouched=True)  # the network vouches for it


def line(n: int, call: str | None = None, *, vouched: bool = True) -> Origin:
    """Calling line number n (not in the registry), optionally in a named call; `vouched`: a
    mobile line the network vouches for, else a caller ID from a softphone or a VoIP trunk."""
    return Origin(normalize(f"0935{n:07d}"), call, vouched=vouched)


@pytest.fixture
def reg(registry):
    populate(registry)
    return registry


def test_a_strangers_wrong_pins_never_lock_the_owners_own_line(reg, clock):
    for n in range(3):  # three strangers, three wrong guesses each
        for _ in range(3):
            reg.kartabl.sign_in(SELLER, "0000", line(n, f"call-{n}"))
    assert reg.kartabl.door(SELLER, line(9)).status is PasswordStatus.LOCKED
    assert reg.kartabl.door(SELLER, OWN_LINE).status is PasswordStatus.ASK
    signed = reg.kartabl.sign_in(SELLER, SELLER_PIN, OWN_LINE)
    assert signed.status is PasswordStatus.OK
    assert transfer_direct(reg, SELLER, PHONE, CODE, BUYER).ok  # and sells


def test_the_owners_own_wrong_pins_lock_their_own_line_only(reg):
    for _ in range(3):
        reg.kartabl.sign_in(SELLER, "0000", OWN_LINE)
    assert reg.kartabl.door(SELLER, OWN_LINE).status is PasswordStatus.LOCKED
    info = reg.portal.subscriber_info(SELLER)
    assert info.locked_until is not None and info.others_locked_until is None


def test_strangers_get_at_most_nine_guesses_a_day_then_three(reg, clock):
    """Strangers from any number of lines, guessing as fast as the locks allow for four days."""
    start, failures, guesses = clock.now, [], 0
    while clock.now < start + timedelta(days=4):
        guesses += 1
        who = line(guesses % 50, f"call-{guesses}")
        if reg.kartabl.door(SELLER, who).status is PasswordStatus.LOCKED:
            clock.now = reg.kartabl.door(SELLER, who).locked_until
            continue
        answer = reg.kartabl.sign_in(SELLER, f"{guesses % 10000:04d}", who)
        assert answer.status is not PasswordStatus.OK
        failures.append(clock.now)
        clock.advance(seconds=1)
    per_day = [sum(1 for t in failures if day <= t < day + timedelta(days=1))
               for day in (start + timedelta(hours=h) for h in range(0, 72, 1))]
    assert max(per_day) <= 9  # any 24 hours
    assert sum(1 for t in failures if t >= start + timedelta(days=3)) <= 3  # once the ladder tops


def test_one_calling_line_tries_the_pins_of_three_other_numbers_a_day(reg, clock):
    """PIN spraying: one caller ID tries 1234 on 150 numbers. It is refused from the fourth on,
    before anything is verified; the throttle ends with its window."""
    numbers = [f"0912{n:07d}" for n in range(150)]
    for number in numbers:
        reg.portal.add_subscriber(number, password="1234" if number.endswith("7") else "9999")
    verified = 0
    real = reg.store.hasher.verify

    def counting(*args, **kwargs):
        nonlocal verified
        verified += 1
        return real(*args, **kwargs)

    reg.store.hasher.verify = counting
    sprayer = Origin(normalize(STRANGER), vouched=True)
    answers = [reg.kartabl.sign_in(n, "1234", Origin(sprayer.caller, f"c{i}", vouched=True))
               for i, n in enumerate(numbers)]
    assert verified == lockout.LINE_NUMBERS == 3
    assert [a.status for a in answers[3:]] == [PasswordStatus.THROTTLED] * 147
    assert reg.kartabl.door(numbers[100], sprayer).status is PasswordStatus.THROTTLED
    assert reg.kartabl.door(STRANGER, sprayer).status is not PasswordStatus.THROTTLED  # own
    assert reg.kartabl.door(numbers[0], sprayer).status is not PasswordStatus.THROTTLED  # tried
    clock.advance(hours=24, seconds=1)
    assert reg.kartabl.door(numbers[100], sprayer).status is PasswordStatus.ASK
    throttled = [e for e in reg.portal.audit() if e.event == "login_throttled"]
    assert len(throttled) == 147 and {e.caller for e in throttled} == {normalize(STRANGER)}


def test_one_call_tries_at_most_two_numbers(reg):
    call = Origin(None, "one-call")  # withheld: only the call and the withheld budget count
    assert reg.kartabl.sign_in(SELLER, "0000", call).status is PasswordStatus.WRONG
    assert reg.kartabl.sign_in(BUYER, "0000", call).status is PasswordStatus.WRONG
    assert reg.kartabl.sign_in(SELLER, "0000", call).status is PasswordStatus.WRONG  # again: ok
    assert reg.kartabl.door("09123333334", call).status is PasswordStatus.NO_PASSWORD
    reg.portal.add_subscriber("09127777777", password="1234")
    assert reg.kartabl.sign_in("09127777777", "1234", call).status is PasswordStatus.THROTTLED
    assert reg.kartabl.sign_in("09127777777", "1234",
                               Origin(None, "next-call")).status is PasswordStatus.OK


def test_withheld_callers_share_one_budget_then_show_the_sim(reg):
    """Beyond the withheld crowd's cap a withheld caller is not refused (the owner may be one of
    them) but must show the SIM first: a right SMS code, then the PIN."""
    numbers = [f"0912{n:07d}" for n in range(lockout.WITHHELD_NUMBERS + 1)]
    for number in numbers:
        reg.portal.add_subscriber(number, password="9999")
    answers = [reg.kartabl.sign_in(n, "1234", Origin(None, f"w{i}"))
               for i, n in enumerate(numbers)]
    assert answers[-2].status is PasswordStatus.WRONG
    assert answers[-1].status is PasswordStatus.SIM_FIRST
    owner_call = Origin(None, "the-owner")
    assert reg.kartabl.door(numbers[-1], owner_call).status is PasswordStatus.SIM_FIRST
    proof = sim_proof(reg, numbers[-1], owner_call)
    signed = reg.kartabl.sign_in(numbers[-1], "9999", owner_call, proof=proof)
    assert signed.status is PasswordStatus.OK and signed.owner.sim


def sim_proof(reg, number: str, origin: Origin, purpose: str = "sign_in"):
    """The SMS code sent to `number`, as its holder keys it on the call `origin`."""
    reg.sim_codes.sender = gateway = SmsGateway()
    assert reg.sim_codes.send(number, purpose, origin).status is SimCode.SENT
    return reg.sim_codes.check(number, gateway.last_code, origin).proof


def test_the_owners_number_forged_as_caller_id_is_one_more_other_line(reg):
    """Issue 17: forging the victim's number gave a second ladder (18 guesses a day) and locked
    the victim's own line. Unvouched, it counts on the other lines' ladder only."""
    forged = Origin(normalize(SELLER), "forged", vouched=False)
    for _ in range(3):
        assert reg.kartabl.sign_in(SELLER, "0000", forged).status is not PasswordStatus.OK
    assert reg.kartabl.door(SELLER, forged).status is PasswordStatus.LOCKED
    assert reg.kartabl.door(SELLER, line(1)).status is PasswordStatus.LOCKED  # the same ladder
    assert reg.kartabl.door(SELLER, OWN_LINE).status is PasswordStatus.ASK  # the owner's is not
    info = reg.portal.subscriber_info(SELLER)
    assert info.failed_attempts == 0 and info.others_locked_until is not None
    signed = reg.kartabl.sign_in(SELLER, SELLER_PIN, OWN_LINE)
    assert signed.status is PasswordStatus.OK and signed.owner.sim


def test_a_right_pin_on_a_forged_caller_id_signs_in_without_the_sim(reg):
    signed = reg.kartabl.sign_in(SELLER, SELLER_PIN, Origin(normalize(SELLER), "f"))
    assert signed.status is PasswordStatus.OK and not signed.owner.sim
    assert reg.devices.transfer(signed.owner, _grant(reg), BUYER).refusal is Refusal.NEEDS_SIM
    assert reg.portal.device_info(PHONE).owner == normalize(SELLER)


def _grant(reg):
    return reg.devices.check_code(PHONE, CODE, owner=owner(SELLER)).grant


def test_strangers_get_at_most_nine_guesses_a_day_however_the_caller_id_is_forged(reg, clock):
    """Guessing for three days from 1,000 forged caller IDs, the victim's own number among them:
    at most 9 wrong PINs in any 24 hours, and the victim's own line never locked."""
    start, failures, guesses = clock.now, [], 0
    while clock.now < start + timedelta(days=3):
        guesses += 1
        caller = normalize(SELLER) if guesses % 3 == 0 else normalize(f"0936{guesses % 1000:07d}")
        who = Origin(caller, f"forged-{guesses}", vouched=False)
        door = reg.kartabl.door(SELLER, who)
        if door.status is PasswordStatus.LOCKED:
            clock.now = door.locked_until
            continue
        if door.status is not PasswordStatus.ASK:  # the SIM first, or throttled: not a guess
            clock.advance(minutes=10)
            continue
        assert reg.kartabl.sign_in(SELLER, f"{guesses % 10000:04d}", who).status \
            is not PasswordStatus.OK
        failures.append(clock.now)
        assert reg.kartabl.door(SELLER, OWN_LINE).status is PasswordStatus.ASK
        clock.advance(seconds=1)
    windows = (start + timedelta(hours=h) for h in range(0, 48))
    assert max(sum(1 for t in failures if w <= t < w + timedelta(days=1)) for w in windows) <= 9
    assert reg.portal.subscriber_info(SELLER).failed_attempts == 0


def test_an_unvouched_caller_id_that_tried_three_numbers_must_show_the_sim(reg):
    voip = Origin(normalize(STRANGER), None, vouched=False)
    numbers = [f"0912{n:07d}" for n in range(5)]
    for number in numbers:
        reg.portal.add_subscriber(number, password="9999")
    answers = [reg.kartabl.sign_in(n, "1234", Origin(voip.caller, f"v{i}"))
               for i, n in enumerate(numbers)]
    assert [a.status for a in answers] == [PasswordStatus.WRONG] * 3 + \
        [PasswordStatus.SIM_FIRST] * 2


def test_a_spent_failure_budget_asks_every_other_line_for_the_sim(reg, monkeypatch):
    """The registry-wide budget: once other lines failed FAILURE_BUDGET sign-ins within the
    window, no other-line PIN is verified without the SIM; the own vouched line is not slowed."""
    monkeypatch.setattr(lockout, "FAILURE_BUDGET", 5)
    for n in range(5):
        reg.portal.add_subscriber(f"0912{n:07d}", password="9999")
        assert reg.kartabl.sign_in(f"0912{n:07d}", "1234", line(n, f"b{n}")).status \
            is PasswordStatus.WRONG
    fresh = line(77, "fresh")
    assert reg.kartabl.door(SELLER, fresh).status is PasswordStatus.SIM_FIRST
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN, fresh).status is PasswordStatus.SIM_FIRST
    assert reg.kartabl.door(SELLER, OWN_LINE).status is PasswordStatus.ASK
    proof = sim_proof(reg, SELLER, fresh)
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN, fresh, proof=proof).status \
        is PasswordStatus.OK
    other_call = Origin(fresh.caller, "another-call", vouched=True)  # a proof is for its call
    assert reg.kartabl.sign_in(SELLER, SELLER_PIN, other_call, proof=proof).status \
        is PasswordStatus.SIM_FIRST


def test_one_line_keys_the_codes_of_five_devices_a_day_as_a_buyer(reg):
    imeis = [PHONE]
    for n in range(10, 16):
        imei = f"35{n:012d}"
        from stdnum import luhn

        imei += luhn.calc_check_digit(imei)
        reg.portal.add_device(imei, owner=SELLER, brand="S", model="A", activation_code=CODE)
        imeis.append(imei)
    guesser = Origin(normalize(STRANGER), "guesser")
    refusals = [reg.devices.check_code(i, "87654321", buyer=STRANGER, origin=guesser).refusal
                for i in imeis]
    assert refusals[:lockout.LINE_DEVICES] == [Refusal.WRONG_CODE] * lockout.LINE_DEVICES
    assert set(refusals[lockout.LINE_DEVICES:]) == {Refusal.THROTTLED}


def test_every_secret_attempt_is_audited_with_the_calling_line_and_the_call(reg):
    stranger = Origin(normalize(STRANGER), "call-42")
    reg.kartabl.sign_in(SELLER, "0000", stranger)
    reg.devices.check_code(PHONE, "87654321", buyer=STRANGER, origin=stranger)
    reg.kartabl.sign_in(SELLER, SELLER_PIN, OWN_LINE)
    attempts = [e for e in reg.portal.audit()
                if e.event.startswith(("login_", "code_"))]
    assert [(e.event, e.caller, e.call_id) for e in attempts] == [
        ("login_failed", normalize(STRANGER), "call-42"),
        ("code_failed", normalize(STRANGER), "call-42"),
        ("login_ok", normalize(SELLER), "owner-call"),
    ]
    assert "other lines" in attempts[0].detail and "own line" in attempts[2].detail


def test_a_spraying_wave_is_logged_once_a_minute(reg, caplog):
    numbers = [f"0912{n:07d}" for n in range(lockout.SPRAY_ALERT + 5)]
    for number in numbers:
        reg.portal.add_subscriber(number, password="9999")
    with caplog.at_level(logging.WARNING, logger="ivr.registry.kartabl"):
        for i, number in enumerate(numbers):  # each from its own line: no line throttle
            reg.kartabl.sign_in(number, "1234", line(i, f"s{i}"))
    warnings = [r.getMessage() for r in caplog.records if "PIN spraying" in r.getMessage()]
    assert len(warnings) == 1
    assert f"{lockout.SPRAY_ALERT} failed sign-ins" in warnings[0]
    assert reg.kartabl.alarm.failed == len(numbers)


def test_a_right_pin_is_never_refused_while_its_hash_is_upgraded(registry_factory):
    """Two calls sign in at once just after the argon2 costs were raised: both verify against the
    old hash and one upgrades it; the other must not be told 'wrong'."""
    from ivr.registry.hashing import HashParams

    old = registry_factory(hash_params=HashParams(time_cost=1, memory_kib=8))
    populate(old)
    for _ in range(20):
        old.portal.set_password(SELLER, SELLER_PIN, allow_common_pin=True)  # the old costs
        new = registry_factory(hash_params=HashParams(time_cost=2, memory_kib=8))
        barrier = threading.Barrier(2)
        results = []

        def sign_in(reg=new, barrier=barrier, results=results) -> None:
            barrier.wait()
            results.append(reg.kartabl.sign_in(SELLER, SELLER_PIN, OWN_LINE).status)

        threads = [threading.Thread(target=sign_in) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [PasswordStatus.OK, PasswordStatus.OK]
    assert new.portal.subscriber_info(SELLER).failed_attempts == 0


def test_owner_keeps_selling_after_a_strangers_activation_guesses(reg):
    for _ in range(6):
        activate(reg, STRANGER, PHONE, "87654321")
    check = reg.devices.check_code(PHONE, CODE, owner=owner(SELLER))
    assert check.ok


@pytest.mark.parametrize(("imei", "buyer", "refusal"), [
    ("350000000009999", BUYER, Refusal.UNKNOWN_DEVICE),
    (PHONE, SELLER, Refusal.BUYER_IS_OWNER),
    (PHONE, BUYER, None),
])
def test_a_buyer_hears_what_stops_an_activation_before_keying_a_code(reg, imei, buyer, refusal):
    assert reg.devices.for_buyer(imei, buyer).refusal is refusal
    assert not [e for e in reg.portal.audit() if e.event.startswith("code_")]  # nothing counted


def test_for_buyer_tells_the_buyers_lock_with_its_end(reg):
    for _ in range(3):
        activate(reg, STRANGER, PHONE, "87654321")
    check = reg.devices.for_buyer(PHONE, BUYER)
    assert check.refusal is Refusal.CODE_LOCKED and check.locked_until is not None
