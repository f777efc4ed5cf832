"""The seed procedures over USSD (`*7777#`): the very same flow modules as the voice transcripts
(ivr.flows.session.handle_call), through the console USSD session (ivr.call.ussd_console) against
a real SQLite registry. Replies are whole, as a subscriber types them on a phone's screen; every
screen sent must fit 80 characters (160 octets in UCS-2)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from ivr.call.screens import SCREEN_CHARS, persian, width
from ivr.call.ussd_console import ConsoleUssdCall, scripted_replies
from ivr.flows.session import CallResult, handle_call
from ivr.prompts import catalogue
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.registry.tables import outbox

from .conftest import (
    BUYER,
    BUYER_PIN,
    CODE,
    PHONE,
    PHONE_NO_CODE,
    SELLER,
    SELLER_PIN,
    SIM_CODE,
    STRANGER,
    UNREGISTERED,
    Caller,
    snapshot,
)

TRANSFER = f"3 1 {SELLER_PIN} 1 {CODE} {BUYER}"  # up to the confirmation


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


@dataclass
class Session:
    ended: CallResult
    call: ConsoleUssdCall

    @property
    def outcome(self) -> str:
        return self.ended.outcome

    @property
    def screens(self) -> list[str]:
        """Every screen (page) sent, `[CON] …` or `[END] …`."""
        return [line for line in self.call.transcript if line.startswith(("[CON]", "[END]"))]

    @property
    def text(self) -> str:
        return "\n".join(self.call.transcript)

    @property
    def shown(self) -> list[str]:
        return self.call.shown


class Dialer:
    """Opens scripted USSD sessions against the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def __call__(self, replies: str, msisdn: str | None = SELLER, *, trusted: bool = True,
                       aregistry: AsyncRegistry | None = None, clock_of=None) -> Session:
        own = aregistry is None
        aregistry = aregistry or AsyncRegistry(self.registry)
        call = ConsoleUssdCall(caller_id=msisdn, caller_trusted=trusted,
                               replies=scripted_replies(replies), out=_Null())  # type: ignore[arg-type]
        if clock_of is not None:
            call.clock = clock_of(call)
        try:
            ended = await handle_call(call, aregistry)
        finally:
            if own:
                aregistry.close()
        session = Session(ended, call)
        for screen in session.screens:
            assert width(screen[6:]) <= SCREEN_CHARS, f"screen too long: {screen!r}"
        return session



@pytest.fixture
def ussd(registry: Registry) -> Dialer:
    return Dialer(registry)


def owner_of(registry: Registry, imei: str) -> str | None:
    return registry.portal.device_info(imei).owner


def logged(registry: Registry, call: ConsoleUssdCall):
    return next(r for r in registry.call_log.calls() if r.call_id == call.call_id)


# --- 1: inquiry ----------------------------------------------------------------------------------
async def test_inquiry_shows_the_verdict_and_the_device_name(ussd, registry):
    session = await ussd(f"1 {PHONE}")
    assert "[CON] همتا\n۱ استعلام" in session.text
    assert "ثبت‌شده و قانونی: Samsung Galaxy A54" in session.text
    assert session.outcome == "inquiry:registered"
    row = logged(registry, session.call)
    assert row.channel == "ussd" and row.path == ["inquiry:registered"]


async def test_an_imei_in_persian_digits_with_spaces_and_dashes_is_the_same_imei(ussd):
    typed = f"{persian(PHONE[:5])} {persian(PHONE[5:10])}-{PHONE[10:]}"
    session = await ussd(f'1 "{typed}"')
    assert "imei_registered" in session.shown


async def test_a_wrong_reply_is_explained_on_the_next_screen_and_costs_a_try(ussd):
    session = await ussd(f"9 12 1 123 {UNREGISTERED}")
    screens = session.screens
    assert screens[1].startswith("[CON] " + catalogue.screen("invalid_choice"))
    assert screens[2].startswith("[CON] " + catalogue.screen("invalid_choice"))  # 12: one key
    assert "imei_unregistered" in session.shown
    assert session.shown.count("invalid_entry") == 1


async def test_star_shows_the_question_again_and_hash_is_the_main_menu(ussd):
    session = await ussd(f"1 * # 1 {PHONE}")
    assert session.shown.count("enter_imei") == 3
    assert session.shown.count("main_menu") == 2
    assert session.outcome == "inquiry:registered"


# --- 3: direct transfer --------------------------------------------------------------------------
async def test_direct_transfer_over_ussd_moves_the_device(ussd, registry):
    session = await ussd(f"{TRANSFER} 1")
    assert owner_of(registry, PHONE) == normalize(BUYER)
    reference = registry.portal.transfers(imei=PHONE)[0].reference
    assert f"مالکیت منتقل شد.\nپیگیری: {persian(reference[:3])}" in session.text
    assert "code_repeat_or_finish" not in session.shown  # voice-only: the number stays shown
    assert persian(PHONE[:5]) in session.text  # «transfer IMEI X to Y?» on the confirm screen
    assert session.outcome == "transfer:completed"
    assert logged(registry, session.call).channel == "ussd"
    # the same SMS receipts as a voice transfer, written in the move's own transaction
    with registry.store.reading() as conn:
        receipts = [(r.template, r.msisdn) for r in conn.execute(
            select(outbox.c.template, outbox.c.msisdn).order_by(outbox.c.id))]
    assert receipts == [("sms_transfer_seller", normalize(SELLER)),
                        ("sms_transfer_buyer", normalize(BUYER))]


