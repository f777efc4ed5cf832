"""One-time SMS codes, the SIM as a second factor (ivr.registry.sim_codes), on SQLite and
PostgreSQL: CSPRNG, stored hashed and only while live, single use, minutes of life, their own
tries, good only on the asking call, a daily cap per number, never in the outbox or the audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ivr.registry import lockout
from ivr.registry.msisdn import normalize
from ivr.registry.tables import audit_log, outbox, sim_codes
from ivr.registry.types import Origin, SimCode

from .cast import SELLER, SELLER_PIN, populate
from .support import SmsGateway, owner

CALL = Origin(normalize("09126666666"), "call-1")


@pytest.fixture
def gateway(registry) -> SmsGateway:
    populate(registry)
    registry.sim_codes.sender = gateway = SmsGateway()
    return gateway


def rows(registry):
    with registry.store.reading() as conn:
        return conn.execute(select(sim_codes).order_by(sim_codes.c.id)).all()


def test_a_code_is_sent_once_hashed_and_proves_the_sim_on_its_call(registry, gateway):
    assert registry.sim_codes.send(SELLER, "transfer", CALL).status is SimCode.SENT
    [(to, template, params)] = gateway
    code = params["code"]
    assert to == normalize(SELLER) and template == "sms_sim_code_transfer"
    assert len(code) == lockout.SIM_CODE_LEN and code.isdigit()
    [row] = rows(registry)
    assert row.state == "live" and row.code_hash.startswith("$argon2id$") and code not in str(row)
    answer = registry.sim_codes.check(SELLER, code, CALL, owner=owner(SELLER, sim=False))
    assert answer.status is SimCode.OK and answer.proof.msisdn == normalize(SELLER)
    assert answer.owner.sim and answer.proof.call_id == CALL.call_id
    [row] = rows(registry)
    assert row.state == "used" and row.code_hash is None  # nothing left to crack
    assert registry.sim_codes.check(SELLER, code, CALL).status is SimCode.VOID  # single use


def test_the_code_is_never_in_the_audit_log_nor_the_outbox(registry, gateway):
    registry.sim_codes.send(SELLER, "sign_in", CALL)
    registry.sim_codes.check(SELLER, "000000", CALL)
    registry.sim_codes.check(SELLER, gateway.last_code, CALL)
    with registry.store.reading() as conn:
        audit = conn.execute(select(audit_log)).all()
        queued = conn.execute(select(outbox)).all()
    assert [e.event for e in audit if e.event.startswith("sim_")] == [
        "sim_code_sent", "sim_code_failed", "sim_code_ok"]
    assert not any(gateway.last_code in str(row) for row in [*audit, *queued])
    assert queued == []


def test_three_wrong_codes_spend_it(registry, gateway):
    registry.sim_codes.send(SELLER, "transfer", CALL)
    code = gateway.last_code
    wrong = "000000" if code != "000000" else "111111"
    answers = [registry.sim_codes.check(SELLER, wrong, CALL) for _ in range(3)]
    assert [(a.status, a.attempts_left) for a in answers] == [
        (SimCode.WRONG, 2), (SimCode.WRONG, 1), (SimCode.VOID, None)]
    assert registry.sim_codes.check(SELLER, code, CALL).status is SimCode.VOID  # too late
    assert rows(registry)[0].code_hash is None


def test_a_code_lives_five_minutes(registry, gateway, clock):
    registry.sim_codes.send(SELLER, "transfer", CALL)
    clock.advance(seconds=lockout.SIM_CODE_LIFE.total_seconds())
    assert registry.sim_codes.check(SELLER, gateway.last_code, CALL).status is SimCode.VOID


def test_a_code_is_good_only_on_the_call_that_asked_for_it(registry, gateway):
    registry.sim_codes.send(SELLER, "transfer", CALL)
    other = Origin(CALL.caller, "call-2")
    assert registry.sim_codes.check(SELLER, gateway.last_code, other).status is SimCode.VOID
    assert registry.sim_codes.check("09121234567", gateway.last_code, CALL).status \
        is SimCode.VOID  # nor for another number
    assert registry.sim_codes.check(SELLER, gateway.last_code, CALL).status is SimCode.OK


def test_a_new_code_replaces_the_calls_earlier_one(registry, gateway):
    registry.sim_codes.send(SELLER, "transfer", CALL)
    first = gateway.last_code
    registry.sim_codes.send(SELLER, "transfer", CALL)
    if first != gateway.last_code:
        assert registry.sim_codes.check(SELLER, first, CALL).status is SimCode.WRONG
    assert registry.sim_codes.check(SELLER, gateway.last_code, CALL).status is SimCode.OK


def test_a_number_gets_at_most_five_codes_in_any_24_hours_whoever_asks(registry, gateway,
                                                                       clock):
    answers = [registry.sim_codes.send(SELLER, "sign_in", Origin(None, f"w{n}")).status
               for n in range(lockout.SIM_CODES_PER_DAY + 3)]
    assert answers.count(SimCode.SENT) == lockout.SIM_CODES_PER_DAY == len(gateway)
    assert set(answers[lockout.SIM_CODES_PER_DAY:]) == {SimCode.CAPPED}
    clock.advance(hours=24, seconds=1)
    assert registry.sim_codes.send(SELLER, "sign_in", CALL).status is SimCode.SENT


@pytest.mark.parametrize("failure", ["refused", "raised"])
def test_a_code_the_gateway_did_not_take_is_worth_nothing(registry, gateway, failure):
    if failure == "refused":
        gateway.taken = False
    else:
        def broken(*_: object) -> bool:
            raise OSError("connection refused")
        registry.sim_codes.sender = broken
    assert registry.sim_codes.send(SELLER, "transfer", CALL).status is SimCode.UNSENT
    [row] = rows(registry)
    assert row.state == "unsent" and row.code_hash is None


def test_without_an_sms_gateway_nothing_is_sent(registry):
    populate(registry)
    assert registry.sim_codes.send(SELLER, "transfer", CALL).status is SimCode.NO_SMS
    assert rows(registry) == []


def test_a_proof_makes_the_owner_hold_the_sim_for_a_move(registry, gateway):
    signed = registry.kartabl.sign_in(SELLER, SELLER_PIN, CALL)
    assert not signed.owner.sim  # another line: the PIN alone
    registry.sim_codes.send(SELLER, "transfer", CALL)
    proven = registry.sim_codes.check(SELLER, gateway.last_code, CALL, owner=signed.owner)
    assert proven.owner is not None and proven.owner.sim
    assert proven.owner.devices == signed.owner.devices
