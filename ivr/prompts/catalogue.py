"""The prompt catalogue: prompt key -> Persian text and sound.

The file is prompts/catalogue.toml; the package holds it as catalogue.toml (a link in the source
tree, a copy in an installed wheel) and reads it with importlib.resources. Entries with
`kind = "sms"` are text messages (ivr.sms), never spoken: `entries()` and `keys()` are the
spoken prompts only (what is built, checked, timed and scripted), `messages()` the SMS texts.

A text channel (USSD, ivr/call/text.py) shows `screen()`: each spoken prompt's `screen` form
(short, menus as numbered lines), or nothing for one declared `voice_only = true`; entries with
`kind = "screen"` are shown, never spoken.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

SOUND_FOLDER = "hamta"  # under sounds/<language>/, next to Asterisk's own digits/
CATALOGUE_FILE = "catalogue.toml"

Entries = dict[str, dict[str, str]]


def parse(raw: str, source: str = CATALOGUE_FILE) -> Entries:
    """A catalogue's TOML text -> entries; a malformed entry fails here, naming the file and key."""
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{source} is not valid TOML: {exc}") from None
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            raise ValueError(f"{source}: [{key}] needs a `text = \"…\"` line")
    return data


def load(path: Path) -> Entries:
    """A catalogue file other than the packaged one (a translator's draft, a test's catalogue):
    its spoken prompts."""
    return spoken(parse(Path(path).read_text(encoding="utf-8"), str(path)))


SMS_KIND = "sms"
SCREEN_KIND = "screen"


def spoken(found: Entries) -> Entries:
    return {key: entry for key, entry in found.items()
            if entry.get("kind") not in (SMS_KIND, SCREEN_KIND)}


@cache
def _all() -> Entries:
    raw = resources.files(__package__).joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    return parse(raw, f"prompts/{CATALOGUE_FILE}")


@cache
def entries() -> Entries:
    """The spoken prompts."""
    return spoken(_all())


@cache
def messages() -> Entries:
    """The text messages (`kind = "sms"`): key -> entry, `text` a str.format template."""
    return {key: entry for key, entry in _all().items() if entry.get("kind") == SMS_KIND}


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


@cache
def screens() -> dict[str, str | None]:
    """Prompt key -> its screen text (a text channel's), None for a voice-only prompt; the
    `kind = "screen"` entries' own text. A spoken prompt with neither is left out (a test fails)."""
    found: dict[str, str | None] = {}
    for key, entry in _all().items():
        if entry.get("kind") == SCREEN_KIND:
            found[key] = entry["text"]
        elif entry.get("kind") != SMS_KIND and "screen" in entry:
            found[key] = str(entry["screen"])
        elif entry.get("kind") != SMS_KIND and entry.get("voice_only") is True:
            found[key] = None
    return found


def screen(key: str) -> str | None:
    """What a text channel shows for prompt `key` (None: voice-only, shows nothing)."""
    try:
        return screens()[key]
    except KeyError:
        raise KeyError(f"prompt key {key!r} has no `screen` form (nor `voice_only = true`) in "
                       "prompts/catalogue.toml") from None
