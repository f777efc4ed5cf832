"""Keys a caller presses out of habit or early: a one-device kartabl is asked about like a longer
one, so the `1` a caller presses after «device one» is never a code's first digit (issue 18)."""

from __future__ import annotations

import pytest

from ivr.prompts import timing
from ivr.registry.msisdn import normalize

from .conftest import BUYER

ONE, ONE_PIN = timing.ONE_DEVICE, "3917"
IMEI = timing.ONE_DEVICE_IMEI
CODE = "52617384"  # its first key is no device's number


@pytest.fixture
def one_device(registry):
    """A kartabl holding one device, with its activation code."""
    registry.portal.add_subscriber(ONE, password=ONE_PIN)
    brand, model = timing.ONE_DEVICE_NAME
    registry.portal.add_device(IMEI, owner=ONE, brand=brand, model=model, activation_code=CODE)
    return registry


def owner(registry) -> str | None:
    return registry.portal.device_info(IMEI).owner


async def test_the_habit_key_after_device_one_chooses_it_and_costs_no_code_try(dial, one_device):
    result = await dial(f"3 1 {ONE_PIN}# 1 {CODE} {BUYER} 1", caller=ONE)
    assert result.path == ["transfer:completed"]
    assert result.heard[result.heard.index("device_number"):].count("choose_one_device") == 1
    assert "wrong_code" not in result.heard
    assert owner(one_device) == normalize(BUYER)


async def test_a_code_keyed_straight_after_the_readout_is_not_a_code(dial, one_device):
    """The old contract: the code right after the readout. Its keys answer the device question
    (any key but 1 is an invalid choice, asked again), never the code: no code try is spent."""
    result = await dial(f"3 1 {ONE_PIN}# {CODE}", caller=ONE)
    assert "invalid_choice" in result.heard
    assert "wrong_code" not in result.heard
    assert owner(one_device) == normalize(ONE)


async def test_silence_at_the_one_device_question_asks_again_then_changes_nothing(dial, one_device):
    result = await dial(f"3 1 {ONE_PIN}# . . .", caller=ONE)
    assert result.heard.count("choose_one_device") >= 2
    assert "enter_activation_code" not in result.heard
    assert owner(one_device) == normalize(ONE)


async def test_hash_at_the_one_device_question_goes_back_to_the_menu(dial, one_device):
    result = await dial(f"3 1 {ONE_PIN}# # 1 {timing.DEMO_PHONE}", caller=ONE)
    assert "enter_activation_code" not in result.heard
    assert "imei_registered" in result.heard


async def test_my_devices_of_one_device_is_read_not_asked(dial, one_device):
    """Listing asks nothing: the device question belongs to operations on one device."""
    result = await dial(f"5 1 1 {ONE_PIN}#", caller=ONE)
    assert "choose_one_device" not in result.heard
    assert "device_number" in result.heard


async def test_a_lone_device_that_cannot_be_sold_is_refused_without_asking(dial, registry):
    registry.portal.add_subscriber(ONE, password=ONE_PIN)
    registry.portal.add_device(IMEI, owner=ONE, brand="Nokia", model="G42", status="blocked",
                               activation_code=CODE)
    result = await dial(f"3 1 {ONE_PIN}#", caller=ONE)
    assert result.heard_in_order("device_number", "refused_blocked")
    assert "choose_one_device" not in result.heard
    assert result.path == ["transfer:refused:blocked"]
