"""`prompts check`: what Asterisk will play is all there and sounds like speech.

Every prompt key the call flows use (given by the caller: `hamta-ivr prompts check` passes
ivr.flows.keys.USED_KEYS) has text in the catalogue; every sound (catalogue, numbers, digits,
device names built so far) exists, is an 8 kHz mono 16-bit PCM WAV, is not silent, has a plausible
length, and was built from the catalogue's current text; and its native formats (.ulaw, .alaw,
.sln16: audio.NATIVE_FORMATS) are there, as long as the .wav, and made from it by the last build.
A sound with only its .wav (a recording dropped in by hand, a build from before the native
formats) still plays: Asterisk transcodes it for every call. That is a warning, not a problem.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.prompts import catalogue
from ivr.prompts.audio import (
    NATIVE_FORMATS,
    SILENCE_FLOOR_DBFS,
    BadWav,
    WavInfo,
    inspect_wav,
    raw_seconds,
)
from ivr.prompts.layout import DEVICE_FOLDER, LANGUAGE, sound_path

# Plausible lengths in seconds, by kind of sound: a prompt is a word to a long menu; a number word
# or digit is one short word (they are chained, so a long one means something else was recorded).
LENGTHS = {
    "prompt": (0.2, 40.0), "number": (0.1, 2.5), "digit": (0.1, 1.5), "device": (0.3, 10.0),
}
# A native file lasting longer or shorter than its .wav by more than this is not the same audio.
LENGTH_SLACK = 0.06  # seconds: resampling and silence trimming at 16 kHz move the ends a little
REBUILD = "run `hamta-ivr prompts build`"
WARNINGS_SHOWN = 8


def judge(info: WavInfo, kind: str) -> list[str]:
    """What is wrong with one sound file (empty list: nothing)."""
    problems = info.format_problems()
    if info.frames == 0:
        problems.append("holds no audio")
        return problems
    if not info.rms_dbfs > SILENCE_FLOOR_DBFS:
        level = "digital silence" if math.isinf(info.rms_dbfs) else f"{info.rms_dbfs:.0f} dBFS"
        problems.append(f"is silent (RMS {level}, needs above {SILENCE_FLOOR_DBFS:.0f} dBFS)")
    low, high = LENGTHS[kind]
    if not low <= info.seconds <= high:
        problems.append(f"lasts {info.seconds:.2f} s; a {kind} should last {low}-{high} s")
    return problems


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # plays, but worse than it could
    notes: list[str] = field(default_factory=list)
    transcoded: int = 0  # sounds with only their .wav
    files: int = 0
    keys: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def listing(self, shown: int = WARNINGS_SHOWN) -> list[str]:
        """What `prompts check` prints: each problem, then the first `shown` warnings (a build
        from before the native formats warns of every sound)."""
        lines = [*self.problems, *(f"warning: {w}" for w in self.warnings[:shown])]
        if len(self.warnings) > shown:
            lines.append(f"warning: … and {len(self.warnings) - shown} more sounds played "
                         "transcoded; run `hamta-ivr prompts build`")
        return lines

    def summary(self, where: Path) -> str:
        """`prompts check`'s last line (on standard error when there are problems)."""
        transcoded = (f"; {self.transcoded} played transcoded (only .wav)" if self.transcoded
                      else "; every sound in .wav, .ulaw, .alaw and .sln16")
        if self.problems:
            return (f"prompts check: {len(self.problems)} problem(s) in {where}"
                    f"{transcoded if self.transcoded else ''}")
        return (f"prompts check: OK — {self.files} sounds in {where}{transcoded}; "
                f"{self.keys} prompt keys the flows use are all in the catalogue")


