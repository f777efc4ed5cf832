"""`prompts build`: every sound the IVR plays, generated or recorded, in Asterisk's layout.

What is built: each catalogue key (hamta/<key>), each number word (hamta/num/<atom>), the digits
SAY DIGITS reads (digits/0 … digits/9) and device names (hamta/device/<slug>). A studio recording
in --recorded DIR, named like the sound without `hamta/` (welcome.flac, num/21.wav, digits/7.mp3,
device/samsung-galaxy-a54.ogg), replaces the generated audio of that sound.

Each sound is written in several formats side by side (audio.NATIVE_FORMATS): <name>.wav (8 kHz
signed linear, the master every tool here reads), <name>.ulaw and <name>.alaw (G.711, what a
G.711 call sends, so Asterisk copies frames instead of encoding each call's audio) and
<name>.sln16 (16 kHz signed linear from the voice's own 16/22 kHz audio, which a G.722 call only
encodes, and hears wideband). Asterisk picks the cheapest file for each call's codec.

Builds are incremental: the manifest (<out>/fa/hamta/manifest.json) keeps, per sound, a hash of
everything its audio depends on (text, engine and voice or the recording's bytes, processing);
a sound is rebuilt only when that hash changes or one of its files (any format) is missing or
altered.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.prompts import catalogue
from ivr.prompts.audio import (
    EFFECTS,
    NATIVE_FORMATS,
    RECORDING_FORMATS,
    SAMPLE_RATE,
    BadWav,
    convert,
    convert_native,
    inspect_wav,
    require_sox_format,
)
from ivr.prompts.catalogue import SOUND_FOLDER
from ivr.prompts.check import judge
from ivr.prompts.devices import device_sound_name, spoken_name
from ivr.prompts.engines import Engine
from ivr.prompts.layout import FORMAT, LANGUAGE, MANIFEST, PromptsError, sound_path
from ivr.prompts.lexicon import espeak_text
from ivr.prompts.persian import NUMBER_FOLDER, digit_sounds, number_sounds

PIPELINE = 1  # bump when processing changes in a way EFFECTS does not show: rebuilds everything

PROMPT, NUMBER, DIGIT, DEVICE = "prompt", "number", "digit", "device"
PRUNED_KINDS = {PROMPT, NUMBER, DIGIT}  # device names stay when a build does not list them

# How espeak-ng should say a number word whose text alone it says wrongly (prompts: the lexicon,
# ivr.prompts.lexicon). The «و» between number words is spoken «o» (بیست‌ و یک = bist-o yek);
# read alone espeak says the formal «va».
ESPEAK_PRONUNCIATION = {f"{NUMBER_FOLDER}/and": "[[o]]"}


@dataclass(frozen=True)
class Item:
    """One sound to build: its name (relative to sounds/fa), its Persian words, and its kind."""

    name: str
    text: str
    kind: str
    # (engine pronunciation key, text those engines say instead): see Engine.pronunciation
    pronounce: tuple[tuple[str, str], ...] = ()

    def spoken(self, pronunciation: str) -> str:
        return dict(self.pronounce).get(pronunciation, self.text)

    @property
    def recording_name(self) -> str:
        """The name of its studio recording in --recorded DIR, without the extension."""
        return self.name.removeprefix(f"{SOUND_FOLDER}/")


def catalogue_items(entries: Mapping[str, Mapping[str, str]] | None = None) -> list[Item]:
    """The prompts; an espeak engine is given the lexicon's respelling where it differs."""
    entries = catalogue.entries() if entries is None else entries
    items = []
    for key, entry in entries.items():
        text = entry["text"]
        spoken = espeak_text(text)
        pronounce = (("espeak", spoken),) if spoken != text else ()
        items.append(Item(f"{SOUND_FOLDER}/{key}", text, PROMPT, pronounce))
    return items


def number_items() -> list[Item]:
    return [
        Item(name, words, NUMBER, _pronounce(name)) for name, words in number_sounds().items()
    ]


def digit_items() -> list[Item]:
    return [Item(name, words, DIGIT) for name, words in digit_sounds().items()]


def device_items(pairs: Iterable[tuple[str, str]]) -> list[Item]:
    """One sound per distinct device name (names differing only in case share a sound)."""
    items: dict[str, Item] = {}
    for brand, model in pairs:
        name = device_sound_name(brand, model)
        items.setdefault(name, Item(name, spoken_name(brand, model), DEVICE))
    return list(items.values())


