"""One call from the welcome to the goodbye: the main menu, the call log, and how a call ends.

Main menu, at most five choices, the first three keeping the numbering `*7777#` users know: `1`
IMEI inquiry, `2` activate a bought device, `3` transfer ownership, `4` get an activation code,
`5` my devices and more (then `1` my devices, `2` change a code, `3` report lost or stolen or
withdraw it, `4` return a device, `5` the buyer's rights); `6` the buyer's rights (not said in the
menu, which stays under 15 s of speech: offered after every inquiry verdict); `*` hears it again;
`#` alone in any question comes back here. After an operation the caller hears a short menu (`*`:
the whole one), and one silence there ends the call. `0`, a person (ivr.flows.staff), only when an
operator configured a staff queue: said after the menu's options, and first thing after a stop
(locked out, no password, a refusal); the call then ends here with the outcome `handoff`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.call.api import Call, CallerHungUp, Question, Say, Status
from ivr.config import ConfigError, StaffQueue, staff_queue
from ivr.flows import questions as q
from ivr.flows import staff
from ivr.flows.activate import activate_device
from ivr.flows.activation_code import get_activation_code
from ivr.flows.buyer_rights import buyer_rights
from ivr.flows.change_code import change_activation_code
from ivr.flows.inquiry import imei_inquiry
from ivr.flows.lost_stolen import lost_or_stolen
from ivr.flows.my_devices import list_my_devices
from ivr.flows.outcome import End, Ended, Outcome
from ivr.flows.return_device import return_device
from ivr.flows.transfer import transfer_ownership
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import try_normalize

log = logging.getLogger(__name__)

Flow = Callable[[Call, AsyncRegistry], Awaitable[Outcome]]

OPERATIONS: dict[str, tuple[str, Flow]] = {
    "1": ("inquiry", imei_inquiry),
    "2": ("activate", activate_device),
    "3": ("transfer", transfer_ownership),
    "4": ("activation_code", get_activation_code),
    "6": ("buyer_rights", buyer_rights),
}
MORE: dict[str, tuple[str, Flow]] = {  # main menu `5`
    "1": ("my_devices", list_my_devices),
    "2": ("change_code", change_activation_code),
    "3": ("lost_stolen", lost_or_stolen),
    "4": ("return", return_device),
    "5": ("buyer_rights", buyer_rights),
}


@dataclass
class CallResult:
    """What the call log records: the operations in order and how the call ended.

    Outcomes: the last operation's (`transfer:completed`, `transfer:refused:blocked`, …) when the
    caller left from the main menu; `hung_up`, `timed_out` or `gave_up` when the call ended inside
    an operation (which then changed nothing); `error` when the IVR itself failed.
    """

    outcome: str = "hung_up"  # `handoff`: handed to a person (ivr.flows.staff)
    path: list[str] = field(default_factory=list)
    finished: str | None = None  # the last operation that ran to its end

    def __str__(self) -> str:
        return self.outcome


async def handle_call(call: Call, registry: AsyncRegistry, server: str | None = None
                      ) -> CallResult:
    """Run the call to its end and log it (`server`: which server took it, host:port)."""
    registry = registry.for_call(call.origin)  # every question below asked as this call
    await registry.call_started(
        call.call_id, try_normalize(call.caller_id), call.channel_name, datetime.now(UTC),
        server,
    )
    result = CallResult()
    try:
        await call.play("welcome")
        result.outcome = await main_menu(call, registry, result)
    except CallerHungUp:
        result.outcome = result.finished or "hung_up"  # at the menu after an operation, or in one
    except Exception:
        log.exception("call %s failed", call.call_id)
        result.outcome = "error"
        await _last_words(call, "system_error")
    finally:
        await registry.call_ended(call.call_id, list(result.path), result.outcome,
                                  datetime.now(UTC))
    return result


async def main_menu(call: Call, registry: AsyncRegistry, result: CallResult) -> str:
    """Operations until the caller falls silent at the menu; the call's outcome."""
    queue = _staff_queue() if call.hands_off else None  # a USSD session has no person behind
    first, again = (q.MAIN_MENU, q.MAIN_MENU_AGAIN) if queue is None else \
        (q.MAIN_MENU_STAFF, q.MAIN_MENU_AGAIN_STAFF)
    question: Question = first
    said: list[Say] | None = None  # the short menu's words after a stop: `0` first
    while True:
        choice = await call.ask(question, prompt=said)
        said = None
        if choice.status is Status.BACK:  # `#` at the main menu: hear it again
            question = first
            continue
        if choice.status is Status.TIMED_OUT:
            await call.goodbye()
            return result.finished or End.TIMED_OUT.value
        if not choice.ok:
            await _last_words(call, "too_many_attempts", "goodbye")
            return End.GAVE_UP.value
        if queue is not None and choice.value == staff.KEY:
            if await staff.to_staff(call, queue, result.path):
                return staff.HANDOFF
            question = again  # closed: the hours were said
            continue
        operation = await _operation(call, choice.value)
        if isinstance(operation, Outcome):  # the sub-menu's tries ran out, or `#`
            outcome, name = operation, "more"
        else:
            name, flow = operation
            result.path.append(name)
            result.finished = None
            outcome = await run(flow, call, registry)
        if outcome.ends_call:  # a question's tries ran out inside the operation
            await _last_words(call, "too_many_attempts", "goodbye")
            return outcome.end.value
        if name in OPERATION_NAMES:
            result.path[-1] = result.finished = f"{name}:{outcome.logged}"
        question = first if outcome.end is End.BACK else again
        if queue is not None and staff.is_stop(outcome):
            said = [q.STAFF_OFFER, *again.prompt]


async def run(flow: Flow, call: Call, registry: AsyncRegistry) -> Outcome:
    """One operation, to its end or to the step that ended it early (Ended: the caller has
    heard why); how it ended, either way. A hang-up is no early end: it ends the call."""
    try:
        return await flow(call, registry)
    except Ended as ended:
        return ended.outcome


def _staff_queue() -> StaffQueue | None:
    """The staff queue behind `0`, or None. `hamta-ivr serve` checked the settings when it
    started; a config file broken since then turns `0` off rather than failing the call."""
    try:
        return staff_queue()
    except ConfigError as exc:
        log.error("no `0` to a person on this call: %s", exc)
        return None


OPERATION_NAMES = {name for name, _ in [*OPERATIONS.values(), *MORE.values()]}


async def _operation(call: Call, key: str) -> tuple[str, Flow] | Outcome:
    """The operation a main-menu key starts (`5` asks which of the five)."""
    if key in OPERATIONS:
        return OPERATIONS[key]
    more = await call.ask(q.MORE)
    return MORE[more.value] if more.ok else Outcome.unanswered(more)


async def _last_words(call: Call, *keys: str) -> None:
    try:
        await call.play(*keys, barge_in=False)
        await call.hangup()
    except CallerHungUp:
        pass
    except Exception:  # the channel itself is broken: nothing more can be said
        log.debug("could not say goodbye on call %s", call.call_id, exc_info=True)
