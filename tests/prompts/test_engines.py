"""Which offline voice a build uses: MBROLA ir1 when installed, else espeak-ng's formant voice."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli import main
from ivr.prompts import engines
from ivr.prompts.audio import inspect_wav
from ivr.prompts.build import build, catalogue_items, digit_items, load_manifest, number_items
from ivr.prompts.engines import (
    EngineError,
    EspeakEngine,
    MbrolaEngine,
    default_engine,
    make_engine,
    mbrola_missing,
)
from ivr.prompts.layout import sound_path

from .conftest import SMALL, in_ci, need


def need_mbrola() -> None:
    """Skip without MBROLA on a developer machine; on CI (CI=true) setup.sh must have installed
    it (Debian packages mbrola, contrib, and mbrola-ir1, non-free)."""
    need("espeak-ng", "sox")
    why = mbrola_missing()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


@pytest.fixture
def mbrola_present(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    voice = tmp_path / "mbrola" / "ir1" / "ir1"
    voice.parent.mkdir(parents=True)
    voice.write_bytes(b"diphones")
    monkeypatch.setattr(engines, "MBROLA_VOICE_FILES", (str(tmp_path / "mbrola/{v}/{v}"),))
    monkeypatch.setattr(engines.shutil, "which", lambda name: f"/usr/bin/{name}")


@pytest.fixture
def mbrola_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(engines, "MBROLA_VOICE_FILES", (str(tmp_path / "none/{v}/{v}"),))


def test_mbrola_present_is_the_default(mbrola_present):
    assert mbrola_missing() is None
    assert default_engine() == "mbrola"
    engine = make_engine()
    assert isinstance(engine, MbrolaEngine) and engine.voice == "mb-ir1"
    assert engine.pronunciation == "espeak"  # the same phoneme hints as the formant voice


def test_mbrola_absent_falls_back_to_the_formant_voice(mbrola_absent):
    assert "mbrola-ir1" in (mbrola_missing() or "")
    assert default_engine() == "espeak"
    engine = make_engine()
    assert type(engine) is EspeakEngine and engine.voice == "fa"


def test_no_mbrola_program_names_its_package(mbrola_present, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engines.shutil, "which",
                        lambda name: None if name == "mbrola" else f"/usr/bin/{name}")
    assert default_engine() == "espeak"
    with pytest.raises(EngineError, match=r"Debian package mbrola, in contrib.*--engine espeak"):
        MbrolaEngine().prepare()


def test_asking_for_mbrola_without_it_is_an_error_not_a_fallback(mbrola_absent):
    with pytest.raises(EngineError, match="mbrola-ir1"):
        make_engine("mbrola").prepare()


def test_real_mbrola_build(out: Path):
    need_mbrola()
    items = [*catalogue_items(SMALL), *digit_items()[8:],
             *[i for i in number_items() if i.name == "hamta/num/and"]]
    report = build(items, out, MbrolaEngine(), jobs=2)
    assert len(report.built) == len(items) == 6
    manifest = load_manifest(out)
    assert "voice=mb-ir1 mbrola=ir1:" in manifest["digits/9"]["source"]
    assert manifest["digits/9"]["text"] == "نُه"
    for item in items:
        info = inspect_wav(sound_path(out, item.name))
        assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
        assert info.rms_dbfs > -30
    welcome = inspect_wav(sound_path(out, "hamta/welcome")).seconds
    assert 1.5 < welcome < 6.0
    assert 0.2 < inspect_wav(sound_path(out, "digits/9")).seconds < 1.0


def test_the_default_build_uses_mbrola_when_installed(out: Path, capsys):
    need_mbrola()
    assert main(["prompts", "build", "--out", str(out), "--no-registry", "-q"]) == 0
    sources = {entry["source"] for entry in load_manifest(out).values()}
    assert len(sources) == 1 and "voice=mb-ir1" in sources.pop()
