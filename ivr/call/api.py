"""The call API every flow is written against, and the behaviour callers meet on every channel.

A channel (FastAGI, classic AGI, the console caller) implements four primitives: play one sound,
say digits, wait for one key, hang up. Everything a caller notices — barge-in, timeouts, retries,
re-prompts, `*` to repeat, `#` to finish, the goodbye after the last try, secrets never echoed —
is implemented once here, so the flows read like the seed documents and behave the same everywhere.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ivr.prompts import catalogue
from ivr.prompts.persian import number_files, number_words

log = logging.getLogger(__name__)

FIRST_DIGIT_TIMEOUT = 8.0  # seconds a caller gets to start an entry after the prompt ends
INTER_DIGIT_TIMEOUT = 5.0  # seconds between two keys of one entry
RETRIES = 3  # tries per question before the polite goodbye
ALL_KEYS = "0123456789*#"


class CallerHungUp(Exception):
    """The caller hung up; flows let it propagate, nothing half-done is written."""


class NoMoreTries(Exception):
    """The caller used every try of a question (silence or wrong entries)."""

    def __init__(self, silent: bool) -> None:
        super().__init__("silence" if silent else "invalid entries")
        self.silent = silent


# --- what can be played: prompt keys and spoken values ------------------------------------------
@dataclass(frozen=True)
class Digits:
    """Digits read one by one (IMEIs, phone numbers, codes, reference numbers)."""

    value: str
    secret: bool = False  # a code read to its owner: spoken, but masked in transcripts and logs


@dataclass(frozen=True)
class Number:
    """A count, read as Persian number words (21 -> «بیست و یک»)."""

    value: int


@dataclass(frozen=True)
class DeviceName:
    """A device's brand and model, said when the channel has audio for it (names come from the
    registry, so audio may lag behind; the device list always reads the IMEI's ending too)."""

    brand: str
    model: str


Say = str | Digits | Number | DeviceName


@dataclass(frozen=True)
class Sound:
    """One file Asterisk can play (name relative to the language folder) and what it says."""

    file: str
    text: str


Validator = Callable[[str], "str | None"]  # returns a prompt key naming what is wrong, or None


def mask(value: str) -> str:
    return "*" * len(value)


