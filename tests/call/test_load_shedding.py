"""Load shedding and idle limits (issue 11): above `max_calls` a new caller hears `busy` at once
and the registry is not touched; a peer that leaves a command unanswered is dropped after the idle
limit, which is derived from the built audio rather than 600 s.

Choice recorded here: a caller turned away leaves no row in the call log (no registry work)."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from ivr.call import agi_protocol as agi
from ivr.call.fastagi import MAX_CALLS, ServerSettings
from ivr.call.idle import COMMAND_TIMEOUT, idle_limit, longest_command
from ivr.registry import demo
from ivr.testing.fake_asterisk import Pacing, agi_environment

HOLD = Pacing(silence=1.0)  # each question waits 1 s for a key: a call lasts a few seconds


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_the_third_caller_hears_busy_at_once(demo_server: Any) -> None:
    async with demo_server(max_calls=2) as s:
        held = [asyncio.create_task(s.asterisk.call("", caller_id=demo.DEMO_SELLER, pacing=HOLD))
                for _ in range(2)]
        await _until(lambda: s.server.in_progress == 2)
        started = time.perf_counter()
        third = await s.asterisk.call(f"1 {demo.DEMO_PHONE}", caller_id=demo.DEMO_BUYER)
        took = time.perf_counter() - started
        assert s.server.in_progress == 2  # the two held calls were still running
        first, second = await asyncio.gather(*held)
        after = await s.asterisk.call(f"1 {demo.DEMO_PHONE}", caller_id=demo.DEMO_BUYER)
    assert third.prompts == ["busy"] and third.result == "busy"
    assert third.server_hung_up and third.closed and third.error is None
    assert third.commands == ["SET VARIABLE HAMTA_RESULT busy", 'STREAM FILE hamta/busy ""',
                              "HANGUP"]
    assert took < 1.0, f"busy took {took:.2f}s"
    assert s.server.turned_away == 1
    assert first.result == second.result == after.result == "done"
    # the registry: rows for the two held calls and the one after, none for the busy caller
    calls = s.registry.call_log.calls()
    assert len(calls) == 3 and all(c.outcome != "busy" for c in calls)
    assert third.env["agi_uniqueid"] not in {c.call_id for c in calls}
    assert after.env["agi_uniqueid"] in {c.call_id for c in calls}


async def test_overflow_hands_the_caller_back_to_the_dialplan(demo_server: Any) -> None:
    """`AGI(agi://…/hamta?overflow=yes)`: only HAMTA_RESULT=busy, for the next server to try."""
    async with demo_server(max_calls=1) as s:
        held = asyncio.create_task(s.asterisk.call("", caller_id=demo.DEMO_SELLER, pacing=HOLD))
        await _until(lambda: s.server.in_progress == 1)
        overflow = await s.asterisk.call("1", caller_id=demo.DEMO_BUYER,
                                         script="hamta?overflow=yes")
        await held
    assert overflow.commands == ["SET VARIABLE HAMTA_RESULT busy"] and overflow.result == "busy"
    assert overflow.closed and not overflow.server_hung_up and overflow.prompts == []
    assert len(s.registry.call_log.calls()) == 1


async def test_a_silent_peer_is_dropped_after_the_idle_limit(demo_server: Any) -> None:
    async with demo_server(command_timeout=0.5) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.server.port)
        writer.write(agi.format_environment(agi_environment(caller_id=demo.DEMO_SELLER,
                                                            uniqueid="silent.1")))
        started = time.perf_counter()
        sent = []
        async with asyncio.timeout(10):
            while line := await reader.readline():  # never answered
                sent.append(line.decode().strip())
        took = time.perf_counter() - started
        writer.close()
        await _until(lambda: s.server.in_progress == 0)
    assert sent == ['STREAM FILE hamta/welcome "0123456789*#"']  # nothing after the limit
    assert 0.4 < took < 3.0, f"dropped after {took:.2f}s"
    [row] = s.registry.call_log.calls()
    assert (row.call_id, row.outcome, row.ended is not None) == ("silent.1", "hung_up", True)


def _wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * int(8000 * seconds))


def test_the_idle_limit_fits_the_longest_prompt(tmp_path: Path) -> None:
    assert longest_command(tmp_path) is None and idle_limit(tmp_path) == COMMAND_TIMEOUT
    for digit in "0123456789":
        _wav(tmp_path / "fa" / "digits" / f"{digit}.wav", 0.5)
    _wav(tmp_path / "fa" / "hamta" / "welcome.wav", 3.0)
    _wav(tmp_path / "fa" / "hamta" / "main_menu.wav", 21.0)
    # the longest command: the 21 s menu (20 digits said back to back: 20 x 0.5 s = 10 s)
    assert longest_command(tmp_path) == pytest.approx(21.0)
    # plus the longest wait for a first key: 30 s for an SMS code (READ_FIRST_TIMEOUT), so a
    # caller reading the SMS is never dropped as a silent peer
    assert idle_limit(tmp_path) == pytest.approx(21.0 + 30 + 5 + 15)
    _wav(tmp_path / "fa" / "hamta" / "main_menu.wav", 2.0)
    assert idle_limit(tmp_path) == pytest.approx(10.0 + 30 + 5 + 15)


def test_defaults() -> None:
    settings = ServerSettings()
    assert settings.max_calls == MAX_CALLS == 500
    assert settings.command_timeout == COMMAND_TIMEOUT == 120.0  # was 600
