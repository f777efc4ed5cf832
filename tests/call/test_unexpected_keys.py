"""Key codes no telephone key has are invalid input, never a system error (issue 11).

A peer may answer `200 result=99999999`, a negative or non-ASCII result, DTMF A-D (keypads and
SIP phones have them), or the code of a non-ASCII digit. AgiCall turns each into an unexpected
key (agi_protocol.UNEXPECTED_KEY, or `A`-`D`); the call API makes that try an invalid entry
(menus `invalid_choice`, entries `invalid_entry`), counted as a try. Checked at every level: the
reply parser, AgiCall over a replayed transcript, the call API, whole calls over FastAGI on the
demo registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ivr.call import agi_protocol as agi
from ivr.call.agi_call import AgiCall
from ivr.call.api import Answer, Sound, Status, entry, menu
from ivr.registry import demo
from ivr.testing.transcript import ReplayTransport
from tests.call.test_api import FakePhone

# (what the peer sends in `result=`, the key it becomes)
ODD_RESULTS = [
    ("99999999", agi.UNEXPECTED_KEY),  # past chr()'s range
    ("-7", agi.UNEXPECTED_KEY),  # negative, not the hang-up -1
    ("۱", agi.UNEXPECTED_KEY),  # a Persian digit (int() would take it)
    ("١٢", agi.UNEXPECTED_KEY),  # Arabic-Indic digits
    ("1777", agi.UNEXPECTED_KEY),  # the code of «۱»
    ("12", agi.UNEXPECTED_KEY),  # a control character
    ("abc", agi.UNEXPECTED_KEY),  # not a number
    ("65", "A"), ("68", "D"),  # DTMF A-D
]
# (fake Asterisk key item, its name in test ids)
ODD_KEYS = ["[99999999]", "[-7]", "[۱]", "[1777]", "[abc]", "A", "B", "C", "D"]


@pytest.mark.parametrize(("result", "key"), ODD_RESULTS)
def test_a_result_no_key_has_is_an_unexpected_key(result: str, key: str) -> None:
    assert agi.parse_reply(f"200 result={result}").key == key
    assert agi.parse_reply(f"200 result={result} endpos=80").key == key


def test_ordinary_keys_and_no_key() -> None:
    assert [agi.parse_reply(f"200 result={ord(k)}").key for k in "09*#"] == list("09*#")
    assert agi.parse_reply("200 result=0").key is None
    assert agi.parse_reply("200 result= (timeout)").key is None


@pytest.mark.parametrize(("result", "key"), ODD_RESULTS)
async def test_agi_call_never_raises_for_a_result(tmp_path: Path, result: str, key: str) -> None:
    transport = ReplayTransport([(agi.LISTENING_SILENCE, "200 result=0"),
                                 ("WAIT FOR DIGIT 5000", f"200 result={result}"),
                                 ('STREAM FILE hamta/x "0123456789*#"',
                                  f"200 result={result} endpos=100")])
    call = AgiCall.from_env({"agi_uniqueid": "1.1", "agi_callerid": "09121111111"}, transport,
                            sounds=tmp_path, spool=tmp_path)
    assert await call.wait_digit(5.0) == key
    assert await call.stream(Sound("hamta/x", ""), "0123456789*#") == key


MENU = menu("menu", "main_menu", keys="12")
PIN = entry("pin", "enter_password", length=(4, 8), secret=True)
IMEI = entry("imei", "enter_imei", length=15)


@pytest.mark.parametrize("odd", ["A", "D", agi.UNEXPECTED_KEY, "۱", "x"])
async def test_a_menu_hears_invalid_choice_and_counts_a_try(odd: str) -> None:
    phone = FakePhone(events=[odd, "2"])
    assert await phone.ask(MENU) == Answer(Status.ENTERED, "2")
    assert phone.played == ["main_menu", "invalid_choice", "main_menu"]
    spent = FakePhone(events=[odd, odd, odd, "1"])
    assert (await spent.ask(MENU)).status is Status.GAVE_UP  # three tries, all invalid
    assert spent.events == ["1"]


@pytest.mark.parametrize("odd", ["A", "C", agi.UNEXPECTED_KEY, "۳"])
async def test_an_entry_hears_invalid_entry_and_counts_a_try(odd: str) -> None:
    phone = FakePhone(events=["1", "2", odd, "1", "2", "3", "4", "#"])
    answer = await phone.ask(PIN)
    assert answer.status is Status.ENTERED and answer.value == "1234"
    assert phone.played == ["enter_password", "invalid_entry", "enter_password"]
    # a fixed-length entry, the odd key first, last, or at the very end of a variable one
    for events in ([odd], ["3"] * 14 + [odd], ["1"] * 8 + [odd]):
        question = PIN if len(events) == 9 else IMEI
        spent = FakePhone(events=events * 3)
        assert (await spent.ask(question)).status is Status.GAVE_UP
        assert spent.played.count("invalid_entry") == 3, events
        assert not spent.events


async def test_an_odd_key_that_cut_a_prompt_short_is_an_invalid_try() -> None:
    phone = FakePhone(events=["1"])
    phone._typed = "B"  # kept from a prompt a peer cut short with B (barge-in)
    assert await phone.ask(MENU) == Answer(Status.ENTERED, "1")
    assert phone.played == ["invalid_choice", "main_menu"]


# --- whole calls over FastAGI ---------------------------------------------------------------------
@pytest.mark.parametrize("odd", ODD_KEYS)
async def test_at_the_main_menu_over_fastagi(demo_server: Any, odd: str) -> None:
    async with demo_server() as s:
        placed = await s.asterisk.call(f"{odd} 1 {demo.DEMO_PHONE}", caller_id=demo.DEMO_SELLER)
    assert placed.error is None and placed.closed
    assert "invalid_choice" in placed.prompts and "system_error" not in placed.prompts
    assert "imei_registered" in placed.prompts  # the next try went on as usual
    assert placed.result == "done"
    [outcome] = s.outcomes()
    assert outcome.startswith("inquiry:") and outcome != "error"


@pytest.mark.parametrize("odd", ODD_KEYS)
async def test_in_an_entry_over_fastagi(demo_server: Any, odd: str) -> None:
    async with demo_server() as s:
        placed = await s.asterisk.call(f"1 35000{odd} {demo.DEMO_PHONE}",
                                       caller_id=demo.DEMO_SELLER)
    assert placed.prompts.count("invalid_entry") == 1 and "system_error" not in placed.prompts
    assert "imei_registered" in placed.prompts
    assert s.outcomes()[0].startswith("inquiry:")


@pytest.mark.parametrize("ignore_escape", [False, True], ids=["after the list", "during it"])
@pytest.mark.parametrize("odd", ["A", "B", "C", "D", "[99999999]"])
async def test_in_the_long_device_list(demo_server: Any, odd: str, ignore_escape: bool) -> None:
    """`3 1 4444# A` from 09124444444: twelve devices read nine at a time; the odd key pressed
    when the list has been read, or (a peer ignoring escape digits) cutting it short."""
    async with demo_server() as s:
        placed = await s.asterisk.call(f"3 1 {demo.DEMO_MANY_PIN}# {odd} {odd} {odd}",
                                       caller_id=demo.DEMO_MANY, barge_in=ignore_escape,
                                       ignore_escape=ignore_escape)
    assert placed.error is None and placed.closed and not placed.keys_left
    assert placed.prompts.count("invalid_entry") == 3
    assert "system_error" not in placed.prompts
    assert placed.prompts[-2:] == ["too_many_attempts", "goodbye"]
    assert s.outcomes() == ["gave_up"]
