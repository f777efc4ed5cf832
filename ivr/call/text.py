"""A text Call (a USSD session, `*7777#`): the very same flows, shown as screens.

What the flows play since the subscriber's last reply becomes one screen (ivr.call.screens: each
prompt's short `screen` form from the catalogue, paged past 80 characters); each `ask` shows it
and waits for the reply, which is a whole entry — an IMEI, a PIN, a menu digit — checked as the
question's keys would be: a menu takes one of its keys, an entry its length and validator; `#`
alone is the main menu, `*` shows the question again (free), `00` the next page. A wrong reply is
explained on the next screen and costs a try, as on the phone.

What only a voice call needs is declared once, never branched on in a flow: a prompt with
`voice_only = true` in the catalogue shows nothing, and a question declared `voice_only`
(«hear it again?») is not asked: the text stays on the screen and the flow goes on as after
silence. Silence itself ends a USSD session (the gateway's reply timeout, about 60 s) and so does
the session limit (SESSION_LIMIT, under the gateway's ~180 s, so the end screen still reaches
the phone); either raises CallerHungUp, so the flows write nothing half-done — exactly as a
caller hanging up mid-transfer.

Caller-ID trust: a USSD session's number is the MSISDN the mobile network put in it (MAP, from
the SIM that dialled), not a number anyone typed, so a session that comes from the operator's
own gateway is vouched for like a call from a trusted trunk (`caller_trusted`). Whether it did
come from there is the adapter's to say (ivr.call.ussd_http: `ussd_gateways`); the console is
vouched for with --from, as `hamta-ivr call` is.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ivr.call.api import (
    BACK_KEY,
    Answer,
    Call,
    CallerHungUp,
    Question,
    Say,
    Sound,
    Status,
    mask,
)
from ivr.call.screens import MORE_LINE, NEXT_PAGE, compose, paginate, reply_text

REPLY_TIMEOUT = 60.0  # seconds a subscriber has to reply before the gateway drops the session
SESSION_LIMIT = 170.0  # seconds a session may last: under the gateway's ~180 s
SESSION_OVER = "ussd_session_over"
REPEAT_KEY = "*"


class SessionEnded(CallerHungUp):
    """The session ended without the subscriber's reply: dropped, timed out or over its limit."""


@dataclass
class TextCall(Call):
    """One text session. A channel implements `exchange` (show a screen, wait for the reply) and
    `end` (the last screen); everything else is here."""

    channel_name: str = "ussd"
    hands_off: bool = False  # no person behind a USSD session: `0` is not offered
    reply_timeout: float = REPLY_TIMEOUT
    session_limit: float = SESSION_LIMIT
    clock: Callable[[], float] = time.monotonic
    transcript: list[str] = field(default_factory=list)  # screens and (masked) replies
    shown: list[str] = field(default_factory=list)  # prompt keys put on screens, in order
    ended: bool = False
    _pending: list[Say] = field(default_factory=list)
    _started: float | None = None

    # --- the channel's two primitives -------------------------------------------------------------
    @abstractmethod
    async def exchange(self, screen: str, timeout: float) -> str | None:
        """Show `screen` (USSD `CON`) and wait up to `timeout` s for the reply; None when none
        came. Raise CallerHungUp when the subscriber ended the session."""

    @abstractmethod
    async def end(self, screen: str) -> None:
        """Show the last screen (USSD `END`): the session is over."""

    # --- Call's voice primitives: a text channel plays nothing ----------------------------------
    # never reached: _play_one shows every item whole, ask takes whole replies
    async def stream(self, sound: Sound, escape: str) -> str | None:
        return None

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        return None

    async def wait_digit(self, timeout: float) -> str | None:
        return None

    async def _play_one(self, item: Say, escape: str) -> str | None:
        if self.ended:
            raise SessionEnded
        if isinstance(item, str):
            self.shown.append(item)
        self._pending.append(item)
        return None

    def note(self, line: str) -> None:
        self.transcript.append(line)

    # --- the session clock ------------------------------------------------------------------------
    def _time_left(self) -> float:
        if self._started is None:
            self._started = self.clock()
        return self.session_limit - (self.clock() - self._started)

    # --- asking -----------------------------------------------------------------------------------
    async def ask(self, question: Question, prompt: Sequence[Say] | None = None) -> Answer:
        """Show what was played and the question; take the reply as the whole entry. Tries and
        their explanations as on the phone; silence ends the session (SessionEnded)."""
        if question.voice_only:
            return Answer(Status.TIMED_OUT)
        first = tuple(prompt) if prompt is not None else question.prompt
        said: tuple[Say, ...] = first
        attempt = 0
        while attempt < question.tries:
            await self.play(*said)
            reply = await self._reply()
            self.note(f"< [{question.label}] {mask(reply) if question.secret else reply or '-'}")
            if reply == BACK_KEY:
                return Answer(Status.BACK)
            if reply == REPEAT_KEY:
                said = question.star or first
                continue
            attempt += 1
            reason = _check(question, reply)
            if reason is None:
                return Answer(Status.ENTERED, reply)
            await self.play(reason)
            said = question.reprompt or first
        return Answer(Status.GAVE_UP)

    async def _reply(self) -> str:
        """Show the pending screen, a page at a time (`00`: the next), and return the reply."""
        pages = paginate(compose(self._pending))
        self._pending.clear()
        page = 0
        while True:
            left = self._time_left()
            if left <= 0:
                await self._session_over(pages[page:])
            self.note(f"[CON] {pages[page]}")
            raw = await self.exchange(pages[page], min(self.reply_timeout, left))
            if raw is None:
                if self._time_left() <= 0:
                    await self._session_over(pages[page:])
                self.ended = True
                self.note("  [no reply: the gateway ends the session]")
                raise SessionEnded
            if self._time_left() <= 0:  # the reply came too late: what it answers is not done
                await self._session_over([])
            reply = reply_text(raw)
            if reply == NEXT_PAGE and page + 1 < len(pages):
                page += 1
                continue
            return reply

    async def _session_over(self, unseen: list[str]) -> None:
        """The session's time is up: what was not yet seen (a result), then the end screen;
        nothing that was being asked is done."""
        self.shown.append(SESSION_OVER)
        rest = "\n".join(page.removesuffix(MORE_LINE) for page in unseen)
        await self._last_screens(compose([SESSION_OVER]) if not rest else
                                 f"{rest}\n{compose([SESSION_OVER])}")
        raise SessionEnded

    # --- ending -----------------------------------------------------------------------------------
    async def hangup(self) -> None:
        """The last screen: what was played since the last reply (a goodbye, a refusal)."""
        if self.ended:
            return
        text = compose(self._pending)
        self._pending.clear()
        await self._last_screens(text)

    async def _last_screens(self, text: str) -> None:
        """A long last screen shows its pages with `00` first, as far as the subscriber reads."""
        pages = paginate(text)
        self.ended = True
        for page in pages[:-1]:
            self.note(f"[CON] {page}")
            raw = await self.exchange(page, self.reply_timeout)
            if raw is None or reply_text(raw) != NEXT_PAGE:
                return
        self.note(f"[END] {pages[-1]}")
        await self.end(pages[-1])


def _check(question: Question, reply: str) -> str | None:
    """The prompt key saying what is wrong with a whole reply, or None when it is the entry."""
    if question.keys:
        return None if len(reply) == 1 and reply in question.keys else "invalid_choice"
    if not reply.isdigit() or not reply.isascii():
        return "invalid_entry"
    return question.check(reply)