def plan(
    entries: Mapping[str, Mapping[str, str]] | None = None,
    devices: Iterable[tuple[str, str]] = (),
) -> list[Item]:
    """Everything the IVR can play: catalogue prompts, number words, digits, device names."""
    return [*catalogue_items(entries), *number_items(), *digit_items(), *device_items(devices)]


def _pronounce(name: str) -> tuple[tuple[str, str], ...]:
    hint = ESPEAK_PRONUNCIATION.get(name)
    return (("espeak", hint),) if hint else ()


# --- recordings ----------------------------------------------------------------------------------
def find_recordings(folder: Path, items: Iterable[Item]) -> tuple[dict[str, Path], list[str]]:
    """Recordings in `folder` by the sound they replace, and warnings for files that match none.

    Two recordings of one sound (welcome.wav and welcome.mp3) are an error: which one is meant?
    """
    if not folder.is_dir():
        raise PromptsError(f"--recorded {folder}: no such folder (the studio recordings)")
    wanted = {item.recording_name: item.name for item in items}
    found: dict[str, list[Path]] = {}
    warnings: list[str] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(folder)
        ext = path.suffix.lower().lstrip(".")
        if ext not in RECORDING_FORMATS:
            warnings.append(f"recording {relative} ignored: not one of "
                            f"{', '.join('.' + f for f in RECORDING_FORMATS)}")
            continue
        stem = relative.with_suffix("").as_posix()
        if stem not in wanted:
            warnings.append(f"recording {relative} ignored: no sound is named {stem!r} "
                            "(a prompt key, num/<n>, digits/<d> or device/<slug>)")
            continue
        found.setdefault(wanted[stem], []).append(path)
    for name, paths in found.items():
        if len(paths) > 1:
            listed = ", ".join(str(p.relative_to(folder)) for p in paths)
            raise PromptsError(f"--recorded {folder}: {listed} are all recordings of {name}; "
                               "keep one")
    return {name: paths[0] for name, paths in found.items()}, warnings


# --- manifest ------------------------------------------------------------------------------------
def manifest_path(out: Path) -> Path:
    return out / LANGUAGE / MANIFEST


Entry = dict[str, Any]  # kind, text, hash, source, sha256 (the .wav's): str; formats: {ext: sha}


def load_manifest(out: Path) -> dict[str, Entry]:
    """What the last build made; an unreadable manifest just means everything is rebuilt."""
    path = manifest_path(out)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        sounds = data["sounds"]
        return sounds if isinstance(sounds, dict) else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def save_manifest(out: Path, sounds: Mapping[str, Mapping[str, Any]]) -> None:
    path = manifest_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"about": "hamta-ivr prompts build: what each sound was built from", "version": 1,
            "sounds": {name: sounds[name] for name in sorted(sounds)}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_hash(item: Item, engine: Engine | None, recording_sha: str | None) -> str:
    """Everything a sound's audio depends on; a different hash means the sound is rebuilt."""
    payload: dict[str, object] = {
        "pipeline": PIPELINE, "effects": EFFECTS, "rate": SAMPLE_RATE, "text": item.text,
    }
    if recording_sha is not None:
        payload["recording"] = recording_sha
    else:
        assert engine is not None
        payload["engine"] = engine.identity
        payload["spoken"] = item.spoken(engine.pronunciation)
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


# --- the build -----------------------------------------------------------------------------------
Progress = Callable[[int, int, str, str], None]  # (done, total, sound name, what happened)


