"""The native formats beside each .wav (issue 18): .ulaw, .alaw (G.711) and .sln16 (16 kHz from
the voice itself), built incrementally with real espeak-ng and sox, and checked by `prompts
check` and `doctor`: missing, stale, or only the .wav (played transcoded: a warning)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.doctor import WARN, check_prompts
from ivr.prompts.audio import NATIVE_FORMATS, inspect_wav, raw_seconds
from ivr.prompts.build import build, catalogue_items, digit_items, load_manifest
from ivr.prompts.check import check
from ivr.prompts.engines import EspeakEngine
from ivr.prompts.layout import sound_path

from .conftest import SMALL, need, sox_tone, write_wav

EXTS = [fmt.ext for fmt in NATIVE_FORMATS]


def small_plan():
    return [*catalogue_items(SMALL), *digit_items()[:2]]


def report_of(out: Path):
    """`check` of the sounds small_plan builds (the rest of the catalogue's plan is not built)."""
    report = check(out, SMALL)
    names = tuple(f"{item.name}: " for item in small_plan())
    report.problems = [p for p in report.problems if p.startswith(names)]
    return report


def built(out: Path, **kwargs):
    need("espeak-ng", "sox")
    return build(small_plan(), out, EspeakEngine(), jobs=2, **kwargs)


def high_band_rms(path: Path, rate: int, raw: bool) -> float:
    """RMS amplitude (0..1) above 4.5 kHz: what 8 kHz audio cannot hold."""
    source = ["-t", "raw", "-r", str(rate), "-e", "signed", "-b", "16", "-c", "1"] if raw else []
    done = subprocess.run(["sox", *source, str(path), "-n", "rate", "16000", "sinc", "4500",
                           "stat"], capture_output=True, text=True, check=True)
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("RMS     amplitude"))
    return float(line.split(":")[1])


def test_every_sound_is_built_in_every_native_format(out: Path):
    assert EXTS == ["ulaw", "alaw", "sln16"]
    report = built(out)
    assert len(report.built) == 5
    manifest = load_manifest(out)
    for item in small_plan():
        wav = inspect_wav(sound_path(out, item.name))
        assert set(manifest[item.name]["formats"]) == set(EXTS)
        for fmt in NATIVE_FORMATS:
            path = sound_path(out, item.name, fmt.ext)
            assert abs(raw_seconds(path, fmt) - wav.seconds) < 0.01, (path, wav.seconds)
    # G.711 is one byte a sample at 8 kHz: as many bytes as the .wav has frames
    welcome = sound_path(out, "hamta/welcome")
    frames = inspect_wav(welcome).frames
    assert sound_path(out, "hamta/welcome", "ulaw").stat().st_size == frames
    assert sound_path(out, "hamta/welcome", "alaw").stat().st_size == frames
    assert sound_path(out, "hamta/welcome", "ulaw").read_bytes() != \
        sound_path(out, "hamta/welcome", "alaw").read_bytes()
    # the wideband copy is the voice's own 22 kHz audio, not the 8 kHz .wav upsampled: it holds
    # speech above 4.5 kHz, the .wav (upsampled the same way) next to none
    wide = high_band_rms(sound_path(out, "hamta/welcome", "sln16"), 16000, raw=True)
    narrow = high_band_rms(welcome, 8000, raw=False)
    assert wide > 0.003 and wide > 10 * narrow, (wide, narrow)
    assert report_of(out).ok and not report_of(out).warnings


def test_the_native_formats_are_incremental(out: Path):
    built(out)
    before = {p: p.stat().st_mtime_ns for p in (out / "fa").rglob("*.*") if p.suffix != ".json"}
    assert len(before) == 5 * 4
    again = built(out)
    assert again.built == [] and len(again.unchanged) == 5
    assert before == {p: p.stat().st_mtime_ns for p in before}
    sound_path(out, "hamta/welcome", "ulaw").unlink()
    sound_path(out, "digits/1", "sln16").write_bytes(b"\0" * 100)
    again = built(out)
    assert sorted(again.built) == ["digits/1", "hamta/welcome"]
    assert sound_path(out, "hamta/welcome", "ulaw").is_file()


