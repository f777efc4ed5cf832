"""The AGI protocol module and the fake Asterisk: lines parsed and formatted as Asterisk 22 writes
them, the handshake it sends, and calls over a socket (keys, barge-in, hang-ups)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.call import agi_protocol as agi
from ivr.call.agi_call import AgiCall
from ivr.call.api import Sound
from ivr.call.fastagi import FastAgiServer, ServerSettings, read_environment
from ivr.testing.fake_asterisk import FakeAsterisk, FakeChannel, agi_environment
from ivr.testing.transcript import Recording, ReplayTransport, normalize


@pytest.mark.parametrize(("line", "status", "result", "data", "endpos"), [
    ("200 result=0 endpos=1234", 200, "0", "", 1234),
    ("200 result=49", 200, "49", "", None),
    ("200 result=-1 endpos=0", 200, "-1", "", 0),
    ("200 result=1 (done)", 200, "1", "done", None),
    ("200 result= (timeout)", 200, "", "timeout", None),
    (agi.DEAD_CHANNEL, 511, "", "", None),
    (agi.INVALID_COMMAND, 510, "", "", None),
])
def test_reply_lines_round_trip(line: str, status: int, result: str, data: str,
                                endpos: int | None) -> None:
    reply = agi.parse_reply(line)
    assert (reply.status, reply.result, reply.data, reply.endpos) == (status, result, data, endpos)
    assert reply.line == line


def test_hangup_signs() -> None:
    assert agi.parse_reply("HANGUP").hung_up
    assert agi.parse_reply("").hung_up and agi.parse_reply("").status == 0
    assert agi.parse_reply("200 result=-1").hung_up
    assert agi.parse_reply(agi.DEAD_CHANNEL).hung_up
    assert not agi.parse_reply("200 result=0 endpos=10").hung_up
    assert agi.key_reply("#").line == "200 result=35"
    assert agi.parse_reply("200 result=35").key == "#"


def test_commands_parse_into_typed_values() -> None:
    stream = agi.parse_command('STREAM FILE hamta/welcome "0123456789*#"')
    assert (stream.verb, stream.file, stream.escape, stream.plays) == \
        ("STREAM FILE", "hamta/welcome", "0123456789*#", True)
    say = agi.parse_command('SAY DIGITS 0912 "0123456789*#"')
    assert (say.verb, say.arg(0), say.escape) == ("SAY DIGITS", "0912", "0123456789*#")
    assert agi.parse_command("WAIT FOR DIGIT 8000").timeout_ms == 8000
    assert agi.parse_command("CHANNEL STATUS").args == ()
    assert agi.parse_command("SET VARIABLE HAMTA_RESULT done").args == ("HAMTA_RESULT", "done")
    assert agi.parse_command("HANGUP").verb == "HANGUP"
    assert agi.parse_command("EXEC Playback hamta/goodbye").args == ("Playback", "hamta/goodbye")
    assert not agi.parse_command("FROB").known
    # the builders make what AgiCall sends, and parse back
    assert agi.parse_command(agi.stream_file("hamta/x", "12")).escape == "12"
    assert agi.loggable(agi.say_digits("0912", "")) == 'SAY DIGITS **** ""'


async def test_read_reply_skips_trying_and_reads_past_hangup() -> None:
    stream = asyncio.StreamReader()
    stream.feed_data(b"100 result=0 Trying...\n200 result=0\nHANGUP\n200 result=-1\n"
                     b"520-Invalid command syntax.  Proper usage follows:\nUsage: x\n"
                     b"520 End of proper usage.\n200 result=6\n")
    assert (await agi.read_reply(stream.readline))[0].result == "0"
    assert (await agi.read_reply(stream.readline))[0].hung_up
    assert (await agi.read_reply(stream.readline))[0].status == 520
    assert (await agi.read_reply(stream.readline))[0].result == "6"  # in step
    stream.feed_eof()
    assert (await agi.read_reply(stream.readline))[0].status == 0


async def test_the_handshake_is_what_asterisk_sends() -> None:
    env = agi_environment(caller_id="09121111111", index=3)
    assert list(env)[:4] == ["agi_network", "agi_network_script", "agi_request", "agi_channel"]
    assert env["agi_network"] == "yes" and env["agi_network_script"] == "hamta"
    assert env["agi_language"] == "fa" and env["agi_callerid"] == "09121111111"
    stream = asyncio.StreamReader()
    stream.feed_data(agi.format_environment(env))
    assert await read_environment(stream) == env
    assert agi_environment(caller_id=None)["agi_callerid"] == "unknown"


async def test_channel_answers_like_asterisk() -> None:
    ch = FakeChannel("1 .#h", barge_in=True)
    key, pressed = await ch.answer(agi.parse_command('STREAM FILE hamta/main_menu "0123456789*#"'))
    assert key.startswith("200 result=49 endpos=") and pressed  # barge-in
    assert await ch.answer(agi.parse_command("WAIT FOR DIGIT 8000")) == ("200 result=0", False)
    assert await ch.answer(agi.parse_command('SAY DIGITS 12 "#"')) == ("200 result=35", True)
    assert await ch.answer(agi.parse_command('STREAM FILE hamta/x ""')) == \
        ("200 result=-1", False)  # hung up during the prompt
    assert await ch.answer(agi.parse_command("CHANNEL STATUS")) == (agi.DEAD_CHANNEL, False)
    assert ch.said == ["12"] and ch.played == ["hamta/main_menu", "hamta/x"]


async def test_a_call_through_the_server(tmp_path: Path) -> None:
    async def flow(call: AgiCall) -> str:  # the channel's primitives only
        await call.stream(Sound("hamta/welcome", ""), "")
        for _ in range(3):
            key = await call.stream(Sound("hamta/main_menu", ""), "12") \
                or await call.wait_digit(8.0)
            if key:
                return f"pressed {key}"
            await call.stream(Sound("hamta/no_input", ""), "")
        return "silence"

    server = FastAgiServer(ServerSettings(port=0, sounds=tmp_path, spool=tmp_path), flow)
    await server.start()
    try:
        asterisk = FakeAsterisk("127.0.0.1", server.port)
        pressed = await asterisk.call(". 2", caller_id="09121111111")
        barged = await asterisk.call("1", barge_in=True)
        gone = await asterisk.call("h")
    finally:
        await server.stop()
    assert pressed.prompts == ["welcome", "main_menu", "no_input", "main_menu"]
    assert pressed.result == "done" and pressed.closed and not pressed.keys_left
    assert barged.transcript[1].reply.startswith("200 result=49 endpos=")
    assert barged.prompts == ["welcome", "main_menu"]
    assert gone.caller_hung_up and gone.result is None
    assert server.outcomes == ["pressed 2", "pressed 1"]
    # the transcript of a call replays in-process, command for command
    replay = ReplayTransport([(e.command, e.reply) for e in pressed.transcript])
    call = AgiCall.from_env(pressed.env, replay, sounds=tmp_path, spool=tmp_path)
    assert await flow(call) == "pressed 2"
    await call.finish()
    replay.assert_done()


def test_recordings_normalise_what_varies(tmp_path: Path) -> None:
    commands = ['STREAM FILE /x/spool/secret-0a1b2c "12"', 'STREAM FILE hamta/reference_is ""',
                'SAY DIGITS 123456 ""', 'SAY DIGITS 0912 ""']
    assert normalize(commands) == ['STREAM FILE <spool>/secret-<random> "12"',
                                   'STREAM FILE hamta/reference_is ""',
                                   'SAY DIGITS <reference> ""', 'SAY DIGITS 0912 ""']
    recording = Recording([("HANGUP", "200 result=1")], "0912", "h", "hung_up", {"a": "b"})
    recording.save(tmp_path / "r.json")
    again = Recording.load(tmp_path / "r.json")
    assert (again.exchanges, again.caller_id, again.outcome, again.meta) == \
        ([("HANGUP", "200 result=1")], "0912", "hung_up", {"a": "b"})


async def test_replay_is_strict() -> None:
    replay = ReplayTransport([("CHANNEL STATUS", "200 result=6")])
    with pytest.raises(AssertionError):
        await replay.command("HANGUP")
    assert (await replay.command("CHANNEL STATUS")).status == 0  # after a mismatch: closed
    with pytest.raises(AssertionError):
        replay.assert_done()
