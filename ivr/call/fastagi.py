"""The IVR over AGI: `AgiCall` (the call API on AGI commands) and the FastAGI server
(`hamta-ivr serve`, on panoramisk), which Asterisk reaches with `AGI(agi://HOST:4573/hamta)`.

AgiCall talks to any AgiTransport: the FastAGI connection here, pyst2 on stdin/stdout in
ivr.call.classic_agi, a recorded transcript in tests (ivr.testing). Command lines are built and
replies parsed by ivr.call.agi_protocol, the one module that reads and writes AGI text.
panoramisk routes the FastAGI request (its Application); the command exchange is our own.
Traps this module handles (see issue 4):
- Every reply is checked: a hangup (result -1, `511` on a dead channel, `HANGUP`, a closed
  socket) becomes CallerHungUp, anything else that is not `200` AgiError.
- The dialplan sets AGISIGHUP=no; should a `HANGUP` line come anyway, the real reply behind it is
  read too so the stream stays in step.
- panoramisk's header reader spins when a peer disconnects mid-handshake: the handshake is read
  here, bounded in time and size.
- Secrets never go into an AGI command (every command is an AMI event): a secret digit string is
  assembled from the digit prompts into a temporary WAV file that Asterisk plays by path.
- Asterisk reports SUCCESS when the server dies mid-call, so the server sets HAMTA_RESULT=done at a
  normal end and the dialplan plays `service_unavailable` otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import wave
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from panoramisk.fast_agi import Application, Request

from ivr.call import agi_protocol as agi
from ivr.call.agi_protocol import AgiReply, loggable
from ivr.call.api import Call, CallerHungUp, DeviceName, Sound
from ivr.prompts.devices import device_sound

log = logging.getLogger(__name__)

ROUTE = "hamta"
RESULT_VARIABLE = "HAMTA_RESULT"  # the dialplan plays service_unavailable unless it is "done"
HANDSHAKE_TIMEOUT = 5.0  # seconds for Asterisk to send the AGI environment
HANDSHAKE_MAX_BYTES = 64 * 1024
COMMAND_TIMEOUT = 600.0  # no single AGI command (a long prompt) takes longer
DRAIN_SECONDS = 120.0  # on SIGTERM, how long running calls may go on
DIGIT_GAP_SECONDS = 0.12  # silence between the digits of a secret digit string

CallHandler = Callable[[Call], Awaitable[Any]]


class AgiError(Exception):
    """An AGI command failed and the caller is still there (bad command, missing module…)."""


class AgiTransport(Protocol):
    async def command(self, line: str) -> AgiReply:
        """Send one AGI command line (no newline) and return its reply."""
        ...


class StreamTransport:
    """FastAGI: command lines written to, and replies read from, the connection from Asterisk."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def command(self, line: str) -> AgiReply:
        try:
            self.writer.write(line.encode() + b"\n")
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await self.writer.drain()
                reply, _ = await agi.read_reply(self.reader.readline)
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            return agi.CLOSED
        except TimeoutError:
            raise AgiError(f"no reply to {loggable(line).split()[0]} in {COMMAND_TIMEOUT}s") \
                from None
        return reply


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
    commands: int = field(default=0, repr=False)

    @classmethod
    def from_env(cls, env: dict[str, str], transport: AgiTransport, **kwargs: Any) -> AgiCall:
        """From the AGI environment: unique id (the call log's id), caller ID, language."""
        caller = (env.get("agi_callerid") or "").strip()
        if caller.lower() in ("", "unknown", "anonymous", "restricted"):
            caller = ""
        return cls(
            call_id=env.get("agi_uniqueid") or f"agi-{secrets.token_hex(6)}",
            caller_id=caller or None,
            transport=transport,
            language=(env.get("agi_language") or "fa").strip() or "fa",
            asterisk_channel=env.get("agi_channel", ""),
            **kwargs,
        )

    # --- the AGI exchange ----------------------------------------------------------------------
    async def _send(self, line: str) -> AgiReply:
        """Send a command; CallerHungUp on any sign of hangup, AgiError on any other error."""
        if self.hung_up:
            raise CallerHungUp
        assert self.transport is not None
        self.commands += 1
        reply = await self.transport.command(line)
        log.debug("%s agi: %s -> %s", self.call_id, loggable(line), reply.status)
        if reply.hung_up:
            self.hung_up = True
            raise CallerHungUp
        if reply.status != 200:
            raise AgiError(f"{loggable(line)}: {reply.status} {reply.message}".strip())
        return reply

    async def _still_there(self) -> bool:
        try:
            await self._send(agi.CHANNEL_STATUS)
        except CallerHungUp:
            return False
        return True

    @staticmethod
    def _key(reply: AgiReply) -> str | None:
        try:
            return reply.key
        except ValueError:
            raise AgiError(f"unexpected AGI result {reply.result!r}") from None

    # --- the call API primitives ---------------------------------------------------------------
    async def stream(self, sound: Sound, escape: str) -> str | None:
        try:
            reply = await self._send(agi.stream_file(sound.file, escape))
        except CallerHungUp:
            # STREAM FILE answers -1 both on hangup and for a missing file: ask the channel
            self.hung_up = False
            if await self._still_there():
                log.error("%s: Asterisk cannot play %s (missing sound file?)", self.call_id,
                          sound.file)
                return None
            raise
        return self._key(reply)

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        if not secret:
            return self._key(await self._send(agi.say_digits(digits, escape)))
        # the secret never enters an AGI command: one temporary file, played by path
        path = await asyncio.to_thread(self._assemble_digits, digits)
        try:
            return await self.stream(Sound(str(path.with_suffix("")), "(secret)"), escape)
        finally:
            await asyncio.to_thread(path.unlink, True)

    def _assemble_digits(self, digits: str) -> Path:
        folder = self.sounds / self.language / "digits"
        self.spool.mkdir(parents=True, exist_ok=True)
        path = self.spool / f"secret-{secrets.token_hex(12)}.wav"
        params = None
        frames: list[bytes] = []
        for digit in digits:
            with wave.open(str(folder / f"{digit}.wav"), "rb") as src:
                if params is None:
                    params = src.getparams()
                elif src.getparams()[:3] != params[:3]:
                    raise AgiError(f"digit prompts in {folder} differ in format")
                frames.append(src.readframes(src.getnframes()))
        if params is None:
            raise AgiError("nothing to say")
        gap = b"\0" * int(params.framerate * DIGIT_GAP_SECONDS) * params.sampwidth \
            * params.nchannels
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as out:
            out.setnchannels(params.nchannels)
            out.setsampwidth(params.sampwidth)
            out.setframerate(params.framerate)
            out.writeframes(gap.join(frames))
        return path

    async def wait_digit(self, timeout: float) -> str | None:
        return self._key(await self._send(agi.wait_for_digit(int(timeout * 1000))))

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

    async def finish(self) -> None:
        """Tell the dialplan the IVR ended normally (no 'service unavailable' after us)."""
        if self.finished or self.hung_up:
            return
        with contextlib.suppress(CallerHungUp):
            await self._send(agi.set_variable(RESULT_VARIABLE, "done"))
            self.finished = True

    def note(self, line: str) -> None:
        log.debug("%s %s", self.call_id, line)


