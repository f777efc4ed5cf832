"""Shared by the prompt tests: isolated settings, the tools a real build needs, WAV writers."""

from __future__ import annotations

import functools
import math
import os
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import pytest

# A small catalogue for builds: real builds of the full set are in test_cli.py.
SMALL = {
    "welcome": {"text": "به تلفن گویای سامانه‌ی همتا خوش آمدید.", "note": "test"},
    "goodbye": {"text": "از تماس شما سپاسگزاریم. خدانگهدار.", "note": "test"},
    "code_is": {"text": "کد فعال‌سازی دستگاه:", "note": "test"},
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(*tools: str) -> None:
    """Skip without the tools on a developer machine; on CI (CI=true) a missing tool fails."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if not missing:
        return
    message = (f"{', '.join(missing)} not installed (Debian packages: espeak-ng sox "
               "libsox-fmt-mp3; the setup script installs them)")
    if in_ci():
        pytest.fail(f"CI=true but {message}")
    pytest.skip(message)


def need_mp3() -> None:
    """sox must read and write mp3 (libsox-fmt-mp3) for the gTTS build test."""
    need("sox")
    from ivr.prompts.audio import sox_formats

    if "mp3" not in sox_formats(shutil.which("sox") or "sox"):
        if in_ci():
            pytest.fail("CI=true but sox cannot read mp3: install libsox-fmt-mp3")
        pytest.skip("sox cannot read mp3 (libsox-fmt-mp3)")


@pytest.fixture
def tools() -> None:
    need("espeak-ng", "sox")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads or writes the developer's data dir, sounds or registry."""
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    for name in ("HAMTA_SOUNDS_DIR", "HAMTA_DB_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "sounds"


@functools.cache
def _tone(seconds: float, rate: int, channels: int, amplitude: float, width: int) -> bytes:
    """The frames of a 440 Hz tone (made once per shape: the check tests write hundreds)."""
    frames = int(seconds * rate)
    peak = amplitude * (2 ** (8 * width - 1) - 1)
    fmt = {1: "b", 2: "<h"}[width]
    one = [int(peak * math.sin(2 * math.pi * 440 * i / rate)) for i in range(frames)]
    return b"".join(struct.pack(fmt, s) * channels for s in one)


def write_wav(path: Path, seconds: float = 1.0, *, rate: int = 8000, channels: int = 1,
              amplitude: float = 0.5, width: int = 2) -> Path:
    """A tone (amplitude 0 = digital silence) as a PCM WAV, written without any tool."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _tone(seconds, rate, channels, amplitude, width)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(data)
    return path


def sox_tone(path: Path, seconds: float = 1.2, *, rate: int = 44100, channels: int = 2,
             silent: bool = False) -> Path:
    """A studio-like recording made with sox in any format sox writes (by the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    effect = ["trim", "0", str(seconds)] if silent else [
        "synth", str(seconds), "sine", "200-900", "vol", "0.5"]
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), str(path), *effect],
                   check=True, capture_output=True)
    return path


def write_natives(out: Path, name: str) -> dict[str, object]:
    """Native files (.ulaw, .alaw, .sln16) of the right length beside a sound's .wav, as `prompts
    build` makes them, and the manifest fields that record them (sha256, formats)."""
    import hashlib

    from ivr.prompts.audio import NATIVE_FORMATS, SAMPLE_RATE, inspect_wav
    from ivr.prompts.layout import sound_path

    wav = sound_path(out, name)
    frames = inspect_wav(wav).frames
    shas = {}
    for fmt in NATIVE_FORMATS:
        size = frames * fmt.bytes_per_second // SAMPLE_RATE
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        sound_path(out, name, fmt.ext).write_bytes(data)
        shas[fmt.ext] = hashlib.sha256(data).hexdigest()
    return {"sha256": hashlib.sha256(wav.read_bytes()).hexdigest(), "formats": shas}
