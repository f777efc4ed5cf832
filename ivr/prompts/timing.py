"""`prompts timing`: the seconds of speech a caller hears on each operation's main path.

Measured from the built audio, not a clock: `hamta-ivr prompts timing` (ivr/cli/prompts.py) places
real console calls with the key scripts of OPERATIONS on a throwaway demo registry, collects every
sound each call plays (prompt keys, number words, `digits/N`, device names) and this module sums
their WAV durations in the sounds dir, plus the pauses between digit groups (every digit string,
secret or not, plays its digit files back to back). Keys are typed at once, there is no barge-in,
every prompt is heard in full. The figures do not depend on the machine's speed, only on the audio.

A path runs from the first word of the call (the welcome) to its end: the first time the prompt
`until` plays after the script's last key was typed, with the numbers, digits and device names
said right after it (a verdict and the device's name, «transferred» and its reference number).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.prompts.audio import BadWav, inspect_wav
from ivr.prompts.catalogue import SOUND_FOLDER
from ivr.prompts.layout import DEVICE_FOLDER, PromptsError, sound_path
from ivr.prompts.persian import NUMBER_FOLDER

# The subscriber seeded next to the demo registry for the one-device transfer (ivr/registry/demo.py
# has no kartabl with a password and a single device): number, password, device, code, brand, model.
ONE_DEVICE = "09127777777"
ONE_DEVICE_PIN = "7777"
ONE_DEVICE_IMEI = "350000000002002"  # Luhn-valid, not used by the demo registry
ONE_DEVICE_CODE = "11223344"
ONE_DEVICE_NAME = ("Samsung", "Galaxy A54")

SELLER, SELLER_PIN = "09121111111", "1234"  # the demo registry's (ivr/registry/demo.py)
BUYER = "09122222222"
DEMO_PHONE, DEMO_CODE = "350000000000014", "12345678"  # the seller's Samsung, with its code
RETURNER, RETURNER_PIN = "09128888888", "8888"  # the demo's: a stolen phone, a returnable sale
SMS_CODE = "482915"  # the SMS code every measured call gets (ivr.registry.sim_codes, draw)


@dataclass(frozen=True)
class Operation:
    """One operation's main path: who calls, the keys typed, where the path ends, its budget."""

    name: str
    caller: str | None
    keys: str  # as `hamta-ivr call --keys` takes them; `{sale}`: the demo sale's reference
    until: str  # the prompt key that ends the path (see the module docstring)
    budget: float | None = None  # seconds on the default voice (issue 10); None: no budget yet
    # a call placed first on the same registry, not measured (caller, keys): the other side's
    # half of a two-sided operation (a return the previous owner confirms)
    before: tuple[str | None, str] | None = None


# THE table: the lead updates the key scripts and end prompts here when the menus change.
OPERATIONS: tuple[Operation, ...] = (
    Operation("main menu", SELLER, "", "main_menu", 15.0),
    Operation("inquiry, registered device", SELLER, f"1 {DEMO_PHONE}", "imei_registered", 25.0),
    # 62 s, not issue 10's 60: a kartabl of one device is asked about too (`1`, 2.5 s), so the
    # `1` a caller presses after «device one» never becomes the code's first digit (issue 18)
    Operation("transfer, one-device kartabl", ONE_DEVICE,
              f"3 1 {ONE_DEVICE_PIN}# 1 {ONE_DEVICE_CODE} {BUYER} 1", "transferred", 62.0),
    # the same sale from another phone: the SIM's SMS code (SMS_CODE) after the device is said
    Operation("transfer for another number (SMS code)", BUYER,
              f"3 2 {ONE_DEVICE} {ONE_DEVICE_PIN}# 1 {SMS_CODE} {ONE_DEVICE_CODE} {SELLER} 1",
              "transferred"),
    Operation("activation", BUYER, f"2 {DEMO_PHONE} {DEMO_CODE} 1", "activated"),
    Operation("get a code", SELLER, f"4 1 {SELLER_PIN}# 1 1", "code_is"),
    Operation("my devices", SELLER, f"5 1 1 {SELLER_PIN}#", "list_end"),
    Operation("change code", SELLER, f"5 2 1 {SELLER_PIN}# 1 86427531 86427531",
              "code_changed"),
    Operation("report stolen, to the case number", SELLER, f"5 3 1 {SELLER_PIN}# 1 2 1",
              "case_is"),
    Operation("withdraw a report", RETURNER, f"5 3 1 {RETURNER_PIN}# 1 1", "report_withdrawn"),
    Operation("start a return, the device from the week's list", RETURNER,
              f"5 4 1 {RETURNER_PIN}# 1 1", "return_started"),
    Operation("start a return, with the reference", RETURNER,
              f"5 4 1 {RETURNER_PIN}# 0 {{sale}} 1", "return_started"),
    Operation("confirm a return (one waiting)", SELLER, f"5 4 1 {SELLER_PIN}# 1 1",
              "reference_is", before=(RETURNER, f"5 4 1 {RETURNER_PIN}# 1 1")),
    Operation("buyer's rights (6)", SELLER, "6", "rights_free"),
)


