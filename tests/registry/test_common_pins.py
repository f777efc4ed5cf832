"""Issue 17: a kartabl password set through the portal may not be one of the most common PINs
(NIST SP 800-63B, a blocklist of commonly used values); the demo keeps its easy PINs."""

from __future__ import annotations

import io
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.registry import demo, validate
from ivr.registry.errors import InvalidInput
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.registry.types import PasswordStatus

from .cast import NO_PIN, SELLER, SELLER_PIN, populate
from .support import TEST_PEPPER

ROOT = Path(__file__).resolve().parents[2]
UNCOMMON = ("7391", "2479", "73916482", "55102938", "24682468")


def listed_lines() -> list[str]:
    text = resources.files("ivr.registry").joinpath(validate.COMMON_PINS_FILE).read_text(
        encoding="utf-8")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def password_hash(registry: Registry, msisdn: str) -> str | None:
    with registry.store.reading() as conn:
        return registry.store.subscriber(conn, normalize(msisdn)).password_hash


# --- the list --------------------------------------------------------------------------------
def test_the_list_is_the_top_100_four_digit_pins():
    lines = listed_lines()
    assert len(lines) == 100
    assert all(len(pin) == 4 and pin.isascii() and pin.isdigit() for pin in lines)
    assert len(set(lines)) == 100  # no duplicates
    assert lines[:3] == ["1234", "1111", "0000"]  # most common first
    assert {"1234", "0000", "1111", "2580", "1212"} <= validate.common_pins()
    assert validate.common_pins() == frozenset(lines)


def test_the_list_names_its_source_and_is_packaged():
    text = resources.files("ivr.registry").joinpath(validate.COMMON_PINS_FILE).read_text(
        encoding="utf-8")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for needed in ("SecLists", "four-digit-pin-codes-sorted-by-frequency-withcount.csv", "MIT",
                   "DataGenetics", "first 100 rows"):
        assert needed in header
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]
    assert validate.COMMON_PINS_FILE in setuptools["package-data"]["ivr.registry"]


# --- the rule ----------------------------------------------------------------------------------
@pytest.mark.parametrize("pin", ["1234", "0000", "1111", "2580", "1212", "6969", "4200"])
def test_a_listed_pin_is_weak(pin):
    assert validate.weak_pin_reason(pin) == (
        "this PIN is among the most common PINs: choose another")


@pytest.mark.parametrize("pin", ["8888888", "33333", "123456", "12345678", "98765", "87654321",
                                 "789012", "3210", "6543"])
def test_one_digit_repeated_or_a_run_is_weak_at_any_length(pin):
    reason = validate.weak_pin_reason(pin)
    assert reason is not None and "most common PINs" in reason and "run" in reason


@pytest.mark.parametrize("pin", ["1648", "391648", "27391648"])
def test_the_last_digits_of_the_own_mobile_number_are_weak(pin):
    for spelling in ("09127391648", "+989127391648", "9127391648"):
        reason = validate.weak_pin_reason(pin, spelling)
        assert reason is not None and "last digits of the mobile number" in reason
    assert validate.weak_pin_reason(pin, "09121111111") is None
    assert validate.weak_pin_reason(pin) is None


@pytest.mark.parametrize("pin", UNCOMMON)
def test_an_uncommon_pin_is_not_weak(pin):
    assert validate.weak_pin_reason(pin, SELLER) is None
    assert validate.chosen_pin(pin, SELLER) == pin


def test_chosen_pin_keeps_the_format_rule_and_the_activation_code_rule_is_unchanged():
    with pytest.raises(InvalidInput, match="4 to 8 digits"):
        validate.chosen_pin("12")
    with pytest.raises(InvalidInput, match="most common PINs"):
        validate.chosen_pin("0000")
    assert not validate.is_strong_code("12345678")
    assert not validate.is_strong_code("90123456")
    assert not validate.is_strong_code("00000000")
    assert validate.is_strong_code("73916482")


