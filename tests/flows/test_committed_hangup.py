"""Issue 18 (found on a real softphone): press `1` to confirm a transfer and hang up within a
second, before the reference is read — the transfer, its row and both SMS were saved, and the call
log said `transfer` / `hung_up`, which the session treats as "changed nothing". A caller who hangs
up while an operation's success is said leaves the operation's outcome in the call log."""

from __future__ import annotations

import pytest

from ivr.call.api import CallerHungUp, Sound
from ivr.call.console import ConsoleCall, scripted_keys
from ivr.flows.session import handle_call
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import normalize

from .conftest import BUYER, CODE, PHONE, SELLER, SELLER_PIN, _Null


class HangsUpAt(ConsoleCall):
    """A caller who hangs up the moment the prompt `at` starts."""

    at: str = ""

    async def stream(self, sound: Sound, escape: str) -> str | None:
        if sound.file.removeprefix("hamta/") == self.at:
            self.hung_up = True
            raise CallerHungUp
        return await super().stream(sound, escape)


@pytest.mark.parametrize(("keys", "at", "caller", "logged"), [
    (f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1", "transferred", SELLER, "transfer:completed"),
    (f"4 1 {SELLER_PIN}# 2", "code_generated", SELLER, "activation_code:completed"),
    (f"5 2 1 {SELLER_PIN}# 1 24681357 24681357", "code_changed", SELLER,
     "change_code:completed"),
    (f"5 3 1 {SELLER_PIN}# 1 1 1", "reported", SELLER, "lost_stolen:completed:lost"),
    (f"2 {PHONE} {CODE} 1", "activated", BUYER, "activate:completed"),
])
async def test_hanging_up_as_the_success_is_said_logs_the_operation(registry, keys, at, caller,
                                                                   logged):
    call = HangsUpAt(caller_id=caller, caller_trusted=True, keys=scripted_keys(keys),
                     out=_Null())
    call.at = at
    async with AsyncRegistry(registry) as aregistry:
        result = await handle_call(call, aregistry)
    assert result.outcome == logged
    [row] = [r for r in registry.call_log.calls() if r.call_id == call.call_id]
    assert row.outcome == logged and row.path == [logged]
    if at == "transferred":
        assert registry.portal.device_info(PHONE).owner == normalize(BUYER)


class PressesDuring(ConsoleCall):
    """A caller who presses `key` while the prompt `at` plays (barge-in)."""

    at: str = ""
    key: str = ""

    async def stream(self, sound: Sound, escape: str) -> str | None:
        heard = await super().stream(sound, escape)
        if sound.file.removeprefix("hamta/") == self.at and self.key and self.key in escape:
            key, self.key = self.key, ""
            return key
        return heard


async def test_a_key_that_cuts_the_device_list_short_is_not_the_next_menu_choice(registry):
    """Issue 18, on a real softphone: `1` pressed while "my devices" was read cut the list and
    started an IMEI inquiry."""
    call = PressesDuring(caller_id=SELLER, caller_trusted=True,
                         keys=scripted_keys(f"5 1 1 {SELLER_PIN}#"), out=_Null())
    call.at, call.key = "imei_ending", "1"
    async with AsyncRegistry(registry) as aregistry:
        result = await handle_call(call, aregistry)
    heard = [line[2:].split(":", 1)[0] for line in call.transcript if line.startswith("> ")]
    assert "enter_imei" not in heard
    assert heard[-2:] == ["main_menu_again", "goodbye"]
    assert result.outcome == "my_devices:completed"
