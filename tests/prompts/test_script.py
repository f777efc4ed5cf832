"""`prompts script`: what a voice artist records, and how long each take may be."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.prompts import catalogue
from ivr.prompts.script import lines, render, target

from .conftest import need

ENTRIES = {
    "welcome": {"text": "خوش آمدید.", "note": "first words"},
    "main_menu": {"text": "منو", "note": "the menu", "budget": 12},
}


def test_targets_round_up_to_half_a_second_unless_budgeted():
    assert target(2.01) == 2.5 and target(2.5) == 2.5 and target(0.3) == 0.5
    assert target(7.2, budget=6) == 6.0 and target(None) is None
    rows = lines(lambda item: {"hamta/welcome": 1.6}.get(item.name, 0.4), ENTRIES)
    assert [(r.file, r.target) for r in rows[:2]] == [("welcome", 2.0), ("main_menu", 12.0)]
    assert rows[0].where == "first words"
    files = [r.file for r in rows]
    assert "num/20" in files and "digits/9" in files and len(files) == 2 + 41 + 10
    nine = next(r for r in rows if r.file == "digits/9")
    assert nine.text == "نُه" and nine.target == 0.5


def test_csv_and_markdown():
    rows = lines(lambda item: 1.2, ENTRIES)
    table = list(csv.reader(io.StringIO(render(rows, "csv"))))
    assert table[0] == ["file", "kind", "text", "where it is heard", "target seconds"]
    assert table[1] == ["welcome.wav", "prompt", "خوش آمدید.", "first words", "1.5"]
    md = render(rows, "md")
    assert "| welcome.wav | prompt | خوش آمدید. | first words | 1.5 |" in md
    with pytest.raises(ValueError, match="csv, md"):
        render(rows, "pdf")


def test_the_command_on_the_default_voice(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    need("espeak-ng", "sox")
    dest = tmp_path / "script.md"
    assert main(["prompts", "script", "--out", str(dest)]) == 0
    text = dest.read_text(encoding="utf-8")
    assert text.startswith("# Hamta IVR: recording script")
    for key, entry in catalogue.entries().items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {key}.wav |"))
        assert entry["text"] in row
        assert float(row.rstrip(" |").rsplit("| ", 1)[1]) > 0
    assert main(["prompts", "script"]) == 0
    assert capsys.readouterr().out.startswith("file,kind,text,where it is heard,target seconds")
