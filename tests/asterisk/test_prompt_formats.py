"""Issue 18 on the real Asterisk: a prompt reaches a G.722 and a G.711 softphone without being
transcoded from 8 kHz signed linear.

SIPp calls as staff1 (context hamta-staff, over PJSIP; asterisk-conf/sipp/listen.xml) with an
SDP offering only G.722 or only PCMU; this module's FastAGI server (the session's `hamta-ivr
serve` steps aside) plays one prompt, and while it plays `core show channel` tells which format
Asterisk reads the file in and how it translates it for the line. With the files `prompts build`
writes, a G.711 call plays the .ulaw (no translation) and a G.722 call the .sln16 (slin@16000 ->
g722, no resampling); the same prompt with only its .wav (how every prompt was built before)
goes through slin@8000 on both: the assertion that tells them apart fails on the old build.
Seen on Asterisk 22:

    g722 native:   WriteFormat slin16  WriteTranscode Yes (slin@16000)->(g722@16000)
    g722 wav only: WriteFormat slin    WriteTranscode Yes (slin@8000)->(g722@16000)
    ulaw native:   WriteFormat ulaw    WriteTranscode No
    ulaw wav only: WriteFormat slin    WriteTranscode Yes (slin@8000)->(ulaw@8000)
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.asterisk import config, dev
from ivr.call.api import Call, Sound
from ivr.call.fastagi import FastAgiServer, ServerSettings
from tests.asterisk.conftest import Env, free_port, softphone_media_ports

pytestmark = pytest.mark.asterisk

PROMPT = "hamta/main_menu_again"  # about 6 s: time to look at the channel while it plays
WAV_ONLY = "hamta/formats_test_wav_only"  # the same audio with only its .wav
NATIVE_CALLER, WAV_CALLER = "09170009101", "09170009102"
SCENARIO = Path(__file__).resolve().parents[2] / "asterisk-conf" / "sipp" / "listen.xml"
OFFERS = {"g722": ("9", "G722"), "ulaw": ("0", "PCMU")}  # the one codec the softphone offers



@pytest.fixture(scope="module")
def wav_only(quiet_port: Env) -> Iterator[Path]:
    """PROMPT's .wav under another name, without .ulaw/.alaw/.sln16 (the old build)."""
    sounds = quiet_port.data / "sounds" / "fa"
    src = sounds / f"{PROMPT}.wav"
    for ext in ("ulaw", "alaw", "sln16"):  # what `prompts build` made beside it
        assert (sounds / f"{PROMPT}.{ext}").is_file(), f"prompts build wrote no {PROMPT}.{ext}"
    dest = sounds / f"{WAV_ONLY}.wav"
    shutil.copyfile(src, dest)
    try:
        yield dest
    finally:
        dest.unlink(missing_ok=True)


def softphone(env: Env, codec: str, caller: str) -> subprocess.CompletedProcess[str]:
    """staff1 calls the IVR as `caller`, offering only `codec`, and listens until the BYE."""
    payload, encoding = OFFERS[codec]
    return subprocess.run(
        ["sipp", "-sf", str(SCENARIO), "-s", f"7777*{caller}", "-key", "pt", payload,
         "-key", "encoding", encoding,
         "-key", "account", "staff1", "-au", "staff1", "-ap", env.sip_password("staff1"),
         "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
         "-mp", str(softphone_media_ports()), "-m", "1", "-nostdin", "-timeout", "60",
         "-timeout_error", f"127.0.0.1:{env.sip_port}"],
        capture_output=True, text=True, timeout=90, cwd=env.data,
    )


def channel_info(runtime: dev.Runtime, cfg: config.AsteriskConfig, name: str) -> dict[str, str]:
    """`core show channel NAME` as {field: value} (NativeFormats, WriteFormat, …Transcode…)."""
    said = dev._rx(runtime, cfg, f"core show channel {name}")
    assert said is not None, f"core show channel {name} failed"
    fields = {}
    for line in said.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    fields["_text"] = said
    return fields


def write_path(info: dict[str, str]) -> str:
    """How Asterisk translates what it plays for the line: '' when it sends the file's frames."""
    for key in ("WriteTranslationPath", "WriteTranscode"):
        if key in info:
            value = info[key]  # Asterisk 22: "WriteTranscode: Yes (slin@8000)->(ulaw@8000)"
            return "" if value in ("", "No", "(None)") else value.removeprefix("Yes").strip()
    raise AssertionError(f"no write translation in:\n{info['_text']}")


async def test_prompts_reach_g722_and_g711_without_slin8(quiet_port: Env, wav_only: Path,
                                                         tmp_path: Path) -> None:
    env = quiet_port
    runtime = dev.Runtime.detect()
    cfg = config.load(classic_agi=runtime.classic_agi, create_secrets=False)
    playing: asyncio.Queue[str] = asyncio.Queue()

    async def play(call: Call) -> str:
        sound = PROMPT if call.caller_id == NATIVE_CALLER else WAV_ONLY
        await playing.put(getattr(call, "asterisk_channel", ""))
        await call.stream(Sound(sound, "(formats test)"), "")
        return "played"

    server = FastAgiServer(ServerSettings(port=env.agi_port, sounds=env.data / "sounds",
                                          spool=tmp_path), play)
    await server.start()
    seen: dict[tuple[str, str], dict[str, str]] = {}
    try:
        for codec in ("g722", "ulaw"):
            for caller in (NATIVE_CALLER, WAV_CALLER):
                call = asyncio.create_task(asyncio.to_thread(softphone, env, codec, caller))
                channel = await asyncio.wait_for(playing.get(), 30)
                assert channel.startswith("PJSIP/staff1-"), channel
                await asyncio.sleep(1.0)  # STREAM FILE has opened the file and is sending
                seen[codec, caller] = await asyncio.to_thread(channel_info, runtime, cfg,
                                                              channel)
                done = await call
                assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    finally:
        await server.stop()

    report = "\n".join(f"{codec} {'native' if caller == NATIVE_CALLER else 'wav only'}: "
                       f"native={info.get('NativeFormats')} write={info.get('WriteFormat')} "
                       f"path={write_path(info)!r}" for (codec, caller), info in seen.items())
    print(report)
    g722, ulaw = seen["g722", NATIVE_CALLER], seen["ulaw", NATIVE_CALLER]
    assert "g722" in g722["NativeFormats"] and "ulaw" in ulaw["NativeFormats"], report
    # G.711: Asterisk sends the .ulaw file's frames as they are
    assert write_path(ulaw) == "" and ulaw["WriteFormat"] == "ulaw", report
    # G.722: the .sln16 file, only encoded (slin@16000 -> g722), never through 8 kHz
    assert re.fullmatch(r"\(slin@16000\)->\(g722@16000\)", write_path(g722)), report
    for info in (g722, ulaw):
        assert "slin@8000" not in write_path(info), report
    # the old build (only the .wav): both lines go through slin@8000 — what the above rules out
    for codec in ("g722", "ulaw"):
        assert "slin@8000" in write_path(seen[codec, WAV_CALLER]), report
