"""Where the built sounds live: Asterisk's language folders under one sounds directory.

Asterisk looks a sound name up as <sounds>/<channel language>/<name>.<format>, so with the channel
language `fa` the prompt `hamta/welcome` is <sounds>/fa/hamta/welcome.wav and SAY DIGITS finds the
Persian digits in <sounds>/fa/digits/. The same names are what the call API plays.
"""

from __future__ import annotations

import os
from pathlib import Path

from ivr.config import ConfigError, data_dir, setting
from ivr.prompts.catalogue import SOUND_FOLDER

LANGUAGE = "fa"
FORMAT = "wav"  # 8 kHz mono 16-bit PCM: Asterisk's `wav` format (the master; see NATIVE_FORMATS)
DEVICE_FOLDER = f"{SOUND_FOLDER}/device"
MANIFEST = f"{SOUND_FOLDER}/manifest.json"  # under <sounds>/fa/, next to the prompts it describes


class PromptsError(ConfigError):
    """A build or check problem an operator fixes (a tool, a folder, a recording): exit code 2."""


def sounds_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--out, else the `sounds_dir` setting (HAMTA_SOUNDS_DIR, then the config file), else
    <data dir>/sounds. The one answer for every command: `prompts build` writes where `serve`,
    `asterisk up` and `doctor` look (they once read only the environment here, the config file
    there)."""
    chosen = explicit or setting("sounds_dir")
    return Path(chosen).expanduser().resolve() if chosen else data_dir() / "sounds"


def sound_path(sounds: Path, name: str, ext: str = FORMAT) -> Path:
    """The file of a sound name (relative to the language folder) in one format: the .wav by
    default; Asterisk picks among <name>.wav, .ulaw, .alaw, .sln16 the one its call needs."""
    return sounds / LANGUAGE / f"{name}.{ext}"
