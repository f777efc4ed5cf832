"""`hamta-ivr prompts build` then `prompts check`: the whole set, as the README runs them."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.prompts import catalogue
from ivr.prompts.layout import sound_path


def registry_file(tmp_path: Path) -> str:
    db = tmp_path / "registry.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table devices (imei text, brand text, model text)")
        conn.execute("insert into devices values ('1', 'Xiaomi', 'Redmi Note 12')")
    conn.close()
    return f"sqlite:///{db}"


def test_full_build_then_check(tools, out: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]):
    db = registry_file(tmp_path)
    args = ["--db", db, "prompts", "build", "--out", str(out), "--device", "Samsung|Galaxy A54"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    total = len(catalogue.keys()) + 41 + 10 + 2
    assert f"[1/{total}] " in printed and f"[{total}/{total}] " in printed
    assert re.search(rf"{total} built, 0 unchanged, 0 removed .*1 device names from the "
                     "registry", printed)
    for name in ["hamta/welcome", "hamta/main_menu", "hamta/num/thousand", "digits/9",
                 "hamta/device/samsung-galaxy-a54", "hamta/device/xiaomi-redmi-note-12"]:
        assert sound_path(out, name).is_file(), name

    assert main(["prompts", "check", "--out", str(out)]) == 0
    assert f"OK — {total} sounds" in capsys.readouterr().out

    assert main(["--db", db, "prompts", "build", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "[1/" not in printed and f"0 built, {total - 1} unchanged" in printed


def test_usage_errors_exit_2(out: Path, capsys: pytest.CaptureFixture[str],
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert main(["prompts", "build", "--out", str(out), "--device", "Samsung"]) == 2
    assert "BRAND|MODEL" in capsys.readouterr().err
    assert main(["prompts", "build", "--out", str(out), "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err
    missing = tmp_path / "absent.db"
    assert main(["--db", f"sqlite:///{missing}", "prompts", "build", "--out", str(out)]) == 2
    assert "check --db / HAMTA_DB_URL" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["prompts", "build", "--out", str(out), "--no-registry"]) == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err


def test_no_registry_yet_is_fine(tools, out: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch):
    # the default SQLite registry does not exist yet: names come only from --device
    small = {"welcome": catalogue.entries()["welcome"]}
    monkeypatch.setattr("ivr.prompts.catalogue.entries", lambda: small)
    assert main(["prompts", "build", "--out", str(out)]) == 0
    assert "0 device names from the registry" in capsys.readouterr().out
    assert not (tmp_path / "data" / "registry.db").exists(), "reading names creates no database"