@dataclass
class BuildReport:
    out: Path
    built: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)  # built or unchanged, from a recording
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def build(
    items: list[Item],
    out: Path,
    engine: Engine,
    *,
    recorded: Path | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    prune: bool = True,
) -> BuildReport:
    """Build what changed among `items` into `out` (the sounds dir); see the module docstring."""
    started = time.monotonic()
    report = BuildReport(out)
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise PromptsError("two sounds share one name; check the catalogue and device names")
    _writable(out / LANGUAGE)
    recordings: dict[str, Path] = {}
    if recorded is not None:
        recordings, report.warnings = find_recordings(recorded, items)
    if any(item.name not in recordings for item in items):
        engine.prepare()  # only when something is generated: recordings need no engine
    manifest = load_manifest(out)

    todo: list[tuple[Item, str, Path | None]] = []
    done = 0
    total = len(items)
    for item in items:
        recording = recordings.get(item.name)
        digest = build_hash(item, engine if recording is None else None,
                            file_sha256(recording) if recording else None)
        dest = sound_path(out, item.name)
        entry = manifest.get(item.name, {})
        if recording is not None:
            report.recorded.append(item.name)
        if (entry.get("hash") == digest and dest.is_file()
                and entry.get("sha256") == file_sha256(dest)
                and _natives_current(out, item.name, entry)):
            report.unchanged.append(item.name)
            done += 1
            if progress:
                progress(done, total, item.name, "unchanged")
        else:
            todo.append((item, digest, recording))

    if todo:
        for suffix in {engine.suffix if r is None else r.suffix for _, _, r in todo}:
            require_sox_format(suffix)  # a missing tool or plug-in fails before any work
        workers = max(1, min(jobs or min(engine.jobs, os.cpu_count() or 1), len(todo)))
        with tempfile.TemporaryDirectory(prefix=".build-", dir=out / LANGUAGE) as tmp:
            try:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    futures: dict[Future[dict[str, str]], tuple[Item, str, Path | None]] = {
                        pool.submit(_make, item, recording, engine, out, Path(tmp), i): (
                            item, digest, recording)
                        for i, (item, digest, recording) in enumerate(todo)
                    }
                    try:
                        for future in as_completed(futures):
                            item, digest, recording = futures[future]
                            shas = future.result()
                            manifest[item.name] = {
                                "kind": item.kind, "text": item.text, "hash": digest,
                                "source": (f"recording {recording.name}" if recording
                                           else engine.identity),
                                "sha256": shas.pop(FORMAT),
                                "formats": shas,
                            }
                            report.built.append(item.name)
                            done += 1
                            if progress:
                                what = f"built from {recording.name}" if recording else "built"
                                progress(done, total, item.name, what)
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise
            finally:
                save_manifest(out, manifest)  # keep what was built before a failure

    if prune:
        wanted = set(names)
        for name, entry in list(manifest.items()):
            if name not in wanted and entry.get("kind") in PRUNED_KINDS:
                for ext in (FORMAT, *(fmt.ext for fmt in NATIVE_FORMATS)):
                    sound_path(out, name, ext).unlink(missing_ok=True)
                del manifest[name]
                report.removed.append(name)
    save_manifest(out, manifest)
    report.seconds = time.monotonic() - started
    return report


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
        reason = "not writable"
    except OSError as exc:
        writable, reason = False, exc.strerror or str(exc)
    if not writable:
        raise PromptsError(f"cannot write the sounds folder {folder} ({reason}); choose another "
                           "with --out or HAMTA_SOUNDS_DIR, or fix its permissions")


def _natives_current(out: Path, name: str, entry: Mapping[str, object]) -> bool:
    """Every native format of a sound is there and is what the last build wrote."""
    shas = entry.get("formats")
    if not isinstance(shas, dict):
        return False  # built before the native formats: build them now
    for fmt in NATIVE_FORMATS:
        path = sound_path(out, name, fmt.ext)
        if shas.get(fmt.ext) is None or not path.is_file() or file_sha256(path) != shas[fmt.ext]:
            return False
    return True


def _make(item: Item, recording: Path | None, engine: Engine, out: Path, tmp: Path,
          index: int) -> dict[str, str]:
    """Build one sound into place in every format; returns the SHA-256 of each file written,
    by extension (`wav` and each NATIVE_FORMATS')."""
    if recording is not None:
        source = recording
        origin = f"the recording {recording}"
    else:
        source = tmp / f"{index}{engine.suffix}"
        engine.synthesize(item.spoken(engine.pronunciation), source)
        origin = f"{engine.name} audio"
    wav = tmp / f"{index}.out.wav"
    convert(source, wav)
    try:
        problems = judge(inspect_wav(wav), item.kind)
    except BadWav as exc:
        problems = [str(exc)]
    if problems:
        raise PromptsError(f"{item.name}: {origin} is unusable: {'; '.join(problems)}")
    natives = []
    for fmt in NATIVE_FORMATS:
        native = tmp / f"{index}.out{fmt.suffix}"
        convert_native(source, wav, native, fmt)
        natives.append((fmt, native))
    dest = sound_path(out, item.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shas = {}
    # the native files first, the .wav last: a build cut short between them leaves a .wav whose
    # hash is not the manifest's, so the next build makes the whole sound again
    for fmt, native in natives:
        shas[fmt.ext] = file_sha256(native)
        os.replace(native, sound_path(out, item.name, fmt.ext))
    shas[FORMAT] = file_sha256(wav)
    os.replace(wav, dest)
    return shas
