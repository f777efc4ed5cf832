"""How AGI command lines reach Asterisk and replies come back: the `AgiTransport` an AgiCall
talks to, and `StreamTransport`, the FastAGI connection with its idle watchdog.

Other transports: pyst2 on stdin/stdout (ivr.call.classic_agi), a recorded transcript in tests
(ivr.testing.transcript). Replies are read by ivr.call.agi_protocol.read_reply (which skips
`100 Trying` and reads the real reply behind a `HANGUP` line, so the stream stays in step).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from ivr.call import agi_protocol as agi
from ivr.call.agi_protocol import AgiReply
from ivr.call.idle import COMMAND_TIMEOUT

log = logging.getLogger(__name__)


class AgiTransport(Protocol):
    async def command(self, line: str) -> AgiReply:
        """Send one AGI command line (no newline) and return its reply."""
        ...


class StreamTransport:
    """FastAGI: command lines written to, and replies read from, the connection from Asterisk.

    A command left unanswered for `timeout` seconds (the idle limit) means the peer is gone: the
    connection is aborted, the reply is a closed connection (a hang-up to AgiCall), and so is
    every later one, at once. The limit is watched by one timer per call that fires at most once
    per `timeout` (not a timer per command: a call is dozens of commands, each a few ms)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 timeout: float = COMMAND_TIMEOUT) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.gone = False
        self._asked_at: float | None = None  # loop.time() the unanswered command was sent
        self._asked = ""  # its line (for the warning)
        self._timed_out = False
        self._watch: asyncio.TimerHandle | None = None

    async def command(self, line: str) -> AgiReply:
        if self.gone:
            return agi.CLOSED
        loop = asyncio.get_running_loop()
        self._asked_at, self._asked = loop.time(), line
        if self._watch is None:
            self._watch = loop.call_at(self._asked_at + self.timeout, self._check)
        try:
            self.writer.write(line.encode() + b"\n")
            if self.writer.transport.get_write_buffer_size():  # not all sent at once: wait
                await self.writer.drain()
            reply, _ = await agi.read_reply(self.reader.readline)
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            reply = agi.CLOSED
        finally:
            self._asked_at = None
        if self._timed_out:
            return agi.AgiReply(0, message=f"no reply in {self.timeout:g}s")
        if reply.status == 0:
            self.close()
        return reply

    def _check(self) -> None:
        """The idle limit's timer: abort the connection when the command out has waited
        `timeout`, else look again when the one out now (or the next) would reach it."""
        loop = asyncio.get_running_loop()
        now, asked = loop.time(), self._asked_at
        if asked is not None and now - asked >= self.timeout:
            self._watch = None
            self.gone = self._timed_out = True
            log.warning("no reply to %s in %gs (the idle limit): the call is dropped",
                        agi.parse_command(self._asked).verb or "a command", self.timeout)
            self.writer.transport.abort()
            return
        self._watch = loop.call_at((asked if asked is not None else now) + self.timeout,
                                   self._check)

    def close(self) -> None:
        """No more commands (the call ended or the peer left): stop watching."""
        self.gone = True
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None


