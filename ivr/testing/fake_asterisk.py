"""A fake Asterisk: the telephone side of an AGI session, as Asterisk 22 speaks it.

One call: connect to a FastAGI server (or talk over a classic AGI script's stdin/stdout), send
the AGI environment Asterisk sends, then answer every command line the way Asterisk answers it,
with a caller pressing keys from a script. What Asterisk does, as observed on the development
Asterisk 22 (tests/asterisk, tests/fixtures/agi):
- a key is its ASCII code in `result=` (`1` -> `200 result=49`); a prompt ends with
  `200 result=0 endpos=N`, a prompt cut short by an escape key with `200 result=49 endpos=N`;
  SAY DIGITS answers without endpos; WAIT FOR DIGIT's timeout is `200 result=0`;
- the caller hanging up during a command: `200 result=-1`; after that, with AGISIGHUP=no as our
  dialplan sets it, every command but a few (SET VARIABLE, EXEC, …) gets
  `511 Command Not Permitted on a dead channel or intercept routine`; with `sighup=True` a
  `HANGUP` line comes first, as AGISIGHUP=yes would send;
- an unknown command: `510 Invalid or unknown command`.

Keys use the console caller's syntax (`ivr.call.console.scripted_keys`): digits, `*`, `#`; `.`
lets one question time out; `h` hangs up. Beyond what a console has: `A`-`D` (the DTMF keys a
keypad may have) and `[text]`, a raw `result=text` reply as a broken or hostile peer may send
(`[99999999]`, `[-7]`, `[۱]`); see `fake_keys`. Keys are pressed when the IVR waits for one
(`WAIT FOR DIGIT`), so a script that works with `hamta-ivr call --keys` works here; with
`barge_in` a key is pressed during a prompt whose escape digits take it, as a caller who knows the
menu does (`ignore_escape`: any key cuts any prompt short, as a broken peer might). Pacing
(how long prompts play, how long the caller takes) only delays replies.

Every exchange is kept (command, reply, when each came and went): tests read what was played and
said; the bench (bench.caller) derives its timings from it.

Caller ID trust: the dialplan passes the AGI argument `caller=network` when the network vouches
for the caller ID (a mobile-operator trunk, asterisk-conf/extensions.conf) and `caller=none`
otherwise. A call with a caller ID is vouched for by default, a subscriber calling from their own
SIM; `trusted=False` is a softphone's or VoIP trunk's call; a withheld one is not by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ivr.call import agi_protocol as agi
from ivr.call.agi_call import RESULT_VARIABLE, TRUST_ARGUMENT
from ivr.call.agi_protocol import AgiCommand, parse_command
from ivr.call.console import HANG_UP_KEY, PAUSE_KEY, scripted_keys

# commands Asterisk still runs on a hung-up channel (res_agi.c, the `dead` flag)
DEAD_OK = frozenset({
    "ASYNCAGI BREAK", "DATABASE DEL", "DATABASE DELTREE", "DATABASE GET", "DATABASE PUT", "EXEC",
    "GET FULL VARIABLE", "GET VARIABLE", "NOOP", "SET VARIABLE", "VERBOSE",
})
SAMPLE_RATE = 8000  # endpos counts samples of 8 kHz audio
FULL_PROMPT_SAMPLES = 16000  # endpos of a prompt played to its end without pacing (2 s)
DTMF_EXTRA = "ABCD"
RAW = "="  # a key item starting with it is a raw result value
_RAW_ITEM = re.compile(r"\[([^\]]*)\]")
UNTRUSTED_ARGUMENT = "caller=none"  # what the dialplan passes when nothing vouches for the caller


def fake_keys(keys: str) -> deque[str]:
    """The console syntax plus `A`-`D` and `[raw]` (-> the item `=raw`, replied as
    `200 result=raw`), in order."""
    out: deque[str] = deque()
    position = 0
    for match in _RAW_ITEM.finditer(keys):
        out.extend(_plain_keys(keys[position:match.start()]))
        out.append(RAW + match[1])
        position = match.end()
    out.extend(_plain_keys(keys[position:]))
    return out


def _plain_keys(keys: str) -> deque[str]:
    out: deque[str] = deque()
    for key in "".join(keys.split()):
        out.extend(key if key in DTMF_EXTRA else scripted_keys(key))
    return out


def key_line(key: str, *, endpos: int | None = None) -> str:
    """The reply to WAIT FOR DIGIT (or to a prompt, with `endpos`) when the caller presses
    `key` (a `fake_keys` item)."""
    if key.startswith(RAW):
        return agi.AgiReply(200, key[len(RAW):], endpos=endpos).line
    return agi.key_reply(key, endpos=endpos).line


@dataclass(frozen=True)
class Pacing:
    """How long things take on the caller's side; zero everywhere is "no pacing"."""

    prompt: float = 0.0  # seconds one played file lasts (STREAM FILE)
    digit: float = 0.0  # seconds per digit said (SAY DIGITS)
    key: float = 0.0  # seconds the caller takes to press a key asked for
    silence: float = 0.0  # seconds before a silent question times out (capped by its timeout)

    @property
    def paced(self) -> bool:
        return any((self.prompt, self.digit, self.key, self.silence))

    # A pacing of real prompt lengths and human keying (bench.human) overrides these three.
    def prompt_seconds(self, file: str) -> float:
        """How long one played file lasts."""
        return self.prompt

    def said_seconds(self, value: str) -> float:
        """How long a value said (SAY DIGITS …) lasts."""
        return self.digit * len(value)

    def key_seconds(self, first: bool) -> float:
        """How long the caller takes to press a key asked for; `first`: the first key after a
        prompt (a menu choice, the start of an entry), where a person stops to think."""
        return self.key


