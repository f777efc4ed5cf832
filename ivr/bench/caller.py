"""A simulated caller on a simulated Asterisk: speaks AGI to a server exactly as Asterisk does.

One call: send the AGI environment, then read each command line the server sends and answer it the
way Asterisk answers it (`200 result=…`), with the caller pressing keys from a script. Keys use the
console caller's syntax (`ivr.call.console`): digits, `*`, `#`; `.` lets one question time out;
`h` hangs up. Keys are pressed when the IVR waits for one (`WAIT FOR DIGIT`), so a script that
works with `hamta-ivr call --keys` works here too; with `barge_in` they are pressed during the
prompt before, as a caller who knows the menu does.

What we measure is the server: each step's latency is the time from our reply leaving to the next
command arriving. Pacing (how long prompts play, how long the caller takes) only delays our
replies, so it never counts as server time.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEAD_OK = {  # commands Asterisk still runs on a hung-up channel (res_agi.c, the `dead` flag)
    "ASYNCAGI BREAK", "DATABASE DEL", "DATABASE DELTREE", "DATABASE GET", "DATABASE PUT", "EXEC",
    "GET FULL VARIABLE", "GET VARIABLE", "NOOP", "SET VARIABLE", "VERBOSE",
}
# AGI verbs we recognise, longest first so "STREAM FILE" wins over a one-word prefix.
VERBS = sorted([
    "ANSWER", "ASYNCAGI BREAK", "CHANNEL STATUS", "CONTROL STREAM FILE", "DATABASE DEL",
    "DATABASE DELTREE", "DATABASE GET", "DATABASE PUT", "EXEC", "GET DATA", "GET FULL VARIABLE",
    "GET OPTION", "GET VARIABLE", "HANGUP", "NOOP", "RECEIVE CHAR", "RECORD FILE", "SAY ALPHA",
    "SAY DATE", "SAY DATETIME", "SAY DIGITS", "SAY NUMBER", "SAY PHONETIC", "SAY TIME",
    "SET AUTOHANGUP", "SET CALLERID", "SET CONTEXT", "SET EXTENSION", "SET MUSIC", "SET PRIORITY",
    "SET VARIABLE", "STREAM FILE", "TDD MODE", "VERBOSE", "WAIT FOR DIGIT",
], key=len, reverse=True)
PLAYING = {"STREAM FILE", "CONTROL STREAM FILE", "GET OPTION", "SAY DIGITS", "SAY NUMBER",
           "SAY ALPHA", "SAY PHONETIC", "SAY DATE", "SAY TIME", "SAY DATETIME"}
DEAD_REPLY = "511 Command Not Permitted on a dead channel or intercepted channel"
SAMPLE_RATE = 8000  # endpos is in samples of 8 kHz audio


@dataclass(frozen=True)
class Pacing:
    """How long things take on the caller's side; zero everywhere is "no pacing"."""

    prompt: float = 0.0  # seconds one played file lasts (STREAM FILE)
    digit: float = 0.0  # seconds per digit read (SAY DIGITS)
    key: float = 0.0  # seconds the caller takes to press a key asked for
    silence: float = 0.0  # seconds before a silent question times out (capped by its timeout)

    @property
    def paced(self) -> bool:
        return any((self.prompt, self.digit, self.key, self.silence))


NO_PACING = Pacing()
# A caller who knows what to press: short prompts (most are cut by the next key in real life),
# a third of a second per key, a second of silence before a timeout.
HUMAN = Pacing(prompt=1.0, digit=0.25, key=0.3, silence=1.0)


@dataclass(frozen=True)
class CallScript:
    """What one simulated caller does; `expect` are sound files the call must play."""

    name: str
    caller_id: str | None
    keys: str
    expect: tuple[str, ...] = ()
    barge_in: bool = False

    def key_list(self) -> list[str]:
        return [k for k in self.keys if not k.isspace()]


