"""The command line stays thin (issue 20): each command parses its arguments and calls a library
function. The commands' files, apart from `service` and `bench` (their own slices), stay under
this many lines; code that grows past it belongs in the room it is about, not in ivr/cli/."""

from __future__ import annotations

from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "ivr" / "cli"
ELSEWHERE = {"service.py", "bench.py"}
LIMIT = 1_200


def test_the_command_line_stays_thin() -> None:
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines())
             for path in sorted(CLI.glob("*.py")) if path.name not in ELSEWHERE}
    assert sum(sizes.values()) <= LIMIT, sizes
