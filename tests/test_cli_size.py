"""The command line stays thin (issue 20): each command parses its arguments and calls a library
function. The commands' files stay under this many lines (2,910 before issue 20; about a third
of what is left is argparse's help text); code that grows past it belongs in the room it is
about, not in ivr/cli/."""

from __future__ import annotations

from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "ivr" / "cli"
LIMIT = 1_300


def test_the_command_line_stays_thin() -> None:
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines())
             for path in sorted(CLI.glob("*.py"))}
    assert sum(sizes.values()) <= LIMIT, sizes


def test_each_command_is_found_where_main_imports_it_from() -> None:
    """`main` imports only the module of the command on the line (ivr.cli.COMMANDS): every
    command the modules register is listed there, with the module that registers it."""
    import argparse
    from importlib.metadata import entry_points

    from ivr.cli import COMMAND_ENTRY_POINTS, COMMANDS, build_parser, main

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    shipped_beside = [entry.name for entry in entry_points(group=COMMAND_ENTRY_POINTS)]
    assert sorted(sub.choices) == sorted([*COMMANDS, *shipped_beside])
    for command, module in COMMANDS.items():
        alone = next(a for a in build_parser([command])._actions
                     if isinstance(a, argparse._SubParsersAction))
        assert command in alone.choices, module
    assert main(["--db", "sqlite://", "calls", "--json"]) in (0, 2)  # --db's value is no command
