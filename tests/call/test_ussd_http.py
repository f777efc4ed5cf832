"""The HTTP USSD adapter (aggregator style: sessionId, phoneNumber, text in; `CON …` / `END …`
out) over loopback, against the demo registry, with the same flows as every channel."""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator

import pytest

from ivr.app import Ivr
from ivr.call import http_callbacks
from ivr.call.ussd_http import UssdGateway
from ivr.prompts import catalogue
from ivr.registry import demo
from ivr.registry.msisdn import normalize
from tests.registry.support import SmsGateway

SELLER, PIN, BUYER, CODE = demo.DEMO_SELLER, demo.DEMO_SELLER_PIN, demo.DEMO_BUYER, demo.DEMO_CODE
PHONE = demo.DEMO_PHONE


@pytest.fixture
def registry(sqlite_registry_factory):
    reg = sqlite_registry_factory()
    reg.sim_codes.sender, reg.sim_codes.draw = SmsGateway(), lambda: "482915"
    demo.seed_demo(reg)
    return reg


class Endpoint:
    def __init__(self, url: str, gateway: UssdGateway) -> None:
        self.url, self.gateway = url, gateway

    async def post(self, session: str, text: str, number: str = SELLER) -> str:
        body = urllib.parse.urlencode({"sessionId": session, "phoneNumber": number,
                                       "serviceCode": "*7777#", "text": text}).encode()

        def send() -> str:
            with urllib.request.urlopen(self.url, body, timeout=10) as reply:
                return reply.read().decode("utf-8")

        return await asyncio.to_thread(send)

    async def session(self, session: str, *replies: str, number: str = SELLER) -> list[str]:
        """Every answer of a session whose subscriber replies `replies` in order (cumulative
        text, as the aggregator sends it)."""
        answers = [await self.post(session, "", number)]
        for n in range(len(replies)):
            answers.append(await self.post(session, "*".join(replies[:n + 1]), number))
        return answers


async def _endpoint(registry, gateways: frozenset[str], **limits) -> AsyncIterator[Endpoint]:
    ivr = Ivr(registry)
    gateway = UssdGateway(ivr, gateways, **limits)
    server = await http_callbacks.serve(gateway.handle, "127.0.0.1", 0)
    port = server.port
    try:
        yield Endpoint(f"http://127.0.0.1:{port}/ussd", gateway)
    finally:
        await server.close()
        await gateway.close()
        ivr.desk.close()


@pytest.fixture
async def operator(registry) -> AsyncIterator[Endpoint]:
    """The endpoint as the operator's gateway reaches it (loopback is listed: vouched)."""
    async for endpoint in _endpoint(registry, frozenset({"127.0.0.1"})):
        yield endpoint


@pytest.fixture
async def stranger(registry) -> AsyncIterator[Endpoint]:
    """The endpoint reached from an address that is not the operator's gateway."""
    async for endpoint in _endpoint(registry, frozenset({"10.9.9.9"}), reply_timeout=0.5):
        yield endpoint


async def test_an_inquiry_over_http(operator, registry):
    answers = await operator.session("s1", "1", PHONE)
    assert answers[0].startswith("CON همتا\n۱ استعلام")
    assert answers[1] == "CON " + catalogue.screen("enter_imei")
    assert answers[2].startswith("CON ثبت‌شده و قانونی: Samsung Galaxy A54")
    row = registry.call_log.calls()[0]
    assert row.call_id == "ussd-s1" and row.channel == "ussd"


async def test_a_direct_transfer_over_http_from_the_operator_s_gateway(operator, registry):
    answers = await operator.session("s2", "3", "1", PIN, "1", CODE, BUYER, "1")
    assert all(a.startswith("CON ") for a in answers)
    assert "مالکیت منتقل شد." in answers[-1]
    assert registry.portal.device_info(PHONE).owner == normalize(BUYER)


async def test_a_session_from_elsewhere_is_not_vouched_for(stranger, registry):
    """From an address not in ussd_gateways the number proves nothing: the SIM's SMS code is
    asked before the device's activation code."""
    answers = await stranger.session("s3", "3", "1", PIN, "1")
    assert answers[-1].startswith("CON " + catalogue.screen("sim_code_sent"))


async def test_the_last_screen_is_end_and_the_session_is_gone(operator):
    answers = await operator.session("s4", "9", "9", "9")
    assert answers[-1].startswith("END ")
    assert catalogue.screen("too_many_attempts") in answers[-1]
    await asyncio.sleep(0.05)
    assert operator.gateway.sessions == {}


async def test_a_dialled_shortcut_types_ahead(operator):
    """`*7777*1#`: the aggregator's first step already carries `1`."""
    answer = await operator.post("s5", "1")
    assert answer == "CON " + catalogue.screen("enter_imei")


async def test_silence_past_the_reply_timeout_ends_the_session_and_changes_nothing(
        stranger, registry):
    await stranger.session("s6", "1")
    await asyncio.sleep(1.0)  # reply_timeout 0.5 s
    assert stranger.gateway.sessions == {}
    assert registry.call_log.calls()[0].outcome == "hung_up"
