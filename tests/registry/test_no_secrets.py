"""No password or activation code in clear: not in any table, not in the audit log, not in the
logs (SQLAlchemy's statement log included)."""

from __future__ import annotations

import logging

from sqlalchemy import inspect, select

from ivr.registry.tables import metadata
from ivr.registry.types import PasswordStatus

from .cast import BUYER, STRANGER
from .support import FakeClock, activate, change_code, generate_code, owner, transfer_direct

# 8-digit secrets: a short PIN would turn up in timestamps and numbers by chance
SELLER, PIN, NEW_PIN, BUYER_PIN = "09121111111", "73916482", "55102938", "66213047"
CODE, NEW_CODE = "48151623", "90210347"


def every_text_value(registry) -> str:
    values: list[str] = []
    with registry.store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            assert inspect(conn).has_table(table.name)
            for row in conn.execute(select(table)):
                values.extend(str(v) for v in row)
    return "\n".join(values)


def test_no_secret_is_stored_or_logged_in_clear(registry, caplog, clock: FakeClock):
    from ivr.registry.demo import demo_imei

    phone, other = demo_imei(1), demo_imei(2)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements and parameters
    try:
        registry.portal.add_subscriber(SELLER, password=PIN)
        registry.portal.add_subscriber(BUYER, password=BUYER_PIN)
        registry.portal.set_password(SELLER, NEW_PIN)
        registry.portal.add_device(phone, owner=SELLER, brand="Samsung", model="A54",
                            activation_code=CODE)
        registry.portal.add_device(other, owner=SELLER, brand="Xiaomi", model="Note")
        assert registry.kartabl.sign_in(SELLER, PIN).status is PasswordStatus.WRONG
        assert registry.kartabl.sign_in(SELLER, NEW_PIN).status is PasswordStatus.OK
        registry.devices.check_code(phone, "11111111")
        assert registry.devices.check_code(phone, CODE, owner=owner(SELLER)).ok
        generated = generate_code(registry, SELLER, other).code
        assert change_code(registry, SELLER, phone, NEW_CODE).ok
        assert transfer_direct(registry, SELLER, phone, NEW_CODE, BUYER).ok
        assert activate(registry, STRANGER, other, generated).ok
        registry.call_log.started("c1", SELLER, "console", clock.now)
        registry.call_log.ended("c1", ["transfer:completed"], "hung_up", clock.now)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    stored = every_text_value(registry)
    listed = (str(registry.portal.audit()) + str(registry.portal.transfers())
              + str(registry.call_log.calls()))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "INSERT INTO" in logged  # the statement log was really captured
    for secret in (PIN, NEW_PIN, BUYER_PIN, CODE, NEW_CODE, generated):
        assert secret not in stored
        assert secret not in listed
        assert secret not in logged
    assert stored.count("$argon2id$") >= 2
