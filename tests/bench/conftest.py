"""`hamta-ivr bench` through ivr.cli in tests, whatever the installed metadata says."""

from __future__ import annotations

import importlib.metadata

import pytest

from ivr.cli import COMMAND_ENTRY_POINTS

BENCH = importlib.metadata.EntryPoint(name="bench", value="bench.cli:register",
                                      group=COMMAND_ENTRY_POINTS)


@pytest.fixture
def bench_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry point an install of this tree declares (pyproject.toml), added when the
    installed hamta-ivr predates it (a development venv until `pip install -e .` runs again)."""
    real = importlib.metadata.entry_points

    def entry_points(**selection: str) -> list[importlib.metadata.EntryPoint]:
        found = list(real(**selection))
        if selection.get("group") == COMMAND_ENTRY_POINTS and "bench" not in {
                e.name for e in found}:
            found.append(BENCH)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
