"""A person behind `0` (issue 18): the main menu and every stop a caller may want to dispute
(locked out, no kartabl password, a registry refusal) hand the call to the staff queue, when an
operator configured one (`staff_queue`; none: `0` is not offered and is an invalid choice).

Within the opening hours (`staff_hours`, Tehran time; unset: always) the caller hears "connecting
you to an expert" and the channel hands the call over (Call.hand_off): on Asterisk the IVR sets
channel variables and ends, and the dialplan runs Queue() with the staff softphones as members
(asterisk-conf/extensions.conf, [hamta-ivr-queue]). The agent's phone shows what happened before —
the operations and how they ended, as the call log writes them, and the caller's number cut to its
last four digits — never a secret (the call log's path holds none). Outside the hours the caller
hears them and is back at the menu.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ivr.call.api import Call, Number, Say
from ivr.config import DAYS, OpenHours, StaffQueue
from ivr.flows.outcome import End, Outcome
from ivr.registry.types import Refusal

KEY = "0"
HANDOFF = "handoff"  # the call log's outcome of a call handed to a person
PATH_HANDOFF, PATH_CLOSED = "staff", "staff:closed"  # the call log's path entries
SHOWN_STEPS = 3  # the last operations the agent's phone shows
SHOWN_DIGITS = 4  # of the caller's number

DAY_PROMPTS = tuple(f"day_{day}" for day in DAYS)
HOURS_PROMPTS = ("staff_closed", "staff_hours_start", "days_to", "hours_from", "hours_to",
                 "time_and", "time_minutes", "staff_hours_end", *DAY_PROMPTS)

# refusals that are the caller's own slip, told and asked again or plainly so: no expert needed
NOT_DISPUTED = {Refusal.INVALID_IMEI, Refusal.INVALID_CODE, Refusal.WRONG_CODE,
                Refusal.BUYER_INVALID, Refusal.BUYER_IS_OWNER, Refusal.CHANGED}

now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 - tests move the clock


def is_stop(outcome: Outcome) -> bool:
    """Did the operation end where a caller may want a person: locked out, no password, a
    refusal they may dispute?"""
    if outcome.end is End.NO_PASSWORD:
        return True
    return outcome.end is End.REFUSED and outcome.detail not in NOT_DISPUTED


def shown_context(path: list[str]) -> str:
    """What the agent's phone shows of the call so far: the last operations and how they ended
    (`transfer:refused:blocked`), `menu` when `0` came first. No secret is ever in the path."""
    steps = [step for step in path if not step.startswith(PATH_HANDOFF)][-SHOWN_STEPS:]
    return "/".join(steps) or "menu"


def shown_caller(caller_id: str | None) -> str:
    """The caller's number as the agent sees it: its last four digits, the rest x'd out."""
    digits = "".join(ch for ch in caller_id or "" if ch.isdigit())
    if len(digits) < SHOWN_DIGITS:
        return "withheld"
    return "x" * (len(digits) - SHOWN_DIGITS) + digits[-SHOWN_DIGITS:]


def hours_words(hours: tuple[OpenHours, ...]) -> list[Say]:
    """«experts answer Saturday to Wednesday from 8 to 16, and Thursday from 8 to 12»."""
    said: list[Say] = ["staff_hours_start"]
    for n, group in enumerate(hours):
        if n:
            said.append("time_and")
        said.append(DAY_PROMPTS[group.days[0]])
        if len(group.days) > 1:
            said += ["days_to", DAY_PROMPTS[group.days[-1]]]
        said += ["hours_from", *_time(group.start), "hours_to", *_time(group.end)]
    said.append("staff_hours_end")
    return said


def _time(minutes: int) -> list[Say]:
    said: list[Say] = [Number(minutes // 60)]
    if minutes % 60:
        said += ["time_and", Number(minutes % 60), "time_minutes"]
    return said


async def to_staff(call: Call, queue: StaffQueue, path: list[str]) -> bool:
    """`0` pressed: hand the call to the queue (True: the IVR's part is over), or, outside the
    opening hours, say them (False: back to the menu). The call log's path says which."""
    if not queue.open_at(now()):
        path.append(PATH_CLOSED)
        await call.play("staff_closed", *hours_words(queue.hours))
        return False
    context = shown_context(path)
    path.append(PATH_HANDOFF)
    await call.play("staff_connecting", barge_in=False)
    await call.hand_off(queue.name, context, shown_caller(call.caller_id), queue.wait)
    return True
