"""The demo registry has what docs/demo.md promises."""

from __future__ import annotations

from sqlalchemy import func, select
from stdnum import luhn

from ivr.registry import demo
from ivr.registry.tables import outbox
from ivr.registry.types import ImeiStatus, PasswordStatus, Reported

from .support import devices_of, owner


def test_demo_cast(registry):
    assert demo.seed_demo(registry) is True
    assert demo.seed_demo(registry) is False  # a second run changes nothing
    for number, pin in demo.SUBSCRIBERS:
        check = registry.kartabl.sign_in(number, pin or "0000")
        assert check.status is (PasswordStatus.OK if pin else PasswordStatus.NO_PASSWORD)
    many = devices_of(registry, demo.DEMO_MANY)
    assert len(many) == 12 > 9
    assert [d.imei for d in many] == demo.DEMO_MANY_IMEIS
    assert [d.imei for d in devices_of(registry, demo.DEMO_SELLER)] == [
        demo.DEMO_PHONE, demo.DEMO_PHONE_NO_CODE, demo.DEMO_PHONE_BLOCKED]
    assert registry.devices.inquire(demo.DEMO_PHONE_BLOCKED).status is ImeiStatus.BLOCKED
    assert registry.devices.inquire(demo.DEMO_UNREGISTERED).status is ImeiStatus.UNREGISTERED
    assert registry.devices.inquire(demo.DEMO_UNKNOWN_IMEI).status is ImeiStatus.UNKNOWN
    assert devices_of(registry, demo.DEMO_EMPTY) == []
    assert devices_of(registry, demo.DEMO_BUYER) == []
    assert registry.devices.check_code(demo.DEMO_PHONE, demo.DEMO_CODE).ok
    assert registry.devices.check_code(demo.DEMO_NO_PIN_PHONE, demo.DEMO_NO_PIN_CODE).ok
    assert not registry.portal.device_info(demo.DEMO_PHONE_NO_CODE).has_activation_code
    # a device reported stolen, and a transfer that can still be returned
    assert registry.devices.inquire(demo.DEMO_STOLEN).reported is Reported.STOLEN
    assert [d.imei for d in devices_of(registry, demo.DEMO_RETURNER)] == [
        demo.DEMO_STOLEN, demo.DEMO_RETURNABLE]
    [sale] = registry.portal.transfers(imei=demo.DEMO_RETURNABLE)
    assert registry.returns.returnable(owner(demo.DEMO_RETURNER), sale.reference).ok
    with registry.store.reading() as conn:  # the demo's own receipts are not sent
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0


def test_demo_imeis_are_luhn_valid_and_distinct():
    imeis = [row[0] for row in demo.DEVICES] + [demo.DEMO_UNKNOWN_IMEI]
    assert len(set(imeis)) == len(imeis)
    assert all(len(i) == 15 and luhn.is_valid(i) for i in imeis)