NO_PACING = Pacing()


def agi_environment(
    *, caller_id: str | None, index: int = 0, request: str = "agi://127.0.0.1:4573/hamta",
    network: bool = True, uniqueid: str | None = None, extra: Mapping[str, str] | None = None,
    trusted: bool | None = None,
) -> dict[str, str]:
    """The variables Asterisk 22 sends before the first command, in its order (FastAGI adds
    agi_network and agi_network_script first; AGI(url,ARG) adds agi_arg_1 … last).

    The dialplan's trust argument comes after any agi_arg_N in `extra`: `caller=network` when
    `trusted` (default: when there is a caller ID, a call from the subscriber's own SIM), else
    `caller=none`."""
    cid = caller_id or ""
    env: dict[str, str] = {}
    if network:
        env["agi_network"] = "yes"
        env["agi_network_script"] = request.rsplit("/", 1)[-1]
    env.update({
        "agi_request": request,
        "agi_channel": f"Local/7777@hamta-ivr-{index:08x};2",
        "agi_language": "fa",
        "agi_type": "Local",
        "agi_uniqueid": uniqueid or f"{int(time.time())}.{index}",
        "agi_version": "22.0.0",
        "agi_callerid": cid or "unknown",
        "agi_calleridname": cid or "unknown",
        "agi_callingpres": "0" if cid else "32",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": "7777",
        "agi_rdnis": "unknown",
        "agi_context": "hamta-ivr",
        "agi_extension": "7777",
        "agi_priority": "7",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": str(140000000000 + index),
    })
    env.update(extra or {})
    vouched = bool(caller_id) if trusted is None else trusted
    args = sum(1 for key in env if key.startswith("agi_arg_"))
    env[f"agi_arg_{args + 1}"] = TRUST_ARGUMENT if vouched else UNTRUSTED_ARGUMENT
    return env


