"""The bench lives beside the runtime package, not inside it: `ivr` never imports `bench` (nor
the registry Prometheus), and `hamta-ivr bench` is found through the entry point
`hamta_ivr.commands: bench` that pyproject.toml declares and ivr.cli loads."""

from __future__ import annotations

import ast
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from ivr import cli

ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, `importlib.import_module("…")` included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found += [(node.lineno, f"{module}.{alias.name}" if module else alias.name)
                      for alias in node.names]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__")):
            found.append((node.lineno, node.args[0].value))
    return found


def offenders(folder: Path, banned: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in sorted(folder.rglob("*.py")) for line, name in imports(path)
            if name in banned or name.startswith(tuple(b + "." for b in banned))]


def test_the_runtime_package_never_imports_the_bench() -> None:
    assert offenders(ROOT / "ivr", ("bench",)) == []


def test_the_registry_imports_no_metrics() -> None:
    """The registry tells ivr.registry.observe; ivr.metrics attaches Prometheus there."""
    assert offenders(ROOT / "ivr" / "registry", ("ivr.metrics", "prometheus_client")) == []


def test_pyproject_ships_the_bench_and_declares_its_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"][cli.COMMAND_ENTRY_POINTS] == {
        "bench": "bench.cli:register"}
    assert "bench" in project["tool"]["setuptools"]["packages"]


def fake_entry_points(*values: str):
    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        assert group == cli.COMMAND_ENTRY_POINTS
        return [importlib.metadata.EntryPoint(name=f"command{i}", value=value, group=group)
                for i, value in enumerate(values)]
    return entry_points


def test_the_command_line_loads_commands_from_entry_points(monkeypatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        fake_entry_points("bench.cli:register"))
    args = cli.build_parser().parse_args(["bench", "--quick", "--sizes", "10"])
    assert args.quick and args.sizes == "10" and args.func.__module__ == "bench.cli"


def test_a_command_that_cannot_load_leaves_the_others_working(monkeypatch, capsys) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        fake_entry_points("no_such_package.cli:register"))
    args = cli.build_parser().parse_args(["doctor"])
    assert callable(args.func)
    [line] = capsys.readouterr().err.splitlines()
    assert "no_such_package.cli:register" in line and "reinstall hamta-ivr" in line


def test_the_installed_command_line_has_the_bench() -> None:
    """Once hamta-ivr is (re)installed from this tree, its metadata carries the entry point."""
    installed = importlib.metadata.entry_points(group=cli.COMMAND_ENTRY_POINTS)
    if "bench" not in installed.names:
        pytest.skip("the installed hamta-ivr predates the entry point: pip install -e . again")
    args = cli.build_parser().parse_args(["bench", "--quick"])
    assert args.func.__module__ == "bench.cli"
