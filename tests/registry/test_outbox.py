"""SMS receipts are written in the transaction of the change (ivr.registry.outbox), on SQLite and
PostgreSQL: one row per recipient for a committed change, none for a refused or rolled-back one,
one per lock engaged (not per refused attempt), never a secret."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ivr.registry import outbox
from ivr.registry.msisdn import normalize
from ivr.registry.store import Abort
from ivr.registry.tables import outbox as outbox_table
from ivr.registry.types import Origin, PasswordStatus, Refusal
from ivr.sms.texts import render

from .cast import BUYER, CODE, PHONE, PHONE_NO_CODE, SELLER, populate
from .support import activate, change_code, generate_code, owner, transfer_direct

LINE = Origin(caller=normalize("09127777777"), call_id="call-1")


@pytest.fixture
def reg(registry):
    populate(registry)
    return registry


def rows(registry):
    with registry.store.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(outbox_table).order_by(outbox_table.c.id))]


def sent_to(registry):
    return [(r["msisdn"], r["template"]) for r in rows(registry)]


def test_a_committed_transfer_leaves_one_receipt_for_the_seller_and_one_for_the_buyer(reg):
    change = transfer_direct(reg, SELLER, PHONE, CODE, BUYER)
    assert change.ok
    assert sent_to(reg) == [(normalize(SELLER), "sms_transfer_seller"),
                            (normalize(BUYER), "sms_transfer_buyer")]
    seller_row, buyer_row = rows(reg)
    assert seller_row["params"] == {"number": "09122222222", "reference": change.reference}
    assert buyer_row["params"] == {"number": "09121111111", "reference": change.reference}
    assert {r["state"] for r in rows(reg)} == {"pending"}
    assert {r["imei"] for r in rows(reg)} == {PHONE}
    text = render("sms_transfer_seller", seller_row["params"] | {"imei": PHONE})
    assert "۰۹۱۲۲۲۲۲۲۲۲" in text and CODE not in text


def test_a_refused_transfer_leaves_none(reg):
    assert transfer_direct(reg, SELLER, PHONE, "87654321", BUYER).refusal == Refusal.WRONG_CODE
    assert transfer_direct(reg, SELLER, PHONE_NO_CODE, CODE, BUYER).refusal == Refusal.NO_CODE
    assert rows(reg) == []


def test_a_move_that_loses_its_race_leaves_none(reg):
    check = reg.devices.check_code(PHONE, CODE, owner=owner(SELLER))
    assert check.grant is not None
    assert reg.devices.transfer(owner(SELLER), check.grant, BUYER).ok
    assert len(rows(reg)) == 2
    # the same grant again: the device moved on (version), the move rolls back
    assert reg.devices.transfer(owner(SELLER), check.grant, BUYER).refusal is not None
    assert len(rows(reg)) == 2


def test_a_rolled_back_transaction_takes_its_messages_with_it(reg):
    def work(conn):
        outbox.queue(conn, normalize(SELLER), "sms_code_changed", at=reg.store.now(), imei=PHONE)
        raise Abort("changed my mind")

    assert reg.store.write(work) == "changed my mind"
    assert rows(reg) == []


def test_activation_tells_the_previous_owner_and_the_buyer(reg):
    change = activate(reg, BUYER, PHONE, CODE)
    assert change.ok
    assert sent_to(reg) == [(normalize(SELLER), "sms_activation_previous"),
                            (normalize(BUYER), "sms_activation_buyer")]


def test_a_new_or_changed_code_tells_the_owner_and_never_carries_it(reg):
    generated = generate_code(reg, SELLER, PHONE_NO_CODE)
    assert generated.ok and generated.code
    assert change_code(reg, SELLER, PHONE, "20481357").ok
    assert sent_to(reg) == [(normalize(SELLER), "sms_code_generated"),
                            (normalize(SELLER), "sms_code_changed")]
    for row in rows(reg):
        text = render(row["template"], row["params"] | {"imei": row["imei"]})
        assert generated.code not in text and "20481357" not in text
        assert generated.code not in str(row["params"])


def test_a_pin_lock_tells_the_number_once_not_every_refused_attempt(reg):
    for _ in range(3):
        reg.kartabl.sign_in(SELLER, "0000", LINE)
    assert sent_to(reg) == [(normalize(SELLER), "sms_login_locked")]
    assert rows(reg)[0]["params"] == {"duration": "15 دقیقه"}
    for _ in range(5):  # while locked: refused, no more messages
        assert reg.kartabl.sign_in(SELLER, "0000", LINE).status == PasswordStatus.LOCKED
    assert len(rows(reg)) == 1
    assert "۱۵ دقیقه" in render("sms_login_locked", rows(reg)[0]["params"])


def test_a_code_lock_tells_the_device_owner_once(reg):
    for _ in range(3):
        reg.devices.check_code(PHONE, "11112222", buyer=BUYER, origin=LINE)
    assert sent_to(reg) == [(normalize(SELLER), "sms_code_locked")]
    for _ in range(3):
        assert reg.devices.check_code(PHONE, "11112222", buyer=BUYER,
                                      origin=LINE).refusal == Refusal.CODE_LOCKED
    assert len(rows(reg)) == 1


@pytest.mark.parametrize("secret", ["code", "pin", "password", "activation_code"])
def test_a_secret_parameter_is_refused(reg, secret):
    def work(conn):
        outbox.queue(conn, normalize(SELLER), "sms_code_changed", at=reg.store.now(),
                     **{secret: "12345678"})

    with pytest.raises(ValueError, match="never carries a secret"):
        reg.store.write(work)
    with reg.store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(outbox_table)).scalar_one() == 0


def test_lock_durations_read_as_people_say_them():
    from datetime import timedelta

    assert outbox.locked_for(timedelta(minutes=15)) == "15 دقیقه"
    assert outbox.locked_for(timedelta(hours=1)) == "1 ساعت"
    assert outbox.locked_for(timedelta(hours=24)) == "24 ساعت"
