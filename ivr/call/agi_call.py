"""`AgiCall`: the call API (ivr.call.api.Call) over AGI commands, for FastAGI and classic AGI.

It talks to any AgiTransport (ivr.call.agi_transport); command lines are built and replies
parsed by ivr.call.agi_protocol, the one module that reads and writes AGI text. Traps handled
here (see issue 4):
- Every reply is checked: a hangup (result -1, `511` on a dead channel, `HANGUP`, a closed
  socket) becomes CallerHungUp, anything else that is not `200` AgiError.
- A result code no key has (`200 result=99999999`, negative, non-ASCII, DTMF A-D) is an unexpected
  key, which the call API counts as an invalid entry; it is never an error.
- Secrets never go into an AGI command (every command is an AMI event): a secret digit string is
  played from a temporary WAV file (ivr.call.agi_spool).
- Asterisk reports SUCCESS when the server dies mid-call, so `finish` sets HAMTA_RESULT=done at a
  normal end and the dialplan plays `service_unavailable` otherwise.
- The AGI peer's text (unique id, channel name, language) is logged and stored: kept printable,
  and the language never becomes part of a path.
- Observability (ivr.metrics): every pause between an AGI reply and our next command is a step
  (the silence a caller hears after a key); prompts Asterisk cannot play are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr import metrics
from ivr.call import agi_protocol as agi
from ivr.call.agi_protocol import AgiReply, loggable, printable
from ivr.call.agi_spool import DigitPromptsError, write_secret_digits
from ivr.call.agi_transport import AgiTransport
from ivr.call.api import Call, CallerHungUp, DeviceName, Sound
from ivr.prompts.devices import device_sound

log = logging.getLogger(__name__)

RESULT_VARIABLE = "HAMTA_RESULT"  # the dialplan plays service_unavailable unless it is "done"
BUSY = "busy"  # HAMTA_RESULT when the server turned the caller away (the `busy` prompt)
QUEUED = "queue"  # HAMTA_RESULT when the caller pressed `0`: the dialplan runs Queue()
# what the dialplan's Queue() needs (ivr.flows.staff): the queue, what the agent's phone shows
# (the operations so far, the caller's number cut to its last four digits), the longest wait
QUEUE_VARIABLE, CONTEXT_VARIABLE = "HAMTA_QUEUE", "HAMTA_CONTEXT"
CALLER_VARIABLE, WAIT_VARIABLE = "HAMTA_CALLER", "HAMTA_QUEUE_WAIT"


class AgiError(Exception):
    """An AGI command failed and the caller is still there (bad command, missing module…)."""


# The dialplan passes this AGI argument when the call came in on a trunk whose caller ID the
# network vouches for (asterisk-conf/extensions.conf, context hamta-ivr-trusted, or an endpoint
# named in `trusted_endpoints`); without it the caller ID proves nothing.
TRUST_ARGUMENT = "caller=network"


LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2})?")


def spoken_language(raw: str | None) -> str:
    """The channel's language as a folder name under the sounds (fa, en_US); anything else from
    the AGI peer (`../..`, a path) is the default `fa`, never part of a path."""
    language = (raw or "").strip()
    return language if LANGUAGE.fullmatch(language) else "fa"


def caller_vouched(env: dict[str, str]) -> bool:
    """Does the dialplan say the network vouches for this call's caller ID? (an AGI argument:
    `agi_arg_N`; nothing the caller sends can set it)"""
    return any(value.strip() == TRUST_ARGUMENT for key, value in env.items()
               if key.startswith("agi_arg_"))


@dataclass
class AgiCall(Call):
    """A call driven by AGI commands (FastAGI or classic AGI)."""

    channel_name: str = "fastagi"
    transport: AgiTransport | None = None
    language: str = "fa"
    sounds: Path = Path("sounds")  # the built prompts: <sounds>/<language>/digits/N.wav
    spool: Path = Path("spool")  # temporary secret digit strings, readable by Asterisk
    asterisk_channel: str = ""
    finished: bool = False  # HAMTA_RESULT=done has been set
    hung_up: bool = False
    silence_playing: bool = False  # agi.LISTENING_SILENCE runs since the last prompt
    commands: int = field(default=0, repr=False)
    replied_at: float | None = field(default=None, repr=False)  # the last reply (perf_counter)

    @classmethod
    def from_env(cls, env: dict[str, str], transport: AgiTransport, **kwargs: Any) -> AgiCall:
        """From the AGI environment: unique id (the call log's id), caller ID, language. The
        unique id and the channel name are the peer's text, logged and stored: kept printable
        (control and bidi characters escaped, agi_protocol.printable)."""
        caller = (env.get("agi_callerid") or "").strip()
        if caller.lower() in ("", "unknown", "anonymous", "restricted"):
            caller = ""
        return cls(
            call_id=printable(env.get("agi_uniqueid") or f"agi-{secrets.token_hex(6)}"),
            caller_id=caller or None,
            caller_trusted=caller_vouched(env),
            transport=transport,
            language=spoken_language(env.get("agi_language")),
            asterisk_channel=printable(env.get("agi_channel", "")),
            **kwargs,
        )

    # --- the AGI exchange ----------------------------------------------------------------------
    async def _send(self, line: str) -> AgiReply:
        """Send a command; CallerHungUp on any sign of hangup, AgiError on any other error."""
        if self.hung_up:
            raise CallerHungUp
        assert self.transport is not None
        self.commands += 1
        if self.replied_at is not None:  # the pause the caller heard since the last reply
            metrics.step(time.perf_counter() - self.replied_at)
        if line.startswith(agi.PLAYING_PREFIXES):  # Asterisk stops a generator to play a file
            self.silence_playing = False
        reply = await self.transport.command(line)
        self.replied_at = time.perf_counter()
        if log.isEnabledFor(logging.DEBUG):  # the call loop: mask and format only when shown
            log.debug("%s agi: %s -> %s", self.call_id, loggable(line), reply.status)
        if reply.hung_up:
            self.hung_up = True
            raise CallerHungUp
        if reply.status != 200:
            raise AgiError(f"{loggable(line)}: {reply.status} {printable(reply.message)}".strip())
        return reply

    async def _still_there(self) -> bool:
        try:
            await self._send(agi.CHANNEL_STATUS)
        except CallerHungUp:
            return False
        return True

    @staticmethod
    def _key(reply: AgiReply) -> str | None:
        """The key a reply carries; a code no key has is agi.UNEXPECTED_KEY, never an error (the
        call API makes it an invalid entry)."""
        key = reply.key
        if key is not None and key not in "0123456789*#":
            log.info("unexpected key code %r from the AGI peer: an invalid entry",
                     reply.result[:12])
        return key

    # --- the call API primitives ---------------------------------------------------------------
    async def stream(self, sound: Sound, escape: str) -> str | None:
        if self.hung_up:  # known gone (a flow noticed and went on): nothing to ask the channel
            raise CallerHungUp
        try:
            reply = await self._send(agi.stream_file(sound.file, escape))
        except CallerHungUp:
            # STREAM FILE answers -1 both on hangup and for a missing file: ask the channel
            self.hung_up = False
            if await self._still_there():
                log.error("%s: Asterisk cannot play %s (missing sound file?)", self.call_id,
                          sound.file)
                metrics.PROMPTS_MISSING.inc()
                return None
            raise
        return self._key(reply)

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        if not secret:
            return self._key(await self._send(agi.say_digits(digits, escape)))
        # the secret never enters an AGI command: one temporary file, played by path
        folder = self.sounds / self.language / "digits"
        try:
            path = await asyncio.to_thread(write_secret_digits, digits, folder, self.spool)
        except DigitPromptsError as exc:
            raise AgiError(str(exc)) from None
        try:
            return await self.stream(Sound(str(path.with_suffix("")), "(secret)"), escape)
        finally:
            await asyncio.to_thread(path.unlink, True)

    async def wait_digit(self, timeout: float) -> str | None:
        """A key within `timeout`. Asterisk sends no RTP while it waits for a key, and a silent
        question lasts 8 to 30 s: a session border controller or carrier timing out inactive
        media could drop the call. So the wait is filled with a stream of silence (a tone of 0
        Hz, agi.LISTENING_SILENCE), started once per question: the next prompt stops it."""
        if not self.silence_playing:
            await self._send(agi.LISTENING_SILENCE)
            self.silence_playing = True
        return self._key(await self._send(agi.wait_for_digit(int(timeout * 1000))))

    async def pause(self, seconds: float, escape: str) -> str | None:
        """Silence between digit groups that listens: a key pressed in it stops the reading and
        is kept, as during the digits (without `escape`, a key is heard and dropped)."""
        key = self._key(await self._send(agi.pause(seconds)))
        return key if key and key in escape else None

    async def device_name(self, name: DeviceName, escape: str) -> tuple[bool, str | None]:
        file = await asyncio.to_thread(device_sound, name.brand, name.model, self.sounds)
        if not file:
            return False, None
        return True, await self.stream(Sound(file, f"{name.brand} {name.model}"), escape)

    async def hangup(self) -> None:
        await self.finish()
        with contextlib.suppress(CallerHungUp):
            await self._send(agi.HANGUP)
        self.hung_up = True

    async def hand_off(self, queue: str, context: str, caller: str, wait: int) -> None:
        """The dialplan queues the call once the AGI ends ([hamta-ivr-queue]): what it needs in
        channel variables, then HAMTA_RESULT=queue (instead of done). No hangup."""
        if self.finished or self.hung_up:
            raise CallerHungUp
        for name, value in ((QUEUE_VARIABLE, queue), (CONTEXT_VARIABLE, context),
                            (CALLER_VARIABLE, caller), (WAIT_VARIABLE, str(wait))):
            await self._send(agi.set_variable(name, value))
        await self._send(agi.set_variable(RESULT_VARIABLE, QUEUED))
        self.finished = True

    async def finish(self) -> None:
        """Tell the dialplan the IVR ended normally (no 'service unavailable' after us)."""
        if self.finished or self.hung_up:
            return
        with contextlib.suppress(CallerHungUp):
            await self._send(agi.set_variable(RESULT_VARIABLE, "done"))
            self.finished = True

    def note(self, line: str) -> None:
        log.debug("%s %s", self.call_id, line)
