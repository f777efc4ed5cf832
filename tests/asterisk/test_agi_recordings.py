"""Real calls recorded on the development Asterisk 22, replayed against the flows without it.

tests/fixtures/agi/*.json hold what crossed the FastAGI connection on real calls: every command
the IVR sent and the reply line Asterisk wrote back (keys as ASCII codes, `endpos`, `-1` on the
caller's hang-up). The replay tests (no Asterisk, no root) run each recording's call through
`Ivr.handle` with ivr.testing.transcript.ReplayTransport on a fresh demo registry: the flows must
send exactly the recorded commands, in order, and log the recorded outcome.

How they were recorded (`test_record_real_calls`): the session's development Asterisk (conftest
`asterisk`) with `hamta-ivr serve` stopped; in its place an in-process FastAgiServer + Ivr on a
fresh demo registry, behind a tap on the dialplan's FastAGI port that copies each line through
(what Asterisk sent is recorded verbatim); calls placed with `hamta-ivr dial --json` (AMI
Originate on a Local channel, keys as DTMF). The commands AMI reports in AGIExecStart/AGIExecEnd
must agree with the tapped ones (AMI carries only a result code, not the `result=` line, hence
the tap). Normalised (ivr.testing.transcript.normalize): the secret digit WAV's random path ->
`<spool>/secret-<random>`, the digits after `reference_is` -> `<reference>`; unique ids and the
AGI environment are not kept.

Re-record (root; about four minutes, the prompts play in full):

    HAMTA_RECORD_AGI=1 python -m pytest -m asterisk tests/asterisk/test_agi_recordings.py

then review `git diff tests/fixtures/agi` (a flow change shows as changed commands).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from ivr.app import Ivr
from ivr.call.agi_call import AgiCall, AgiError
from ivr.call.agi_protocol import HANGUP_LINE, parse_command
from ivr.call.api import CallerHungUp
from ivr.call.fastagi import FastAgiServer, ServerSettings
from ivr.prompts.layout import sound_path
from ivr.registry import demo
from ivr.registry.service import Registry
from ivr.testing.transcript import Recording, ReplayTransport, normalize
from tests.asterisk.conftest import AgiServer, dial

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agi"
RECORD = os.environ.get("HAMTA_RECORD_AGI", "") not in ("", "0")

# name -> (caller, keys, barge_in): an inquiry, a direct transfer (the reference number heard
# once, `2` goes on), a hang-up mid-operation (a device with a code: `1` confirms replacing it;
# the new activation code has been said from secret WAVs; the caller leaves at "hear it again?")
CALLS = {
    "inquiry": (demo.DEMO_BUYER, f"1 {demo.DEMO_PHONE} h", False),
    "direct_transfer": (demo.DEMO_SELLER, f"3 1 {demo.DEMO_SELLER_PIN}# 1 {demo.DEMO_CODE} "
                                          f"{demo.DEMO_BUYER} 1 2 h", False),
    "hangup_activation_code": (demo.DEMO_MANY, f"4 1 {demo.DEMO_MANY_PIN}# 1# 1 h", False),
}


def recordings() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


# --- replay: no Asterisk ------------------------------------------------------------------------
def _sounds_for(recording: Recording, sounds: Path) -> None:
    """The files the flows look for before playing: device names, the digits of a secret."""
    for command in recording.commands:
        file = parse_command(command).file
        if file.startswith("hamta/device/"):
            path = sound_path(sounds, file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    digits = sounds / "fa" / "digits"
    digits.mkdir(parents=True, exist_ok=True)
    for digit in "0123456789":
        with wave.open(str(digits / f"{digit}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * 80)


def _outcome(registry: Registry, call_id: str) -> str | None:
    return next((row.outcome for row in registry.call_log.calls() if row.call_id == call_id),
                None)


async def replay(recording: Recording, registry: Any, tmp_path: Path) -> ReplayTransport:
    """One recorded call through the flows, as FastAgiServer runs it (its normal-end marker)."""
    _sounds_for(recording, tmp_path / "sounds")
    transport = ReplayTransport.from_recording(recording)
    # the dialplan's trust argument: `hamta-ivr dial` records calls from the subscriber's own SIM
    # (context hamta-ivr-trusted, caller=network) unless the recording says otherwise
    trust = recording.meta.get("caller_trust", "network")
    call = AgiCall.from_env(
        {"agi_uniqueid": "replay.1", "agi_callerid": recording.caller_id or "unknown",
         "agi_language": "fa", "agi_channel": "Local/7777@hamta-ivr-00000001;2",
         "agi_arg_1": f"caller={trust}"},
        transport, sounds=tmp_path / "sounds", spool=tmp_path / "spool")
    ivr = Ivr(registry)
    try:
        try:
            await ivr.handle(call)
        except (CallerHungUp, AgiError):
            pass
        else:
            with contextlib.suppress(AgiError):
                await call.finish()
    finally:
        ivr.desk.close()
    return transport


@pytest.mark.parametrize("path", recordings(), ids=lambda p: p.stem)
async def test_flows_send_exactly_the_recorded_commands(path: Path, sqlite_registry_factory: Any,
                                                        tmp_path: Path) -> None:
    recording = Recording.load(path)
    assert "Asterisk 22" in recording.meta.get("recorded_with", ""), "not from the real Asterisk"
    registry = sqlite_registry_factory()
    demo.seed_demo(registry)
    transport = await replay(recording, registry, tmp_path)
    transport.assert_done()
    assert _outcome(registry, "replay.1") == recording.outcome


def test_there_are_recordings() -> None:
    assert {p.stem for p in recordings()} >= set(CALLS)


async def test_a_different_command_is_caught(sqlite_registry_factory: Any,
                                             tmp_path: Path) -> None:
    """The replay is strict: a recording whose next command differs fails the replay."""
    recording = Recording.load(FIXTURES / "inquiry.json")
    at = next(i for i, (command, _) in enumerate(recording.exchanges)
              if "hamta/enter_imei" in command)
    command, reply = recording.exchanges[at]
    recording.exchanges[at] = (command.replace("hamta/", "hamta/other_"), reply)
    registry = sqlite_registry_factory()
    demo.seed_demo(registry)
    transport = await replay(recording, registry, tmp_path)
    with pytest.raises(AssertionError, match=f"command {at + 1}"):
        transport.assert_done()


def test_normalize_hides_every_group_of_the_reference() -> None:
    """The reference number is read in groups with a pause between them: every group varies from
    run to run, not only the first; digits said elsewhere stay as they are."""
    commands = ['STREAM FILE hamta/reference_is "0123456789*#"', 'SAY DIGITS 412 "0123456789*#"',
                "WAIT FOR DIGIT 200", 'SAY DIGITS 963 "0123456789*#"', "WAIT FOR DIGIT 200",
                'SAY DIGITS 3751 "0123456789*#"', 'STREAM FILE hamta/is_end "0123456789*#"',
                'SAY DIGITS 0014 "0123456789*#"']
    hidden = 'SAY DIGITS <reference> "0123456789*#"'
    pause = "WAIT FOR DIGIT 200"
    assert normalize(commands) == [commands[0], hidden, pause, hidden, pause, hidden, commands[6],
                                   commands[7]]


# --- recording: the real Asterisk -----------------------------------------------------------------
class Tap:
    """A FastAGI port in front of another: passes every line through and keeps a copy."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self.target = target
        self.calls: dict[str, list[tuple[str, str]]] = {}  # agi_uniqueid -> exchanges
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _connection(self, ast_reader: asyncio.StreamReader,
                          ast_writer: asyncio.StreamWriter) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.target)
        exchanges: list[tuple[str, str]] = []
        try:
            while True:  # the environment, up to its blank line
                line = await ast_reader.readline()
                writer.write(line)
                text = line.decode().rstrip("\n")
                if text.startswith("agi_uniqueid: "):
                    self.calls[text.split(": ", 1)[1]] = exchanges
                if not line or not text:
                    break
            await writer.drain()
            while True:
                command = await reader.readline()
                if not command:
                    break
                ast_writer.write(command)
                await ast_writer.drain()
                replies = [await ast_reader.readline()]
                if replies[0].rstrip(b"\n") == HANGUP_LINE.encode():
                    replies.append(await ast_reader.readline())
                exchanges.append((command.decode().rstrip("\n"),
                                  "\n".join(r.decode().rstrip("\n") for r in replies)))
                for reply in replies:
                    writer.write(reply)
                await writer.drain()
                if not replies[-1]:
                    break
        finally:
            for w in (writer, ast_writer):
                w.close()


