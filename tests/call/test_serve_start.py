"""`hamta-ivr serve` checks at start that it can work (issue 11): a bad setting is a usage error
naming it (one line, exit 2), a registry that does not take writes stops it before it listens with
one line naming HAMTA_DB_URL/--db and the fix, never a traceback. (Stale calls closed as
interrupted at start: tests/call/test_spool.py, after each kill -9.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "ivr"]


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HAMTA_")}
    base.update(HAMTA_DATA_DIR=str(tmp_path / "data"), HAMTA_SPOOL_DIR=str(tmp_path / "spool"),
                HAMTA_SOUNDS_DIR=str(tmp_path / "sounds"), **env)
    return subprocess.run([*CLI, *args], env=base, capture_output=True, text=True, timeout=60)


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--workers", "0"], {}, "--workers"),
    (["--workers", "-1"], {}, "--workers"),
    (["--drain", "-5"], {}, "--drain"),
    (["--drain", "nan"], {}, "--drain"),
    (["--max-calls", "0"], {}, "--max-calls"),
    (["--max-calls", "-3"], {}, "--max-calls"),
    ([], {"HAMTA_MAX_CALLS": "0"}, "HAMTA_MAX_CALLS"),
    ([], {"HAMTA_MAX_CALLS": "lots"}, "HAMTA_MAX_CALLS"),
    (["--idle-limit", "0"], {}, "--idle-limit"),
    ([], {"HAMTA_IDLE_LIMIT": "-1"}, "HAMTA_IDLE_LIMIT"),
])
def test_bad_settings_are_usage_errors(tmp_path: Path, args: list[str], env: dict[str, str],
                                       named: str) -> None:
    done = run(tmp_path, "serve", "--port", "0", *args, **env)
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert line.startswith("hamta-ivr: error: ") and named in line


def test_a_read_only_registry_stops_serve_before_it_listens(tmp_path: Path) -> None:
    db = tmp_path / "data" / "registry.db"
    for step in (["db", "upgrade"], ["db", "seed-demo"]):  # a registry with its pepper
        assert run(tmp_path, *step).returncode == 0
    # root writes to a chmod 444 file regardless; SQLite's read-only open mode is what fails
    # writes for everyone ("attempt to write a readonly database")
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    for how in (["--db", url], []):
        done = run(tmp_path, *how, "serve", "--port", "0",
                   **({} if how else {"HAMTA_DB_URL": url}))
        assert done.returncode != 0
        line = one_line(done.stderr)
        assert "HAMTA_DB_URL/--db" in line
        assert "read-only" in line or "does not take writes" in line
        assert "writ" in line.partition(";")[2]  # the fix: a database this user can write
