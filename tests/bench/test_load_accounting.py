"""The load generator's accounting, checked against servers whose behaviour is known exactly.

Nothing here asserts a speed: only counts (calls, commands, latency samples, outcomes) and the
replies a simulated Asterisk gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap

import pytest

from bench.caller import CallScript, Pacing, classic_call, fastagi_call
from bench.floor import FloorServer, synthetic_trace
from bench.load import ClassicTarget, FastAgiTarget, percentile, run_load, summarize
from ivr.call.agi_protocol import DEAD_CHANNEL as DEAD_REPLY
from ivr.call.agi_protocol import parse_command
from ivr.testing.fake_asterisk import FakeChannel, agi_environment

M = 12  # commands per call of the synthetic trace: ANSWER, 5 × (prompt, question), HANGUP
QUESTIONS = 5


@pytest.fixture
async def floor():
    server = FloorServer({"synthetic": synthetic_trace(M)})
    port = await server.start()
    yield server, port
    await server.close()


async def test_trace_shape() -> None:
    trace = synthetic_trace(M)
    assert len(trace) == M
    assert trace[0] == "ANSWER" and trace[-1] == "HANGUP"
    assert sum(c.startswith("WAIT FOR DIGIT") for c in trace) == QUESTIONS


async def test_n_calls_times_m_commands(floor) -> None:
    server, port = floor
    script = CallScript("synthetic", "09121111111", "1 2 3")  # three of the five questions
    run = await run_load(FastAgiTarget("127.0.0.1", port), [script], concurrency=7, calls=20)
    s = summarize(run)
    assert (s["calls"], s["completed"], s["failed"], s["hung_up_by_caller"]) == (20, 20, 0, 0)
    assert server.calls == 20
    assert s["commands"] == 20 * M
    # one latency per command after the first (the first one's wait is the call setup)
    assert s["step_ms"]["samples"] == 20 * (M - 1)
    assert s["setup_ms"]["samples"] == 20
    # a key was pressed at 3 questions, and each was followed by a command
    assert s["after_key_ms"]["samples"] == 20 * 3
    assert s["peak_concurrency"] == 7
    assert all(r.ended_by == "ivr" and r.keys_left == 0 for r in run.records)
    assert all(r.teardown is not None for r in run.records)


async def test_one_call_per_worker_by_default(floor) -> None:
    _, port = floor
    run = await run_load(FastAgiTarget("127.0.0.1", port),
                         [CallScript("synthetic", None, "")], concurrency=5)
    assert len(run.records) == 5 and all(r.ok for r in run.records)


async def test_a_caller_who_hangs_up_counts_as_such(floor) -> None:
    _, port = floor
    talker = CallScript("synthetic", "09121111111", "1 2")
    quitter = CallScript("synthetic", "09121111111", "1 h")  # hangs up at the second question
    run = await run_load(FastAgiTarget("127.0.0.1", port), [talker, quitter], concurrency=4,
                         calls=8, by_call=True)
    s = summarize(run)
    assert s["completed"] == 8 and s["failed"] == 0
    assert s["hung_up_by_caller"] == 4  # calls 1, 3, 5, 7 follow the quitter
    quitters = [r for r in run.records if r.ended_by == "caller"]
    assert len(quitters) == 4
    # the floor ignores replies: after the hang-up it still sends its trace (answered 511)
    assert all(r.commands == M for r in run.records)


async def test_a_server_ending_before_the_script_is_a_failure(floor) -> None:
    _, port = floor
    greedy = CallScript("synthetic", None, "1 2 3 4 5 6 7")  # more keys than questions
    record = await fastagi_call("127.0.0.1", port, greedy, 0)
    assert not record.ok and record.ended_by == "error"
    assert record.error == "ended with 2 key(s) unused"
    assert record.commands == M


async def test_a_missing_prompt_is_a_failure(floor) -> None:
    _, port = floor
    script = CallScript("synthetic", None, "", expect=("hamta/imei_registered",))
    record = await fastagi_call("127.0.0.1", port, script, 0)
    assert not record.ok and record.error == "did not play hamta/imei_registered"


async def test_trace_picked_by_script_name() -> None:
    server = FloorServer({"a": synthetic_trace(4), "b": synthetic_trace(9)})
    port = await server.start()
    try:
        target = FastAgiTarget("127.0.0.1", port, trace_arg=True)
        run = await run_load(target, [CallScript("a", None, ""), CallScript("b", None, "")],
                             concurrency=2, calls=6, by_call=True)
    finally:
        await server.close()
    assert sorted(r.commands for r in run.records) == [4, 4, 4, 9, 9, 9]


async def test_connection_refused_counts_as_failed() -> None:
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens here once closed
    run = await run_load(FastAgiTarget("127.0.0.1", port), [CallScript("x", None, "")],
                         concurrency=2, calls=3)
    s = summarize(run)
    assert s["completed"] == 0 and s["failed"] == 3
    assert all(r.error.startswith("connect") for r in run.records)


async def _scripted_server(lines: list[str], *, close: bool = True):
    """A server sending fixed command lines, one per reply; `close=False` keeps it open."""
    replies: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        for line in lines:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            replies.append((await reader.readline()).decode().strip())
        if not close:
            await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], replies


async def test_unknown_command_gets_510_and_fails_the_call() -> None:
    server, port, replies = await _scripted_server(["FROB THE CHANNEL", "HANGUP"])
    async with server:
        record = await fastagi_call("127.0.0.1", port, CallScript("x", None, ""), 0)
    assert replies == ["510 Invalid or unknown command", "200 result=1"]
    assert not record.ok and record.error.startswith("unknown command")


async def test_server_talking_on_after_the_hangup_is_a_failure() -> None:
    server, port, _ = await _scripted_server(["WAIT FOR DIGIT 1000"], close=False)
    async with server:
        from bench import caller

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        env = agi_environment(caller_id=None, request="agi://x/hamta")
        record = await caller.drive_call(reader, writer, env, CallScript("x", None, "h"),
                                         linger=0.2)
        writer.close()
    assert record.ended_by == "caller" and not record.ok
    assert record.error == "still talking after the hang-up"


async def test_sighup_mode_sends_a_hangup_line() -> None:
    server, port, replies = await _scripted_server(["WAIT FOR DIGIT 1000", "STREAM FILE x \"\""])
    async with server:
        from bench import caller

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        script = CallScript("x", None, "h")
        env = agi_environment(caller_id=None, request="agi://x/hamta")
        record = await caller.drive_call(reader, writer, env, script, sighup=True)
        writer.close()
    # the HANGUP line arrives first; a line-per-reply server reads it as the reply
    assert replies[0] == "HANGUP"
    assert record.ended_by == "caller"


# --- the simulated channel: replies as Asterisk gives them ---------------------------------------
async def test_replies_like_asterisk() -> None:
    ch = FakeChannel("4.#h", pacing=Pacing())
    assert await ch.answer(parse_command("ANSWER")) == ("200 result=0", False)
    assert (await ch.answer(parse_command('STREAM FILE hamta/welcome "0123"')))[0] \
        == "200 result=0 endpos=16000"
    assert await ch.answer(parse_command("WAIT FOR DIGIT 8000")) == ("200 result=52", True)
    assert await ch.answer(parse_command("WAIT FOR DIGIT 8000")) == ("200 result=0", False)
    assert await ch.answer(parse_command("SAY DIGITS 1234 \"\"")) == ("200 result=0", False)
    assert await ch.answer(parse_command("WAIT FOR DIGIT 5000")) == ("200 result=35", True)
    assert await ch.answer(parse_command("SET VARIABLE HAMTA_RESULT done")) \
        == ("200 result=1", False)
    assert await ch.answer(parse_command("GET VARIABLE HAMTA_RESULT")) \
        == ("200 result=1 (done)", False)
    assert await ch.answer(parse_command("GET VARIABLE NOPE")) == ("200 result=0", False)
    assert await ch.answer(parse_command("CHANNEL STATUS")) == ("200 result=6", False)
    assert await ch.answer(parse_command("WAIT FOR DIGIT 5000")) == ("200 result=-1", False)
    assert ch.caller_hung_up and ch.dead
    # a dead channel: most commands are refused, a few still run
    assert await ch.answer(parse_command('STREAM FILE hamta/goodbye ""')) == (DEAD_REPLY, False)
    assert await ch.answer(parse_command("CHANNEL STATUS")) == (DEAD_REPLY, False)
    assert await ch.answer(parse_command("SET VARIABLE A b")) == ("200 result=1", False)
    assert ch.played == ["hamta/welcome"]


async def test_barge_in_presses_during_the_prompt() -> None:
    ch = FakeChannel("1", barge_in=True, pacing=Pacing())
    assert await ch.answer(parse_command('STREAM FILE hamta/welcome ""')) \
        == ("200 result=0 endpos=16000", False)  # no escape digits: the key waits
    reply, key = await ch.answer(parse_command('STREAM FILE hamta/main_menu "0123456789*#"'))
    assert reply.startswith("200 result=49 endpos=") and key
    assert not ch.keys


async def test_parse_command() -> None:
    def parsed(line: str) -> tuple[str, list[str]]:
        command = parse_command(line)
        return command.verb, list(command.args)

    assert parsed('STREAM FILE hamta/welcome "0123456789*#"') == \
        ("STREAM FILE", ["hamta/welcome", "0123456789*#"])
    assert parsed("wait for digit 8000") == ("WAIT FOR DIGIT", ["8000"])
    assert parsed('STREAM FILE hamta/goodbye ""') == ("STREAM FILE", ["hamta/goodbye", ""])
    assert parsed("BOGUS") == ("", ["BOGUS"])


# --- classic AGI: a process per call over stdin/stdout -----------------------------------------
FAKE_AGI = textwrap.dedent("""
    import sys
    env = {}
    for line in sys.stdin:
        if not line.strip():
            break
        k, _, v = line.partition(":")
        env[k] = v.strip()
    assert "agi_network" not in env and env["agi_request"]
    for command in ("ANSWER", 'STREAM FILE hamta/welcome "0123456789*#"', "WAIT FOR DIGIT 1000",
                    "WAIT FOR DIGIT 1000", "HANGUP"):
        print(command, flush=True)
        if not sys.stdin.readline().startswith("200"):
            sys.exit(3)
""")


async def test_classic_agi_process_per_call() -> None:
    target = ClassicTarget([sys.executable, "-c", FAKE_AGI], {})
    run = await run_load(target, [CallScript("x", "09121111111", "5")], concurrency=2, calls=3)
    s = summarize(run)
    assert (s["completed"], s["failed"]) == (3, 0)
    assert s["commands"] == 3 * 5 and s["step_ms"]["samples"] == 3 * 4
    assert all(r.pid and r.rss_kib for r in run.records)  # memory sampled at its question


async def test_classic_agi_nonzero_exit_is_a_failure() -> None:
    record = await classic_call([sys.executable, "-c", "import sys; sys.exit(4)"], {},
                                CallScript("x", None, ""), 0)
    assert not record.ok


# --- statistics ----------------------------------------------------------------------------------
def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