@dataclass(frozen=True)
class Heard:
    """One sound the caller heard (its name under sounds/fa) and the silence the channel put
    after it (a pause between digit groups)."""

    name: str
    gap_after: float = 0.0


@dataclass
class CallSounds:
    """What a console call played, and where in it the script's last key was typed."""

    heard: list[Heard] = field(default_factory=list)
    last_key_at: int = 0  # len(heard) when the last scripted key was taken
    waits: list[int] = field(default_factory=list)  # len(heard) each time the IVR waited for keys


def is_prompt(name: str) -> bool:
    """A catalogue prompt (hamta/<key>), not a number word, digit or device name."""
    return (name.startswith(f"{SOUND_FOLDER}/")
            and not name.startswith((f"{NUMBER_FOLDER}/", f"{DEVICE_FOLDER}/")))


def main_path(call: CallSounds, until: str) -> list[Heard]:
    """The sounds from the first word to the path's end (see the module docstring)."""
    end_name = f"{SOUND_FOLDER}/{until}"
    heard = call.heard
    try:
        end = next(i for i in range(call.last_key_at, len(heard)) if heard[i].name == end_name)
    except StopIteration:
        after = [h.name.removeprefix(f"{SOUND_FOLDER}/") for h in heard[call.last_key_at:]
                 if is_prompt(h.name)]
        raise PromptsError(
            f"the call never played {until!r} after its last key (it played "
            f"{', '.join(after) or 'nothing'}); update OPERATIONS in ivr/prompts/timing.py to "
            "the current menus"
        ) from None
    end += 1
    while end < len(heard) and not is_prompt(heard[end].name):
        end += 1
    path = heard[:end]
    if path:  # the channel's gap after the last sound is not speech the caller waits through
        path[-1] = Heard(path[-1].name)
    return path


def durations(sounds: Path, names: Iterable[str]) -> dict[str, float]:
    """Each sound's length in seconds, read from its WAV file under `sounds` (the sounds dir)."""
    seconds: dict[str, float] = {}
    for name in sorted(set(names)):
        path = sound_path(sounds, name)
        try:
            seconds[name] = inspect_wav(path).seconds
        except FileNotFoundError:
            raise PromptsError(f"{name}: {path} is missing; run `hamta-ivr prompts build` "
                               "first") from None
        except BadWav as exc:
            raise PromptsError(f"{name}: {path}: {exc}; run `hamta-ivr prompts build`") from None
    return seconds


@dataclass(frozen=True)
class Timing:
    operation: str
    seconds: float
    sounds: int
    budget: float | None

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return "-"
        return "PASS" if self.seconds <= self.budget else "OVER"

    def as_dict(self) -> dict[str, object]:
        return {"operation": self.operation, "seconds": round(self.seconds, 2),
                "sounds": self.sounds, "budget": self.budget, "verdict": self.verdict}


def measure(operation: Operation, call: CallSounds, seconds: Mapping[str, float]) -> Timing:
    """Sum the durations (and gaps) of the operation's main path."""
    path = main_path(call, operation.until)
    total = sum(seconds[h.name] + h.gap_after for h in path)
    return Timing(operation.name, total, len(path), operation.budget)


def time_operations(
    calls: Mapping[str, CallSounds], sounds: Path, operations: Sequence[Operation] = OPERATIONS,
) -> list[Timing]:
    """Timings of `operations`, given the sounds each one's call played (by operation name)."""
    paths: dict[str, list[Heard]] = {}
    for op in operations:
        try:
            paths[op.name] = main_path(calls[op.name], op.until)
        except PromptsError as exc:
            raise PromptsError(f"{op.name} (keys {op.keys!r}): {exc}") from None
    seconds = durations(sounds, (h.name for path in paths.values() for h in path))
    return [measure(op, calls[op.name], seconds) for op in operations]


def render(timings: Sequence[Timing]) -> str:
    """A Markdown table: operation, seconds, sounds, budget, PASS/OVER."""
    rows = [("operation", "seconds", "sounds", "budget s", "verdict")]
    rows += [(t.operation, f"{t.seconds:.1f}", str(t.sounds),
              "-" if t.budget is None else f"{t.budget:g}", t.verdict) for t in timings]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def to_json(timings: Sequence[Timing], sounds: Path, source: str) -> str:
    return json.dumps({"sounds": str(sounds), "voice": source,
                       "operations": [t.as_dict() for t in timings]},
                      ensure_ascii=False, indent=1)


def render_paths(calls: Mapping[str, CallSounds], sounds: Path) -> str:
    """Each operation's main path, sound by sound with its seconds (`prompts timing --sounds`:
    where the time goes, or what to update the key scripts with)."""
    lines = []
    for op in OPERATIONS:
        path = main_path(calls[op.name], op.until)
        seconds = durations(sounds, (h.name for h in path))
        lines.append(f"\n{op.name} (keys {op.keys!r}, ends with {op.until!r}):")
        for h in path:
            gap = f" + {h.gap_after:.2f} s gap" if h.gap_after else ""
            lines.append(f"  {seconds[h.name]:5.2f} s  {h.name}{gap}")
    return "\n".join(lines)
