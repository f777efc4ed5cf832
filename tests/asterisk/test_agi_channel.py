"""The AGI channel without Asterisk: replies mapped to keys, hang-ups and errors, secrets kept out
of AGI commands and logs, the bounded FastAGI handshake, the server's normal-end marker.

The peer is ivr.testing: a replayed transcript (each command must be the expected one, the reply
is Asterisk's line) or, for the server, the fake Asterisk over a socket."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

import pytest

from ivr.asterisk.ami import describe
from ivr.call import agi_protocol as agi
from ivr.call.agi_call import AgiCall, AgiError
from ivr.call.agi_protocol import loggable
from ivr.call.api import CallerHungUp, Digits, Sound
from ivr.call.classic_agi import MaskedStream
from ivr.call.fastagi import FastAgiServer, ServerSettings, read_environment
from ivr.testing.fake_asterisk import FakeAsterisk
from ivr.testing.transcript import SECRET_FILE, ReplayTransport
from tests.asterisk.conftest import Env, missing_sounds

WELCOME = 'STREAM FILE hamta/welcome "0123456789*#"'
LISTENING = agi.LISTENING_SILENCE


def make_call(tmp_path: Path, *exchanges: tuple[str, str]) -> tuple[AgiCall, ReplayTransport]:
    """A call whose peer answers `exchanges` (command, Asterisk's reply line; "" = closed)."""
    transport = ReplayTransport(exchanges)
    call = AgiCall.from_env(
        {"agi_uniqueid": "1700000000.1", "agi_callerid": "09121111111", "agi_language": "fa",
         "agi_channel": "PJSIP/x"}, transport, sounds=tmp_path / "sounds",
        spool=tmp_path / "spool")
    return call, transport


def test_environment_gives_call_id_caller_and_language(tmp_path: Path) -> None:
    call, _ = make_call(tmp_path)
    assert (call.call_id, call.caller_id, call.language) == ("1700000000.1", "09121111111", "fa")
    withheld = AgiCall.from_env({"agi_callerid": "unknown"}, ReplayTransport([]))
    assert withheld.caller_id is None and withheld.call_id.startswith("agi-")


async def test_keys_timeouts_and_barge_in(tmp_path: Path) -> None:
    call, sent = make_call(tmp_path, (WELCOME, "200 result=0 endpos=8000"),
                           ('STREAM FILE hamta/main_menu "0123456789*#"',
                            "200 result=49 endpos=100"),
                           (LISTENING, "200 result=0"),
                           ("WAIT FOR DIGIT 8000", "200 result=0 (timeout)"),
                           ("WAIT FOR DIGIT 5000", "200 result=35"),
                           (WELCOME, "200 result=0 endpos=8000"),
                           (LISTENING, "200 result=0"),
                           ("WAIT FOR DIGIT 5000", "200 result=0 (timeout)"))
    assert await call.stream(Sound("hamta/welcome", ""), "0123456789*#") is None
    assert await call.stream(Sound("hamta/main_menu", ""), "0123456789*#") == "1"
    assert await call.wait_digit(8.0) is None
    assert await call.wait_digit(5.0) == "#"
    # the silence that fills a wait is started once, and again after a prompt stopped it
    await call.stream(Sound("hamta/welcome", ""), "0123456789*#")
    assert await call.wait_digit(5.0) is None
    assert sent.sent == ['STREAM FILE hamta/welcome "0123456789*#"',
                         'STREAM FILE hamta/main_menu "0123456789*#"', LISTENING,
                         "WAIT FOR DIGIT 8000", "WAIT FOR DIGIT 5000", WELCOME, LISTENING,
                         "WAIT FOR DIGIT 5000"]


async def test_a_key_pressed_between_digit_groups_is_kept(tmp_path: Path) -> None:
    """The pause between groups listens (WAIT FOR DIGIT, not the dialplan's Wait, which drops
    keys): a `1` pressed there stops the reading and answers the next question."""
    call, sent = make_call(tmp_path, ('SAY DIGITS 1234 "0123456789*#"', "200 result=0"),
                           ("WAIT FOR DIGIT 200", "200 result=49"))
    await call.play(Digits("12345678", groups=(4,)))
    assert sent.sent == ['SAY DIGITS 1234 "0123456789*#"', "WAIT FOR DIGIT 200"]
    assert call._typed == "1"


async def test_a_key_in_a_pause_that_takes_none_is_dropped(tmp_path: Path) -> None:
    """A reading that takes no keys (barge_in=False) goes on past a key pressed in its pause."""
    call, sent = make_call(tmp_path, ('SAY DIGITS 1234 ""', "200 result=0"),
                           ("WAIT FOR DIGIT 200", "200 result=49"),
                           ('SAY DIGITS 5678 ""', "200 result=0"))
    await call.play(Digits("12345678", groups=(4,)), barge_in=False)
    assert len(sent.sent) == 3 and call._typed == ""


@pytest.mark.parametrize("line", ["200 result=-1", "511 Command Not Permitted on a dead channel",
                                  "HANGUP", "200 result=1 (hangup)"])
async def test_every_sign_of_hangup_is_caller_hung_up(tmp_path: Path, line: str) -> None:
    call, _ = make_call(tmp_path, (LISTENING, "200 result=0"), ("WAIT FOR DIGIT 1000", line))
    with pytest.raises(CallerHungUp):
        await call.wait_digit(1.0)
    with pytest.raises(CallerHungUp):  # and it stays hung up, without another command
        await call.wait_digit(1.0)


async def test_a_closed_connection_is_a_hangup(tmp_path: Path) -> None:
    # no reply at all (STREAM FILE's -1 is then told from a missing file by CHANNEL STATUS)
    call, _ = make_call(tmp_path, ('STREAM FILE hamta/welcome ""', ""), ("CHANNEL STATUS", ""))
    with pytest.raises(CallerHungUp):
        await call.stream(Sound("hamta/welcome", ""), "")


async def test_missing_sound_file_is_not_a_hangup(tmp_path: Path) -> None:
    # STREAM FILE says -1 for a file Asterisk cannot open too; the channel is still up
    call, sent = make_call(tmp_path, ('STREAM FILE hamta/nothing ""', "200 result=-1 endpos=0"),
                           ("CHANNEL STATUS", "200 result=6"))
    assert await call.stream(Sound("hamta/nothing", ""), "") is None
    assert sent.sent[-1] == "CHANNEL STATUS"


async def test_other_errors_are_agi_errors(tmp_path: Path) -> None:
    call, _ = make_call(tmp_path, (LISTENING, "200 result=0"),
                        ("WAIT FOR DIGIT 1000", "510 Invalid or unknown command"))
    with pytest.raises(AgiError):
        await call.wait_digit(1.0)


def _digit_sounds(folder: Path) -> None:
    folder.mkdir(parents=True)
    for digit in "0123456789":
        with wave.open(str(folder / f"{digit}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(bytes([int(digit)]) * 800)


async def test_secret_digits_never_enter_an_agi_command(tmp_path: Path) -> None:
    _digit_sounds(tmp_path / "sounds" / "fa" / "digits")
    call, sent = make_call(tmp_path, (f'STREAM FILE {SECRET_FILE} "0123456789*#"',
                                      "200 result=0 endpos=1"),
                           ('SAY DIGITS 0912 "0123456789*#"', "200 result=0"))
    await call.play(Digits("48151623", secret=True), Digits("0912", secret=False))
    played, said = sent.sent
    assert "48151623" not in played and played.startswith(f"STREAM FILE {tmp_path}/spool/secret-")
    assert said.startswith("SAY DIGITS 0912")
    assert not list((tmp_path / "spool").iterdir()), "the temporary file was not deleted"
    assert loggable(said).startswith("SAY DIGITS ****")


async def test_hangup_marks_a_normal_end_first(tmp_path: Path) -> None:
    call, sent = make_call(tmp_path, ("SET VARIABLE HAMTA_RESULT done", "200 result=1"),
                           ("HANGUP", "200 result=1"))
    await call.hangup()
    assert sent.sent == ["SET VARIABLE HAMTA_RESULT done", "HANGUP"]
    await call.finish()  # nothing more once hung up
    assert len(sent.sent) == 2


def test_masked_stream_hides_every_digit() -> None:
    out = io.StringIO()
    MaskedStream(out).write("    RESULT_LINE: 200 result=49\n")
    assert out.getvalue() == "    RESULT_LINE: *** result=**\n"


def test_dial_describes_what_the_caller_hears() -> None:
    assert describe('STREAM FILE hamta/welcome "0123456789*#"', "/x/spool") == "welcome"
    assert describe('STREAM FILE /x/spool/secret-ab "12"', "/x/spool") == "(secret)"
    assert describe('SAY DIGITS 0912 ""', "") == "(digits) 0 9 1 2"
    assert describe("WAIT FOR DIGIT 5000", "") is None


async def test_handshake_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ivr.call.fastagi.HANDSHAKE_TIMEOUT", 0.2)
    stalled = asyncio.StreamReader()
    stalled.feed_data(b"agi_network_script: hamta\n")  # then nothing: no blank line
    assert await read_environment(stalled) is None
    gone = asyncio.StreamReader()
    gone.feed_data(b"agi_network_script: hamta\n")
    gone.feed_eof()  # the peer disconnected mid-handshake (panoramisk would spin here)
    assert await asyncio.wait_for(read_environment(gone), 1) is None
    good = asyncio.StreamReader()
    good.feed_data(b"agi_network_script: hamta\nagi_uniqueid: 1.2\n\n")
    assert await read_environment(good) == {"agi_network_script": "hamta", "agi_uniqueid": "1.2"}


async def test_server_runs_the_flow_and_marks_the_normal_end(tmp_path: Path) -> None:
    seen: list[str | None] = []

    async def flow(call: AgiCall) -> str:
        seen.append(call.caller_id)
        await call.stream(Sound("hamta/welcome", ""), "")
        return "done"

    server = FastAgiServer(ServerSettings(port=0, sounds=tmp_path, spool=tmp_path), flow)
    await server.start()
    placed = await FakeAsterisk("127.0.0.1", server.port).call(caller_id="09121111111")
    commands = placed.commands
    assert placed.closed and placed.error is None  # the server closed the connection
    assert placed.result == "done" and not placed.server_hung_up
    await server.stop()
    assert seen == ["09121111111"] and server.outcomes == ["done"]
    assert commands == ['STREAM FILE hamta/welcome ""', "SET VARIABLE HAMTA_RESULT done"]


def test_missing_sound_lines_are_found(tmp_path: Path) -> None:
    """The lines Asterisk 22 logs for a prompt it cannot play (seen on the real thing)."""
    log = tmp_path / "asterisk" / "log"
    log.mkdir(parents=True)
    (log / "messages").write_text(
        "[2026-11-22 00:44:54.980] NOTICE[1] loader.c: 49 modules will be loaded.\n"
        "[2026-11-22 00:44:54.980] WARNING[25675] file.c: File hamta/nonexistent_xyz does not "
        "exist in any format\n"
        "[2026-11-22 00:44:54.981] WARNING[25675] file.c: Unable to open hamta/nonexistent_xyz "
        "(format (slin)): No such file or directory\n")
    assert len(missing_sounds(Env(tmp_path, {}, 0, 0))) == 2
