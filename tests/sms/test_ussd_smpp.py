"""USSD as operators wire it, end to end with real parts: Kannel's bearerbox and smsbox bound over
SMPP to a test SMSC acting the operator's USSD gateway (ivr.testing.smpp_smsc), with the smsc,
`smpp-tlv` and sms-service groups `hamta-ivr ussd kannel-conf` renders; fakesmsc beside it for
SMS inquiries. A transfer and an activation complete and show in the registry; a session that
times out mid-transfer changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from ivr.call.ussd_kannel import dialled_replies, meta_data
from ivr.prompts import catalogue
from ivr.registry import demo
from ivr.registry.msisdn import normalize
from ivr.sms.inquiry import message
from ivr.sms.service_conf import (
    ussd_bearerbox,
    ussd_smsbox,
)
from ivr.testing.kannel import missing
from ivr.testing.smpp_smsc import PSSR_RESPONSE, USSR_REQUEST
from tests.sms.conftest import Rig, cannot_run, session, ussd_rig

SELLER, PIN, BUYER, CODE = demo.DEMO_SELLER, demo.DEMO_SELLER_PIN, demo.DEMO_BUYER, demo.DEMO_CODE
PHONE, NO_CODE = demo.DEMO_PHONE, demo.DEMO_PHONE_NO_CODE
SELLER_INTL, BUYER_INTL = "98" + SELLER[1:], "98" + BUYER[1:]  # as the network sends them


def test_meta_data_and_a_dialled_shortcut():
    assert meta_data("?smpp?ussd_service_op=%01&its_session_info=%07%00&") == {
        "ussd_service_op": 1, "its_session_info": 0x0700}  # as Kannel 1.4 passes them (%D)
    assert dialled_replies("*7777#") == [] and dialled_replies("*7777*1#") == ["1"]


def test_the_rendered_groups_declare_the_ussd_tlvs():
    conf = ussd_bearerbox("10.1.1.1", 2775, "hamta", "secret")
    assert "tag = 0x0501" in conf and "tag = 0x1383" in conf  # ussd_service_op, its_session_info
    assert 'service-type = "USSD"' in conf and "max-sms-octets = 160" in conf
    assert "group = smsbox-route" in conf and "allowed-smsc-id = ussd" in conf
    box = ussd_smsbox("127.0.0.1", 13140, "127.0.0.1", 13001, "/var/log/kannel/ussd.log")
    assert "sms-length = 160" in box and "meta=%D" in box


@pytest.fixture
async def rig(registry, tmp_path) -> AsyncIterator[Rig]:
    async with ussd_rig(registry, tmp_path) as made:
        yield made


@pytest.mark.kannel
async def test_ussd_over_smpp_inquiry_transfer_activation(rig, registry):
    first = await session(rig.smsc, BUYER_INTL, 3, "1", PHONE)
    assert first[0].text.startswith("همتا\n۱ استعلام") and first[0].op == USSR_REQUEST
    assert first[0].session == 3 and first[0].to == BUYER_INTL
    assert first[2].text.startswith("ثبت‌شده و قانونی: Samsung Galaxy A54")
    assert all(len(s.text) <= 80 for s in first)  # one submit_sm a screen, never split

    sold = await session(rig.smsc, SELLER_INTL, 4, "3", "1", PIN, "1", CODE, BUYER, "1")
    assert "مالکیت منتقل شد." in sold[-1].text
    assert registry.portal.device_info(PHONE).owner == normalize(BUYER)

    coded = await session(rig.smsc, SELLER_INTL, 5, "4", "1", PIN, "1")
    line = next(x for x in coded[-1].text.split("\n") if x.startswith("کد فعال‌سازی:"))
    code = "".join(ch for ch in line if ch.isdigit()).translate(
        str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
    activated = await session(rig.smsc, BUYER_INTL, 6, "2", NO_CODE, code, "1")
    assert "دستگاه به کارتابل شما آمد." in activated[-1].text
    assert registry.portal.device_info(NO_CODE).owner == normalize(BUYER)
    channels = {row.channel for row in registry.call_log.calls()}
    assert channels == {"ussd"}


@pytest.mark.kannel
async def test_a_session_timed_out_mid_transfer_changes_nothing(rig, registry):
    screens = await session(rig.smsc, SELLER_INTL, 7, "3", "1", PIN, "1", CODE, BUYER)
    assert catalogue.screen("confirm_or_cancel") in screens[-1].text
    await asyncio.sleep(3.5)  # past the reply timeout (3 s here; ~60 s on a network)
    await rig.smsc.reply(SELLER_INTL, "1", 7)
    late = await rig.smsc.screen()
    assert late.op == PSSR_RESPONSE and late.ends
    assert late.text == catalogue.screen("ussd_session_over")
    assert registry.portal.device_info(PHONE).owner == normalize(SELLER)
    assert registry.portal.transfers(imei=PHONE) == []


@pytest.mark.kannel
async def test_an_sms_inquiry_beside_ussd_on_the_same_kannel(rig):
    await asyncio.to_thread(rig.lab.send_mo, "09123334444", "7777", PHONE)
    got = await asyncio.to_thread(rig.lab.wait_delivered, 1)
    assert got and "ثبت‌شده و قانونی" in got[-1].text


@pytest.mark.kannel
def test_the_ussd_lab_demo_answers_a_session_and_an_sms(tmp_path):
    """`hamta-ivr ussd lab`: the demo, a subscriber at the terminal, the real Kannel between."""
    why = missing()
    if why:
        cannot_run(why)
    env = {**os.environ, "HAMTA_DATA_DIR": str(tmp_path), "HAMTA_PEPPER": "ab" * 32,
           "HAMTA_CONFIG": ""}
    env.pop("HAMTA_DB_URL", None)

    def hamta_ivr(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ivr", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)

    assert hamta_ivr("db", "upgrade").returncode == 0
    assert hamta_ivr("db", "seed-demo").returncode == 0
    done = hamta_ivr("ussd", "lab", "--from", BUYER,
                     stdin=f"dial\n1\n{PHONE[:5]} {PHONE[5:]}\nsms {PHONE}\nsms hi\n")
    assert done.returncode == 0, done.stderr
    assert "┌── CON\nهمتا\n۱ استعلام" in done.stdout
    assert "ثبت‌شده و قانونی: Samsung Galaxy A54" in done.stdout
    assert "SMS from 7777: همتا: دستگاه" in done.stdout
    assert "SMS from 7777: " + message("sms_inquiry_help") in done.stdout
