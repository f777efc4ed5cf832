"""One call from the welcome to the goodbye: the main menu, the call log, and how a call ends.

Main menu (the first three keep the numbering `*7777#` users know): `1` IMEI inquiry, `2` activate
a bought device, `3` transfer ownership, `4` get an activation code, `5` my devices, `6` change an
activation code, `*` repeat. After each operation the caller is back at the main menu; silence
there ends the call politely.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ivr.call.api import Call, CallerHungUp, NoMoreTries
from ivr.flows.activate import activate_device
from ivr.flows.activation_code import get_activation_code
from ivr.flows.change_code import change_activation_code
from ivr.flows.common import Stop
from ivr.flows.inquiry import imei_inquiry
from ivr.flows.my_devices import list_my_devices
from ivr.flows.transfer import transfer_ownership
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import try_normalize

log = logging.getLogger(__name__)

Flow = Callable[[Call, AsyncRegistry], Awaitable[str]]

MAIN_MENU: dict[str, tuple[str, Flow]] = {
    "1": ("inquiry", imei_inquiry),
    "2": ("activate", activate_device),
    "3": ("transfer", transfer_ownership),
    "4": ("activation_code", get_activation_code),
    "5": ("my_devices", list_my_devices),
    "6": ("change_code", change_activation_code),
}


async def handle_call(call: Call, registry: AsyncRegistry) -> str:
    """Run the call to its end and log it; returns the outcome written to the call log.

    Outcomes: the last operation's (`transfer:completed`, `transfer:refused:blocked`, …) when the
    caller left from the main menu; `hung_up`, `timed_out` or `gave_up` when the call ended inside
    an operation (which then changed nothing); `error` when the IVR itself failed.
    """
    await registry.call_started(
        call.call_id, try_normalize(call.caller_id), call.channel_name, datetime.now(UTC)
    )
    outcome = "hung_up"
    try:
        await call.play("welcome")
        outcome = await main_menu(call, registry)
        await call.goodbye()
    except CallerHungUp:
        finished = call.path and ":" in call.path[-1]  # hung up at the menu, after an operation
        outcome = call.path[-1] if finished else "hung_up"
    except NoMoreTries as exc:
        outcome = "timed_out" if exc.silent else "gave_up"
        await _last_words(call, "too_many_attempts", "goodbye")
    except Exception:
        log.exception("call %s failed", call.call_id)
        outcome = "error"
        await _last_words(call, "system_error")
    finally:
        await registry.call_ended(call.call_id, list(call.path), outcome, datetime.now(UTC))
    return outcome


async def main_menu(call: Call, registry: AsyncRegistry) -> str:
    """Operations until the caller falls silent at the menu (or hangs up, raising)."""
    last = "timed_out"
    while True:
        try:
            choice = await call.menu(["main_menu"], "".join(MAIN_MENU), label="main menu")
        except NoMoreTries as exc:
            if exc.silent:
                return last
            raise
        name, flow = MAIN_MENU[choice]
        call.path.append(name)
        try:
            result = await flow(call, registry)
        except Stop as stop:
            result = stop.outcome
        call.path[-1] = last = f"{name}:{result}"


async def _last_words(call: Call, *keys: str) -> None:
    try:
        await call.play(*keys, barge_in=False)
        await call.hangup()
    except CallerHungUp:
        pass
    except Exception:  # the channel itself is broken: nothing more can be said
        log.debug("could not say goodbye on call %s", call.call_id, exc_info=True)
