"""The IMEI inquiry by SMS: the voice inquiry's verdict in one SMS, a one-line help for anything
else, per-sender limits; then end to end on a real Kannel (bearerbox, smsbox, fakesmsc), with the
sms-service group `hamta-ivr ussd kannel-conf` renders."""

from __future__ import annotations

import asyncio

import pytest

from ivr.call import http_callbacks
from ivr.registry import demo
from ivr.registry.aio import AsyncRegistry
from ivr.sms.inquiry import SenderLimits, SmsInquiry, imei_in, message
from ivr.sms.service_conf import sms_service
from ivr.sms.texts import MAX_CHARS, PERSIAN_DIGITS
from ivr.testing.kannel import SENDER, KannelLab, free_port, missing
from tests.sms.conftest import cannot_run

PHONE, BLOCKED, UNREGISTERED = demo.DEMO_PHONE, demo.DEMO_PHONE_BLOCKED, demo.DEMO_UNREGISTERED
STOLEN, UNKNOWN = demo.DEMO_STOLEN, demo.DEMO_UNKNOWN_IMEI
SUBSCRIBER = "09123334444"


def fa(digits: str) -> str:
    return digits.translate(PERSIAN_DIGITS)


@pytest.fixture
async def inquiry(registry):
    desk = AsyncRegistry(registry)
    yield SmsInquiry(desk, SenderLimits(((5, 3600.0), (20, 86400.0))))
    desk.close()


@pytest.mark.parametrize(("text", "imei"), [
    (PHONE, PHONE),
    (f"{PHONE[:5]} {PHONE[5:10]} {PHONE[10:]}", PHONE),
    (f"{PHONE[:2]}-{PHONE[2:8]}-{PHONE[8:]}", PHONE),
    (fa(PHONE), PHONE),
    (f" {fa(PHONE[:7])} - {fa(PHONE[7:])}\n", PHONE),
    ("hello", None), ("1", None), (PHONE + "0", None), ("", None),
])
def test_an_imei_in_persian_or_latin_digits_spaces_and_dashes(text, imei):
    assert imei_in(text) == imei


async def test_each_verdict_in_one_sms(inquiry):
    replies = {imei: await inquiry.answer(f"0912000000{n}", imei) for n, imei in
               enumerate([PHONE, BLOCKED, UNREGISTERED, STOLEN, UNKNOWN, "1" * 15])}
    assert replies[PHONE] == f"همتا: دستگاه {fa(PHONE)} ثبت‌شده و قانونی است: Samsung Galaxy A54."
    assert "مسدود" in replies[BLOCKED]
    assert "ثبت نشده" in replies[UNREGISTERED]
    assert "سرقت‌شده" in replies[STOLEN]  # reported: said whatever its status
    assert "یافت نشد" in replies[UNKNOWN]
    assert "معتبری نیست" in replies["1" * 15]  # fifteen digits, a wrong check digit
    assert all(len(r) <= MAX_CHARS for r in replies.values())  # two UCS-2 segments at most


async def test_anything_else_gets_the_one_line_help(inquiry):
    assert await inquiry.answer(SUBSCRIBER, "salam, is this phone ok?") == message(
        "sms_inquiry_help")


async def test_a_sender_past_the_limit_is_told_once_then_gets_nothing(inquiry):
    replies = [await inquiry.answer(SUBSCRIBER, PHONE) for _ in range(8)]
    assert all("ثبت‌شده" in r for r in replies[:5])
    assert replies[5] == message("sms_inquiry_limit")
    assert replies[6:] == ["", ""]  # no reply at all: Kannel's omit-empty sends nothing
    assert "ثبت‌شده" in await inquiry.answer("09125556666", PHONE)  # another sender is served


def test_the_limit_window_slides():
    now = [0.0]
    limits = SenderLimits(((2, 60.0),), clock=lambda: now[0])
    assert [limits.take("a") for _ in range(4)] == ["ok", "ok", "over", "silent"]
    now[0] = 61.0
    assert limits.take("a") == "ok"


def test_the_rendered_sms_service_calls_back_with_sender_and_text():
    group = sms_service("127.0.0.1", 13140)
    assert 'get-url = "http://127.0.0.1:13140/sms?from=%p&to=%P&text=%a"' in group
    assert "omit-empty = true" in group and "catch-all = true" in group


# --- end to end on a real Kannel -----------------------------------------------------------------
@pytest.mark.kannel
async def test_an_sms_inquiry_through_kannel_is_answered_in_persian(tmp_path, inquiry):
    why = missing()
    if why:
        cannot_run(why)
    port = free_port()
    server = await http_callbacks.serve(inquiry.handle, "127.0.0.1", port)
    lab = KannelLab(tmp_path / "kannel", sms_service=sms_service("127.0.0.1", port))
    await asyncio.to_thread(lab.start)
    try:
        await asyncio.to_thread(lab.send_mo, SUBSCRIBER, SENDER, f"{PHONE[:5]}-{PHONE[5:]}")
        got = await asyncio.to_thread(lab.wait_delivered, 1)
        assert [(d.to, d.text) for d in got] == [
            (SUBSCRIBER, f"همتا: دستگاه {fa(PHONE)} ثبت‌شده و قانونی است: Samsung Galaxy A54.")]
        # Persian digits arrive as UCS-2 and are read as the same IMEI
        await asyncio.to_thread(lab.send_mo, SUBSCRIBER, SENDER, fa(BLOCKED))
        got = await asyncio.to_thread(lab.wait_delivered, 2)
        assert "مسدود" in got[1].text and fa(BLOCKED) in got[1].text
        await asyncio.to_thread(lab.send_mo, SUBSCRIBER, SENDER, "help")
        got = await asyncio.to_thread(lab.wait_delivered, 3)
        assert got[2].text == message("sms_inquiry_help")
    finally:
        await asyncio.to_thread(lab.stop)
        await server.close()
