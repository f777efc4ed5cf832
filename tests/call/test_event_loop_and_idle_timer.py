"""Issue 12's CPU work on the call path: serve's event loop (uvloop when installed, asyncio on
request) and the idle limit watched by one timer per call rather than one per command."""

from __future__ import annotations

import asyncio

import pytest

from ivr.call import agi_protocol as agi
from ivr.call.agi_transport import StreamTransport
from ivr.call.fastagi import loop_factory, run_server
from ivr.config import EVENT_LOOP_ENV


def test_serve_runs_on_uvloop_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert loop_factory() is uvloop.new_event_loop
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    run_server(main())
    assert seen[0].startswith("uvloop")
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    assert loop_factory() is None


def test_the_event_loop_is_a_parameter_of_the_server_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_server takes the choice (Settings will pass it); the environment only when not given."""
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert loop_factory("asyncio") is None
    monkeypatch.setenv(EVENT_LOOP_ENV, "asyncio")
    assert loop_factory("") is uvloop.new_event_loop  # given: the environment is not read
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    run_server(main(), "")
    monkeypatch.delenv(EVENT_LOOP_ENV)
    run_server(main(), "asyncio")
    assert seen[0].startswith("uvloop") and seen[1].startswith("asyncio")


async def _pair() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamReader,
                           asyncio.StreamWriter, asyncio.Server]:
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future())
    server = await asyncio.start_server(lambda r, w: accepted.set_result((r, w)), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer_reader, peer_writer = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await accepted
    return reader, writer, peer_reader, peer_writer, server


async def test_one_timer_per_call_drops_a_silent_peer_and_stops_with_the_call() -> None:
    reader, writer, peer_reader, peer_writer, server = await _pair()
    try:
        transport = StreamTransport(reader, writer, timeout=0.3)
        first = None
        for _ in range(5):  # answered commands: the one timer is not re-armed per command
            asked = asyncio.create_task(transport.command("CHANNEL STATUS"))
            assert (await peer_reader.readline()).startswith(b"CHANNEL STATUS")
            peer_writer.write(b"200 result=6\n")
            assert (await asked).result == "6"
            first = first or transport._watch
        assert first is not None and transport._watch is first
        reply = await transport.command("WAIT FOR DIGIT 8000")  # never answered
        assert reply.status == 0 and "0.3" in reply.message and transport.gone
        assert await transport.command("HANGUP") == agi.CLOSED  # at once, nothing sent
        transport.close()
        assert transport._watch is None
    finally:
        peer_writer.close()
        server.close()


async def test_the_timer_is_released_when_the_call_ends() -> None:
    reader, writer, peer_reader, peer_writer, server = await _pair()
    try:
        transport = StreamTransport(reader, writer, timeout=60)
        asked = asyncio.create_task(transport.command("ANSWER"))
        await peer_reader.readline()
        peer_writer.write(b"200 result=0\n")
        await asked
        assert transport._watch is not None and not transport._watch.cancelled()
        watch = transport._watch
        transport.close()
        assert watch.cancelled() and transport._watch is None
    finally:
        peer_writer.close()
        server.close()
