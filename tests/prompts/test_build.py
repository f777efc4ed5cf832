"""The incremental build with real espeak-ng and sox, recordings, and missing tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ivr.prompts import audio
from ivr.prompts.audio import ToolMissing, inspect_wav
from ivr.prompts.build import (
    build,
    catalogue_items,
    device_items,
    digit_items,
    load_manifest,
    manifest_path,
    number_items,
)
from ivr.prompts.engines import EspeakEngine
from ivr.prompts.layout import PromptsError, sound_path

from .conftest import SMALL, sox_tone

pytestmark = pytest.mark.usefixtures("tools")


def small_plan(entries=SMALL, devices=()):
    numbers = [i for i in number_items() if i.name in {"hamta/num/20", "hamta/num/and"}]
    return [*catalogue_items(entries), *numbers, *digit_items()[:2], *device_items(devices)]


def run(items, out, **kwargs):
    lines: list[str] = []
    report = build(items, out, EspeakEngine(), jobs=2,
                   progress=lambda d, t, n, w: lines.append(f"[{d}/{t}] {n} … {w}"), **kwargs)
    return report, lines


def test_real_espeak_audio_is_telephone_wav(out: Path):
    report, lines = run(small_plan(), out)
    assert len(report.built) == 7 and not report.unchanged
    assert len(lines) == 7 and lines[-1].startswith("[7/7] ")
    welcome = inspect_wav(sound_path(out, "hamta/welcome"))
    assert (welcome.rate, welcome.channels, welcome.sample_width) == (8000, 1, 2)
    assert 1.0 < welcome.seconds < 8.0
    assert welcome.rms_dbfs > -30
    digit = inspect_wav(out / "fa" / "digits" / "0.wav")
    assert 0.1 < digit.seconds < 1.5 < welcome.seconds
    assert (out / "fa" / "hamta" / "num" / "and.wav").is_file()


def test_second_build_rebuilds_nothing_and_a_changed_text_only_itself(out: Path):
    run(small_plan(), out)
    before = {p: p.stat().st_mtime_ns for p in (out / "fa").rglob("*.wav")}
    report, lines = run(small_plan(), out)
    assert report.built == [] and len(report.unchanged) == 7
    assert all(line.endswith("unchanged") for line in lines)
    assert before == {p: p.stat().st_mtime_ns for p in (out / "fa").rglob("*.wav")}

    changed = {**SMALL, "goodbye": {"text": "خدانگهدار.", "note": "shorter"}}
    report, _ = run(small_plan(changed), out)
    assert report.built == ["hamta/goodbye"]
    assert load_manifest(out)["hamta/goodbye"]["text"] == "خدانگهدار."


def test_a_deleted_or_altered_file_is_rebuilt(out: Path):
    run(small_plan(), out)
    sound_path(out, "hamta/welcome").unlink()
    sound_path(out, "digits/1").write_bytes(b"RIFF garbage")
    report, _ = run(small_plan(), out)
    assert sorted(report.built) == ["digits/1", "hamta/welcome"]


def test_another_voice_rebuilds_generated_sounds(out: Path):
    run(small_plan(), out)
    report = build(small_plan(), out, EspeakEngine(speed=170))
    assert len(report.built) == 7


def test_a_removed_key_is_pruned_but_device_names_stay(out: Path):
    run(small_plan(devices=[("Samsung", "Galaxy A54")]), out)
    device = sound_path(out, "hamta/device/samsung-galaxy-a54")
    assert device.is_file()
    fewer = {k: v for k, v in SMALL.items() if k != "code_is"}
    report, _ = run(small_plan(fewer), out)
    assert report.removed == ["hamta/code_is"]
    assert not sound_path(out, "hamta/code_is").exists()
    assert device.is_file() and "hamta/device/samsung-galaxy-a54" in load_manifest(out)


def test_recordings_replace_generated_audio(out: Path, tmp_path: Path):
    studio = tmp_path / "studio"
    sox_tone(studio / "welcome.flac", 1.5)  # 44.1 kHz stereo, as a studio delivers
    sox_tone(studio / "num" / "20.wav", 0.6, rate=16000, channels=1)
    sox_tone(studio / "welcom.ogg", 1.0)  # a typo: matches nothing
    (studio / "notes.txt").write_text("for the voice artist")
    report, lines = run(small_plan(), out, recorded=studio)
    assert sorted(report.recorded) == ["hamta/num/20", "hamta/welcome"]
    assert "[" in lines[0] and any("built from welcome.flac" in line for line in lines)
    welcome = inspect_wav(sound_path(out, "hamta/welcome"))
    assert (welcome.rate, welcome.channels) == (8000, 1)
    assert 1.3 < welcome.seconds < 1.8  # the recording, not espeak's speech
    assert load_manifest(out)["hamta/welcome"]["source"] == "recording welcome.flac"
    assert any("welcom.ogg" in w and "no sound is named" in w for w in report.warnings)
    assert any("notes.txt" in w for w in report.warnings)

    again, _ = run(small_plan(), out, recorded=studio)
    assert again.built == []
    sox_tone(studio / "welcome.flac", 2.5)  # a new take
    again, _ = run(small_plan(), out, recorded=studio)
    assert again.built == ["hamta/welcome"]
    again, _ = run(small_plan(), out)  # recordings withdrawn: back to generated audio
    assert sorted(again.built) == ["hamta/num/20", "hamta/welcome"]


def test_recordings_cover_everything_without_the_engine(out: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    studio = tmp_path / "studio"
    items = catalogue_items({"welcome": SMALL["welcome"]})
    sox = audio.require_tool("sox")
    sox_tone(studio / ("welcome.mp3" if "mp3" in audio.sox_formats(sox) else "welcome.wav"))

    def no_espeak(self):
        raise AssertionError("the engine is not needed when every sound is recorded")

    monkeypatch.setattr(EspeakEngine, "prepare", no_espeak)
    report = build(items, out, EspeakEngine(), recorded=studio)
    assert report.built == ["hamta/welcome"]


def test_recording_problems_are_named(out: Path, tmp_path: Path):
    studio = tmp_path / "studio"
    sox_tone(studio / "welcome.wav", silent=True)
    with pytest.raises(PromptsError, match=r"hamta/welcome: the recording .*welcome.wav .*silent"):
        run(small_plan(), out, recorded=studio)
    sox_tone(studio / "welcome.flac")
    with pytest.raises(PromptsError, match=r"welcome\.flac, welcome\.wav are all recordings"):
        run(small_plan(), out, recorded=studio)
    with pytest.raises(PromptsError, match="no such folder"):
        run(small_plan(), out, recorded=tmp_path / "nowhere")


def test_a_failure_keeps_what_was_built(out: Path, monkeypatch: pytest.MonkeyPatch):
    real = EspeakEngine.synthesize

    def flaky(self, text, dest):
        if "خدانگهدار" in text:
            raise PromptsError("espeak-ng failed")
        real(self, text, dest)

    monkeypatch.setattr(EspeakEngine, "synthesize", flaky)
    with pytest.raises(PromptsError, match="espeak-ng failed"):
        build(small_plan(), out, EspeakEngine(), jobs=1)
    manifest = json.loads(manifest_path(out).read_text(encoding="utf-8"))
    assert "hamta/goodbye" not in manifest["sounds"]
    assert not list((out / "fa").glob(".build-*")), "temporary files are cleaned up"


def test_missing_tools_name_the_debian_package(out: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch):
    espeak = audio.shutil.which("espeak-ng")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolMissing, match=r"`espeak-ng` is not installed.*apt-get install "
                                          r"espeak-ng"):
        build(small_plan(), out, EspeakEngine())
    os.symlink(espeak, empty / "espeak-ng")
    with pytest.raises(ToolMissing, match=r"`sox` is not installed.*apt-get install sox"):
        build(small_plan(), out, EspeakEngine())


def test_an_unwritable_sounds_folder_is_named(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(PromptsError, match=r"cannot write the sounds folder .*--out"):
        build(small_plan(), blocker, EspeakEngine())


def test_missing_mp3_support_names_the_plugin(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(audio, "sox_formats", lambda sox: frozenset({"wav", "flac"}))
    with pytest.raises(ToolMissing, match="libsox-fmt-mp3"):
        audio.require_sox_format("mp3")
