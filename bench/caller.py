"""The load generator's callers: scripted calls through the fake Asterisk, and their accounting.

Each call is placed by ivr.testing.fake_asterisk (the AGI environment, `200 result=…` replies as
Asterisk gives them, keys in the console caller's syntax: digits, `*`, `#`, `.` lets one question
time out, `h` hangs up). What is the bench's own is here: the scripts (with the prompts a call
must play), the pacing policies, process-per-call AGI driving, and the per-call record of
timings derived from the fake's timed transcript.

What we measure is the server: each step's latency is the time from our reply leaving to the next
command arriving. Pacing (how long prompts play, how long the caller takes) only delays our
replies, so it never counts as server time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.call.agi_protocol import AgiCommand
from ivr.testing.fake_asterisk import (
    NO_PACING,
    CallResult,
    FakeChannel,
    Pacing,
    agi_environment,
    place_call,
    run_session,
)

__all__ = ["HUMAN", "NO_PACING", "CallRecord", "CallScript", "Pacing", "classic_call",
           "drive_call", "fastagi_call"]

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
    hash_after: tuple[int, ...] = ()  # keys (0-based) after which the server hashes a secret

    def key_list(self) -> list[str]:
        return [k for k in self.keys if not k.isspace()]


@dataclass
class CallRecord:
    """The accounting of one call, from the simulated Asterisk's side."""

    script: str
    ok: bool = False
    ended_by: str = ""  # "ivr" (server hung up or closed), "caller" (script hung up), "error",
    # "busy" (turned away)
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
    busy: bool = False  # turned away: HAMTA_RESULT=busy (the server was at --max-calls)
    # every step: (when the command came, perf_counter; its latency, s; a secret was hashed)
    steps: list[tuple[float, float, bool]] = field(default_factory=list)


def record_of(script: CallScript, result: CallResult, started: float,
              keep_trace: bool = False) -> CallRecord:
    """The bench's accounting of one call, from the fake Asterisk's timed transcript."""
    record = CallRecord(script.name, started=started, error=result.error)
    exchanges = result.transcript
    record.commands = len(exchanges)
    sent = result.env_sent
    after_key = hashing = False
    keys = 0
    for i, exchange in enumerate(exchanges):
        waited = exchange.received - sent
        if i == 0:
            record.first_command = waited
        else:
            record.latencies.append(waited)
            record.steps.append((exchange.received, waited, hashing))
            if after_key:
                record.key_latencies.append(waited)
        sent, after_key = exchange.replied, exchange.key
        hashing = exchange.key and keys in script.hash_after
        keys += exchange.key
    if result.closed_at is not None:
        record.teardown = result.closed_at - sent
    record.ended = time.perf_counter()
    record.keys_left = len(result.keys_left)
    record.unknown = list(result.unknown)
    if keep_trace:
        record.trace = result.commands
    _judge(record, result, script)
    return record


async def drive_call(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter | asyncio.WriteTransport,
    env: dict[str, str], script: CallScript, pacing: Pacing = NO_PACING, *,
    sighup: bool = False, linger: float | None = None, keep_trace: bool = False,
    on_first_question: Callable[[CallRecord], None] | None = None,
) -> CallRecord:
    """Run one AGI session over an open transport (the fake Asterisk's), never raising for the
    server's faults; `on_first_question` sees the record when the IVR first waits for a key."""
    started = time.perf_counter()
    record = CallRecord(script.name, started=started)
    channel = FakeChannel(script.keys, barge_in=script.barge_in, pacing=pacing, sighup=sighup)
    hook = None
    if on_first_question is not None:
        seen = False

        def hook(command: AgiCommand) -> None:
            nonlocal seen
            if command.asks and not seen:
                seen = True
                on_first_question(record)

    result = await run_session(reader, writer, env, channel, linger=linger, on_command=hook)
    done = record_of(script, result, started, keep_trace)
    done.rss_kib, done.pss_kib = record.rss_kib, record.pss_kib
    return done


def _judge(record: CallRecord, result: CallResult, script: CallScript) -> None:
    """ok = the call went as scripted: every key used, what it must play played, no refusal."""
    record.busy = result.result == "busy"
    if record.busy:
        record.error = "busy"
    if record.error is None and record.unknown:
        record.error = f"unknown command: {record.unknown[0]}"
    if record.error is None and not result.caller_hung_up and result.keys_left:
        if record.commands == 0:
            record.error = "no command before the connection closed"
        else:
            record.error = f"ended with {len(result.keys_left)} key(s) unused"
    missing = [s for s in script.expect if s not in result.played]
    if record.error is None and missing:
        record.error = f"did not play {missing[0]}"
    record.ok = record.error is None
    if record.busy:
        record.ended_by = "busy"
    elif result.caller_hung_up:
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
    try:
        async with asyncio.timeout(deadline):
            result = await place_call(
                host, port, script.keys, caller_id=script.caller_id, index=index,
                script=script_path, extra_env=extra_env, barge_in=script.barge_in,
                pacing=pacing, sighup=sighup, connect_gate=gate)
    except TimeoutError:
        return _failed(script, started, f"no end within {deadline:.0f} s")
    except (ConnectionError, OSError) as exc:
        return _failed(script, started, f"connect: {exc.__class__.__name__}")
    return record_of(script, result, started, keep_trace)


async def classic_call(
    argv: list[str], env_vars: dict[str, str], script: CallScript, index: int,
    pacing: Pacing = NO_PACING, *, sighup: bool = False, deadline: float = 120.0,
    keep_trace: bool = False,
) -> CallRecord:
    """One call through process-per-call AGI: start the script, talk over its stdin/stdout."""
    from bench.procstat import memory_kib

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
            env = agi_environment(caller_id=script.caller_id, index=index, request=argv[0],
                                  network=False)
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
