"""The same calls over two channels: the console caller and FastAGI with the fake Asterisk.

Each key script is dialled on the console caller (the `dial` fixture, demo registry) and, on a
second demo registry of its own, through `FastAgiServer` + `Ivr.handle` by the fake Asterisk
(ivr.testing.fake_asterisk) speaking AGI over a socket as Asterisk 22 does. Both channels must
hear the same prompt keys in the same order, end with the same call-log outcome and leave the
registry changed the same way. No Asterisk, no root.
"""

from __future__ import annotations

import dataclasses
import wave
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.app import Ivr
from ivr.call.fastagi import FastAgiServer, ServerSettings
from ivr.prompts import catalogue
from ivr.prompts.devices import device_sound_name
from ivr.prompts.layout import sound_path
from ivr.registry import demo
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.testing.fake_asterisk import CallResult, FakeAsterisk

SELLER = demo.DEMO_SELLER
IMEIS = [demo.DEMO_PHONE, demo.DEMO_PHONE_NO_CODE, demo.DEMO_PHONE_BLOCKED,
         demo.DEMO_UNREGISTERED, demo.DEMO_NO_PIN_PHONE, *demo.DEMO_MANY_IMEIS]

SCRIPTS = {
    "inquiry": f"1 {demo.DEMO_PHONE}",
    "direct transfer": f"3 1 {demo.DEMO_SELLER_PIN}# 1 {demo.DEMO_CODE} {demo.DEMO_BUYER} 1",
    "wrong password": "3 1 9999#",
    "silence at the main menu": "",
    "hang-up mid-transfer": f"3 1 {demo.DEMO_SELLER_PIN}# h",
    # the operations the USSD transcripts run too (tests/flows/test_ussd_transcripts.py)
    "activation": f"2 {demo.DEMO_PHONE} {demo.DEMO_CODE} 1 2",
    "a code for an indirect sale": f"4 1 {demo.DEMO_SELLER_PIN}# 2 1 2",
    "my devices": f"5 1 1 {demo.DEMO_SELLER_PIN}#",
}
CALLERS = {"activation": demo.DEMO_BUYER}  # the others call from the seller's line


def call_log(registry: Registry) -> list[dict[str, Any]]:
    return [dataclasses.asdict(row) for row in registry.call_log.calls()]


def devices(registry: Registry) -> dict[str, dict[str, Any] | None]:
    """Every demo device as the registry shows it, without the times (they differ per run)."""
    shown: dict[str, dict[str, Any] | None] = {}
    for imei in IMEIS:
        record = registry.portal.device_info(imei)
        info = None if record is None else dataclasses.asdict(record)
        shown[imei] = None if info is None else {
            k: v for k, v in info.items()
            if not isinstance(v, datetime) and not (k.endswith(("_at", "_since", "_until")))}
    return shown


def heard_over_fastagi(result: CallResult) -> list[str]:
    """The catalogue prompts the fake Asterisk played, in order (what `Result.heard` lists)."""
    keys = set(catalogue.keys())
    return [p for p in result.prompts if p in keys]


@pytest.fixture
async def fastagi(sqlite_registry_factory: Any, tmp_path: Path
                  ) -> AsyncIterator[tuple[Registry, FakeAsterisk]]:
    """A FastAGI server on its own demo registry, and the fake Asterisk calling it."""
    registry = sqlite_registry_factory()
    demo.seed_demo(registry)
    sounds = tmp_path / "sounds"
    for imei in IMEIS:  # device names are spoken on both channels (the console always says them)
        info = registry.portal.device_info(imei)
        assert info is not None
        path = sound_path(sounds, device_sound_name(info.brand, info.model))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    digits = sounds / "fa" / "digits"  # a generated code is read from these (FastAGI's spool)
    digits.mkdir(parents=True, exist_ok=True)
    for digit in "0123456789":
        with wave.open(str(digits / f"{digit}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 800)
    ivr = Ivr(registry)
    server = FastAgiServer(ServerSettings(port=0, sounds=sounds, spool=tmp_path / "spool"),
                           ivr.handle)
    await server.start()
    try:
        yield registry, FakeAsterisk("127.0.0.1", server.port)
    finally:
        await server.stop()
        ivr.desk.close()


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_console_and_fastagi_agree(name: str, dial: Any, registry: Registry,
                                         fastagi: tuple[Registry, FakeAsterisk]) -> None:
    keys = SCRIPTS[name]
    agi_registry, asterisk = fastagi
    assert devices(registry) == devices(agi_registry)  # the same start

    caller = CALLERS.get(name, SELLER)
    console = await dial(keys, caller=caller)
    placed = await asterisk.call(keys, caller_id=caller)

    assert placed.error is None and placed.closed, placed.error
    assert not placed.unknown and not placed.keys_left
    assert heard_over_fastagi(placed) == console.heard
    assert "welcome" in console.heard
    [console_row] = call_log(registry)
    [agi_row] = call_log(agi_registry)
    assert agi_row["outcome"] == console_row["outcome"]
    assert (agi_row["channel"], console_row["channel"]) == ("fastagi", "console")
    assert devices(agi_registry) == devices(registry)
    # FastAGI's own end: the normal-end marker unless the caller left; the IVR's goodbye hangs up
    if "h" in keys:
        assert placed.caller_hung_up and placed.result is None
    else:
        assert placed.result == "done" and placed.server_hung_up


async def test_transfer_moves_the_phone_on_both(dial: Any, registry: Registry,
                                                fastagi: tuple[Registry, FakeAsterisk]) -> None:
    """The registry change itself, not only its sameness."""
    agi_registry, asterisk = fastagi
    keys = SCRIPTS["direct transfer"]
    await dial(keys, caller=SELLER)
    placed = await asterisk.call(keys, caller_id=SELLER)
    assert "reference_is" in heard_over_fastagi(placed)
    for reg in (registry, agi_registry):
        shown = devices(reg)[demo.DEMO_PHONE]
        assert shown is not None and shown["owner"] == normalize(demo.DEMO_BUYER)
