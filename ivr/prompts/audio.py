"""The external tools (sox, espeak-ng) and the audio itself: conversion to what Asterisk plays,
and the WAV reader `prompts build` and `prompts check` judge every file with."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import wave
from array import array
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ivr.prompts.layout import PromptsError

SAMPLE_RATE = 8000
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM
WIDE_RATE = 16000  # the wideband copy (.sln16): what a G.722 call carries


@dataclass(frozen=True)
class NativeFormat:
    """A raw file Asterisk plays without transcoding to calls of its codec, written beside the
    .wav (Asterisk picks, per call, the file whose format costs the least to translate to the
    channel's codec; with only the .wav every call transcodes slin@8000)."""

    ext: str  # Asterisk's file extension (format_pcm.so: ulaw, alaw; format_sln.so: sln16)
    rate: int
    bytes_per_second: int
    sox_type: list[str]  # sox output options: encoding and raw type
    wide: bool  # made from the voice itself at 16 kHz, not from the 8 kHz .wav

    @property
    def suffix(self) -> str:
        return f".{self.ext}"


# What `prompts build` writes beside each <sound>.wav. G.711 µ-law and A-law are byte for byte
# what a G.711 call sends (Asterisk copies the frames); .sln16 is 16 kHz signed linear made from
# the voice's own 16/22 kHz output (not upsampled from 8 kHz), which a G.722 call only encodes.
# A raw .g722 file would spare even that encoding, but neither sox nor a Debian tool we depend on
# writes G.722: sln16 -> g722 is one cheap encoder step with no resampling.
NATIVE_FORMATS = (
    NativeFormat("ulaw", SAMPLE_RATE, SAMPLE_RATE, ["-e", "u-law", "-b", "8", "-t", "ul"], False),
    NativeFormat("alaw", SAMPLE_RATE, SAMPLE_RATE, ["-e", "a-law", "-b", "8", "-t", "al"], False),
    NativeFormat("sln16", WIDE_RATE, WIDE_RATE * SAMPLE_WIDTH,
                 ["-e", "signed-integer", "-b", "16", "-t", "raw"], True),
)

# The Debian package that provides each tool, so a missing tool's error says what to install.
DEBIAN_PACKAGES = {"sox": "sox", "espeak-ng": "espeak-ng"}
# sox reads wav itself; the others come from format plug-ins packaged separately in Debian.
SOX_FORMAT_PACKAGES = {
    "wav": "sox", "flac": "libsox-fmt-base", "ogg": "libsox-fmt-base", "mp3": "libsox-fmt-mp3",
}
RECORDING_FORMATS = tuple(SOX_FORMAT_PACKAGES)

# Processing applied to every sound (generated or recorded), in sox effect syntax: peak-normalise
# to -3 dBFS so prompts, numbers and recordings play at one loudness; trim leading and trailing
# silence (below -45 dB) so a prompt starts at once and numbers join without gaps; then a short
# pad so words said one after another (numbers, digits) do not run into each other. Part of every
# sound's build hash: changing it rebuilds everything.
EFFECTS = (
    "norm", "-3",
    "silence", "1", "0.02", "-45d", "reverse", "silence", "1", "0.02", "-45d", "reverse",
    "pad", "0.05", "0.08",
)
SILENCE_FLOOR_DBFS = -40.0  # a built sound's RMS must be above this (speech peaks at -3 dBFS)


class ToolMissing(PromptsError):
    """A command-line tool is not installed."""


def require_tool(name: str) -> str:
    """The tool's path, or an error naming the Debian package that installs it."""
    path = shutil.which(name)
    if path is None:
        package = DEBIAN_PACKAGES.get(name, name)
        raise ToolMissing(
            f"`{name}` is not installed (not found on PATH); install the Debian package "
            f"{package}: sudo apt-get install {package}"
        )
    return path


@cache
def sox_formats(sox: str) -> frozenset[str]:
    """The file formats this sox can read, from `sox -h` (plug-ins vary between machines)."""
    out = subprocess.run([sox, "-h"], capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.startswith("AUDIO FILE FORMATS:"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def require_sox_format(extension: str) -> str:
    """sox's path, after making sure it reads `extension` (mp3 needs a separate package)."""
    sox = require_tool("sox")
    ext = extension.lower().lstrip(".")
    if ext not in sox_formats(sox):
        package = SOX_FORMAT_PACKAGES.get(ext, "libsox-fmt-all")
        raise ToolMissing(
            f"sox cannot read .{ext} files; install the Debian package {package}: "
            f"sudo apt-get install {package}"
        )
    return sox


def convert(source: Path, dest: Path, rate: int = SAMPLE_RATE) -> None:
    """Any audio sox reads -> 8 kHz (or `rate`: the ear's wideband comparison) mono 16-bit PCM
    WAV, normalised and trimmed (EFFECTS)."""
    _sox(source, dest, ["-r", str(rate), "-c", str(CHANNELS), "-b",
                        str(SAMPLE_WIDTH * 8), "-e", "signed-integer", "-t", "wav"], EFFECTS)


def convert_native(source: Path, wav: Path, dest: Path, fmt: NativeFormat) -> None:
    """One native format of a sound: G.711 from the finished 8 kHz `wav`; the wideband copy from
    the `source` audio itself (the engine's or the recording's own rate), through the same
    EFFECTS, so it lasts as long as the .wav and is as loud."""
    if fmt.wide:
        _sox(source, dest, ["-r", str(fmt.rate), "-c", str(CHANNELS), *fmt.sox_type], EFFECTS)
    else:
        _sox(wav, dest, ["-r", str(fmt.rate), "-c", str(CHANNELS), *fmt.sox_type], ())


def _sox(source: Path, dest: Path, output: list[str], effects: tuple[str, ...]) -> None:
    sox = require_sox_format(source.suffix)
    cmd = [sox, "-V1", str(source), *output, str(dest), *effects]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.strip() or f"exit code {done.returncode}"
        raise PromptsError(f"sox could not convert {source}: {detail}")


def raw_seconds(path: Path, fmt: NativeFormat) -> float:
    """How long a raw native file plays (its size over the format's byte rate)."""
    return path.stat().st_size / fmt.bytes_per_second


@dataclass(frozen=True)
class WavInfo:
    channels: int
    rate: int
    sample_width: int
    frames: int
    rms_dbfs: float  # -inf for digital silence

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    def format_problems(self) -> list[str]:
        """How this file differs from what Asterisk's `wav` format expects (empty when right)."""
        problems = []
        if self.rate != SAMPLE_RATE:
            problems.append(f"sample rate {self.rate} Hz, not {SAMPLE_RATE}")
        if self.channels != CHANNELS:
            problems.append(f"{self.channels} channels, not mono")
        if self.sample_width != SAMPLE_WIDTH:
            problems.append(f"{self.sample_width * 8}-bit samples, not 16-bit")
        return problems


class BadWav(ValueError):
    """Not a PCM WAV file the `wave` module (and Asterisk) can read."""


def inspect_wav(path: Path) -> WavInfo:
    """Read a WAV file's format and loudness; BadWav says why it is not a PCM WAV."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate, frames = (
                wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
            )
            data = wav.readframes(frames)
    except (wave.Error, EOFError) as exc:
        raise BadWav(f"not a PCM WAV file ({exc})") from exc
    return WavInfo(channels, rate, width, frames, _rms_dbfs(data, width))


def _rms_dbfs(data: bytes, width: int) -> float:
    if width != SAMPLE_WIDTH or not data:
        return -math.inf if not data else 0.0  # other widths: the format check reports them
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    if not samples:
        return -math.inf
    mean_square = sum(s * s for s in samples) / len(samples)
    if mean_square == 0:
        return -math.inf
    return 10 * math.log10(mean_square / 32768.0**2)
