"""The demo registry has what the README promises."""

from __future__ import annotations

from stdnum import luhn

from ivr.registry import demo
from ivr.registry.types import ImeiStatus, PasswordStatus


def test_demo_cast(registry):
    assert demo.seed_demo(registry) is True
    assert demo.seed_demo(registry) is False  # a second run changes nothing
    for number, pin in demo.SUBSCRIBERS:
        check = registry.check_password(number, pin or "0000")
        assert check.status is (PasswordStatus.OK if pin else PasswordStatus.NO_PASSWORD)
    many = registry.devices_of(demo.DEMO_MANY)
    assert len(many) == 12 > 9
    assert [d.imei for d in many] == demo.DEMO_MANY_IMEIS
    assert [d.imei for d in registry.devices_of(demo.DEMO_SELLER)] == [
        demo.DEMO_PHONE, demo.DEMO_PHONE_NO_CODE, demo.DEMO_PHONE_BLOCKED]
    assert registry.inquire_imei(demo.DEMO_PHONE_BLOCKED).status is ImeiStatus.BLOCKED
    assert registry.inquire_imei(demo.DEMO_UNREGISTERED).status is ImeiStatus.UNREGISTERED
    assert registry.inquire_imei(demo.DEMO_UNKNOWN_IMEI).status is ImeiStatus.UNKNOWN
    assert registry.devices_of(demo.DEMO_EMPTY) == [] and registry.devices_of(demo.DEMO_BUYER) == []
    assert registry.check_activation_code(demo.DEMO_PHONE, demo.DEMO_CODE).ok
    assert registry.check_activation_code(demo.DEMO_NO_PIN_PHONE, demo.DEMO_NO_PIN_CODE).ok
    assert not registry.device_info(demo.DEMO_PHONE_NO_CODE)["has_activation_code"]


def test_demo_imeis_are_luhn_valid_and_distinct():
    imeis = [row[0] for row in demo.DEVICES] + [demo.DEMO_UNKNOWN_IMEI]
    assert len(set(imeis)) == len(imeis)
    assert all(len(i) == 15 and luhn.is_valid(i) for i in imeis)