@dataclass
class Call(ABC):
    """One call. Subclasses implement the primitives; flows use the public methods."""

    call_id: str
    caller_id: str | None  # as the network gave it; None when withheld
    channel_name: str = "console"
    path: list[str] = field(default_factory=list)  # menu path for the call log
    _typed: str = ""  # keys pressed during a prompt (barge-in) or typed ahead

    # --- primitives (one per channel) ------------------------------------------------------------
    @abstractmethod
    async def stream(self, sound: Sound, escape: str) -> str | None:
        """Play one sound; return the key that interrupted it, if any. Raise CallerHungUp."""

    @abstractmethod
    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        """Read digits with the language's digit prompts (Asterisk SAY DIGITS)."""

    @abstractmethod
    async def wait_digit(self, timeout: float) -> str | None:
        """One key within `timeout` seconds, None on silence. Raise CallerHungUp."""

    @abstractmethod
    async def hangup(self) -> None:
        """End the call from our side."""

    async def say_number(self, value: int, escape: str) -> str | None:
        """A count in Persian words, one number-word sound at a time."""
        words = number_words(value)
        for file in number_files(value):
            key = await self.stream(Sound(file, words), escape)
            if key:
                return key
        return None

    async def device_name(self, name: DeviceName, escape: str) -> tuple[bool, str | None]:
        """Say a device name if the channel has audio for it: (spoken, key pressed)."""
        return False, None

    def note(self, line: str) -> None:  # noqa: B027 - optional hook
        """A transcript line (console) or log line; never called with a secret."""

    # --- playing ---------------------------------------------------------------------------------
    async def play(self, *items: Say, barge_in: bool = True) -> None:
        """Play items in order. A key pressed during them stops the rest and is kept as input."""
        escape = ALL_KEYS if barge_in else ""
        for item in items:
            if self._typed and barge_in:
                return
            key = await self._play_one(item, escape)
            if key:
                self._typed += key
                return

    async def _play_one(self, item: Say, escape: str) -> str | None:
        if isinstance(item, str):
            return await self.stream(sound_for(item), escape)
        if isinstance(item, Digits):
            return await self.say_digit_string(item.value, escape, secret=item.secret)
        if isinstance(item, Number):
            return await self.say_number(item.value, escape)
        _, key = await self.device_name(item, escape)
        return key

    # --- asking ----------------------------------------------------------------------------------
    async def ask_digits(
        self,
        prompt: Sequence[Say],
        *,
        min_len: int,
        max_len: int,
        validator: Validator | None = None,
        secret: bool = False,
        retries: int = RETRIES,
        first_timeout: float = FIRST_DIGIT_TIMEOUT,
        inter_timeout: float = INTER_DIGIT_TIMEOUT,
        immediate: str = "",
        label: str = "digits",
    ) -> str:
        """An entry of min_len..max_len digits.

        A fixed-length entry completes on its last digit; a variable one on `#` (or a pause after
        at least min_len digits); a key in `immediate` pressed first is the whole entry. `*`
        starts the entry over. A wrong entry hears why (the validator's prompt key) and tries
        again; after the last try raises NoMoreTries.
        """
        silent = True  # was the last try silence? (the call log says timed out, not gave up)
        for _ in range(retries):
            await self.play(*prompt)
            entry, status = await self._collect(
                min_len, max_len, first_timeout, inter_timeout, immediate
            )
            shown = mask(entry) if secret else entry
            self.note(f"  [{label}] {shown or '-'} ({status})")
            silent = status == "silence"
            if silent:
                await self.play("no_input")
                continue
            if status == "restart":
                continue
            valid_length = min_len <= len(entry) <= max_len or (entry != "" and entry in immediate)
            reason = None if valid_length else "invalid_entry"
            if reason is None and validator is not None:
                reason = validator(entry)
            if reason is None:
                return entry
            await self.play(reason)
        raise NoMoreTries(silent)

    async def _collect(
        self, min_len: int, max_len: int, first_timeout: float, inter_timeout: float,
        immediate: str,
    ) -> tuple[str, str]:
        fixed = min_len == max_len
        entry = ""
        while True:
            key = await self._next_key(first_timeout if not entry else inter_timeout)
            if not entry and key and key in immediate:
                return key, "entered"
            if key is None:
                if entry and not fixed and len(entry) >= min_len:
                    return entry, "paused"
                return entry, "silence" if not entry else "incomplete"
            if key == "#":
                return entry, "entered"
            if key == "*":
                return entry, "restart"
            entry += key
            if len(entry) >= max_len:
                if fixed:
                    return entry, "entered"
                # a variable entry at its maximum still waits for `#`; more digits are too long
                key = await self._next_key(inter_timeout)
                if key in ("#", None):
                    return entry, "entered"
                return entry + key, "too long"

    async def _next_key(self, timeout: float) -> str | None:
        if self._typed:
            key, self._typed = self._typed[0], self._typed[1:]
            return key
        return await self.wait_digit(timeout)

    async def menu(
        self, prompt: Sequence[Say], keys: str, *, retries: int = RETRIES, label: str = "menu"
    ) -> str:
        """One key from `keys`. `*` hears the menu again (not counted as a try)."""
        silent = True
        attempt = 0
        while attempt < retries:
            await self.play(*prompt)
            key = await self._next_key(FIRST_DIGIT_TIMEOUT)
            self.note(f"  [{label}] {key or '-'}")
            if key == "*":
                continue
            attempt += 1
            silent = key is None
            if silent:
                await self.play("no_input")
                continue
            if key in keys:
                return key
            await self.play("invalid_choice")
        raise NoMoreTries(silent)

    async def goodbye(self) -> None:
        await self.play("goodbye", barge_in=False)
        await self.hangup()


def sound_for(key: str) -> Sound:
    """The catalogue entry of a prompt key as a playable sound; KeyError names a missing key."""
    return Sound(catalogue.sound_file(key), catalogue.text(key))
