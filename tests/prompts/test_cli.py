"""`hamta-ivr prompts build` then `prompts check`: the whole set, as docs/speech.md runs them."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from stdnum import luhn

from ivr.cli import main
from ivr.prompts import catalogue
from ivr.prompts.layout import PromptsError, sound_path
from ivr.registry.device_names import registry_devices
from ivr.registry.hashing import TEST_ONLY_FAST
from ivr.registry.service import Registry
from tests.registry.support import TEST_PEPPER, SqliteFactory


def registry_with(factory: SqliteFactory, *names: tuple[str, str]) -> str:
    """A migrated SQLite registry holding a device of each (brand, model); its URL."""
    url = factory.url()
    with Registry.open(url, pepper=TEST_PEPPER, hash_params=TEST_ONLY_FAST) as registry:
        for n, (brand, model) in enumerate(names):
            body = f"35{n:012d}"
            registry.portal.add_device(body + luhn.calc_check_digit(body), owner=None,
                                       brand=brand, model=model)
    return url


def test_full_build_then_check(tools, out: Path, sqlite_registry_factory: SqliteFactory,
                               capsys: pytest.CaptureFixture[str]):
    db = registry_with(sqlite_registry_factory, ("Xiaomi", "Redmi Note 12"))
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


def test_registry_devices_from_the_registry(sqlite_registry_factory: SqliteFactory):
    url = registry_with(sqlite_registry_factory, ("Nokia", "G21"), ("Honor", "X7"),
                        ("Honor", "X7"))
    assert registry_devices(url, must_connect=True) == [("Honor", "X7"), ("Nokia", "G21")]


def test_registry_not_there_yet(tmp_path: Path):
    missing = tmp_path / "nothing.db"
    assert registry_devices(f"sqlite:///{missing}") == []
    assert not missing.exists(), "reading names must never create a database"
    with pytest.raises(PromptsError, match="--db / HAMTA_DB_URL"):
        registry_devices(f"sqlite:///{missing}", must_connect=True)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert registry_devices(f"sqlite:///{empty}") == []
    with pytest.raises(PromptsError, match="db upgrade"):
        registry_devices(f"sqlite:///{empty}", must_connect=True)
    assert not (tmp_path / "data" / "pepper").exists(), "reading names needs no pepper"
