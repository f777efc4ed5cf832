"""`prompts check` on sound folders written in the test (no tools needed): each problem is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.prompts.build import plan, save_manifest
from ivr.prompts.check import check
from ivr.prompts.layout import sound_path

from .conftest import SMALL, write_wav

SECONDS = {"prompt": 1.5, "number": 0.5, "digit": 0.4, "device": 1.2}


def good_sounds(out: Path, entries=SMALL) -> None:
    """A valid tone for every sound the check expects, and a manifest of their texts."""
    manifest = {}
    for item in plan(entries):
        write_wav(sound_path(out, item.name), SECONDS[item.kind])
        manifest[item.name] = {"kind": item.kind, "text": item.text, "hash": "x", "sha256": "x"}
    save_manifest(out, manifest)


def problems(out: Path, entries=SMALL, used=frozenset(SMALL)) -> list[str]:
    return check(out, entries, used).problems


def test_a_complete_set_passes(out: Path):
    good_sounds(out)
    report = check(out, SMALL, frozenset(SMALL))
    assert report.ok and report.files == 3 + 41 + 10


@pytest.mark.parametrize(("name", "damage", "expected"), [
    ("hamta/welcome", None, "is missing; run `hamta-ivr prompts build`"),
    ("hamta/welcome", dict(amplitude=0.0), "is silent (RMS digital silence"),
    ("hamta/welcome", dict(amplitude=0.002), "is silent (RMS -57 dBFS"),
    ("hamta/goodbye", dict(rate=16000), "sample rate 16000 Hz, not 8000"),
    ("hamta/goodbye", dict(channels=2), "2 channels, not mono"),
    ("hamta/goodbye", dict(width=1), "8-bit samples, not 16-bit"),
    ("hamta/code_is", dict(seconds=0.05), "lasts 0.05 s; a prompt should last 0.2-40.0 s"),
    ("hamta/code_is", dict(seconds=41), "lasts 41.00 s"),
    ("digits/7", dict(seconds=3), "lasts 3.00 s; a digit should last 0.1-1.5 s"),
    ("hamta/num/and", dict(seconds=0.0), "holds no audio"),
])
def test_each_problem_is_named(out: Path, name, damage, expected):
    good_sounds(out)
    path = sound_path(out, name)
    if damage is None:
        path.unlink()
    else:
        write_wav(path, **{"seconds": 1.0, **damage})
    found = problems(out)
    assert len(found) == 1 and found[0].startswith(f"{name}: {path}"), found
    assert expected in found[0]


def test_not_a_wav(out: Path):
    good_sounds(out)
    sound_path(out, "hamta/welcome").write_bytes(b"ID3 an mp3 renamed to .wav")
    assert "not a PCM WAV file" in problems(out)[0]


def test_audio_built_from_an_older_text(out: Path):
    good_sounds(out)
    newer = {**SMALL, "welcome": {"text": "خوش آمدید.", "note": "changed"}}
    found = problems(out, newer)
    assert found == [f"hamta/welcome: {sound_path(out, 'hamta/welcome')} was built from an "
                     "older text; run `hamta-ivr prompts build`"]


def test_device_names_built_earlier_are_checked(out: Path):
    good_sounds(out)
    write_wav(sound_path(out, "hamta/device/honor-x7"), amplitude=0.0)
    assert "hamta/device/honor-x7" in problems(out)[0]


def test_a_key_the_flows_play_must_be_in_the_catalogue(out: Path):
    good_sounds(out)
    found = problems(out, used={"welcome", "goodbye", "code_is", "new_prompt"})
    assert found == ["prompt key 'new_prompt' is played by the call flows but missing from "
                     "prompts/catalogue.toml; add it with its Persian text"]
    notes = check(out, SMALL, {"welcome"}).notes
    assert notes == ["catalogue keys no flow plays: code_is, goodbye"]


def test_without_the_flows_key_list(out: Path):
    good_sounds(out)
    report = check(out, SMALL)
    assert report.ok and report.keys == 0
    assert "no list of the prompt keys the flows play" in report.notes[0]


def test_cli_exit_codes(out: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("ivr.prompts.catalogue.entries", lambda: SMALL)
    monkeypatch.setattr("ivr.flows.keys.USED_KEYS", frozenset(SMALL))  # what the CLI passes
    good_sounds(out)
    assert main(["prompts", "check", "--out", str(out)]) == 0
    assert "prompts check: OK — 54 sounds" in capsys.readouterr().out
    write_wav(sound_path(out, "digits/3"), rate=22050)
    assert main(["prompts", "check", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "digits/3: " in captured.out and "sample rate 22050 Hz" in captured.out
    assert "1 problem(s)" in captured.err
    monkeypatch.setenv("HAMTA_SOUNDS_DIR", str(out))  # the default --out
    assert main(["prompts", "check"]) == 1


def test_manifest_is_readable_json(out: Path):
    good_sounds(out)
    data = json.loads((out / "fa" / "hamta" / "manifest.json").read_text(encoding="utf-8"))
    assert data["sounds"]["hamta/welcome"]["text"] == SMALL["welcome"]["text"]
