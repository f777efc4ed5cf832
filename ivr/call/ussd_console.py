"""The console USSD session (`hamta-ivr call --ussd`): screens in the terminal, for staff trying
the USSD menus and for the USSD transcript tests.

Scripted (`replies` given): each reply is sent in order, as a subscriber types it on the phone
(`.` is no reply: the gateway ends the session; `h` ends it from the phone); once they run out the
subscriber sends nothing and the session ends. Interactive: each screen is shown and a reply read
from the terminal, a line at a time; end of input ends the session.
"""

from __future__ import annotations

import shlex
import sys
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from ivr.call.text import SessionEnded, TextCall

NO_REPLY = "."
END_KEY = "h"


def scripted_replies(replies: str) -> deque[str]:
    """`'1 359881234567890 "0912 111 1111"'` -> the replies in order (shell quoting keeps a
    reply with spaces whole)."""
    return deque(shlex.split(replies))


@dataclass
class ConsoleUssdCall(TextCall):
    call_id: str = field(default_factory=lambda: f"ussd-{uuid.uuid4().hex[:12]}")
    caller_id: str | None = None
    replies: deque[str] = field(default_factory=deque)
    interactive: bool = False
    out: TextIO = sys.stdout
    inp: TextIO = sys.stdin

    def _show(self, kind: str, screen: str) -> None:
        rule = "─" * 24
        print(f"┌{rule} {kind}\n{screen}\n└{rule}", file=self.out, flush=True)

    async def exchange(self, screen: str, timeout: float) -> str | None:
        self._show("CON", screen)
        if not self.replies and self.interactive:
            print("reply (empty = none, Ctrl-D = end the session)> ", end="", file=self.out,
                  flush=True)
            line = self.inp.readline()
            if not line:
                self.ended = True
                raise SessionEnded
            return line.strip() or None
        if not self.replies:
            return None
        reply = self.replies.popleft()
        if reply == NO_REPLY:
            return None
        if reply == END_KEY:
            self.ended = True
            self.note("  [the subscriber ends the session]")
            raise SessionEnded
        return reply

    async def end(self, screen: str) -> None:
        self._show("END", screen)
