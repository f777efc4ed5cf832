"""A real Kannel (bearerbox, smsbox and its test SMSC fakesmsc: ivr.testing.kannel) per test, on
free loopback ports. Outside CI a machine without Debian's kannel and kannel-extras skips the
tests marked `kannel` with the reason; with CI=true it fails them (setup.sh installs both)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.app import Ivr
from ivr.call import http_callbacks
from ivr.call.http_callbacks import Reply, Request
from ivr.call.ussd_http import UssdGateway
from ivr.call.ussd_kannel import KannelUssd
from ivr.registry import demo
from ivr.registry.service import Registry
from ivr.sms.inquiry import SenderLimits, SmsInquiry
from ivr.sms.service_conf import (
    KANNEL_USSD_PATH,
    SMS_PATH,
    sms_service,
    ussd_bearerbox,
    ussd_smsbox,
)
from ivr.testing.kannel import KannelLab, free_port, missing
from ivr.testing.smpp_smsc import Screen, UssdSmsc


def cannot_run(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Kannel tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def kannel(tmp_path) -> Iterator[KannelLab]:
    why = missing()
    if why:
        cannot_run(why)
    lab = KannelLab(tmp_path / "kannel")
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def registry(sqlite_registry_factory) -> Registry:
    """The demo registry in a real SQLite file (the gateways' tests)."""
    reg = sqlite_registry_factory()
    demo.seed_demo(reg)
    return reg


@dataclass
class Rig:
    smsc: UssdSmsc
    gateway: UssdGateway
    lab: KannelLab


@contextlib.asynccontextmanager
async def ussd_rig(registry: Registry, folder: Path, reply_timeout: float = 3.0
                   ) -> AsyncIterator[Rig]:
    """USSD as operators wire it, on `registry`: Kannel bound over SMPP to a test SMSC acting the
    operator's USSD gateway, its USSD smsbox and sms-service calling this process's callbacks
    (the groups `hamta-ivr ussd kannel-conf` renders); 127.0.0.1 is a vouched gateway."""
    why = missing()
    if why:
        cannot_run(why)
    ivr = Ivr(registry)
    gateway = UssdGateway(ivr, frozenset({"127.0.0.1"}), reply_timeout=reply_timeout)
    kannel_ussd = KannelUssd(gateway)
    sms = SmsInquiry(ivr.desk, SenderLimits(((5, 3600.0),)))

    async def route(request: Request) -> Reply:
        if request.path == KANNEL_USSD_PATH:
            return await kannel_ussd.handle(request)
        return await sms.handle(request) if request.path == SMS_PATH else (404, "")

    port, smsc_port = free_port(), free_port()
    server = await http_callbacks.serve(route, "127.0.0.1", port)
    smsc = UssdSmsc(smsc_port)
    await smsc.start()
    conf = ussd_bearerbox("127.0.0.1", smsc_port, smsc.system_id, smsc.password) + "\n" + \
        sms_service("127.0.0.1", port)
    lab = KannelLab(folder / "kannel", sms_service=conf, extra_smsbox=lambda box, where:
                    ussd_smsbox("127.0.0.1", port, "127.0.0.1", box, f"{where}/ussd.log"))
    await asyncio.to_thread(lab.start)
    try:
        await asyncio.wait_for(smsc.bound.wait(), 30)
        yield Rig(smsc, gateway, lab)
    finally:
        await asyncio.to_thread(lab.stop)
        await smsc.stop()
        await server.close()
        await gateway.close()
        ivr.desk.close()


async def session(smsc: UssdSmsc, msisdn: str, number: int, *replies: str) -> list[Screen]:
    """Dial *7777#, reply `replies` in order; every screen Kannel brought back."""
    await smsc.dial(msisdn, "*7777#", number)
    screens = [await smsc.screen()]
    for reply in replies:
        assert screens[-1].continues, screens[-1]
        await smsc.reply(msisdn, reply, number)
        screens.append(await smsc.screen())
    return screens