@dataclass
class CallRecord:
    """The accounting of one call, from the simulated Asterisk's side."""

    script: str
    ok: bool = False
    ended_by: str = ""  # "ivr" (server hung up or closed), "caller" (script hung up), "error"
    error: str | None = None
    commands: int = 0
    latencies: list[float] = field(default_factory=list)  # reply sent -> next command, seconds
    key_latencies: list[float] = field(default_factory=list)  # the same, after a key was pressed
    first_command: float | None = None  # environment sent -> first command (call setup)
    teardown: float | None = None  # last reply sent -> the server closed (its call log write)
    started: float = 0.0  # time.perf_counter()
    ended: float = 0.0
    keys_left: int = 0
    unknown: list[str] = field(default_factory=list)  # commands Asterisk would refuse (510)
    trace: list[str] | None = None  # every command, when asked for (calibrating the floor)
    pid: int | None = None  # the classic AGI process
    rss_kib: int | None = None  # its memory, sampled at its first question
    pss_kib: int | None = None


def agi_environment(
    script: CallScript, index: int, *, request: str, network: bool,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The variables Asterisk 22 sends before the first command (FastAGI adds agi_network)."""
    cid = script.caller_id or ""
    env: dict[str, str] = {}
    if network:
        env["agi_network"] = "yes"
        env["agi_network_script"] = request.rsplit("/", 1)[-1]
    env.update({
        "agi_request": request,
        "agi_channel": f"Local/7777@hamta-ivr-{index:08x};2",
        "agi_language": "fa",
        "agi_type": "Local",
        "agi_uniqueid": f"{int(time.time())}.{index}",
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
    return env


def parse_command(line: str) -> tuple[str, list[str]]:
    """`STREAM FILE hamta/welcome "0123"` -> ("STREAM FILE", ["hamta/welcome", "0123"])."""
    upper = line.upper()
    for verb in VERBS:
        if upper == verb or upper.startswith(verb + " "):
            rest = line[len(verb):]
            try:
                args = shlex.split(rest)
            except ValueError:
                args = rest.split()
            return verb, args
    return "", line.split()


class SimulatedChannel:
    """Asterisk's side of one AGI session: answers commands, presses the script's keys."""

    def __init__(self, script: CallScript, pacing: Pacing, *, sighup: bool = False) -> None:
        self.script = script
        self.pacing = pacing
        self.sighup = sighup  # AGISIGHUP=yes sends a HANGUP line; the dialplan sets it to no
        self.keys = script.key_list()
        self.dead = False
        self.caller_hung_up = False
        self.ivr_hung_up = False
        self.played: list[str] = []
        self.variables: dict[str, str] = {}

    # --- the caller ----------------------------------------------------------------------------
    def _next_is(self, allowed: str) -> str | None:
        if self.keys and (self.keys[0] in allowed or self.keys[0] == "h"):
            return self.keys[0]
        return None

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _hang_up(self) -> str:
        self.keys.pop(0)
        self.dead = self.caller_hung_up = True
        return ("HANGUP\n" if self.sighup else "") + "200 result=-1"

    # --- one command -> the reply line(s) and whether a key went with it --------------------
    async def answer(self, verb: str, args: list[str]) -> tuple[str, bool]:
        if self.dead and verb not in DEAD_OK:
            return DEAD_REPLY, False
        if verb in PLAYING:
            return await self._play(verb, args)
        if verb == "WAIT FOR DIGIT":
            return await self._wait_digit(args)
        if verb == "GET DATA":
            return await self._get_data(args)
        if verb == "HANGUP":
            self.dead = self.ivr_hung_up = True
            return "200 result=1", False
        if verb == "SET VARIABLE" and len(args) >= 2:
            self.variables[args[0]] = args[1]
            return "200 result=1", False
        if verb in ("GET VARIABLE", "GET FULL VARIABLE") and args:
            name = args[0].strip("${}")
            if name in self.variables:
                return f"200 result=1 ({self.variables[name]})", False
            return "200 result=0", False
        if verb == "CHANNEL STATUS":
            return "200 result=6", False  # up
        if verb in ("VERBOSE", "SET CALLERID"):
            return "200 result=1", False
        if verb == "":
            return "510 Invalid or unknown command", False
        return "200 result=0", False  # ANSWER, EXEC, NOOP, SET MUSIC/CONTEXT/…, DATABASE …

    async def _play(self, verb: str, args: list[str]) -> tuple[str, bool]:
        if verb in ("SAY DIGITS", "SAY NUMBER", "SAY ALPHA", "SAY PHONETIC"):
            length = self.pacing.digit * len(args[0] if args else "")
            escape = args[1] if len(args) > 1 else ""
        else:
            self.played.append(args[0] if args else "")
            length = self.pacing.prompt
            escape = args[1] if len(args) > 1 else ""
        saying = verb.startswith("SAY")  # SAY … answers without endpos
        if self.script.barge_in:
            key = self._next_is(escape)
            if key is not None:
                await self._sleep(min(self.pacing.key, length))
                if key == "h":
                    return self._hang_up(), False
                self.keys.pop(0)
                endpos = int(min(self.pacing.key, length) * SAMPLE_RATE)
                return f"200 result={ord(key)}" + ("" if saying else f" endpos={endpos}"), True
        await self._sleep(length)
        endpos = int(length * SAMPLE_RATE) or 16000
        return "200 result=0" + ("" if saying else f" endpos={endpos}"), False

    def _timeout(self, args: list[str], index: int = 0) -> float:
        try:
            ms = int(args[index])
        except (IndexError, ValueError):
            ms = 0
        seconds = ms / 1000 if ms > 0 else self.pacing.silence
        return min(seconds, self.pacing.silence)

    async def _wait_digit(self, args: list[str]) -> tuple[str, bool]:
        if not self.keys or self.keys[0] == ".":
            if self.keys:
                self.keys.pop(0)
            await self._sleep(self._timeout(args))
            return "200 result=0", False
        await self._sleep(self.pacing.key)
        if self.keys[0] == "h":
            return self._hang_up(), False
        return f"200 result={ord(self.keys.pop(0))}", True

    async def _get_data(self, args: list[str]) -> tuple[str, bool]:
        if args:
            self.played.append(args[0])
        await self._sleep(self.pacing.prompt)
        try:
            most = int(args[2]) if len(args) > 2 else 1024
        except ValueError:
            most = 1024
        digits = ""
        while self.keys and len(digits) < most:
            key = self.keys[0]
            if key == "h":
                return self._hang_up(), False
            self.keys.pop(0)
            if key in "#.":
                break
            await self._sleep(self.pacing.key)
            digits += key
        if not digits:
            await self._sleep(self._timeout(args, 1))
            return "200 result= (timeout)", False
        return f"200 result={digits}", True


async def drive_call(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter | asyncio.WriteTransport,
    env: dict[str, str], script: CallScript, pacing: Pacing = NO_PACING, *,
    sighup: bool = False, linger: float | None = None, keep_trace: bool = False,
    on_first_question: Callable[[CallRecord], None] | None = None,
) -> CallRecord:
    """Run one AGI session over an open transport; never raises for the server's faults.

    After a hang-up (either side) Asterisk keeps the AGI open until the server closes it (the
    server writes its call log meanwhile); with `linger`, a server that takes longer than that
    fails the call, else only the caller's deadline bounds it.
    """
    record = CallRecord(script.name, started=time.perf_counter())
    record.trace = [] if keep_trace else None
    channel = SimulatedChannel(script, pacing, sighup=sighup)
    clock = time.perf_counter
    try:
        head = "".join(f"{k}: {v}\n" for k, v in env.items()) + "\n"
        writer.write(head.encode())
        await _drain(writer)
        sent, after_key = clock(), False
        while True:
            if channel.dead and linger is not None:
                try:
                    async with asyncio.timeout(linger):
                        raw = await reader.readline()
                except TimeoutError:
                    record.error = "still talking after the hang-up"
                    break
            else:
                raw = await reader.readline()
            now = clock()
            if not raw:  # the server closed the connection: the AGI ended
                record.teardown = now - sent
                break
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            if record.commands == 0:
                record.first_command = now - sent
            else:
                record.latencies.append(now - sent)
                if after_key:
                    record.key_latencies.append(now - sent)
            record.commands += 1
            if record.trace is not None:
                record.trace.append(line)
            verb, args = parse_command(line)
            if not verb:
                record.unknown.append(line[:60])
            if verb == "WAIT FOR DIGIT" and on_first_question is not None:
                on_first_question(record)
                on_first_question = None
            reply, after_key = await channel.answer(verb, args)
            writer.write((reply + "\n").encode())
            await _drain(writer)
            sent = clock()
    except (ConnectionError, OSError) as exc:
        record.error = f"connection: {exc.__class__.__name__}"
    finally:
        record.ended = clock()
        record.keys_left = len(channel.keys)
    _judge(record, channel, script)
    return record


async def _drain(writer: asyncio.StreamWriter | asyncio.WriteTransport) -> None:
    drain = getattr(writer, "drain", None)
    if drain is not None:
        await drain()


def _judge(record: CallRecord, channel: SimulatedChannel, script: CallScript) -> None:
    """ok = the call went as scripted: every key used, what it must play played, no refusal."""
    if record.error is None and record.unknown:
        record.error = f"unknown command: {record.unknown[0]}"
    if record.error is None and not channel.caller_hung_up and channel.keys:
        if record.commands == 0:
            record.error = "no command before the connection closed"
        else:
            record.error = f"ended with {len(channel.keys)} key(s) unused"
    missing = [s for s in script.expect if s not in channel.played]
    if record.error is None and missing:
        record.error = f"did not play {missing[0]}"
    record.ok = record.error is None
    if channel.caller_hung_up:
        record.ended_by = "caller"
    elif record.ok:
        record.ended_by = "ivr"
    else:
        record.ended_by = "error"


async def fastagi_call(
    host: str, port: int, script: CallScript, index: int, pacing: Pacing = NO_PACING, *,
    script_path: str = "hamta", extra_env: dict[str, str] | None = None, sighup: bool = False,
    deadline: float = 120.0, keep_trace: bool = False, gate: asyncio.Semaphore | None = None,
) -> CallRecord:
    """One call over FastAGI, as Asterisk's `AGI(agi://host:port/hamta)` places it; `gate`
    bounds how many connections are being opened at once."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(deadline):
            async with gate or contextlib.nullcontext():
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 16)
            env = agi_environment(
                script, index, request=f"agi://{host}:{port}/{script_path}", network=True,
                extra=extra_env,
            )
            return await drive_call(
                reader, writer, env, script, pacing, sighup=sighup, keep_trace=keep_trace
            )
    except TimeoutError:
        return _failed(script, started, f"no end within {deadline:.0f} s")
    except (ConnectionError, OSError) as exc:
        return _failed(script, started, f"connect: {exc.__class__.__name__}")
    finally:
        if writer is not None:
            writer.close()


