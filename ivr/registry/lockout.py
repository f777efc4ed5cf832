"""Attempt counters and the lock ladder shared by kartabl passwords and activation codes.

Three wrong in a row lock; the lock lasts 15 minutes, then 1 hour, then 24 hours for each further
lock until a right secret resets the ladder. An attempt is counted *before* its secret is verified
(`reserve`), so parallel guesses can never get more than MAX_ATTEMPTS verified per lock, and an
attempt still counts when the call drops while the hash is being checked. Pure functions: the
kartabl and device modules store the counters in their own columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_ATTEMPTS = 3
LOCK_STEPS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24))


def lock_duration(level: int) -> timedelta:
    """How long the (level+1)-th lock since the last success lasts."""
    return LOCK_STEPS[min(level, len(LOCK_STEPS) - 1)]


@dataclass(frozen=True)
class Counters:
    """An attempt counter's state (the column values to write)."""

    failed: int
    level: int
    locked_until: datetime | None


CLEARED = Counters(0, 0, None)


def live_lock(locked_until: datetime | None, now: datetime) -> datetime | None:
    """The lock in force at `now`, if any."""
    return locked_until if locked_until is not None and now < locked_until else None


def reserve(state: Counters, now: datetime) -> tuple[datetime | None, Counters]:
    """Before verifying a secret: (lock in force or None, counters to write).

    An expired lock starts a fresh round; a round already used up (a crash between counting and
    answering) locks now. Otherwise the attempt is counted.
    """
    live = live_lock(state.locked_until, now)
    if live is not None:
        return live, state
    failed, locked_until = state.failed, state.locked_until
    if locked_until is not None:  # the lock ran out: a fresh round
        failed, locked_until = 0, None
    if failed >= MAX_ATTEMPTS:
        until = now + lock_duration(state.level)
        return until, Counters(failed, state.level + 1, until)
    return None, Counters(failed + 1, state.level, None)


def after_wrong(state: Counters, now: datetime) -> Counters:
    """After a wrong secret (already counted by `reserve`): locked on the last allowed one."""
    failed = max(state.failed, 1)
    if failed >= MAX_ATTEMPTS:
        return Counters(failed, state.level + 1, now + lock_duration(state.level))
    return Counters(failed, state.level, None)