# --- the channel: Asterisk's answers, the caller's keys ------------------------------------------
class FakeChannel:
    """Asterisk's side of one AGI session, without I/O: answers commands, presses the keys."""

    def __init__(self, keys: str = "", *, barge_in: bool = False, pacing: Pacing = NO_PACING,
                 sighup: bool = False, ignore_escape: bool = False) -> None:
        self.keys: deque[str] = fake_keys(keys)
        self.barge_in = barge_in
        self.ignore_escape = ignore_escape  # a broken peer: any key cuts any prompt short
        self.pacing = pacing
        self.sighup = sighup  # AGISIGHUP=yes sends a HANGUP line; the dialplan sets it to no
        self.dead = False
        self.caller_hung_up = False
        self.ivr_hung_up = False
        self.played: list[str] = []  # sound files, in order
        self.said: list[str] = []  # values said (SAY DIGITS / NUMBER / …)
        self.variables: dict[str, str] = {}
        self.fresh = True  # no key pressed since the last prompt

    async def answer(self, command: AgiCommand) -> tuple[str, bool]:
        """The reply line(s) to one command, and whether the caller pressed a key for it."""
        verb, args = command.verb, command.args
        if self.dead and verb not in DEAD_OK:
            return agi.DEAD_CHANNEL, False
        if verb in agi.PLAYING:
            return await self._play(command)
        if command.pauses:
            return await self._pause(command)
        if verb == "WAIT FOR DIGIT":
            return await self._wait_digit(command)
        if verb == "GET DATA":
            return await self._get_data(command)
        if verb == "HANGUP":
            self.dead = self.ivr_hung_up = True
            return "200 result=1", False
        if verb == "SET VARIABLE" and len(args) >= 2:
            self.variables[args[0]] = args[1]
            return "200 result=1", False
        if verb in ("GET VARIABLE", "GET FULL VARIABLE") and args:
            name = args[0].strip("${}")
            if name in self.variables:
                return agi.AgiReply(200, "1", self.variables[name]).line, False
            return "200 result=0", False
        if verb == "CHANNEL STATUS":
            return "200 result=6", False  # AST_STATE_UP
        if verb in ("VERBOSE", "SET CALLERID"):
            return "200 result=1", False
        if not verb:
            return agi.INVALID_COMMAND, False
        return "200 result=0", False  # ANSWER, EXEC, NOOP, SET MUSIC/CONTEXT/…, DATABASE …

    # --- the caller ----------------------------------------------------------------------------
    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _hang_up(self) -> str:
        self.keys.popleft()
        self.dead = self.caller_hung_up = True
        return (agi.HANGUP_LINE + "\n" if self.sighup else "") + "200 result=-1"

    async def _play(self, command: AgiCommand) -> tuple[str, bool]:
        saying = command.verb in agi.SAYING  # SAY … answers without endpos
        if saying:
            value = command.arg(0)
            self.said.append(value)
            length = self.pacing.said_seconds(value)
        else:
            self.played.append(command.arg(0))
            length = self.pacing.prompt_seconds(command.arg(0))
        self.fresh = True
        escape = command.escape
        takes = (lambda key: key != PAUSE_KEY) if self.ignore_escape else \
            (lambda key: len(key) == 1 and key in escape)
        if self.barge_in and self.keys and (takes(self.keys[0]) or self.keys[0] == HANG_UP_KEY):
            key = self.keys[0]
            pressed_at = min(self.pacing.key, length)
            await self._sleep(pressed_at)
            if key == HANG_UP_KEY:
                return self._hang_up(), False
            self.keys.popleft()
            endpos = None if saying else int(pressed_at * SAMPLE_RATE)
            return key_line(key, endpos=endpos), True
        await self._sleep(length)
        endpos = None if saying else int(length * SAMPLE_RATE) or FULL_PROMPT_SAMPLES
        return agi.AgiReply(200, "0", endpos=endpos).line, False

    async def _pause(self, command: AgiCommand) -> tuple[str, bool]:
        """The silence between digit groups: a barging caller's next key lands in it, as in the
        digits around it; others wait for the question."""
        length = (command.timeout_ms or 0) / 1000
        if self.barge_in and self.keys and self.keys[0] not in (PAUSE_KEY, HANG_UP_KEY):
            await self._sleep(min(self.pacing.key, length))
            return key_line(self.keys.popleft()), True
        await self._sleep(length)
        return "200 result=0", False

    def _timeout(self, command: AgiCommand) -> float:
        ms = command.timeout_ms or 0
        seconds = ms / 1000 if ms > 0 else self.pacing.silence
        return min(seconds, self.pacing.silence)

    async def _wait_digit(self, command: AgiCommand) -> tuple[str, bool]:
        if not self.keys or self.keys[0] == PAUSE_KEY:
            if self.keys:
                self.keys.popleft()
            await self._sleep(self._timeout(command))
            return "200 result=0", False
        await self._sleep(self.pacing.key_seconds(self.fresh))
        self.fresh = False
        if self.keys[0] == HANG_UP_KEY:
            return self._hang_up(), False
        return key_line(self.keys.popleft()), True

    async def _get_data(self, command: AgiCommand) -> tuple[str, bool]:
        if command.args:
            self.played.append(command.arg(0))
        await self._sleep(self.pacing.prompt)
        try:
            most = int(command.arg(2, "1024"))
        except ValueError:
            most = 1024
        digits = ""
        while self.keys and len(digits) < most:
            key = self.keys[0]
            if key == HANG_UP_KEY:
                return self._hang_up(), False
            self.keys.popleft()
            if key in "#" + PAUSE_KEY:
                break
            await self._sleep(self.pacing.key)
            digits += key
        if not digits:
            await self._sleep(self._timeout(command))
            return "200 result= (timeout)", False
        return f"200 result={digits}", True