# --- the FastAGI server -------------------------------------------------------------------------
async def read_environment(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """The AGI environment (`agi_x: value` lines up to a blank line), bounded; None if the peer
    went away or stalled."""
    env: OrderedDict[str, str] = OrderedDict()
    size = 0

    async def read() -> None:
        nonlocal size
        while True:
            line = await reader.readline()
            size += len(line)
            if not line or size > HANDSHAKE_MAX_BYTES:
                raise ConnectionError("peer closed or sent too much during the AGI handshake")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                return
            pair = agi.parse_environment_line(text)
            if pair is not None:
                env[pair[0]] = pair[1]

    try:
        await asyncio.wait_for(read(), HANDSHAKE_TIMEOUT)
    except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
        if size == 0 and isinstance(exc, ConnectionError):
            log.debug("a connection closed without a word (a port probe)")
        else:
            log.warning("AGI handshake failed: %s", str(exc) or "timed out")
        return None
    return env


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    sounds: Path = Path("sounds")
    spool: Path = Path("spool")
    drain_seconds: float = DRAIN_SECONDS


class FastAgiServer:
    """Accepts FastAGI connections for the `hamta` route and hands each call to `handle`."""

    def __init__(self, settings: ServerSettings, handle: CallHandler) -> None:
        """`handle`: runs one call to its end (ivr.app.Ivr.handle); returns its outcome."""
        self.settings = settings
        self.handle = handle
        self.app = Application()  # inside the running loop: panoramisk binds it to that loop
        self.app.add_route(ROUTE, self._route)
        self.calls: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None
        self.outcomes: list[Any] = []  # recent outcomes (tests), bounded

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, self.settings.host,
                                                 self.settings.port)
        sockets = ", ".join(str(s.getsockname()[:2]) for s in self.server.sockets)
        log.info("FastAGI server on %s, route agi://%s:%d/%s", sockets, self.settings.host,
                 self.port, ROUTE)

    @property
    def port(self) -> int:
        if self.server and self.server.sockets:
            return int(self.server.sockets[0].getsockname()[1])
        return self.settings.port

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.calls.add(task)
        try:
            env = await read_environment(reader)
            if env is None:
                return
            script = env.get("agi_network_script", "").split("?", 1)[0].strip("/")
            route = self.app._route.get(script)
            if route is None:
                log.error("no FastAGI route %r (Asterisk asked for agi://…/%s)", script, script)
                return
            await route(Request(self.app, env, reader, writer))  # the transport: StreamTransport
        except asyncio.CancelledError:
            log.warning("call cut short: the server is stopping")
            raise
        except Exception:
            log.exception("FastAGI connection failed")
        finally:
            self.calls.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(self, request: Request) -> None:
        call = AgiCall.from_env(
            request.headers, StreamTransport(request.reader, request.writer),
            sounds=self.settings.sounds,
            spool=self.settings.spool)
        log.info("call %s on %s from %s", call.call_id, call.asterisk_channel,
                 "withheld" if call.caller_id is None else "a caller ID")
        if call.language != "fa":
            log.warning("call %s has language %r; the prompts are built for fa", call.call_id,
                        call.language)
        try:
            outcome = await self.handle(call)
        except (CallerHungUp, AgiError) as exc:
            log.warning("call %s ended: %s", call.call_id, type(exc).__name__)
            return
        # a normal end, whatever the caller did: no "service unavailable" after us
        with contextlib.suppress(AgiError):
            await call.finish()
        self.outcomes = [*self.outcomes[-99:], outcome]
        log.info("call %s ended: %s", call.call_id, outcome)

    async def stop(self) -> None:
        """Stop accepting calls; let running calls end, within the drain limit; cut the rest
        (Asterisk then plays service_unavailable to them rather than silence)."""
        if self.server is not None:
            self.server.close()
        running = {t for t in self.calls if not t.done()}
        if running:
            log.info("waiting up to %.0fs for %d call(s) to end", self.settings.drain_seconds,
                     len(running))
            _, late = await asyncio.wait(running, timeout=self.settings.drain_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)

    async def serve_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
            log.info("stopping: no new calls")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