# --- the portal ------------------------------------------------------------------------------
@pytest.mark.parametrize("pin", ["1234", "0000", "1111", "5678", "99999999", "3333"])
def test_the_portal_refuses_a_common_pin_and_writes_nothing(registry, pin):
    populate(registry)
    before = password_hash(registry, SELLER)
    events = len(registry.portal.audit())
    with pytest.raises(InvalidInput, match=r"among the most common PINs.*choose another"):
        registry.portal.set_password(SELLER, pin)
    with pytest.raises(InvalidInput, match="most common PINs"):
        registry.portal.set_password(NO_PIN, pin)
    assert password_hash(registry, SELLER) == before
    assert password_hash(registry, NO_PIN) is None
    assert len(registry.portal.audit()) == events  # no password_set
    assert registry.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.OK


def test_the_portal_refuses_the_numbers_own_last_digits(registry):
    populate(registry)
    registry.portal.add_subscriber("09127391648")
    with pytest.raises(InvalidInput, match="last digits of the mobile number"):
        registry.portal.set_password("09127391648", "1648")
    assert password_hash(registry, "09127391648") is None


@pytest.mark.parametrize("pin", UNCOMMON[:2])
def test_the_portal_accepts_an_uncommon_pin(registry, pin):
    populate(registry)
    registry.portal.set_password(NO_PIN, pin)
    assert registry.portal.audit()[-1].event == "password_set"
    assert registry.portal.subscriber_info(NO_PIN).has_password
    assert registry.kartabl.sign_in(NO_PIN, pin).status is PasswordStatus.OK


def test_the_named_bypass_sets_a_common_pin_for_the_demo_and_tests(registry):
    populate(registry)
    registry.portal.set_password(NO_PIN, "1234", allow_common_pin=True)
    assert registry.kartabl.sign_in(NO_PIN, "1234").status is PasswordStatus.OK
    with pytest.raises(InvalidInput, match="4 to 8 digits"):  # the format still holds
        registry.portal.set_password(NO_PIN, "12", allow_common_pin=True)


def test_the_demo_still_seeds_its_easy_pins(registry):
    assert all(validate.weak_pin_reason(pin) for _, pin in demo.SUBSCRIBERS if pin)
    assert demo.seed_demo(registry) is True
    for number, pin in demo.SUBSCRIBERS:
        if pin is not None:
            assert registry.kartabl.sign_in(number, pin).status is PasswordStatus.OK


# --- the command -----------------------------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAMTA_PEPPER", TEST_PEPPER.hex())
    monkeypatch.delenv("HAMTA_DB_URL", raising=False)


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("from_stdin", [False, True])
def test_the_command_refuses_a_common_pin_in_one_line(capsys, db_url, monkeypatch, from_stdin):
    number = "09121111111"
    assert main(["--db", db_url, "subscriber", "add", number, "--password", "73916482"]) == 0
    capsys.readouterr()
    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        before = password_hash(registry, number)
    finally:
        registry.close()
    if from_stdin:
        monkeypatch.setattr(sys, "stdin", io.StringIO("1234\n"))
    code = main(["--db", db_url, "subscriber", "set-password", number,
                 "-" if from_stdin else "1234"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "among the most common PINs" in err
    assert "choose another" in err and "1234" not in err  # the PIN is not echoed
    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        assert password_hash(registry, number) == before
        assert registry.kartabl.sign_in(number, "73916482").status is PasswordStatus.OK
    finally:
        registry.close()
    assert main(["--db", db_url, "subscriber", "set-password", number, "7391"]) == 0


def test_adding_a_subscriber_with_a_common_pin_is_refused_too(db_url, capsys):
    """`subscriber add --password` sets a kartabl password as much as set-password does."""
    assert main(["--db", db_url, "subscriber", "add", "09121212121", "--password", "1234"]) == 2
    assert "most common PINs" in capsys.readouterr().err
    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        assert registry.portal.subscriber_info("09121212121") is None
    finally:
        registry.close()
