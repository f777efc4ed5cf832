"""Speech engines that turn Persian text into audio: espeak-ng + MBROLA, espeak-ng, and gTTS.

- `mbrola` (the default when installed): espeak-ng's Persian rules driving the MBROLA diphone
  voice ir1 (espeak-ng voice `mb-ir1`; Debian packages `mbrola` from contrib and `mbrola-ir1`
  from non-free, installed by setup.sh). Recorded diphones: far more natural than a formant voice.
  MBROLA's licence allows use and copying free of charge, not sale or inclusion in a product
  that is sold.
- `espeak` (the fallback when MBROLA or its voice is missing): espeak-ng's formant voice `fa`.
- `gtts`: Google's voice, online (below).
`default_engine()` picks the first of the two offline engines that can run here.

Both espeak-ng engines read the same text through the same Persian rules, so they say the same
phonemes (`espeak-ng -v fa -x -q TEXT` prints them; tests/prompts/test_pronunciation.py pins
every digit and number word and the lexicon) and share one pronunciation key, `espeak`: a sound
whose text they say wrongly gives them a respelling or phoneme input instead (the prompts' words:
ivr.prompts.lexicon; the number words: build.ESPEAK_PRONUNCIATION).

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

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from ivr.prompts.audio import require_sox_format, require_tool
from ivr.prompts.layout import PromptsError

ENGINES = ("mbrola", "espeak", "gtts")
FALLBACK_ENGINE = "espeak"  # the formant voice: always there with espeak-ng-data

# Where espeak-ng looks for an MBROLA voice (besides its own data folder): mbrola-ir1 installs
# /usr/share/mbrola/ir1/ir1.
MBROLA_VOICE_FILES = ("/usr/share/mbrola/{v}/{v}", "/usr/share/mbrola/{v}",
                      "/usr/share/mbrola/voices/{v}")
MBROLA_VOICE = "ir1"


class EngineError(PromptsError):
    """The engine could not produce audio; the message says what to do instead."""


class Engine(Protocol):
    name: str  # the --engine value
    pronunciation: str  # the key of a sound's engine-specific spoken text (Item.pronounce)
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
    pronunciation = "espeak"
    suffix = ".wav"
    jobs = 4

    def __init__(self, voice: str = "fa", speed: int = 150) -> None:
        self.voice = voice
        self.speed = speed  # words per minute; espeak's 175 is hurried on the telephone

    def prepare(self) -> None:
        exe = require_tool("espeak-ng")
        self._require_voice(exe)
        self.identity  # noqa: B018 - read the version now, not in a worker thread

    def _require_voice(self, exe: str) -> None:
        voices = subprocess.run(
            [exe, f"--voices={self.voice}"], capture_output=True, text=True, check=False
        ).stdout
        if not any(line.split()[1:2] == [self.voice] for line in voices.splitlines()[1:]):
            raise EngineError(
                f"espeak-ng has no voice {self.voice!r}; install the Debian package "
                "espeak-ng-data (it holds the Persian voice `fa`)"
            )

    @cached_property
    def identity(self) -> str:
        return f"espeak-ng {espeak_version()} voice={self.voice} speed={self.speed}"

    def synthesize(self, text: str, dest: Path) -> None:
        cmd = [require_tool("espeak-ng"), "-v", self.voice, "-s", str(self.speed),
               "-w", str(dest), "--stdin"]
        done = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
        if done.returncode != 0 or not dest.exists():
            detail = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
            raise EngineError(f"espeak-ng failed on {text!r}: {detail}")


def espeak_version() -> str:
    out = subprocess.run(
        [require_tool("espeak-ng"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"text-to-speech:\s*(\S+)", out)
    return match.group(1) if match else "unknown"


def mbrola_voice_file(voice: str = MBROLA_VOICE) -> Path | None:
    """The installed MBROLA voice database espeak-ng will load, if any."""
    for pattern in MBROLA_VOICE_FILES:
        path = Path(pattern.format(v=voice))
        if path.is_file():
            return path
    return None


def mbrola_missing(voice: str = MBROLA_VOICE) -> str | None:
    """Why the MBROLA engine cannot run here (None: it can), naming the package to install."""
    if shutil.which("mbrola") is None:
        return ("the `mbrola` program is not installed (Debian package mbrola, in contrib; "
                "setup.sh installs it)")
    if mbrola_voice_file(voice) is None:
        return (f"the MBROLA voice {voice} is not installed (Debian package mbrola-{voice}, in "
                "non-free; setup.sh installs it)")
    if shutil.which("espeak-ng") is None:
        return "`espeak-ng` is not installed (Debian package espeak-ng)"
    return None


def default_engine() -> str:
    """The best offline voice this machine has: MBROLA ir1 when installed, else espeak's `fa`."""
    return "mbrola" if mbrola_missing() is None else FALLBACK_ENGINE


class MbrolaEngine(EspeakEngine):
    """espeak-ng's Persian rules speaking through the MBROLA diphone voice ir1 (`mb-ir1`).

    Rate for the 8 kHz telephone line: 160 words per minute. At espeak's 175 the diphones blur
    once band-limited to 3.4 kHz; at 150 the main menu is 1.6 s longer for no gain. espeak-ng
    scales clause pauses with the rate: at 160 a comma pauses about 0.25 s and a full stop or
    «؛» about 0.48 s (measured on the main menu), enough to hear the items apart.
    Licence: MBROLA and its voices may be used and copied free of charge, not sold or included
    in a product that is sold.
    """

    name = "mbrola"
    pronunciation = "espeak"  # the same espeak-ng Persian rules as the formant voice

    def __init__(self, voice: str = MBROLA_VOICE, speed: int = 170) -> None:
        super().__init__(voice=f"mb-{voice}", speed=speed)
        self.mbrola_voice = voice

    def _require_voice(self, exe: str) -> None:
        why = mbrola_missing(self.mbrola_voice)
        if why is not None:
            raise EngineError(f"the mbrola engine cannot run: {why}; or use --engine espeak "
                              "(the formant voice)")
        listed = subprocess.run(
            [exe, "--voices=mb"], capture_output=True, text=True, check=False
        ).stdout  # columns: Pty Language Age/Gender VoiceName File Other
        if not any(line.split()[4:5] == [f"mb/{self.voice}"] for line in listed.splitlines()[1:]):
            raise EngineError(
                f"espeak-ng has no voice {self.voice!r} (the MBROLA voice definition); install "
                "the Debian package espeak-ng-data, or use --engine espeak"
            )

    @cached_property
    def identity(self) -> str:
        voice_file = mbrola_voice_file(self.mbrola_voice)
        digest = (hashlib.sha256(voice_file.read_bytes()).hexdigest()[:12]
                  if voice_file else "absent")
        return (f"espeak-ng {espeak_version()} voice={self.voice} "
                f"mbrola={self.mbrola_voice}:{digest} speed={self.speed}")


class GttsEngine:
    """Google Translate's speech through gTTS: online; Persian is sent with the language check
    off (see the module docstring) and any failure is reported, never papered over."""

    name = "gtts"
    pronunciation = "gtts"
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


def make_engine(name: str | None = None) -> Engine:
    """The engine called `name`; None: default_engine() (MBROLA when installed, else espeak)."""
    name = name or default_engine()
    if name == "mbrola":
        return MbrolaEngine()
    if name == "espeak":
        return EspeakEngine()
    if name == "gtts":
        return GttsEngine()
    raise PromptsError(f"unknown engine {name!r}; use one of: {', '.join(ENGINES)}")
