"""A real Kannel (bearerbox, smsbox and its test SMSC fakesmsc: ivr.testing.kannel) per test, on
free loopback ports. Outside CI a machine without Debian's kannel and kannel-extras skips the
tests marked `kannel` with the reason; with CI=true it fails them (setup.sh installs both)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ivr.app import Ivr
from ivr.registry import demo
from ivr.registry.service import Registry
from ivr.testing.kannel import KannelLab, missing
from ivr.testing.smpp_smsc import Screen, UssdSmsc
from ivr.testing.ussd_lab import UssdLab, ussd_lab


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


Rig = UssdLab


@contextlib.asynccontextmanager
async def ussd_rig(registry: Registry, folder: Path, reply_timeout: float = 3.0
                   ) -> AsyncIterator[UssdLab]:
    """ivr.testing.ussd_lab on `registry`, with a short reply timeout (tests wait for nobody)."""
    why = missing()
    if why:
        cannot_run(why)
    ivr = Ivr(registry)
    try:
        async with ussd_lab(ivr, folder / "kannel", ((5, 3600.0),),
                            reply_timeout=reply_timeout) as lab:
            yield lab
    finally:
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
