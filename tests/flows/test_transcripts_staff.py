"""A person behind `0` (issue 18), as a caller hears and keys it: off without a staff queue; with
one, offered after the main menu's options and first thing after a stop (locked out, no password,
a refusal a caller may dispute), handed over within the opening hours (Tehran time) with what the
agent's phone shows, the hours said outside them. Also the settings, queues.conf, and the AGI
channel's hand-off (channel variables, no hang-up)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.asterisk.config import StaffAccount, queues_conf
from ivr.config import ConfigError, OpenHours, StaffQueue, staff_queue
from ivr.flows import staff
from ivr.flows.outcome import End, Outcome
from ivr.registry.types import Refusal
from tests.asterisk.test_agi_channel import make_call

from .conftest import (
    NO_PIN,
    PHONE,
    PHONE_BLOCKED,
    SELLER,
    SELLER_PIN,
)

# Saturday 5 December 2026: 08:00 in Tehran (UTC+3:30) is 04:30 UTC
SATURDAY_8_TEHRAN = datetime(2026, 12, 5, 4, 30, tzinfo=UTC)
FRIDAY_NOON_TEHRAN = datetime(2026, 12, 4, 8, 30, tzinfo=UTC)


@pytest.fixture
def queue_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAMTA_CONFIG", "")
    monkeypatch.setenv("HAMTA_STAFF_QUEUE", "hamta-staff")
    monkeypatch.delenv("HAMTA_STAFF_HOURS", raising=False)
    monkeypatch.delenv("HAMTA_STAFF_WAIT", raising=False)


@pytest.fixture(autouse=True)
def no_queue_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAMTA_CONFIG", "")
    monkeypatch.delenv("HAMTA_STAFF_QUEUE", raising=False)


def handed_to(result) -> str:
    """The console's line saying where the call went and what the agent's phone shows."""
    [line] = [line for line in result.call.transcript if "would go to a person" in line]
    return line


# --- off: no staff queue configured --------------------------------------------------------------
async def test_without_a_queue_0_is_an_invalid_choice_and_never_offered(dial):
    result = await dial("0")
    assert result.heard[:4] == ["welcome", "main_menu", "invalid_choice", "main_menu"]
    stopped = await dial("3 1", caller=NO_PIN)
    assert "staff_offer" not in result.heard + stopped.heard
    assert stopped.path == ["transfer:no_password"]


# --- on: the main menu ---------------------------------------------------------------------------
async def test_the_main_menu_says_0_after_its_options_and_0_hands_the_call_over(dial, queue_on):
    result = await dial("0")
    assert result.heard == ["welcome", "main_menu", "staff_offer", "staff_connecting"]
    assert result.outcome == "handoff" and result.path == ["staff"]
    assert handed_to(result).endswith("queue hamta-staff; the agent's phone shows xxxxxxx1111 "
                                      "menu]")


async def test_after_an_operation_the_short_menu_takes_0_and_star_says_it(dial, queue_on):
    result = await dial(f"1 {PHONE} * 0")
    at = result.heard.index("imei_registered")
    assert result.heard[at:].count("staff_offer") == 1  # not before the short menu: no stop
    assert result.heard_in_order("main_menu_again", "main_menu", "staff_offer",
                                 "staff_connecting")
    assert result.path == ["inquiry:registered", "staff"]
    assert handed_to(result).endswith("inquiry:registered]")


# --- on: the stops -------------------------------------------------------------------------------
async def test_locked_out_the_caller_hears_0_first_and_the_agent_sees_the_lock(dial, queue_on):
    result = await dial("3 1 0000# 0000# 0000# 0")
    assert result.heard_in_order("locked", "try_again_after", "minutes_later", "staff_offer",
                                 "main_menu_again", "staff_connecting")
    assert result.outcome == "handoff"
    assert result.path == ["transfer:refused:locked", "staff"]
    line = handed_to(result)
    assert line.endswith("xxxxxxx1111 transfer:refused:locked]")
    assert "0000" not in line and SELLER not in line and SELLER[1:] not in line


async def test_no_password_the_caller_may_press_0(dial, queue_on):
    result = await dial("3 1 0", caller=NO_PIN)
    assert result.heard_in_order("no_password", "staff_offer", "main_menu_again",
                                 "staff_connecting")
    assert result.path == ["transfer:no_password", "staff"]
    assert handed_to(result).endswith(f"x{NO_PIN[-4:]} transfer:no_password]")


async def test_a_refusal_the_caller_may_dispute_offers_0(dial, queue_on):
    # the seller's third device is blocked: refused as soon as it is chosen
    result = await dial(f"3 1 {SELLER_PIN}# 3 0")
    assert result.heard_in_order("refused_blocked", "staff_offer", "main_menu_again",
                                 "staff_connecting")
    assert result.path == ["transfer:refused:blocked", "staff"]
    assert SELLER_PIN + "#" not in handed_to(result)


async def test_the_agent_sees_the_last_operations_never_a_secret(dial, queue_on):
    result = await dial(f"1 {PHONE_BLOCKED} 4 1 {SELLER_PIN}# 3 0")
    line = handed_to(result)
    assert line.endswith("inquiry:blocked/activation_code:refused:blocked]")
    assert SELLER_PIN not in line.replace("xxxxxxx1111", "")


async def test_silence_after_the_offer_ends_the_call_as_before(dial, queue_on):
    result = await dial("3 1", caller=NO_PIN)
    assert result.heard[-3:] == ["staff_offer", "main_menu_again", "goodbye"]
    assert result.outcome == "transfer:no_password"


def test_a_handed_over_call_is_counted_as_handoff():
    from ivr import metrics

    assert metrics.outcome_label(staff.HANDOFF) == "handoff"


def test_which_outcomes_are_stops():
    assert staff.is_stop(Outcome(End.NO_PASSWORD))
    assert staff.is_stop(Outcome.refused("locked"))
    assert staff.is_stop(Outcome.refused(Refusal.BLOCKED))
    assert staff.is_stop(Outcome.refused(Refusal.NEEDS_SIM))
    assert not staff.is_stop(Outcome.refused(Refusal.BUYER_IS_OWNER))
    assert not staff.is_stop(Outcome(End.COMPLETED))
    assert not staff.is_stop(Outcome(End.CANCELLED))
    assert not staff.is_stop(Outcome(End.ANSWERED, "registered"))


def test_the_caller_is_shown_by_the_last_four_digits():
    assert staff.shown_caller("09121234567") == "xxxxxxx4567"
    assert staff.shown_caller("+989121234567") == "xxxxxxxx4567"
    assert staff.shown_caller(None) == staff.shown_caller("12") == "withheld"


# --- on: the opening hours -----------------------------------------------------------------------
async def test_outside_the_hours_the_caller_hears_them_and_is_back_at_the_menu(
        dial, queue_on, monkeypatch):
    monkeypatch.setenv("HAMTA_STAFF_HOURS", "sat-wed 08:00-16:00, thu 08:00-12:30")
    monkeypatch.setattr(staff, "now", lambda: FRIDAY_NOON_TEHRAN)
    result = await dial("0 2 1 h")
    at = result.heard.index("staff_closed")
    assert result.heard[at:at + 16] == [
        "staff_closed", "staff_hours_start", "day_sat", "days_to", "day_wed", "hours_from",
        "hours_to", "time_and", "day_thu", "hours_from", "hours_to", "time_and",
        "time_minutes", "staff_hours_end", "main_menu_again", "enter_imei"]
    assert "> (number) 16: شانزده" in result.text and "> (number) 30: سی" in result.text
    assert "staff_connecting" not in result.heard
    assert result.path[0] == "staff:closed" and result.outcome != "handoff"


async def test_within_the_hours_the_call_goes_through(dial, queue_on, monkeypatch):
    monkeypatch.setenv("HAMTA_STAFF_HOURS", "sat-wed 08:00-16:00")
    monkeypatch.setattr(staff, "now", lambda: SATURDAY_8_TEHRAN)
    result = await dial("0")
    assert result.outcome == "handoff" and "staff_closed" not in result.heard


def test_opening_hours_are_tehran_time():
    queue = StaffQueue("q", (OpenHours((0, 1, 2, 3, 4), 8 * 60, 16 * 60),))
    assert queue.open_at(SATURDAY_8_TEHRAN)
    assert not queue.open_at(SATURDAY_8_TEHRAN.replace(minute=29))  # 07:59 in Tehran
    assert not queue.open_at(FRIDAY_NOON_TEHRAN)
    assert StaffQueue("q").open_at(FRIDAY_NOON_TEHRAN)  # no hours: always open


# --- the settings --------------------------------------------------------------------------------
def test_settings_parse(queue_on, monkeypatch):
    monkeypatch.setenv("HAMTA_STAFF_HOURS", "sat-wed 08:00-16:00, thu 08:00-12:30, fri-sat "
                                            "22:00-24:00")
    monkeypatch.setenv("HAMTA_STAFF_WAIT", "45")
    assert staff_queue() == StaffQueue("hamta-staff", (
        OpenHours((0, 1, 2, 3, 4), 480, 960), OpenHours((5,), 480, 750),
        OpenHours((6, 0), 1320, 1440)), 45)


def test_no_queue_is_off(monkeypatch):
    assert staff_queue() is None


@pytest.mark.parametrize(("key", "value", "named"), [
    ("HAMTA_STAFF_HOURS", "sat-wed 8-16", "HAMTA_STAFF_HOURS: 'sat-wed 8-16' is not opening"),
    ("HAMTA_STAFF_HOURS", "sat-xyz 08:00-16:00", "HAMTA_STAFF_HOURS"),
    ("HAMTA_STAFF_HOURS", "sat 16:00-08:00", "the end after the start"),
    ("HAMTA_STAFF_QUEUE", "two words", "HAMTA_STAFF_QUEUE: 'two words' is not a queue name"),
    ("HAMTA_STAFF_QUEUE", "general", "is not a queue name"),
    ("HAMTA_STAFF_WAIT", "5", "HAMTA_STAFF_WAIT: '5' is not 10-3600 seconds"),
])
def test_a_bad_setting_is_one_line_naming_it_and_the_fix(queue_on, monkeypatch, key, value,
                                                         named):
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        staff_queue()
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert "e.g." in message


def test_the_config_file_takes_the_keys(tmp_path: Path, monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('staff_queue = "hamta-staff"\nstaff_hours = "sat-wed 08:00-16:00"\n'
                      "staff_wait = 60\n")
    monkeypatch.setenv("HAMTA_CONFIG", str(config))
    queue = staff_queue()
    assert queue is not None and queue.wait == 60 and len(queue.hours) == 1


# --- queues.conf and the AGI channel -------------------------------------------------------------
def test_queues_conf_rings_every_staff_softphone():
    accounts = [StaffAccount("staff1", "pass-one"),
                StaffAccount("staff2", "pass-two", "09122222222")]
    text = queues_conf(StaffQueue("hamta-staff"), accounts)
    assert "[hamta-staff]" in text and "strategy = ringall" in text
    assert "member => PJSIP/staff1,0,staff1" in text and "member => PJSIP/staff2" in text
    assert "joinempty = unavailable,invalid" in text
    assert "pass-" not in text  # the members are names; their passwords stay in pjsip_staff.conf
    off = queues_conf(None, [StaffAccount("staff1", "pass-one")])
    assert "[general]" in off and "member =>" not in off and "[hamta-staff]" not in off


async def test_the_agi_channel_hands_over_in_channel_variables_without_hanging_up(tmp_path):
    call, transport = make_call(
        tmp_path,
        ("SET VARIABLE HAMTA_QUEUE hamta-staff", "200 result=1"),
        ("SET VARIABLE HAMTA_CONTEXT transfer:refused:locked", "200 result=1"),
        ("SET VARIABLE HAMTA_CALLER xxxxxxx1111", "200 result=1"),
        ("SET VARIABLE HAMTA_QUEUE_WAIT 120", "200 result=1"),
        ("SET VARIABLE HAMTA_RESULT queue", "200 result=1"),
    )
    await call.hand_off("hamta-staff", "transfer:refused:locked", "xxxxxxx1111", 120)
    await call.finish()  # the server's normal end: HAMTA_RESULT stays `queue`, no HANGUP
    assert len(transport.sent) == 5 and transport.mismatch is None
    assert call.finished and not call.hung_up


def test_both_dialplan_entries_queue_a_handed_over_call():
    """7777 (FastAGI) and 7778 (classic AGI) both go to [hamta-ivr-queue] on HAMTA_RESULT=queue,
    before the check for `done`."""
    text = (Path(__file__).resolve().parents[2] / "asterisk-conf" / "extensions.conf").read_text()
    for exten in ("@IVR_EXTENSION@", "@CLASSIC_EXTENSION@"):  # ivr.asterisk.dialplan
        block = text[text.index(f"exten => {exten},1"):]
        block = block[:block.index("(end),Hangup()")]
        queued = block.index('"${HAMTA_RESULT}" = "queue"]?hamta-ivr-queue,s,1')
        assert queued < block.index('"${HAMTA_RESULT}" = "done"]?end')
    assert "Queue(${HAMTA_QUEUE},rb(hamta-ivr-agent^s^1),,,${HAMTA_QUEUE_WAIT})" in text
