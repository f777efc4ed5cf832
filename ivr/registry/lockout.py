"""The abuse limits in one place: attempt counters, the lock ladder, and the throttles per calling
line and per call, shared by kartabl passwords and activation codes.

Three wrong in a row lock; the lock lasts 15 minutes, then 1 hour, then 24 hours for each further
lock until a right secret resets the ladder: at most 9 wrong guesses in any 24 hours, then 3 a
day (NIST SP 800-63B asks for at most 100 consecutive failures). An attempt is counted *before*
its secret is verified (`reserve`), so parallel guesses can never get more than MAX_ATTEMPTS
verified per lock, and an attempt still counts when the call drops while the hash is checked.

Each secret has two ladders (Scope), so that strangers cannot lock its owner out: a kartabl PIN
keyed from the number's own line (as the network vouches for it) counts apart from one keyed
for it from other lines, and a device's code keyed by its signed-in owner (a direct sale) apart
from codes keyed by would-be buyers (activation). On top, a calling line may try the PINs of
at most LINE_NUMBERS other numbers and the codes of at most LINE_DEVICES devices a day, and one
call at most CALL_NUMBERS numbers: PIN spraying from one line stops after a handful of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

MAX_ATTEMPTS = 3
LOCK_STEPS = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=24))

THROTTLE_WINDOW = timedelta(hours=24)
LINE_NUMBERS = 3  # other numbers' PINs one calling line may try per window
WITHHELD_NUMBERS = 30  # the same for all withheld callers together
CALL_NUMBERS = 2  # numbers (its own included) one call may try a PIN on
LINE_DEVICES = 5  # devices whose codes one calling line may key as a buyer per window
SPRAY_WINDOW = timedelta(minutes=1)
SPRAY_ALERT = 20  # failed sign-ins across the registry per SPRAY_WINDOW that raise the alarm
# The registry's budget of failed sign-ins from other lines (not the number's own vouched line):
# once FAILURE_BUDGET of them fell within FAILURE_WINDOW, every other-line sign-in proves the SIM
# (an SMS code) before its PIN is even verified, until the window has room again. Spraying
# common PINs over many kartabls from many (forged) caller IDs then costs the SIM of each victim;
# an owner who has their SIM still gets in.
FAILURE_BUDGET = 100
FAILURE_WINDOW = timedelta(hours=1)

# One-time SMS codes (ivr.registry.sim_codes): the SIM as a second factor
SIM_CODE_LEN = 6
SIM_CODE_LIFE = timedelta(minutes=5)
SIM_CODE_TRIES = 3  # wrong entries that spend one code
SIM_CODES_PER_DAY = 5  # codes one number can be sent in any 24 hours, whoever asks


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


@dataclass(frozen=True)
class Scope:
    """One ladder's columns in its table's row."""

    name: str
    failed: str
    level: str
    until: str

    def read(self, row: Any) -> Counters:
        return Counters(getattr(row, self.failed), getattr(row, self.level),
                        getattr(row, self.until))

    def values(self, counters: Counters) -> dict[str, Any]:
        return {self.failed: counters.failed, self.level: counters.level,
                self.until: counters.locked_until}


OWN_LINE = Scope("own line", "failed_attempts", "lock_level", "locked_until")
OTHER_LINES = Scope("other lines", "others_failed_attempts", "others_lock_level",
                    "others_locked_until")
OWNER = Scope("owner", "code_failed_attempts", "code_lock_level", "code_locked_until")
BUYERS = Scope("buyers", "buyer_failed_attempts", "buyer_lock_level", "buyer_locked_until")


def cleared(*scopes: Scope) -> dict[str, Any]:
    """Column values that reset these ladders (a right secret, a new one)."""
    values: dict[str, Any] = {}
    for scope in scopes:
        values.update(scope.values(CLEARED))
    return values
