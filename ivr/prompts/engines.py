"""Speech engines that turn Persian text into audio: espeak-ng (offline, the default) and gTTS.

An engine writes one audio file for one text in whatever format it produces; the builder converts
it with sox. `identity` names the engine, its version and voice, and is part of every generated
sound's build hash, so changing engine or voice rebuilds exactly the generated sounds.

gTTS and Persian: gTTS 2.5.4 does not list `fa` in its language table (gtts/langs.py), so
`gTTS(text, lang="fa")` raises `ValueError: Language not supported: fa` before any request — the
check is a local table, not a question to Google. With `lang_check=False` gTTS sends the request
unchanged; Google Translate then either returns Persian speech or a response without audio, which
gTTS reports as "No audio stream in response. Unsupported language 'fa'". We send the request with
`lang_check=False` and turn every gTTS failure into one clear error naming the fix (network access,
or `--engine espeak` / `--recorded DIR`). Nothing is silently substituted.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from ivr.prompts.audio import require_sox_format, require_tool
from ivr.prompts.layout import PromptsError

ENGINES = ("espeak", "gtts")
DEFAULT_ENGINE = "espeak"


class EngineError(PromptsError):
    """The engine could not produce audio; the message says what to do instead."""


class Engine(Protocol):
    name: str  # the --engine value; also the key of a sound's engine-specific pronunciation
    suffix: str  # the audio format synthesize() writes
    jobs: int  # how many sounds to synthesise at once

    def prepare(self) -> None:
        """Fail early (missing tool, voice, library) before any sound is built."""

    @property
    def identity(self) -> str:
        """Engine, version and voice: part of each generated sound's build hash."""

    def synthesize(self, text: str, dest: Path) -> None:
        """Write `text` spoken in Persian to `dest` (format: `suffix`)."""


class EspeakEngine:
    """espeak-ng with its Persian voice: offline, fast, robotic — a stand-in for recordings."""

    name = "espeak"
    suffix = ".wav"
    jobs = 4

    def __init__(self, voice: str = "fa", speed: int = 150) -> None:
        self.voice = voice
        self.speed = speed  # words per minute; espeak's 175 is hurried on the telephone

    def prepare(self) -> None:
        exe = require_tool("espeak-ng")
        voices = subprocess.run(
            [exe, f"--voices={self.voice}"], capture_output=True, text=True, check=False
        ).stdout
        if not any(line.split()[1:2] == [self.voice] for line in voices.splitlines()[1:]):
            raise EngineError(
                f"espeak-ng has no voice {self.voice!r}; install the Debian package "
                "espeak-ng-data (it holds the Persian voice `fa`)"
            )
        self.identity  # noqa: B018 - read the version now, not in a worker thread

    @cached_property
    def identity(self) -> str:
        out = subprocess.run(
            [require_tool("espeak-ng"), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"text-to-speech:\s*(\S+)", out)
        version = match.group(1) if match else "unknown"
        return f"espeak-ng {version} voice={self.voice} speed={self.speed}"

    def synthesize(self, text: str, dest: Path) -> None:
        cmd = [require_tool("espeak-ng"), "-v", self.voice, "-s", str(self.speed),
               "-w", str(dest), "--stdin"]
        done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
        if done.returncode != 0 or not dest.exists():
            detail = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise EngineError(f"espeak-ng failed on {text!r}: {detail}")


class GttsEngine:
    """Google Translate's speech through gTTS: online; Persian is sent with the language check
    off (see the module docstring) and any failure is reported, never papered over."""

    name = "gtts"
    suffix = ".mp3"
    jobs = 2  # polite to the service

    def __init__(
        self, lang: str = "fa", tld: str = "com", timeout: float = 30.0,
        tts_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.lang = lang
        self.tld = tld
        self.timeout = timeout
        self._factory = tts_factory

    def prepare(self) -> None:
        require_sox_format("mp3")  # gTTS returns mp3; sox reads it with libsox-fmt-mp3
        if self._factory is None:
            try:
                from gtts import gTTS
            except ImportError as exc:
                raise EngineError(
                    "the gtts engine needs the gTTS package: pip install 'gTTS>=2.5' "
                    "(a dependency of hamta-ivr), or use --engine espeak"
                ) from exc
            self._factory = gTTS

    @cached_property
    def identity(self) -> str:
        try:
            from gtts import __version__ as version
        except ImportError:
            version = "unknown"
        return f"gTTS {version} lang={self.lang} tld={self.tld}"

    def synthesize(self, text: str, dest: Path) -> None:
        if self._factory is None:
            self.prepare()
        assert self._factory is not None
        try:
            # lang_check=False: gTTS 2.5.4 would refuse `fa` from its local table without asking
            tts = self._factory(
                text=text, lang=self.lang, tld=self.tld, lang_check=False, timeout=self.timeout
            )
            tts.save(str(dest))
        except Exception as exc:
            raise EngineError(_gtts_failure(exc, self.lang)) from exc
        if not dest.exists() or dest.stat().st_size == 0:
            raise EngineError(_gtts_failure(None, self.lang))


def _gtts_failure(exc: BaseException | None, lang: str) -> str:
    """One message for every way gTTS fails, saying which case it is and what to do."""
    detail = str(exc) if exc else "no audio was written"
    if exc is not None and getattr(exc, "rsp", "absent") is None:
        why = "translate.google.com could not be reached; the gtts engine needs internet access"
    elif "No audio stream" in detail or exc is None:
        why = (f"Google returned no audio for language {lang!r} (gTTS 2.5.4 does not list "
               f"{lang!r}; the request was sent with lang_check=False)")
    else:
        why = "the gTTS request failed"
    return (f"gTTS: {why} ({detail}). Use --engine espeak (offline) or --recorded DIR with "
            "studio recordings instead")


def make_engine(name: str) -> Engine:
    if name == "espeak":
        return EspeakEngine()
    if name == "gtts":
        return GttsEngine()
    raise PromptsError(f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}")
