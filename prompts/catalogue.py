"""The prompt catalogue (catalogue.toml beside this file): prompt key -> Persian text and sound."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

SOUND_FOLDER = "hamta"  # under sounds/<language>/, next to Asterisk's own digits/


@cache
def entries() -> dict[str, dict[str, str]]:
    raw = resources.files(__package__).joinpath("catalogue.toml").read_text(encoding="utf-8")
    return tomllib.loads(raw)


def keys() -> list[str]:
    return list(entries())


def text(key: str) -> str:
    try:
        return entries()[key]["text"]
    except KeyError:
        raise KeyError(f"prompt key {key!r} is not in prompts/catalogue.toml") from None


def sound_file(key: str) -> str:
    """The name Asterisk plays (no extension), relative to sounds/<language>/."""
    text(key)  # a missing key fails here, naming the catalogue, not later in Asterisk
    return f"{SOUND_FOLDER}/{key}"