def test_a_manifest_from_before_the_native_formats_rebuilds_and_prune_removes_them(out: Path):
    built(out)
    manifest_file = out / "fa" / "hamta" / "manifest.json"
    data = json.loads(manifest_file.read_text(encoding="utf-8"))
    for entry in data["sounds"].values():
        del entry["formats"]  # as the builds before this one wrote it
    manifest_file.write_text(json.dumps(data), encoding="utf-8")
    assert len(built(out).built) == 5
    need("espeak-ng", "sox")
    report = build([i for i in small_plan() if i.name != "hamta/code_is"], out, EspeakEngine())
    assert report.removed == ["hamta/code_is"]
    assert not list((out / "fa" / "hamta").glob("code_is.*"))


def test_recordings_get_every_format_too(out: Path, tmp_path: Path):
    studio = tmp_path / "studio"
    sox_tone(studio / "welcome.flac", 1.5)  # 44.1 kHz stereo
    built(out, recorded=studio)
    wav = inspect_wav(sound_path(out, "hamta/welcome"))
    assert 1.3 < wav.seconds < 1.8
    for fmt in NATIVE_FORMATS:
        assert abs(raw_seconds(sound_path(out, "hamta/welcome", fmt.ext), fmt) - wav.seconds) \
            < 0.01
    # a sweep to 900 Hz has nothing above 4.5 kHz, but the .sln16 is its 16 kHz resampling
    assert report_of(out).ok


def test_check_names_each_native_problem(out: Path):
    built(out)
    welcome = sound_path(out, "hamta/welcome")
    ulaw = sound_path(out, "hamta/welcome", "ulaw")
    ulaw.unlink()
    [problem] = report_of(out).problems
    assert problem == (f"hamta/welcome: {ulaw} is missing (the other formats are there); "
                       "run `hamta-ivr prompts build`")
    built(out)

    alaw = sound_path(out, "hamta/goodbye", "alaw")
    data = alaw.read_bytes()
    alaw.write_bytes(bytes([data[0] ^ 0x7F]) + data[1:])  # same length, other audio
    [problem] = report_of(out).problems
    assert problem.startswith(f"hamta/goodbye: {alaw} is stale (not what the last build wrote)")
    assert problem.endswith("run `hamta-ivr prompts build`")
    built(out)

    sln16 = sound_path(out, "digits/0", "sln16")
    sln16.write_bytes(sln16.read_bytes()[: 16000])  # half a second
    [problem] = report_of(out).problems
    assert f"digits/0: {sln16} lasts 0.50 s but its .wav" in problem
    built(out)

    # a new .wav dropped over the built one: its old .ulaw/.alaw/.sln16 would still be played
    # to G.711 and G.722 callers
    write_wav(welcome, inspect_wav(welcome).seconds)  # as long, other audio
    stale = report_of(out).problems
    assert len(stale) == 3 and all("the .wav was changed after the build" in p for p in stale)


def test_only_a_wav_is_played_transcoded_a_warning(out: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch):
    built(out)
    for ext in EXTS:
        sound_path(out, "hamta/welcome", ext).unlink()
    report = report_of(out)
    assert report.ok and report.transcoded == 1
    assert report.warnings == [
        f"hamta/welcome: {sound_path(out, 'hamta/welcome')} is played transcoded (only the .wav, "
        "no .ulaw/.alaw/.sln16: every call encodes it, G.722 calls hear 8 kHz); run `hamta-ivr "
        "prompts build` (--recorded DIR for recordings)"]

    monkeypatch.setattr("ivr.prompts.catalogue.entries", lambda: SMALL)
    monkeypatch.setattr("ivr.flows.keys.USED_KEYS", frozenset(SMALL))
    monkeypatch.setattr("ivr.prompts.build.number_items", lambda: [])
    monkeypatch.setattr("ivr.prompts.build.digit_items", lambda: digit_items()[:2])
    assert main(["prompts", "check", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "warning: hamta/welcome: " in said and "1 played transcoded (only .wav)" in said

    result = check_prompts(out)
    assert result.status == WARN and "1 sound(s) have only their .wav" in result.problem
    assert "hamta-ivr prompts build" in result.fix

    built(out)
    assert check_prompts(out).status == "ok"
    assert main(["prompts", "check", "--out", str(out)]) == 0
    assert "every sound in .wav, .ulaw, .alaw and .sln16" in capsys.readouterr().out
