"""Where the prompt code and its catalogue live, and what the prompt code may import.

The code is the package ivr/prompts; the catalogue a translator edits stays at
prompts/catalogue.toml and reaches the package through the symbolic link
ivr/prompts/catalogue.toml (copied into a wheel as a file). The prompt code sits below the flows,
the registry and the channels: it is handed the flows' keys and the device names by the command
line (ivr/cli/prompts.py: ivr.registry.device_names, ivr.call.listening), never imports them.
"""

from __future__ import annotations

import ast
import tomllib
from importlib import resources
from pathlib import Path

from ivr.prompts import catalogue

ROOT = Path(__file__).resolve().parents[2]
ABOVE_PROMPTS = ("ivr.flows", "ivr.registry", "ivr.call", "ivr.cli", "ivr.app", "ivr.asterisk",
                 "bench", "ivr.testing")


def test_the_packaged_catalogue_is_the_translators_file():
    packaged = resources.files("ivr.prompts").joinpath(catalogue.CATALOGUE_FILE)
    source = ROOT / "prompts" / catalogue.CATALOGUE_FILE
    assert packaged.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
    link = ROOT / "ivr" / "prompts" / catalogue.CATALOGUE_FILE
    if link.is_symlink():  # a source checkout; an installed wheel holds a copy
        assert link.resolve() == source.resolve()


def test_the_prompt_code_imports_nothing_above_it():
    found = []
    for path in sorted((ROOT / "ivr" / "prompts").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}:{node.lineno} imports {name}" for name in names
                      if name.startswith(ABOVE_PROMPTS)]
    assert found == [], "pass what the prompt code needs in from ivr/cli/prompts.py instead"


def test_every_package_is_listed_in_pyproject():
    # pyproject.toml lists the packages (package-dir maps ivr.migrations to db/migrations, which
    # package discovery cannot follow): a new folder under ivr/ must be added there
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for top in ("ivr", "bench") for init in (ROOT / top).rglob("__init__.py")}
    assert sorted(on_disk - listed) == []
    assert {"ivr.migrations", "ivr.migrations.versions"} <= listed
    assert "catalogue.toml" in setuptools["package-data"]["ivr.prompts"]
