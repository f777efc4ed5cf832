"""USSD over HTTP in the aggregators' style: the gateway POSTs each step of a session (session
id, number, the subscriber's text) and shows the answer, `CON <screen>` (a reply is awaited) or
`END <screen>` (the session is over). The same flows run behind it, one TextCall per session.

Parameters, as Africa's Talking and most aggregators name them: `sessionId`, `phoneNumber`,
`serviceCode`, `text`. `text` is cumulative there — every reply so far joined by `*` ("3*1*1234")
— and the latest reply is what follows the text of the step before; a first step with text
(`*7777*1#`) types its parts ahead. `msisdn` and `session_id` are taken as aliases.

Caller-ID trust: the number in a session is the MSISDN the mobile network put there (MAP), but
only the operator's gateway can say so; a POST from anywhere else could name any number. Sessions
from the addresses in `ussd_gateways` are vouched for (the number's own line, as a call from a
trusted trunk); any other caller's are served as from a softphone: the SIM must still be proven
by an SMS code before anything moves. Bind the listener to the private network the gateway uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field

from ivr import config
from ivr.app import Ivr
from ivr.call.http_callbacks import Request
from ivr.call.text import SessionEnded, TextCall
from ivr.registry.msisdn import try_normalize

log = logging.getLogger(__name__)

ANSWER_TIMEOUT = 20.0  # seconds to answer one step (the flows wait on the registry, not on us)
GATEWAYS_KEY = "ussd_gateways"


def trusted_gateways() -> frozenset[str]:
    """The addresses whose sessions' numbers are vouched for (`ussd_gateways`, comma-separated):
    parsed and checked by the Settings."""
    return config.current().checked(GATEWAYS_KEY).ussd_gateways


@dataclass
class QueuedTextCall(TextCall):
    """A TextCall fed by HTTP steps: screens go out on one queue, replies come in on another."""

    out: asyncio.Queue[tuple[str, bool]] = field(default_factory=asyncio.Queue)
    replies: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ahead: deque[str] = field(default_factory=deque)  # typed ahead in the dialled code

    async def exchange(self, screen: str, timeout: float) -> str | None:
        if self.ahead:
            return self.ahead.popleft()
        await self.out.put((screen, False))
        try:
            return await asyncio.wait_for(self.replies.get(), timeout)
        except TimeoutError:
            return None

    async def end(self, screen: str) -> None:
        await self.out.put((screen, True))


@dataclass
class Session:
    call: QueuedTextCall
    task: asyncio.Task[object]
    text: str = ""  # the cumulative text of the last step


class UssdGateway:
    """The sessions of one HTTP USSD endpoint."""

    def __init__(self, ivr: Ivr, gateways: frozenset[str] = frozenset(), *,
                 reply_timeout: float | None = None, session_limit: float | None = None) -> None:
        self.ivr = ivr
        self.gateways = gateways
        self.reply_timeout = reply_timeout
        self.session_limit = session_limit
        self.sessions: dict[str, Session] = {}

    async def handle(self, request: Request) -> tuple[int, str]:
        """One HTTP step -> (status, `CON …` / `END …`)."""
        if request.method != "POST" and request.method != "GET":
            return 405, "END"
        p = request.params
        session_id = p.get("sessionId") or p.get("session_id") or ""
        number = p.get("phoneNumber") or p.get("msisdn") or ""
        if not session_id or len(session_id) > 60:
            return 400, "END sessionId is missing"
        return 200, await self.step(session_id, number, p.get("text", ""), request.peer)

    async def step(self, session_id: str, number: str, text: str, peer: str, *,
                   cumulative: bool = True) -> str:
        """One step of a session: the subscriber's `text` (cumulative: every reply so far
        joined by `*`; else the latest reply alone) -> `CON …` / `END …`."""
        session = self.sessions.get(session_id)
        if session is None:
            session = self.open(session_id, number, text.split("*") if cumulative else [],
                                peer)
        else:
            latest = text[len(session.text) + 1:] if cumulative and session.text and \
                text.startswith(session.text + "*") else text
            session.text = text
            await session.call.replies.put(latest)
        return await self.next_screen(session)

    def open(self, session_id: str, number: str, ahead: list[str], peer: str) -> Session:
        """A new session for `number` (`ahead`: replies typed in the dialled code)."""
        caller = try_normalize(number)
        call = QueuedTextCall(call_id=f"ussd-{session_id}"[:64], caller_id=caller,
                              caller_trusted=caller is not None and peer in self.gateways,
                              ahead=deque(part for part in ahead if part))
        if self.reply_timeout is not None:
            call.reply_timeout = self.reply_timeout
        if self.session_limit is not None:
            call.session_limit = self.session_limit
        task: asyncio.Task[object] = asyncio.create_task(self.ivr.handle(call))
        session = Session(call, task, "*".join(ahead))
        self.sessions[session_id] = session
        task.add_done_callback(lambda _: self.sessions.pop(session_id, None))
        return session

    async def next_screen(self, session: Session) -> str:
        """The flows' next screen, or END when the session ended without one."""
        getter = asyncio.ensure_future(session.call.out.get())
        done, _ = await asyncio.wait({getter, session.task}, timeout=ANSWER_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            screen, end = getter.result()
            return f"{'END' if end else 'CON'} {screen}"
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        if session.task not in done:  # the flows did not answer in time: end it, nothing done
            log.error("USSD session %s: no screen within %s s", session.call.call_id,
                      ANSWER_TIMEOUT)
            session.call.ended = True
            session.task.cancel()
        return "END"

    async def close(self) -> None:
        """End every open session (on stop): what they were asking is not done."""
        for session in list(self.sessions.values()):
            session.call.ended = True
            session.task.cancel()
        for session in list(self.sessions.values()):
            with contextlib.suppress(asyncio.CancelledError, SessionEnded):
                await session.task
