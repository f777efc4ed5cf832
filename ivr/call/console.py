"""The console caller: a call in-process, for staff trying a flow and for transcript tests.

Scripted (`keys` given): the keys are typed ahead in order (`.` is a pause: one question times
out; `h` hangs up at that point); once they run out the caller is silent and every question times
out at once, with no real waiting.
Interactive: each prompt's Persian text is shown and keys are read from the
terminal, a line at a time; an empty line is silence, end of input is a hang-up.
"""

from __future__ import annotations

import sys
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from ivr.call.api import Call, CallerHungUp, DeviceName, Sound
from ivr.prompts.persian import number_words

HANG_UP_KEY = "h"
PAUSE_KEY = "."
VALID_KEYS = set("0123456789*#" + HANG_UP_KEY + PAUSE_KEY)


def scripted_keys(keys: str) -> deque[str]:
    """`"3 1 1234#"` -> keys in order; spaces are for readability only."""
    cleaned = "".join(keys.split())
    wrong = sorted(set(cleaned) - VALID_KEYS)
    if wrong:
        raise ValueError(
            f"keys may hold 0-9, * and #, . to pause and h to hang up; not {' '.join(wrong)}"
        )
    return deque(cleaned)


@dataclass
class ConsoleCall(Call):
    call_id: str = field(default_factory=lambda: f"console-{uuid.uuid4().hex[:12]}")
    caller_id: str | None = None
    channel_name: str = "console"
    keys: deque[str] = field(default_factory=deque)  # typed ahead
    interactive: bool = False  # read more keys from `inp` when the typed-ahead ones run out
    out: TextIO = sys.stdout
    inp: TextIO = sys.stdin
    transcript: list[str] = field(default_factory=list)
    hung_up: bool = False

    def __post_init__(self) -> None:
        # caller_trusted (`hamta-ivr call --from N`: that SIM on a trunk the PBX trusts;
        # --untrusted: a softphone's or VoIP trunk's number); a withheld caller ID never is
        if self.caller_id is None:
            self.caller_trusted = False

    def note(self, line: str) -> None:
        self.transcript.append(line)
        print(line, file=self.out, flush=True)

    def _check(self) -> None:
        if self.hung_up:
            raise CallerHungUp

    async def stream(self, sound: Sound, escape: str) -> str | None:
        self._check()
        self.note(f"> {sound.file.removeprefix('hamta/')}: {sound.text}")
        return None  # typed-ahead keys wait for the next question, as on a phone with barge-in

    async def say_number(self, value: int, escape: str) -> str | None:
        self._check()
        self.note(f"> (number) {value}: {number_words(value)}")
        return None

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        self._check()  # a secret read to its owner is what they hear: shown, never logged
        self.note(f"> (digits) {' '.join(digits)}")
        return None

    async def device_name(self, name: DeviceName, escape: str) -> tuple[bool, str | None]:
        self._check()
        self.note(f"> (device) {name.brand} {name.model}")
        return True, None

    async def wait_digit(self, timeout: float) -> str | None:
        self._check()
        if not self.keys and self.interactive:
            self.keys = self._read_keys()
        if not self.keys:
            return None
        key = self.keys.popleft()
        if key == PAUSE_KEY:
            return None
        if key == HANG_UP_KEY:
            self.hung_up = True
            self.note("  [caller hangs up]")
            raise CallerHungUp
        return key

    def _read_keys(self) -> deque[str]:
        print("keys (empty = silence, Ctrl-D = hang up)> ", end="", file=self.out, flush=True)
        line = self.inp.readline()
        if not line:
            self.hung_up = True
            raise CallerHungUp
        try:
            return scripted_keys(line)
        except ValueError as exc:
            print(f"  ({exc})", file=self.out)
            return deque()

    async def hand_off(self, queue: str, context: str, caller: str, wait: int) -> None:
        """No Asterisk here: say where the call would go and what the agent would see."""
        self._check()
        self.note(f"  [the call would go to a person: queue {queue}; the agent's phone shows "
                  f"{caller} {context}]")
        self.hung_up = True

    async def hangup(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            self.note("  [IVR hangs up]")