# --- one session over a stream ---------------------------------------------------------------
@dataclass(slots=True)
class Exchange:
    """One command and Asterisk's reply, with when each happened (time.perf_counter())."""

    command: str
    reply: str  # the reply line(s) sent ("HANGUP\n200 result=-1" with sighup)
    received: float = 0.0
    replied: float = 0.0
    key: bool = False  # the reply carries a key the caller pressed


@dataclass
class CallResult:
    """What happened on one call, from the fake Asterisk's side."""

    env: dict[str, str]
    transcript: list[Exchange] = field(default_factory=list)
    played: list[str] = field(default_factory=list)  # sound files streamed, in order
    said: list[str] = field(default_factory=list)  # digit strings said (SAY DIGITS …)
    variables: dict[str, str] = field(default_factory=dict)  # SET VARIABLE
    caller_hung_up: bool = False  # the script's `h`
    server_hung_up: bool = False  # the server sent HANGUP
    closed: bool = False  # the server closed the connection (the AGI ended)
    keys_left: str = ""
    unknown: list[str] = field(default_factory=list)  # commands answered 510
    error: str | None = None  # the connection failed, or the server talked on after a hang-up
    env_sent: float = 0.0  # time.perf_counter() when the environment went out
    closed_at: float | None = None

    @property
    def result(self) -> str | None:
        """HAMTA_RESULT as the server left it ("done" after a normal end)."""
        return self.variables.get(RESULT_VARIABLE)

    @property
    def commands(self) -> list[str]:
        return [e.command for e in self.transcript]

    @property
    def prompts(self) -> list[str]:
        """The played sounds under hamta/ without the folder (`welcome`, `num/2`, …)."""
        return [f.removeprefix("hamta/") for f in self.played if f.startswith("hamta/")]


class Writer(Protocol):
    def write(self, data: bytes) -> object: ...


