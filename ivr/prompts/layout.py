"""Where the built sounds live: Asterisk's language folders under one sounds directory.

Asterisk looks a sound name up as <sounds>/<channel language>/<name>.<format>, so with the channel
language `fa` the prompt `hamta/welcome` is <sounds>/fa/hamta/welcome.wav and SAY DIGITS finds the
Persian digits in <sounds>/fa/digits/. The same names are what the call API plays.
"""

from __future__ import annotations

import os
from pathlib import Path

from ivr import config
from ivr.config import ConfigError, Settings
from ivr.prompts.catalogue import SOUND_FOLDER

LANGUAGE = "fa"
FORMAT = "wav"  # 8 kHz mono 16-bit PCM: Asterisk's `wav` format (the master; see NATIVE_FORMATS)
DEVICE_FOLDER = f"{SOUND_FOLDER}/device"
MANIFEST = f"{SOUND_FOLDER}/manifest.json"  # under <sounds>/fa/, next to the prompts it describes


class PromptsError(ConfigError):
    """A build or check problem an operator fixes (a tool, a folder, a recording): exit code 2."""


def sounds_dir(explicit: str | os.PathLike[str] | None = None,
               settings: Settings | None = None) -> Path:
    """--out, else the Settings' sounds_dir (HAMTA_SOUNDS_DIR, then the config file, else
    <data dir>/sounds, the data dir created). The one answer for every command: `prompts build`
    writes where `serve`, `asterisk up` and `doctor` look (they once read only the environment
    here, the config file there)."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    settings = settings or config.current()
    if settings.sounds_dir_setting is None:
        config.data_dir()  # the default lives in it: made, with its checks
    return settings.sounds_dir


def sound_path(sounds: Path, name: str, ext: str = FORMAT) -> Path:
    """The file of a sound name (relative to the language folder) in one format: the .wav by
    default; Asterisk picks among <name>.wav, .ulaw, .alaw, .sln16 the one its call needs."""
    return sounds / LANGUAGE / f"{name}.{ext}"