async def classic_call(
    argv: list[str], env_vars: dict[str, str], script: CallScript, index: int,
    pacing: Pacing = NO_PACING, *, sighup: bool = False, deadline: float = 120.0,
    keep_trace: bool = False,
) -> CallRecord:
    """One call through process-per-call AGI: start the script, talk over its stdin/stdout."""
    from ivr.bench.procstat import memory_kib

    started = time.perf_counter()
    proc = None

    def sample(record: CallRecord) -> None:  # the process is fully loaded by its first question
        if proc is not None:
            record.rss_kib, record.pss_kib = memory_kib(proc.pid)

    try:
        async with asyncio.timeout(deadline):
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL, env=env_vars,
            )
            assert proc.stdin is not None and proc.stdout is not None
            env = agi_environment(script, index, request=argv[0], network=False)
            record = await drive_call(
                proc.stdout, proc.stdin, env, script, pacing, sighup=sighup,
                keep_trace=keep_trace, on_first_question=sample,
            )
            record.started = started  # the process start is part of this call
            record.pid = proc.pid
            proc.stdin.close()
            code = await proc.wait()
            if code != 0 and record.ok:
                record.ok, record.ended_by = False, "error"
                record.error = f"exit status {code}"
            return record
    except TimeoutError:
        return _failed(script, started, f"no end within {deadline:.0f} s")
    except OSError as exc:
        return _failed(script, started, f"start: {exc}")
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()


def _failed(script: CallScript, started: float, error: str) -> CallRecord:
    return CallRecord(script.name, ok=False, ended_by="error", error=error, started=started,
                      ended=time.perf_counter())
