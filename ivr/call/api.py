"""The call API every flow is written against, and the behaviour callers meet on every channel.

A channel (FastAGI, classic AGI, the console caller) implements four primitives: play one sound,
say digits, wait for one key, hang up. Everything a caller notices — barge-in, timeouts, retries,
re-prompts, `*` to repeat, `#` to finish, secrets never echoed — is implemented once here, so the
flows read like the seed documents and behave the same everywhere. Flows declare each question
once (`menu()`, `entry()`) and `ask` it; the Answer says entered, timed out or gave up, and only a
hang-up (CallerHungUp) or a real failure raises.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ivr.prompts import catalogue
from ivr.prompts.persian import number_files, number_words
from ivr.registry.msisdn import try_normalize
from ivr.registry.types import Origin

log = logging.getLogger(__name__)

FIRST_DIGIT_TIMEOUT = 8.0  # seconds a caller gets to start an entry after the prompt ends
# ... an entry the caller must first go and read, e.g. an SMS code that arrives during the call
# (the phone taken from the ear): the longest any question waits for its first key
READ_FIRST_TIMEOUT = 30.0
INTER_DIGIT_TIMEOUT = 5.0  # seconds between two keys of one entry
RETRIES = 3  # tries per question before the polite goodbye
GROUP_PAUSE = 0.2  # seconds of silence between the groups of a digit string
FREE_RESTARTS = 3  # `*` pressed in an entry starts it over this often without costing a try
ALL_KEYS = "0123456789*#"
UNEXPECTED = "unexpected key"  # how a try ends on a key outside ALL_KEYS
BACK_KEY = "#"  # pressed alone in any question: back to the main menu
PHONE_CODE = "phone code"  # how a try ends on `*#…#` (a phone code such as *#06#)
PHONE_CODE_PEEK = 1.5  # seconds after `*` to tell a phone code from a restart
PHONE_CODE_MAX = 6  # keys read after `*#` to its closing `#`


class CallerHungUp(Exception):
    """The caller hung up; flows let it propagate, nothing half-done is written."""


# --- what can be played: prompt keys and spoken values ------------------------------------------
@dataclass(frozen=True)
class Digits:
    """Digits read one by one (IMEIs, phone numbers, codes, reference numbers), in the groups
    people read them in (a mobile number 0912 345 6789), with a short pause between groups."""

    value: str
    groups: tuple[int, ...] = ()  # group sizes; the rest of the digits make a last group
    secret: bool = False  # a code read to its owner: spoken, but masked in transcripts and logs

    def grouped(self) -> list[str]:
        """The digit groups in order."""
        parts, at = [], 0
        for size in self.groups:
            if at < len(self.value):
                parts.append(self.value[at:at + size])
            at += size
        if at < len(self.value):
            parts.append(self.value[at:])
        return parts or [self.value]


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


# --- what can be asked: questions declared once, answers with a status ----------------------------
class Status(StrEnum):
    ENTERED = "entered"
    TIMED_OUT = "timed_out"  # silence on the last try
    GAVE_UP = "gave_up"  # a wrong entry on the last try
    BACK = "back"  # the caller asked for the main menu (`#` alone)


@dataclass(frozen=True)
class Answer:
    status: Status
    value: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.ENTERED


@dataclass(frozen=True)
class Question:
    """One question, declared once (after adhearsion-ivr): what is said on the first try and on
    the tries after it, what a valid entry is, how many tries, whether the entry is a secret.
    Build one with `menu()` or `entry()`."""

    label: str  # names the question in transcripts and logs
    prompt: tuple[Say, ...]
    reprompt: tuple[Say, ...] = ()  # tries after the first (default: the prompt again)
    star: tuple[Say, ...] = ()  # what `*` plays (default: the prompt again)
    keys: str = ""  # a menu: one of these keys
    min_len: int = 1
    max_len: int = 1
    validator: Validator | None = None
    secret: bool = False  # masked in transcripts and logs
    immediate: str = ""  # a key that, pressed first, is the whole entry
    tries: int = RETRIES
    patience: int | None = None  # silences that end it at once, unannounced (None: the tries)
    first_timeout: float = FIRST_DIGIT_TIMEOUT
    inter_timeout: float = INTER_DIGIT_TIMEOUT
    # asked by voice only: a text channel (USSD, ivr.call.text) keeps what was said on the
    # screen and answers TIMED_OUT at once, as a silent caller would («hear it again?»)
    voice_only: bool = False

    def check(self, entry: str) -> str | None:
        """The prompt key saying what is wrong with `entry`, or None when it is valid."""
        if self.keys:
            return None if entry in self.keys else "invalid_choice"
        length_ok = self.min_len <= len(entry) <= self.max_len or (
            entry != "" and entry in self.immediate)
        if not length_ok:
            return "invalid_entry"
        return self.validator(entry) if self.validator is not None else None


def menu(label: str, *prompt: Say, keys: str, reprompt: Sequence[Say] = (),
         star: Sequence[Say] = (), patience: int | None = None) -> Question:
    return Question(label, tuple(prompt), tuple(reprompt), tuple(star), keys=keys,
                    patience=patience)


def entry(label: str, *prompt: Say, length: int | tuple[int, int],
          validator: Validator | None = None, secret: bool = False, immediate: str = "",
          reprompt: Sequence[Say] = ()) -> Question:
    low, high = (length, length) if isinstance(length, int) else length
    return Question(label, tuple(prompt), tuple(reprompt), min_len=low, max_len=high,
                    validator=validator, secret=secret, immediate=immediate)


def mask(value: str) -> str:
    return "*" * len(value)


@dataclass
class Call(ABC):
    """One call. Subclasses implement the primitives; flows use the public methods."""

    call_id: str
    caller_id: str | None  # as the network gave it; None when withheld
    channel_name: str = "console"
    # the network vouches for caller_id: the call came in on a trunk the PBX trusts (the
    # dialplan says so, asterisk-conf/extensions.conf); a softphone's or VoIP trunk's never is
    caller_trusted: bool = False
    # the channel can hand the call to a person (Call.hand_off): `0` is offered only then
    hands_off: bool = True
    path: list[str] = field(default_factory=list)  # menu path for the call log
    _typed: str = ""  # keys pressed during a prompt (barge-in) or typed ahead

    @property
    def origin(self) -> Origin:
        """Who asks the registry on this call: the calling line, whether the network vouches
        for it, and the call (lockouts and throttles count by it, the audit records it)."""
        caller = try_normalize(self.caller_id)
        return Origin(caller, self.call_id, vouched=self.caller_trusted and caller is not None)

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

    async def pause(self, seconds: float, escape: str) -> str | None:
        """A short silence (between digit groups); the key pressed meanwhile, if any."""
        return None

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
            for n, group in enumerate(item.grouped()):
                key = await self.pause(GROUP_PAUSE, escape) if n else None
                key = key or await self.say_digit_string(group, escape, secret=item.secret)
                if key:
                    return key
            return None
        if isinstance(item, Number):
            return await self.say_number(item.value, escape)
        _, key = await self.device_name(item, escape)
        return key

    # --- asking ----------------------------------------------------------------------------------
    async def ask(self, question: Question, prompt: Sequence[Say] | None = None) -> Answer:
        """Ask `question` (its `prompt` replaced when given: a list, a confirmation with digits)
        until it gets a valid entry or its tries run out. Never raises for what a caller does
        but hang up: the Answer says entered, timed out or gave up.

        A menu takes one key of `keys`; `*` hears it again, not counted as a try. An entry takes
        min_len..max_len digits: a fixed-length one completes on its last digit, a variable one
        on `#` (or a pause after at least min_len digits); a key in `immediate` pressed first is
        the whole entry; `*` starts the entry over, not counted as a try (up to FREE_RESTARTS
        times a question), and `*#…#` (a phone code such as *#06#) is explained and asked again
        the same way. `#` alone answers BACK (the caller wants the main menu). A wrong entry hears
        why (the validator's prompt key); silence hears `no_input`; then the next try's prompt
        (the question's re-prompt after the first).
        """
        first = tuple(prompt) if prompt is not None else question.prompt
        status = Status.TIMED_OUT
        attempt = restarts = silences = 0
        how = ""
        while attempt < question.tries:
            if how == "restart":  # `*`: the whole question again
                said = question.star or first
            else:
                said = question.reprompt or first if attempt > 0 else first
            await self.play(*said)
            entry, how = await self._collect(question)
            shown = mask(entry) if question.secret else entry
            self.note(f"  [{question.label}] {shown or '-'} ({how})")
            if how == "back":
                return Answer(Status.BACK)
            if how == PHONE_CODE and restarts < FREE_RESTARTS:  # explained, asked again, free
                restarts += 1
                await self.play("phone_code")
                how = ""
                continue
            if how == "restart" and (question.keys or restarts < FREE_RESTARTS):
                restarts += 1
                continue
            attempt += 1
            if how == "silence":
                status = Status.TIMED_OUT
                silences += 1
                if question.patience is not None and silences >= question.patience:
                    break
                await self.play("no_input")
                continue
            status = Status.GAVE_UP
            if how == UNEXPECTED:  # a key no telephone keypad has (A-D, a bad result code)
                reason: str | None = "invalid_choice" if question.keys else "invalid_entry"
            else:
                reason = "invalid_entry" if how == "restart" else question.check(entry)
            if reason is None:
                return Answer(Status.ENTERED, entry)
            await self.play(reason)
        return Answer(status)

    async def _collect(self, question: Question) -> tuple[str, str]:
        """One try's keys: (entry, how it ended). A key outside 0-9 * # ends the try at once as
        UNEXPECTED (an invalid entry, counted as a try); it never reaches the entry."""
        if question.keys:
            key = await self._next_key(question.first_timeout)
            if key is None:
                return "", "silence"
            if key not in ALL_KEYS:
                return "", UNEXPECTED
            if key == BACK_KEY:
                return "", "back"
            return ("", "restart") if key == "*" else (key, "entered")
        min_len, max_len = question.min_len, question.max_len
        fixed = min_len == max_len
        entry = ""
        while True:
            key = await self._next_key(
                question.first_timeout if not entry else question.inter_timeout)
            if not entry and key and key in question.immediate:
                return key, "entered"
            if key is None:
                if entry and not fixed and len(entry) >= min_len:
                    return entry, "paused"
                return entry, "silence" if not entry else "incomplete"
            if key not in ALL_KEYS:
                return entry, UNEXPECTED
            if key == BACK_KEY:
                return entry, "entered" if entry else "back"
            if key == "*":
                return entry, await self._star()
            entry += key
            if len(entry) >= max_len:
                if fixed:
                    return entry, "entered"
                # a variable entry at its maximum still waits for `#`; more digits are too long
                key = await self._next_key(question.inter_timeout)
                if key in ("#", None):
                    return entry, "entered"
                if key not in ALL_KEYS:
                    return entry, UNEXPECTED
                return entry + key, "too long"

    async def _star(self) -> str:
        """`*` in an entry: a restart, or the start of a phone code (`*#06#`, dialled here by a
        caller told to read the IMEI that way) when `#` follows at once."""
        key = await self._next_key(PHONE_CODE_PEEK)
        if key != "#":
            if key is not None:
                self._typed = key + self._typed  # the first key of the entry started over
            return "restart"
        for _ in range(PHONE_CODE_MAX):
            key = await self._next_key(INTER_DIGIT_TIMEOUT)
            if key in ("#", None):
                break
        return PHONE_CODE

    async def _next_key(self, timeout: float) -> str | None:
        if self._typed:
            key, self._typed = self._typed[0], self._typed[1:]
            return key
        return await self.wait_digit(timeout)

    def forget_keys(self) -> None:
        """Drop the keys pressed during a readout that asks nothing (a list, a statement): they
        cut it short, and they must not answer the question that comes after it."""
        self._typed = ""

    async def goodbye(self) -> None:
        await self.play("goodbye", barge_in=False)
        await self.hangup()

    async def hand_off(self, queue: str, context: str, caller: str, wait: int) -> None:
        """Hand the call to a person in `queue` (ivr.flows.staff): the IVR says nothing more. The
        agent's phone shows `context` (the operations so far) and `caller` (the masked number);
        `wait`: seconds in the queue before "all experts are busy". A channel that cannot hand a
        call over (this default) says so in its transcript and hangs up."""
        self.note(f"  [to a person: queue {queue}; the agent sees {caller} {context}]")
        await self.hangup()


def sound_for(key: str) -> Sound:
    """The catalogue entry of a prompt key as a playable sound; KeyError names a missing key."""
    return Sound(catalogue.sound_file(key), catalogue.text(key))
