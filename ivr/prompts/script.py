"""`prompts script`: the recording script a voice artist reads in the studio.

One row per sound a recording can replace: every catalogue key (its text and `note`, where the
caller hears it), then the number words and the digits. Each row names the file to deliver
(`welcome.wav`, `num/20.wav`, `digits/9.wav`: what `prompts build --recorded DIR` takes) and a
target length: the key's `budget = <seconds>` in the catalogue when it has one, else the length
of the default voice's audio rounded up to the next half second, so a recording that keeps to it
keeps the call as short as the measured speech time (`prompts timing`).
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.prompts import catalogue
from ivr.prompts.audio import BadWav, inspect_wav
from ivr.prompts.build import (
    DIGIT,
    NUMBER,
    PROMPT,
    Item,
    build,
    catalogue_items,
    digit_items,
    number_items,
)
from ivr.prompts.engines import Engine
from ivr.prompts.layout import sound_path

FORMATS = ("csv", "md")
STEP = 0.5  # target lengths are rounded up to this many seconds
WHERE = {
    NUMBER: "a number word, joined to others to say counts (device number, attempts, minutes)",
    DIGIT: "one digit, joined to others to read IMEIs, mobile numbers, codes and references",
}


@dataclass(frozen=True)
class Line:
    file: str  # the recording's name in --recorded DIR, without the extension
    kind: str
    text: str
    where: str
    target: float | None  # seconds


def target(seconds: float | None, budget: object = None) -> float | None:
    """The budget when the catalogue gives one, else the built length rounded up to STEP."""
    if isinstance(budget, int | float) and not isinstance(budget, bool) and budget > 0:
        return float(budget)
    if seconds is None:
        return None
    return math.ceil(round(seconds / STEP, 6)) * STEP


def lines(
    seconds: Callable[[Item], float | None],
    entries: Mapping[str, Mapping[str, object]] | None = None,
) -> list[Line]:
    """The script's rows; `seconds(item)` is an item's length in the default voice (or None)."""
    entries = catalogue.entries() if entries is None else entries
    rows: list[Line] = []
    for key, entry in entries.items():
        item = Item(f"{catalogue.SOUND_FOLDER}/{key}", str(entry["text"]), PROMPT)
        rows.append(Line(item.recording_name, PROMPT, item.text, str(entry.get("note", "")),
                         target(seconds(item), entry.get("budget"))))
    for item in [*number_items(), *digit_items()]:
        rows.append(Line(item.recording_name, item.kind, item.text, WHERE[item.kind],
                         target(seconds(item))))
    return rows


HEADER = ("file", "kind", "text", "where it is heard", "target seconds")


def _cells(line: Line) -> tuple[str, str, str, str, str]:
    length = "" if line.target is None else f"{line.target:g}"
    return (f"{line.file}.wav", line.kind, line.text, line.where, length)


def render(rows: Sequence[Line], fmt: str) -> str:
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(_cells(line) for line in rows)
        return buffer.getvalue()
    if fmt == "md":
        def row(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        out = [
            "# Hamta IVR: recording script", "",
            "Record each text as one file named as in the first column (wav, flac, ogg or mp3; "
            "any rate), no longer than the target, with no silence before or after the words. "
            "Number words and digits are joined to each other during a call: say them evenly, "
            "without a falling end.", "",
            row(HEADER), row(["---"] * len(HEADER)),
        ]
        out += [row(_cells(line)) for line in rows]
        return "\n".join(out) + "\n"
    raise ValueError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")


def script(engine: Engine, fmt: str) -> tuple[str, int]:
    """(the script in `fmt`, its number of lines): every sound built once in `engine`'s voice in
    a temporary folder, for the target lengths."""
    items = [*catalogue_items(), *number_items(), *digit_items()]
    with tempfile.TemporaryDirectory(prefix="hamta-script-") as tmp:
        build(items, Path(tmp), engine, prune=False)  # lengths in the default voice, as built
        lengths = {item.name: _seconds(sound_path(Path(tmp), item.name)) for item in items}
    return render(lines(lambda item: lengths.get(item.name)), fmt), len(items)


def _seconds(path: Path) -> float | None:
    try:
        return inspect_wav(path).seconds
    except (OSError, BadWav):
        return None
