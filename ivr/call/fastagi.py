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
  assembled from the digit prompts into a temporary WAV file that Asterisk plays by path. The file
  (`secret-<pid>-<process token>-<random>.wav`, mode 0640, the spool folder's group: the group
  Asterisk reads with) is deleted right after the prompt; `sweep_spool` removes the files a dead
  process left (kill -9) and any older than a bound: at every start and on a timer while serving.
- A result code no key has (`200 result=99999999`, negative, non-ASCII, DTMF A-D) is an unexpected
  key, which the call API counts as an invalid entry; it is never an error.
- Asterisk reports SUCCESS when the server dies mid-call, so the server sets HAMTA_RESULT=done at a
  normal end and the dialplan plays `service_unavailable` otherwise.
- Load shedding: above `max_calls` calls in progress a new caller hears `busy` at once, the server
  sets HAMTA_RESULT=busy and hangs up, no registry work done (`?overflow=yes` in the AGI URL: only
  HAMTA_RESULT=busy, so the dialplan can try another server). A peer that leaves a command
  unanswered longer than the idle limit (`command_timeout`, which `idle_limit()` derives from the
  built audio) is dropped as gone.
- Observability (ivr.metrics): every pause between an AGI reply and our next command is a step
  (the silence a caller hears after a key); calls in progress, outcomes, busy callers and prompts
  Asterisk cannot play are counted; each call's end is one JSON line on the `ivr.calls` logger
  (call id, channel, caller present or withheld, path, outcome, seconds in all and waiting for
  the registry, server). The caller's number is never in it (the call log in the database has
  it); a run of 10+ digits in the channel name is masked, so an endpoint named by its number
  does not leak it either. /readyz asks `readiness()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import secrets
import signal
import time
import wave
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from panoramisk.fast_agi import Application, Request

from ivr import metrics
from ivr.call import agi_protocol as agi
from ivr.call.agi_protocol import AgiReply, loggable, printable
from ivr.call.api import (
    FIRST_DIGIT_TIMEOUT,
    INTER_DIGIT_TIMEOUT,
    READ_FIRST_TIMEOUT,
    Call,
    CallerHungUp,
    DeviceName,
    Sound,
)
from ivr.prompts.devices import device_sound

log = logging.getLogger(__name__)
call_log = logging.getLogger("ivr.calls")  # one JSON line per call end

ROUTE = "hamta"
RESULT_VARIABLE = "HAMTA_RESULT"  # the dialplan plays service_unavailable unless it is "done"
BUSY = "busy"  # HAMTA_RESULT when the server turned the caller away (the `busy` prompt)
QUEUED = "queue"  # HAMTA_RESULT when the caller pressed `0`: the dialplan runs Queue()
# what the dialplan's Queue() needs (ivr.flows.staff): the queue, what the agent's phone shows
# (the operations so far, the caller's number cut to its last four digits), the longest wait
QUEUE_VARIABLE, CONTEXT_VARIABLE = "HAMTA_QUEUE", "HAMTA_CONTEXT"
CALLER_VARIABLE, WAIT_VARIABLE = "HAMTA_CALLER", "HAMTA_QUEUE_WAIT"
HANDSHAKE_TIMEOUT = 5.0  # seconds for Asterisk to send the AGI environment
HANDSHAKE_MAX_BYTES = 64 * 1024
# The idle limit: seconds one AGI command may go unanswered before the peer counts as gone. Used
# when the built audio cannot be measured (`idle_limit` derives a tighter one from it); the
# longest command is a prompt or a digit string said, then WAIT FOR DIGIT takes at most 8 s.
COMMAND_TIMEOUT = 120.0
IDLE_SLACK = 15.0  # added to the longest command: a loaded Asterisk, a slow start of playback
IDLE_LIMIT_RANGE = (30.0, 600.0)  # what `idle_limit` may return
MOST_DIGITS_SAID = 20  # the longest digit string one SAY DIGITS reads (an IMEI is 15)
DEVICE_NAME_SECONDS = 10.0  # the longest device-name sound `prompts check` accepts
MAX_CALLS = 500  # calls in progress per server: 2 cores carry 1,000 paced bench callers (~3,000
# real ones), and each call holds a socket and maybe a database connection (ulimit -n 1024)
DRAIN_SECONDS = 120.0  # on SIGTERM, how long running calls may go on
DIGIT_GAP_SECONDS = 0.12  # silence between the digits of a secret digit string
SECRET_PREFIX = "secret-"
SECRET_MODE = 0o640  # the owner writes, the spool's group (Asterisk's) reads, nobody else
PROCESS_TOKEN = secrets.token_hex(4)  # tells this process's files from a dead one's of the same pid
_SECRET_NAME = re.compile(r"secret-(?P<pid>[0-9]+)-(?P<token>[0-9a-f]+)-[0-9a-f]+\.wav")
_LONG_DIGITS = re.compile(r"[0-9]{10,}")  # a phone number in a channel name (PJSIP/0912…-0001)
READY_TIMEOUT = 2.0  # seconds the registry gets to answer /readyz's trivial read

CallHandler = Callable[[Call], Awaitable[Any]]


def shown_channel(channel: str) -> str:
    """A channel name as the logs show it: a run of 10+ digits (an endpoint named by its
    number) masked."""
    return _LONG_DIGITS.sub("…", channel)


class AgiError(Exception):
    """An AGI command failed and the caller is still there (bad command, missing module…)."""


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
        # the secret never enters an AGI command: one temporary file, played by path. Only a
        # .wav (from the digits' .wav): Asterisk transcodes these few seconds, which costs less
        # than it would to keep more copies of a secret on disk (no .ulaw/.alaw/.sln16 here)
        path = await asyncio.to_thread(self._assemble_digits, digits)
        try:
            return await self.stream(Sound(str(path.with_suffix("")), "(secret)"), escape)
        finally:
            await asyncio.to_thread(path.unlink, True)

    def _assemble_digits(self, digits: str) -> Path:
        folder = self.sounds / self.language / "digits"
        self.spool.mkdir(parents=True, exist_ok=True, mode=0o750)
        path = self.spool / f"{SECRET_PREFIX}{os.getpid()}-{PROCESS_TOKEN}-" \
            f"{secrets.token_hex(12)}.wav"
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
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
        try:
            _owner_and_asterisk_only(fd, self.spool)
            with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as out:
                out.setnchannels(params.nchannels)
                out.setsampwidth(params.sampwidth)
                out.setframerate(params.framerate)
                out.writeframes(gap.join(frames))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

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


# --- the spool of secret files ------------------------------------------------------------------
def _owner_and_asterisk_only(fd: int, spool: Path) -> None:
    """Mode 0640 whatever the umask, group the spool folder's (the group Asterisk reads with)."""
    os.fchmod(fd, SECRET_MODE)
    with contextlib.suppress(OSError):
        group = spool.stat().st_gid
        if os.fstat(fd).st_gid != group:
            os.fchown(fd, -1, group)  # allowed when we belong to that group (or are root)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, someone else's
        return True
    return True


def sweep_spool(spool: Path, max_age: float, *, now: float | None = None,
                mine: bool = False) -> int:
    """Delete the secret files nobody needs any more; the number deleted.

    A secret file is needed only until Asterisk has opened it for its one STREAM FILE (Linux
    plays on from an open file that is deleted). Deleted: files of a process that is gone (a
    crash, kill -9; a restarted process with the same pid tells its files by PROCESS_TOKEN), files
    of an unknown name, and any older than `max_age` seconds (a call cancelled mid-prompt);
    with `mine`, this process's too (it has no call left)."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(spool))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.startswith(SECRET_PREFIX):
            continue
        match = _SECRET_NAME.fullmatch(entry.name)
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if match is not None and age <= max_age:
                pid = int(match["pid"])
                if pid == os.getpid() and match["token"] == PROCESS_TOKEN and not mine:
                    continue  # ours, playing now
                if pid != os.getpid() and _alive(pid):
                    continue  # another server's or AGI script's, playing now
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            continue  # deleted meanwhile by its call
        except OSError as exc:
            log.error("cannot delete %s from the spool: %s", entry.path, exc.strerror)
    if removed:
        log.info("spool %s: %d leftover secret file(s) deleted", spool, removed)
    return removed


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate() or 1)
    except (OSError, EOFError, wave.Error):
        return 0.0


def longest_command(sounds: Path, language: str = "fa") -> float | None:
    """Seconds the longest playing AGI command lasts with the built audio: the longest prompt,
    a device name, or MOST_DIGITS_SAID of the longest digit. None when nothing is built."""
    folder = sounds / language
    prompts = [_wav_seconds(p) for p in (folder / "hamta").glob("*.wav")]
    digits = [_wav_seconds(p) for p in (folder / "digits").glob("*.wav")]
    if not prompts or not digits:
        return None
    digit = max(digits) + DIGIT_GAP_SECONDS
    return max(max(prompts), DEVICE_NAME_SECONDS, MOST_DIGITS_SAID * digit)


def idle_limit(sounds: Path, language: str = "fa") -> float:
    """How long one AGI command may go unanswered: the longest playing command with the built
    audio, plus the longest wait for a first key (READ_FIRST_TIMEOUT: an SMS code), the
    inter-digit timeout and IDLE_SLACK (within IDLE_LIMIT_RANGE); COMMAND_TIMEOUT when the audio
    is not built."""
    longest = longest_command(sounds, language)
    if longest is None:
        return COMMAND_TIMEOUT
    limit = longest + max(FIRST_DIGIT_TIMEOUT, READ_FIRST_TIMEOUT) + INTER_DIGIT_TIMEOUT + \
        IDLE_SLACK
    low, high = IDLE_LIMIT_RANGE
    return round(min(max(limit, low), high), 1)


# --- the FastAGI server -------------------------------------------------------------------------
EVENT_LOOP_ENV = "HAMTA_EVENT_LOOP"  # "asyncio": the standard loop even when uvloop is installed


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `serve` runs on: uvloop when it is installed (a call is dozens of AGI
    round trips, and uvloop's socket and timer handling costs a fraction of asyncio's), else
    asyncio's own (None). HAMTA_EVENT_LOOP=asyncio chooses asyncio's anyway."""
    if os.environ.get(EVENT_LOOP_ENV, "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_server(main: Coroutine[Any, Any, Any]) -> None:
    """Run `main` (a coroutine) to its end on the event loop of `loop_factory`.

    What start-up built (modules, SQLAlchemy's tables and caches, the catalogue) lives as long as
    the process: frozen out of the garbage collector, so that its full collections, which stop
    every call at once, scan only what calls make."""
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


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
    max_calls: int = MAX_CALLS  # calls in progress; above it a new caller hears `busy`
    command_timeout: float = COMMAND_TIMEOUT  # the idle limit (see `idle_limit`)
    reuse_port: bool = False  # SO_REUSEPORT: several processes accept on one port
    name: str | None = None  # in the call log and the call-end line (default host:port)

    @property
    def secret_max_age(self) -> float:
        """A secret file older than one command's whole time limit belongs to no prompt."""
        return self.command_timeout

    @property
    def sweep_interval(self) -> float:
        return max(1.0, min(30.0, self.secret_max_age / 4))


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
        self.in_progress = 0  # calls being handled (not counting those turned away)
        self.turned_away = 0  # callers who heard `busy`, since the start
        self._turned_away_logged = (0.0, 0)  # (when, count) of the last warning
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Sweep the spool of secret files a crash left, then listen; the spool is swept on a
        timer while serving."""
        await asyncio.to_thread(sweep_spool, self.settings.spool, self.settings.secret_max_age)
        self.server = await asyncio.start_server(
            self._connection, self.settings.host, self.settings.port,
            reuse_port=self.settings.reuse_port or None)
        self._sweeper = asyncio.create_task(self._sweep_regularly(), name="spool-sweeper")
        sockets = ", ".join(str(s.getsockname()[:2]) for s in self.server.sockets)
        log.info("FastAGI server on %s, route agi://%s:%d/%s (at most %d calls, idle limit "
                 "%gs)", sockets, self.settings.host, self.port, ROUTE, self.settings.max_calls,
                 self.settings.command_timeout)

    async def _sweep_regularly(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await asyncio.to_thread(sweep_spool, self.settings.spool,
                                        self.settings.secret_max_age)
            except Exception:
                log.exception("sweeping the spool failed")

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
                log.error("no FastAGI route %r (Asterisk asked for agi://…/%s)", script,
                          printable(script))
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

    @property
    def name(self) -> str:
        """This server in the call log and the call-end line: host:port (host:port/N for process
        N of `serve --processes`)."""
        return self.settings.name or f"{self.settings.host}:{self.port}"

    async def readiness(self, ping: Callable[[], Awaitable[object]] | None = None,
                        timeout: float = READY_TIMEOUT) -> str | None:
        """None when a new call would be served: listening, under --max-calls, and `ping` (the
        registry's: a trivial read, and a write while writes fail, AsyncRegistry.ping) answers
        within `timeout`; else the reason, for /readyz."""
        if self.server is None or not self.server.is_serving():
            return "not accepting calls (starting or stopping)"
        if self.in_progress >= self.settings.max_calls:
            return f"at --max-calls ({self.in_progress} calls in progress)"
        if ping is not None:
            try:
                await asyncio.wait_for(ping(), timeout)
            except TimeoutError:
                return f"the registry did not answer within {timeout:g}s"
            except metrics.NotReady as exc:
                return str(exc)
            except Exception as exc:
                return f"the registry cannot be read ({type(exc).__name__})"
        return None

    async def _route(self, request: Request) -> None:
        times = metrics.begin_call()
        transport = StreamTransport(request.reader, request.writer,
                                    self.settings.command_timeout)
        call = AgiCall.from_env(
            request.headers, transport, sounds=self.settings.sounds, spool=self.settings.spool,
            replied_at=times.started)
        try:
            if self.in_progress >= self.settings.max_calls:
                await self._turn_away(call, request.headers)
                self._ended(call, times, BUSY, [])
                return
            self.in_progress += 1
            metrics.CALLS_IN_PROGRESS.inc()
            try:
                await self._run(call, times)
            finally:
                self.in_progress -= 1
                metrics.CALLS_IN_PROGRESS.dec()
        finally:
            transport.close()

    def _ended(self, call: AgiCall, times: metrics.CallTimes, outcome: str,
               path: list[str]) -> None:
        """Count the call's outcome and write its one JSON line (no number, no secret)."""
        metrics.call_ended(outcome)
        if not call_log.isEnabledFor(logging.INFO):
            return
        call_log.info(json.dumps({
            "event": "call_end",
            "call_id": call.call_id,
            "channel": shown_channel(call.asterisk_channel),
            "caller": "withheld" if call.caller_id is None else "present",
            "path": path,
            "outcome": outcome,
            "seconds": round(time.perf_counter() - times.started, 3),
            "registry_seconds": round(times.registry_seconds, 3),
            "commands": call.commands,
            "server": self.name,
        }, ensure_ascii=False))

    async def _turn_away(self, call: AgiCall, env: dict[str, str]) -> None:
        """Above max_calls: HAMTA_RESULT=busy, then (unless the dialplan sends the caller to
        another server: `?overflow=yes`) the `busy` prompt and a hang-up. No registry work."""
        self.turned_away += 1
        script = env.get("agi_network_script", "")
        query = parse_qs(script.partition("?")[2])
        overflow = query.get("overflow", [""])[0].lower() in ("yes", "1", "true")
        metrics.TURNED_AWAY.labels("yes" if overflow else "no").inc()
        now, (last, count) = time.monotonic(), self._turned_away_logged
        if now - last >= 10.0:
            log.warning("%d caller(s) turned away (busy): %d calls in progress, --max-calls %d",
                        self.turned_away - count, self.in_progress, self.settings.max_calls)
            self._turned_away_logged = (now, self.turned_away)
        try:
            await call._send(agi.set_variable(RESULT_VARIABLE, BUSY))
            if not overflow:
                await call.play(BUSY, barge_in=False)
                await call._send(agi.HANGUP)
        except (CallerHungUp, AgiError) as exc:
            log.debug("busy call %s ended: %s", call.call_id, type(exc).__name__)

    async def _run(self, call: AgiCall, times: metrics.CallTimes) -> None:
        log.info("call %s on %s from %s", call.call_id, shown_channel(call.asterisk_channel),
                 "withheld" if call.caller_id is None else "a caller ID")
        if call.language != "fa":
            log.warning("call %s has language %r; the prompts are built for fa", call.call_id,
                        call.language)
        ended, path = "error", []
        try:
            try:
                outcome = await self.handle(call)
            except (CallerHungUp, AgiError) as exc:
                log.warning("call %s ended: %s", call.call_id, type(exc).__name__)
                ended = "hung_up" if isinstance(exc, CallerHungUp) else "error"
                return
            ended, path = str(outcome), list(getattr(outcome, "path", []))
            # a normal end, whatever the caller did: no "service unavailable" after us
            with contextlib.suppress(AgiError):
                await call.finish()
            self.outcomes = [*self.outcomes[-99:], outcome]
            log.info("call %s ended: %s", call.call_id, outcome)
        except asyncio.CancelledError:
            ended = "interrupted"  # the server stopped before the call ended
            raise
        finally:
            self._ended(call, times, ended, path)

    async def stop(self) -> None:
        """Stop accepting calls; let running calls end, within the drain limit; cut the rest
        (Asterisk then plays service_unavailable to them rather than silence)."""
        if self.server is not None:
            self.server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        running = {t for t in self.calls if not t.done()}
        if running:
            log.info("waiting up to %.0fs for %d call(s) to end", self.settings.drain_seconds,
                     len(running))
            _, late = await asyncio.wait(running, timeout=self.settings.drain_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        # no call of ours is left to play a secret file: none may stay behind
        await asyncio.to_thread(sweep_spool, self.settings.spool, self.settings.secret_max_age,
                                mine=True)

    async def serve_until_signalled(self) -> None:
        """SIGTERM/SIGINT stop and drain; SIGHUP (a closed terminal, a reload by habit) is
        logged and ignored: a running server never drops its calls for it."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, log.warning,
                                "SIGHUP ignored: to reload, restart the server (it drains)")
        await self.start()
        try:
            await stop.wait()
            log.info("stopping: no new calls")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.stop()
