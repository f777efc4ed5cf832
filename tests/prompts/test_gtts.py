"""The gTTS engine without a network: gTTS's own HTTP layer answers from the test.

gTTS 2.5.4 does not list Persian: with its language check on it refuses `fa` locally. The engine
sends the request with the check off, and turns every failure into one error naming the fix.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import requests
from gtts import gTTS

from ivr.prompts.audio import inspect_wav
from ivr.prompts.build import build, catalogue_items
from ivr.prompts.engines import EngineError, GttsEngine, make_engine
from ivr.prompts.layout import sound_path

from .conftest import SMALL, need_mp3


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a gTTS test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


class FakeGoogle:
    """Stands in for requests.Session.send: records what gTTS sent, answers with `audio`."""

    def __init__(self, audio: bytes | None, status: int = 200, fail: bool = False) -> None:
        self.audio, self.status, self.fail = audio, status, fail
        self.sent: list[list] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeGoogle:
        monkeypatch.setattr(requests.Session, "send",
                            lambda session, request, **kwargs: self.answer(request))
        return self

    def answer(self, request):
        if self.fail:
            raise requests.ConnectionError("Name or service not known")
        form = urllib.parse.parse_qs(request.body)["f.req"][0]
        rpc = json.loads(form)[0][0]
        self.sent.append(json.loads(rpc[1]))  # [text, lang, speed, "null"]
        response = requests.Response()
        response.status_code = self.status
        response.request = request
        if self.audio is None:
            body = ')]}\'\n\n[["wrb.fr","jQ1olc",null,null,null,[3],"generic"]]'
        else:
            b64 = base64.b64encode(self.audio).decode()
            body = f')]}}\'\n\n[["wrb.fr","jQ1olc","[\\"{b64}\\"]",null,null,null,"generic"]]'
        response._content = body.encode()
        response._content_consumed = True
        return response


def test_gtts_itself_refuses_persian_with_its_language_check():
    with pytest.raises(ValueError, match="Language not supported: fa"):
        gTTS("سلام", lang="fa")


def test_the_request_is_sent_as_persian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    google = FakeGoogle(b"ID3-fake-mp3-bytes").install(monkeypatch)
    dest = tmp_path / "welcome.mp3"
    GttsEngine(tts_factory=gTTS).synthesize("به سامانه‌ی همتا خوش آمدید.", dest)
    assert dest.read_bytes() == b"ID3-fake-mp3-bytes"
    assert google.sent == [["به سامانه‌ی همتا خوش آمدید.", "fa", None, "null"]]  # None: normal speed


def test_no_audio_for_persian_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    FakeGoogle(None).install(monkeypatch)
    with pytest.raises(EngineError, match=r"no audio for language 'fa'.*--engine espeak"):
        GttsEngine(tts_factory=gTTS).synthesize("سلام", tmp_path / "x.mp3")


def test_no_network_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    FakeGoogle(None, fail=True).install(monkeypatch)
    with pytest.raises(EngineError, match=r"could not be reached.*internet.*--engine espeak"):
        GttsEngine(tts_factory=gTTS).synthesize("سلام", tmp_path / "x.mp3")


def test_identity_names_gtts_and_the_language():
    engine = make_engine("gtts")
    assert engine.identity.startswith("gTTS 2.") and "lang=fa" in engine.identity


def test_build_with_gtts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    need_mp3()
    speech = tmp_path / "speech.mp3"  # what Google would send: 24 kHz mono mp3
    subprocess.run(["sox", "-n", "-r", "24000", "-c", "1", str(speech), "synth", "1.2", "sine",
                    "300-800", "vol", "0.5"], check=True, capture_output=True)
    google = FakeGoogle(speech.read_bytes()).install(monkeypatch)
    out = tmp_path / "sounds"
    items = catalogue_items(SMALL)
    report = build(items, out, GttsEngine())
    assert len(report.built) == 3 and len(google.sent) == 3
    info = inspect_wav(sound_path(out, "hamta/welcome"))
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert 1.0 < info.seconds < 1.6
    assert build(items, out, GttsEngine()).built == []  # incremental: no second request
    assert len(google.sent) == 3
