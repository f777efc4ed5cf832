"""A USSD session and a voice call racing for one device give one winner, with real parts
(issue 19): the voice call on the real Asterisk through `hamta-ivr serve`, the USSD session
through Kannel bound over SMPP to a test USSD gateway (tests/sms/conftest.ussd_rig), both on the
session's one SQLite registry file. The seller sells the same phone to two buyers at once: both
channels walk the transfer to its confirmation, wait for each other, then confirm together."""

from __future__ import annotations

import asyncio

import pytest

from ivr.asterisk import ami, config, dev
from ivr.registry.demo import demo_imei
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from tests.asterisk.conftest import AgiServer
from tests.sms.conftest import session, ussd_rig

pytestmark = [pytest.mark.asterisk, pytest.mark.kannel]

SELLER, PIN, CODE = "09170009301", "3917", "52617384"
BY_VOICE, BY_USSD = "09180009301", "09180009302"
PHONE = demo_imei(931)


async def test_one_device_sold_by_voice_and_by_ussd_at_once_moves_once(
        agi_server: AgiServer, registry: Registry, tmp_path) -> None:
    registry.portal.add_subscriber(SELLER, password=PIN)
    registry.portal.add_device(PHONE, owner=SELLER, brand="Samsung", model="Galaxy A54",
                               activation_code=CODE)
    cfg = config.load(classic_agi=dev.Runtime.detect().classic_agi, create_secrets=False)
    voice_ready, ussd_ready = asyncio.Event(), asyncio.Event()

    async def confirm_with_the_other() -> str:  # the voice call, at «1 confirm, 2 cancel»
        voice_ready.set()
        await asyncio.wait_for(ussd_ready.wait(), 120)
        return "1 2 h"

    async def by_voice() -> ami.DialResult:
        return await ami.dial(cfg, caller=SELLER, keys=f"3 1 {PIN}# 1 {CODE} {BY_VOICE} ?",
                              spool=str(config.spool_dir()), more=confirm_with_the_other)

    # the USSD session waits at its confirmation for the voice call to reach its own (a minute of
    # prompts): a reply timeout longer than the operator's 60 s, for this test only
    async with ussd_rig(registry, tmp_path, reply_timeout=150) as rig:
        async def by_ussd() -> str:
            number = "98" + SELLER[1:]
            screens = await session(rig.smsc, number, 1, "3", "1", PIN, "1", CODE, BY_USSD)
            assert "۱ تأیید" in screens[-1].text, screens[-1]
            ussd_ready.set()
            await asyncio.wait_for(voice_ready.wait(), 180)
            await rig.smsc.reply(number, "1", 1)
            return (await rig.smsc.screen(60)).text

        voice, last_screen = await asyncio.wait_for(asyncio.gather(by_voice(), by_ussd()), 300)

    assert voice.ok, voice
    voice_won = "transferred" in voice.prompts
    ussd_won = "مالکیت منتقل شد." in last_screen
    assert voice_won != ussd_won, (voice.prompts, last_screen)  # exactly one winner
    [moved] = registry.portal.transfers(imei=PHONE)
    winner = BY_VOICE if voice_won else BY_USSD
    assert moved.to_msisdn == normalize(winner)
    assert registry.portal.device_info(PHONE).owner == normalize(winner)