@pytest.mark.asterisk
@pytest.mark.skipif(not RECORD, reason="re-records tests/fixtures/agi: HAMTA_RECORD_AGI=1")
async def test_record_real_calls(agi_server: AgiServer, tmp_path: Path) -> None:
    from ivr.asterisk import ami, config
    from ivr.asterisk.config import spool_dir
    from ivr.prompts.layout import sounds_dir
    from ivr.registry.db import upgrade
    from ivr.registry.service import Registry

    env = agi_server.env
    version = await ami.ping(config.load(create_secrets=False))  # "Asterisk 22.x.y"
    url = f"sqlite:///{tmp_path / 'recording.db'}"
    await asyncio.to_thread(upgrade, url)
    registry = Registry.open(url)
    demo.seed_demo(registry)
    ivr = Ivr(registry)
    server = FastAgiServer(ServerSettings(port=0, sounds=sounds_dir(), spool=spool_dir()),
                           ivr.handle)
    agi_server.stop()
    try:
        await server.start()
        tap = Tap(env.agi_port, server.port)
        await tap.start()
        try:
            dialled = await asyncio.gather(*(
                asyncio.to_thread(dial, env, caller, keys, barge_in=barge_in)
                for caller, keys, barge_in in CALLS.values()))
        finally:
            await tap.close()
            await server.stop()
    finally:
        ivr.desk.close()
        agi_server.start()
    for (name, (caller, keys, barge_in)), done in zip(CALLS.items(), dialled, strict=True):
        assert done.ok, (name, done.doc, done.stderr)
        exchanges = tap.calls[done.call_id]
        commands = [c for c, _ in exchanges]
        ami = [c for c, _, _ in done.doc["agi"]]
        assert ami and commands[:len(ami)] == ami, (name, ami, commands)  # AMI agrees
        normalized = list(zip(normalize(commands), (r for _, r in exchanges), strict=True))
        Recording(
            normalized, caller, keys, _outcome(registry, done.call_id),
            {"recorded_with": f"{version} (the development Asterisk), hamta-ivr dial"
                              f"{' --barge-in' if barge_in else ''}, FastAGI tap",
             "recorded": time.strftime("%Y-%m-%d"),
             "caller_trust": "network",  # dial enters hamta-ivr-trusted: the caller's own SIM
             "normalized": "secret WAV path -> <spool>/secret-<random>; digits after "
                           "reference_is -> <reference>"},
        ).save(FIXTURES / f"{name}.json")
    registry.close()
