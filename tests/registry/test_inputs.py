"""Mobile-number normalisation and the input rules (IMEI, PIN, code, national ID)."""

from __future__ import annotations

import pytest

from ivr.registry import validate
from ivr.registry.errors import InvalidInput
from ivr.registry.msisdn import InvalidMsisdn, national, normalize, try_normalize

from .cast import BAD_LUHN, PHONE


@pytest.mark.parametrize("spelling", [
    "09121234567", "9121234567", "989121234567", "+989121234567", "00989121234567",
    "0912 123 4567", "+98 (912) 123-4567", " 09121234567 ",
])
def test_every_accepted_spelling_maps_to_e164(spelling):
    assert normalize(spelling) == "+989121234567"


@pytest.mark.parametrize("bad", [
    "", "0912123456", "091212345678", "02112345678", "+982112345678", "+19121234567",
    "08121234567", "abc", "0912123456x", "+98+9121234567",
])
def test_not_a_mobile_number(bad):
    with pytest.raises(InvalidMsisdn, match="09xxxxxxxxx"):
        normalize(bad)
    assert try_normalize(bad) is None


def test_invalid_msisdn_is_invalid_input_and_value_error():
    assert issubclass(InvalidMsisdn, InvalidInput) and issubclass(InvalidMsisdn, ValueError)


def test_national_form_and_withheld_caller_ids():
    assert national("+989121234567") == "09121234567"
    assert national("9121234567") == "09121234567"
    assert try_normalize(None) is None and try_normalize("anonymous") is None


def test_imei_rule():
    assert validate.is_imei(PHONE) and validate.imei(f" {PHONE[:5]}-{PHONE[5:]} ") == PHONE
    for bad in (BAD_LUHN, PHONE[:14], PHONE + "5", "", "abcdefghijklmno", None):
        assert not validate.is_imei(bad)
    with pytest.raises(InvalidInput, match="15 digits"):
        validate.imei(BAD_LUHN)


@pytest.mark.parametrize(("pin", "ok"), [
    ("1234", True), ("12345678", True), ("0000", True), ("123", False), ("123456789", False),
    ("12a4", False), ("", False), ("۱۲۳۴", False), (" 1234", False),
])
def test_pin_is_4_to_8_ascii_digits(pin, ok):
    assert validate.is_pin(pin) is ok


@pytest.mark.parametrize(("code", "ok"), [
    ("12345678", True), ("00000000", True), ("1234567", False), ("123456789", False),
    ("1234567a", False), ("۱۲۳۴۵۶۷۸", False),
])
def test_activation_code_is_exactly_8_ascii_digits(code, ok):
    assert validate.is_code(code) is ok


def test_national_id():
    assert validate.national_id("0012345679") == "0012345679"
    assert validate.national_id("001-234567-9") == "0012345679"
    for bad in ("0012345678", "1111111111", "123456789", "12345678901", "abcdefghij"):
        with pytest.raises(InvalidInput, match="national ID"):
            validate.national_id(bad)


def test_status_rule():
    assert validate.status("blocked") == "blocked"
    with pytest.raises(InvalidInput, match="registered, unregistered, blocked"):
        validate.status("stolen")
def test_persian_digits_are_not_a_number():
    with pytest.raises(InvalidMsisdn):
        normalize("۰۹۱۲۱۲۳۴۵۶۷")


@pytest.mark.parametrize(("raw", "clean"), [
    ("  Samsung  ", "Samsung"),
    ("Galaxy\tA54\n", "Galaxy A54"),
    ("\x1b[31mRed\x1b[0mmi", "Redmi"),  # a terminal escape is removed whole
    ("Nokia\x07\x00 C32", "Nokia C32"),  # bell, NUL
    ("Cafe\u0301", "Café"),  # NFC
    ("\u200eHonor\u202e", "Honor"),  # bidi controls
    ("شیائومی", "شیائومی"),
    ("x" * 64, "x" * 64),
])
def test_device_names_are_cleaned_at_the_door(raw, clean):
    assert validate.device_name(raw, "model") == clean


@pytest.mark.parametrize("raw", ["", "   ", "\x1b[2J", "x" * 65, "y" * 10_000])
def test_empty_or_long_device_names_are_refused(raw):
    with pytest.raises(InvalidInput, match=r"brand and a model|at most 64"):
        validate.device_name(raw, "model")
