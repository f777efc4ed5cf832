"""USSD as operators wire it, on this machine: the real Kannel bound over SMPP to a test SMSC
acting the operator's USSD gateway (ivr.testing.smpp_smsc), its USSD smsbox and sms-service
calling this process's callbacks, with the groups `hamta-ivr ussd kannel-conf` renders. One
rig for `hamta-ivr ussd lab` and the tests; 127.0.0.1 (the lab's smsbox) is a vouched gateway."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ivr.app import Ivr
from ivr.call import http_callbacks
from ivr.call.http_callbacks import Reply, Request
from ivr.call.ussd_http import UssdGateway
from ivr.call.ussd_kannel import KannelUssd
from ivr.sms.inquiry import SenderLimits, SmsInquiry
from ivr.sms.service_conf import KANNEL_USSD_PATH, sms_service, ussd_bearerbox, ussd_smsbox
from ivr.testing.kannel import SENDER, KannelLab, free_port
from ivr.testing.smpp_smsc import UssdSmsc


@dataclass
class UssdLab:
    smsc: UssdSmsc  # the subscriber's side: dial, reply, read the screens
    gateway: UssdGateway
    lab: KannelLab


@contextlib.asynccontextmanager
async def ussd_lab(ivr: Ivr, folder: Path, limits: tuple[tuple[int, float], ...], *,
                   reply_timeout: float | None = None) -> AsyncIterator[UssdLab]:
    """Kannel, the test SMSC and the callbacks up (SMPP bound) for the block; all down after.
    `limits`: the SMS inquiry's per-sender limits."""
    gateway = UssdGateway(ivr, frozenset({"127.0.0.1"}), reply_timeout=reply_timeout)
    kannel_ussd, sms = KannelUssd(gateway), SmsInquiry(ivr.desk, SenderLimits(limits))

    async def route(request: Request) -> Reply:
        if request.path == KANNEL_USSD_PATH:
            return await kannel_ussd.handle(request)
        return await sms.handle(request)

    port, smsc_port = free_port(), free_port()
    server = await http_callbacks.serve(route, "127.0.0.1", port)
    smsc = UssdSmsc(smsc_port)
    await smsc.start()
    conf = ussd_bearerbox("127.0.0.1", smsc_port, smsc.system_id, smsc.password) + "\n" + \
        sms_service("127.0.0.1", port)
    lab = KannelLab(folder, sms_service=conf, extra_smsbox=lambda box, where: ussd_smsbox(
        "127.0.0.1", port, "127.0.0.1", box, f"{where}/ussd-smsbox.log"))
    try:
        await asyncio.to_thread(lab.start)
        await asyncio.wait_for(smsc.bound.wait(), 30)
        yield UssdLab(smsc, gateway, lab)
    finally:
        await asyncio.to_thread(lab.stop)
        await smsc.stop()
        await server.close()
        await gateway.close()


async def at_terminal(ivr: Ivr, folder: Path, limits: tuple[tuple[int, float], ...],
                      caller: str, msisdn: str) -> None:
    """`hamta-ivr ussd lab`: the lab up, the subscriber (`caller`, international `msisdn`) at
    this terminal until the end of its input."""
    async with ussd_lab(ivr, folder, limits) as rig:
        print(f"USSD lab: Kannel bound over SMPP to a test USSD gateway, fakesmsc for SMS "
              f"({folder}); the subscriber is {caller}.\n`dial` dials *7777#, a line "
              "is a reply to the screen, `sms TEXT` sends an SMS to 7777; Ctrl-D ends.",
              flush=True)
        await terminal(rig.smsc, rig.lab, msisdn, SENDER)


async def terminal(smsc: UssdSmsc, lab: KannelLab, msisdn: str, short_code: str) -> None:
    """The subscriber's lines on standard input until its end: `dial`, `sms TEXT`, or a reply
    to the screen; each screen and SMS reply printed."""
    session, open_session = 0, False
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        line = line.strip()
        if line.startswith("sms "):
            before = len(lab.delivered())
            await asyncio.to_thread(lab.send_mo, msisdn, short_code, line[4:].strip())
            got = await asyncio.to_thread(lab.wait_delivered, before + 1, 20)
            print(f"SMS from {short_code}: {got[-1].text}" if len(got) > before
                  else "(no SMS reply)", flush=True)
            continue
        if line == "dial" or not open_session:
            session = session % 255 + 1
            await smsc.dial(msisdn, "*7777#", session)
        else:
            await smsc.reply(msisdn, line, session)
        try:
            screen = await smsc.screen()
        except TimeoutError:
            print("(no screen: the session ended)", flush=True)
            open_session = False
            continue
        open_session = screen.continues
        print(f"┌── {'CON' if screen.continues else 'END'}\n{screen.text}\n└──", flush=True)