def check(
    out: Path,
    entries: Mapping[str, Mapping[str, str]] | None = None,
    used: Collection[str] | None = None,
) -> CheckReport:
    """Check the catalogue against `used`, the prompt keys the call flows play, and every sound
    under `out` (the sounds dir). Without `used`, only the catalogue's own sounds are checked."""
    from ivr.prompts.build import DEVICE, load_manifest, plan  # build imports judge from here

    entries = catalogue.entries() if entries is None else entries
    report = CheckReport()
    if used is None:
        report.notes.append("no list of the prompt keys the flows play was given: checked the "
                            "catalogue's sounds, not whether the flows' keys are all in it")
    else:
        report.keys = len(used)
        for key in sorted(set(used) - set(entries)):
            report.problems.append(
                f"prompt key {key!r} is played by the call flows but missing from "
                "prompts/catalogue.toml; add it with its Persian text")
        unused = sorted(set(entries) - set(used))
        if unused:
            report.notes.append(f"catalogue keys no flow plays: {', '.join(unused)}")

    manifest = load_manifest(out)
    if not manifest:
        report.notes.append(f"no build manifest in {out / LANGUAGE}; built with "
                            "`hamta-ivr prompts build`?")
    expected = {item.name: (item.kind, item.text) for item in plan(entries)}
    for name, entry in manifest.items():
        if entry.get("kind") == DEVICE:
            expected.setdefault(name, (DEVICE, entry.get("text", "")))
    device_dir = sound_path(out, f"{DEVICE_FOLDER}/x").parent
    if device_dir.is_dir():
        for path in sorted(device_dir.glob("*.wav")):
            expected.setdefault(f"{DEVICE_FOLDER}/{path.stem}", (DEVICE, ""))

    rebuild = REBUILD
    for name, (kind, text) in expected.items():
        path = sound_path(out, name)
        report.files += 1
        if not path.is_file():
            report.problems.append(f"{name}: {path} is missing; {rebuild}")
            continue
        info: WavInfo | None = None
        try:
            info = inspect_wav(path)
            problems = judge(info, kind)
        except BadWav as exc:
            problems = [str(exc)]
        built_from = manifest.get(name, {}).get("text")
        if kind != DEVICE and built_from is not None and built_from != text:
            problems.append(f"was built from an older text; {rebuild}")
        report.problems += [f"{name}: {path} {p}" for p in problems]
        check_natives(report, out, name, path, info, manifest.get(name, {}))
    return report


def check_natives(report: CheckReport, out: Path, name: str, wav: Path, info: WavInfo | None,
                  entry: Mapping[str, object]) -> None:
    """The native formats of one sound: all there or none (transcoded, a warning); each as long
    as the .wav and made from it by the last build (else Asterisk plays other audio to the
    callers of that codec than to the rest: a problem)."""
    paths = {fmt.ext: sound_path(out, name, fmt.ext) for fmt in NATIVE_FORMATS}
    present = {ext for ext, path in paths.items() if path.is_file()}
    if not present:
        if wav.is_file():
            report.transcoded += 1
            report.warnings.append(
                f"{name}: {wav} is played transcoded (only the .wav, no "
                f"{'/'.join(f.suffix for f in NATIVE_FORMATS)}: every call encodes it, G.722 "
                f"calls hear 8 kHz); {REBUILD} (--recorded DIR for recordings)")
        return
    shas = entry.get("formats")
    built_shas = shas if isinstance(shas, dict) else {}
    wav_current = wav.is_file() and entry.get("sha256") == _sha256(wav)
    for fmt in NATIVE_FORMATS:
        path = paths[fmt.ext]
        if fmt.ext not in present:
            report.problems.append(f"{name}: {path} is missing (the other formats are there); "
                                   f"{REBUILD}")
            continue
        if info is not None and info.frames:
            seconds = raw_seconds(path, fmt)
            if abs(seconds - info.seconds) > LENGTH_SLACK:
                report.problems.append(
                    f"{name}: {path} lasts {seconds:.2f} s but its .wav {info.seconds:.2f} s: "
                    f"not the same audio; {REBUILD}")
                continue
        if not wav_current or built_shas.get(fmt.ext) != _sha256(path):
            stale = ("the .wav was changed after the build" if wav.is_file() and not wav_current
                     else "not what the last build wrote")
            report.problems.append(f"{name}: {path} is stale ({stale}): callers of this codec "
                                   f"would hear other audio; {REBUILD}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