async def test_a_session_dropped_at_the_confirmation_changes_nothing(ussd, registry):
    before = snapshot(registry)
    session = await ussd(f"{TRANSFER} .")  # no reply: the gateway ends the session
    assert snapshot(registry) == before
    assert session.outcome == "hung_up"
    assert logged(registry, session.call).path == ["transfer"]


async def test_the_session_limit_ends_it_cleanly_and_changes_nothing(ussd, registry):
    """The reply to the confirmation comes after the session's time: the end screen says the
    session is over and nothing was done; the device stays where it was."""
    def clock_of(call: ConsoleUssdCall):
        confirm = catalogue.screen("confirm_or_cancel")
        # 200 s once the confirmation is on the screen: the reply comes after the limit
        return lambda: 200.0 if any(confirm in line for line in call.transcript) else 0.0

    before = snapshot(registry)
    session = await ussd(f"{TRANSFER} 1", clock_of=clock_of)
    assert snapshot(registry) == before
    assert session.screens[-1] == "[END] " + catalogue.screen("ussd_session_over")
    assert session.outcome == "hung_up"


async def test_an_untrusted_session_needs_the_sim_code_too(ussd, registry, sms_codes):
    """A session from outside the operator's gateway proves nothing about its number: a
    transfer then needs the SMS code, as a call from a softphone does."""
    session = await ussd(f"3 1 {SELLER_PIN} 1 {SIM_CODE} {CODE} {BUYER} 1", trusted=False)
    assert "sim_code_sent" in session.shown
    assert owner_of(registry, PHONE) == normalize(BUYER)
    assert [n for n, _, _ in sms_codes] == [normalize(SELLER)]


async def test_a_voice_call_and_a_ussd_session_racing_for_one_device_give_one_winner(
        ussd, registry):
    desk = AsyncRegistry(registry)
    try:
        voice, text = await asyncio.gather(
            Caller(registry)(f"3 1 {SELLER_PIN}# 1 {CODE} {STRANGER} 1", aregistry=desk),
            ussd(f"{TRANSFER} 1", aregistry=desk))
    finally:
        desk.close()
    outcomes = sorted([voice.outcome, text.outcome])
    assert outcomes.count("transfer:completed") == 1, outcomes
    assert owner_of(registry, PHONE) in (normalize(BUYER), normalize(STRANGER))
    assert len(registry.portal.transfers(imei=PHONE)) == 1


# --- 4 then 2: a code for an indirect sale, the buyer activates ----------------------------------
async def test_get_a_code_over_ussd_then_the_buyer_activates_with_it(ussd, registry):
    session = await ussd(f"4 1 {SELLER_PIN} 2")
    assert "code_generated" in session.shown
    line = next(part for screen in session.screens for part in screen.split("\n")
                if part.startswith("کد فعال‌سازی:"))
    code = "".join(ch for ch in line if ch.isdigit())
    code = code.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    assert len(code) == 8
    assert code not in session.text.replace(line, "")  # shown once, never in a reply's log

    activated = await ussd(f"2 {PHONE_NO_CODE} {code} 1", msisdn=BUYER)
    assert "activated" in activated.shown
    assert owner_of(registry, PHONE_NO_CODE) == normalize(BUYER)
    assert activated.outcome == "activate:completed"


# --- 5 1: my devices -----------------------------------------------------------------------------
async def test_my_devices_over_ussd_lists_them_a_page_at_a_time(ussd):
    session = await ussd(f"5 1 1 {SELLER_PIN} 00 00 00")
    listing = "\n".join(session.screens)
    assert "Samsung Galaxy A54" in listing and "Apple iPhone 13" in listing
    assert "(مسدود)" in listing
    assert session.outcome == "my_devices:completed"


async def test_a_pin_reply_is_masked_in_the_transcript(ussd):
    session = await ussd(f"5 1 1 {BUYER_PIN}", msisdn=BUYER)
    assert f"[password] {'*' * len(BUYER_PIN)}" in session.text
    assert f"] {BUYER_PIN}" not in session.text


def test_scripted_replies_keep_a_quoted_reply_whole():
    assert scripted_replies('1 "35 000" .') == deque(["1", "35 000", "."])


async def test_no_person_behind_a_ussd_session(ussd, monkeypatch):
    """A staff queue configured offers `0` by voice; a USSD session has no one to hand over to
    (the channel says so, Call.hands_off), so `0` is neither shown nor taken."""
    monkeypatch.setenv("HAMTA_STAFF_QUEUE", "hamta-staff")
    session = await ussd("0")
    assert "staff_offer" not in session.shown
    assert "invalid_choice" in session.shown