async def run_session(
    reader: asyncio.StreamReader, writer: Writer, env: Mapping[str, str], channel: FakeChannel,
    *, linger: float | None = None, on_command: Callable[[AgiCommand], None] | None = None,
) -> CallResult:
    """Send the environment, then answer commands until the server closes; never raises for the
    server's faults (they go into `error`).

    After a hang-up (either side) Asterisk keeps the AGI open until the server closes it (the
    server writes its call log meanwhile); with `linger`, a server that talks on longer than that
    is an error.
    """
    clock = time.perf_counter
    result = CallResult(dict(env))
    transcript = result.transcript
    try:
        writer.write(agi.format_environment(env))
        await _drain(writer)
        result.env_sent = clock()
        while True:
            if channel.dead and linger is not None:
                try:
                    async with asyncio.timeout(linger):
                        raw = await reader.readline()
                except TimeoutError:
                    result.error = "still talking after the hang-up"
                    break
            else:
                raw = await reader.readline()
            now = clock()
            if not raw:  # the server closed the connection: the AGI ended
                result.closed, result.closed_at = True, now
                break
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            command = parse_command(line)
            if not command.known:
                result.unknown.append(line[:60])
            if on_command is not None:
                on_command(command)
            reply, key = await channel.answer(command)
            writer.write((reply + "\n").encode())
            await _drain(writer)
            transcript.append(Exchange(line, reply, now, clock(), key))
    except (ConnectionError, OSError) as exc:
        result.error = f"connection: {exc.__class__.__name__}"
    finally:
        result.played, result.said = channel.played, channel.said
        result.variables = channel.variables
        result.caller_hung_up, result.server_hung_up = channel.caller_hung_up, channel.ivr_hung_up
        result.keys_left = "".join(channel.keys)
    return result


async def _drain(writer: Writer) -> None:
    drain = getattr(writer, "drain", None)
    if drain is not None:
        await drain()


async def place_call(
    host: str, port: int, keys: str = "", *, caller_id: str | None = None, index: int = 0,
    script: str = "hamta", uniqueid: str | None = None, extra_env: Mapping[str, str] | None = None,
    barge_in: bool = False, pacing: Pacing = NO_PACING, sighup: bool = False,
    linger: float | None = None, connect_gate: asyncio.Semaphore | None = None,
    ignore_escape: bool = False, trusted: bool | None = None,
) -> CallResult:
    """One call over FastAGI, as Asterisk's `AGI(agi://host:port/hamta)` places it.

    Connection failures raise (OSError); `connect_gate` bounds connections being opened at once.
    `trusted`: the network vouches for the caller ID (default: when there is one).
    """
    async with connect_gate or contextlib.nullcontext():
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 16)
    try:
        env = agi_environment(caller_id=caller_id, index=index, uniqueid=uniqueid,
                              request=f"agi://{host}:{port}/{script}", extra=extra_env,
                              trusted=trusted)
        channel = FakeChannel(keys, barge_in=barge_in, pacing=pacing, sighup=sighup,
                              ignore_escape=ignore_escape)
        return await run_session(reader, writer, env, channel, linger=linger)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


class FakeAsterisk:
    """Places calls into one FastAGI server, each with a unique id of its own.

        asterisk = FakeAsterisk("127.0.0.1", server.port)
        result = await asterisk.call("1 350000000000014", caller_id="09121111111")
        result.prompts, result.said, result.result, result.server_hung_up
    """

    def __init__(self, host: str, port: int, *, script: str = "hamta") -> None:
        self.host = host
        self.port = port
        self.script = script
        self._numbers = itertools.count(1)
        self.base = int(time.time())

    async def call(self, keys: str = "", *, caller_id: str | None = None,
                   barge_in: bool = False, pacing: Pacing = NO_PACING, sighup: bool = False,
                   linger: float | None = 10.0, ignore_escape: bool = False,
                   script: str | None = None, trusted: bool | None = None) -> CallResult:
        """`script`: the AGI URL's path, e.g. `hamta?overflow=yes` (default: the route).
        `trusted`: the network vouches for the caller ID, a call from the subscriber's own SIM
        (default: when there is a caller ID); False: a softphone's or VoIP trunk's call."""
        index = next(self._numbers)
        return await place_call(
            self.host, self.port, keys, caller_id=caller_id, index=index,
            script=script or self.script, uniqueid=f"{self.base}.{index}", barge_in=barge_in,
            pacing=pacing, sighup=sighup, linger=linger, ignore_escape=ignore_escape,
            trusted=trusted)
