"""Callers paced as people are: every prompt lasts as long as its built WAV file, and keys come
at a person's speed (a pause to think before the first key after a prompt, then a fraction of a
second per digit, with jitter). Silent questions wait their full timeout, as Asterisk would.

The lengths are read from the built audio by ivr.prompts.timing (the one place that measures
it); the bench calls the result a pacing so that the fake Asterisk sleeps that long before it
answers each command.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.prompts.layout import FORMAT, LANGUAGE
from ivr.prompts.timing import durations
from ivr.testing.fake_asterisk import Pacing

THINK = (1.0, 2.5)  # seconds before a menu choice or the first key of an entry
BETWEEN_KEYS = (0.3, 0.8)  # seconds between the keys of one entry
SILENCE = 600.0  # a silent question waits for its own timeout (never capped below it)
DIGIT_SECONDS = 0.6  # a digit said when its file is unknown (never with built audio)


def built_durations(sounds: Path) -> dict[str, float]:
    """Every built sound's length in seconds, by the name the IVR plays it with
    (`hamta/welcome`, `digits/7`); PromptsError when the audio is not built."""
    folder = sounds / LANGUAGE
    names = [str(p.relative_to(folder).with_suffix("")) for p in folder.rglob(f"*.{FORMAT}")]
    return durations(sounds, names)


@dataclass(frozen=True)
class HumanPacing(Pacing):
    """Real prompt lengths (`seconds` by sound name, `scale` to shrink them for a quick run)
    and human keying, jittered by `seed`."""

    seconds: Mapping[str, float] = field(default_factory=dict, compare=False)
    scale: float = 1.0
    think: tuple[float, float] = THINK
    between_keys: tuple[float, float] = BETWEEN_KEYS
    default_prompt: float = 2.0  # a file missing from `seconds` (a device name, a secret WAV)
    rng: random.Random = field(default_factory=random.Random, compare=False)
    silence: float = SILENCE
    missing: set[str] = field(default_factory=set, compare=False)  # prompts paced by default

    def prompt_seconds(self, file: str) -> float:
        name = file.split("/", 1)[1] if file.startswith(f"{LANGUAGE}/") else file
        seconds = self.seconds.get(name)
        if seconds is None:
            if name.startswith("hamta/"):  # not a device name or a secret digit string
                self.missing.add(name)
            seconds = self.default_prompt
        return seconds * self.scale

    def said_seconds(self, value: str) -> float:
        return sum(self.seconds.get(f"digits/{d}", DIGIT_SECONDS) for d in value) * self.scale

    def key_seconds(self, first: bool) -> float:
        low, high = self.think if first else self.between_keys
        return self.rng.uniform(low, high) * self.scale
