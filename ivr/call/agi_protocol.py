"""The AGI wire protocol in one place: command lines, reply lines and the environment handshake.

Everything that speaks AGI text goes through here — the AGI call (ivr.call.agi_call), the
AMI client behind `hamta-ivr dial` (commands from AGIExecStart events), the fake Asterisk of the
tests and the bench (ivr.testing) — so a command is built, parsed and answered one way only.

Commands: `parse_command('STREAM FILE hamta/welcome "0123456789*#"')` gives an AgiCommand
(verb, arguments); the builders (`stream_file`, `say_digits`, …) make the lines AgiCall sends.
Replies: `parse_reply("200 result=49 endpos=1234")` gives an AgiReply; `AgiReply.line` formats
one back; `read_reply` reads one from a stream (skipping `100 Trying`, reading past the `HANGUP`
line Asterisk sends when AGISIGHUP is not "no", and the lines of a `520-` usage message).
The handshake: `agi_name: value` lines up to a blank line (`format_environment`,
`parse_environment_line`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

# AGI verbs, longest first so that "STREAM FILE" wins over a one-word prefix.
VERBS: tuple[str, ...] = tuple(sorted([
    "ANSWER", "ASYNCAGI BREAK", "CHANNEL STATUS", "CONTROL STREAM FILE", "DATABASE DEL",
    "DATABASE DELTREE", "DATABASE GET", "DATABASE PUT", "EXEC", "GET DATA", "GET FULL VARIABLE",
    "GET OPTION", "GET VARIABLE", "HANGUP", "NOOP", "RECEIVE CHAR", "RECORD FILE", "SAY ALPHA",
    "SAY DATE", "SAY DATETIME", "SAY DIGITS", "SAY NUMBER", "SAY PHONETIC", "SAY TIME",
    "SET AUTOHANGUP", "SET CALLERID", "SET CONTEXT", "SET EXTENSION", "SET MUSIC", "SET PRIORITY",
    "SET VARIABLE", "STREAM FILE", "TDD MODE", "VERBOSE", "WAIT FOR DIGIT",
], key=len, reverse=True))
# Commands that play audio (the caller hears something; escape digits may interrupt them).
PLAYING = frozenset({"STREAM FILE", "CONTROL STREAM FILE", "GET OPTION", "SAY DIGITS",
                     "SAY NUMBER", "SAY ALPHA", "SAY PHONETIC", "SAY DATE", "SAY TIME",
                     "SAY DATETIME"})
PLAYING_PREFIXES = tuple(sorted(PLAYING))  # str.startswith of a command line
SAYING = frozenset({"SAY DIGITS", "SAY NUMBER", "SAY ALPHA", "SAY PHONETIC"})  # a value spoken

# Reply lines as Asterisk 22 writes them (res_agi.c).
HANGUP_LINE = "HANGUP"  # sent on hang-up when AGISIGHUP is not "no"; the command's reply follows
DEAD_CHANNEL = "511 Command Not Permitted on a dead channel or intercept routine"
INVALID_COMMAND = "510 Invalid or unknown command"
HANGUP_FOLLOW_UP_SECONDS = 1.0  # after a HANGUP line, how long to wait for the real reply

_REPLY = re.compile(r"^(?P<status>\d{3})(?:[ -](?P<rest>.*))?$")
_RESULT = re.compile(r"result=(?P<value>\S*)(?:\s+\((?P<data>[^)]*)\))?")
_ENDPOS = re.compile(r"\bendpos=(?P<endpos>-?\d+)")
_MASKED = re.compile(r"^(SAY (?:DIGITS|NUMBER|ALPHA)) (\S+)", re.IGNORECASE)
_ASCII_INT = re.compile(r"-?[0-9]+")
_CODE = re.compile(r"-?[0-9]{1,9}")  # ASCII digits only (str.isdigit takes ۱ too)
# a WAIT FOR DIGIT shorter than this is a pause between digit groups, not a question (questions
# wait seconds: ivr.call.api)
PAUSE_MAX_MS = 1000
UNEXPECTED_KEY = "?"  # a result code no telephone key has; never one of 0-9 * #


# --- commands ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgiCommand:
    """One parsed command line: `verb` upper case ("" when unknown), arguments unquoted."""

    verb: str
    args: tuple[str, ...]
    line: str

    def arg(self, index: int, default: str = "") -> str:
        return self.args[index] if len(self.args) > index else default

    @property
    def known(self) -> bool:
        return bool(self.verb)

    @property
    def plays(self) -> bool:
        return self.verb in PLAYING

    @property
    def file(self) -> str:
        """The sound a STREAM FILE / CONTROL STREAM FILE / GET OPTION / GET DATA plays."""
        return self.arg(0) if self.verb in ("STREAM FILE", "CONTROL STREAM FILE", "GET OPTION",
                                            "GET DATA") else ""

    @property
    def escape(self) -> str:
        """The keys that interrupt a playing command ("" for anything else)."""
        return self.arg(1) if self.verb in PLAYING else ""

    @property
    def pauses(self) -> bool:
        """The silence between digit groups (`pause`): a WAIT FOR DIGIT too short to be asked."""
        timeout = self.timeout_ms
        return self.verb == "WAIT FOR DIGIT" and timeout is not None and 0 <= timeout < PAUSE_MAX_MS

    @property
    def asks(self) -> bool:
        """The IVR waits for the caller's key (a question), as opposed to a pause."""
        return self.verb == "WAIT FOR DIGIT" and not self.pauses

    @property
    def timeout_ms(self) -> int | None:
        """WAIT FOR DIGIT's timeout (GET DATA's second argument); None when absent or bad."""
        index = 0 if self.verb == "WAIT FOR DIGIT" else 1 if self.verb == "GET DATA" else -1
        if index < 0:
            return None
        try:
            return int(self.args[index])
        except (IndexError, ValueError):
            return None


def parse_command(line: str) -> AgiCommand:
    """`STREAM FILE hamta/welcome "0123"` -> verb "STREAM FILE", args ("hamta/welcome", "0123")."""
    line = line.rstrip("\r\n")
    upper = line.upper()
    for verb in VERBS:
        if upper == verb or upper.startswith(verb + " "):
            rest = line[len(verb):]
            try:
                args = shlex.split(rest)
            except ValueError:
                args = rest.split()
            return AgiCommand(verb, tuple(args), line)
    return AgiCommand("", tuple(line.split()), line)


def stream_file(file: str, escape: str) -> str:
    return f'STREAM FILE {file} "{escape}"'


def say_digits(digits: str, escape: str) -> str:
    return f'SAY DIGITS {digits} "{escape}"'


def wait_for_digit(timeout_ms: int) -> str:
    return f"WAIT FOR DIGIT {timeout_ms}"


def set_variable(name: str, value: str) -> str:
    return f"SET VARIABLE {name} {value}"


def pause(seconds: float) -> str:
    """A short silence that listens (between digit groups): a key pressed in it is kept, where
    the dialplan's Wait would drop it. Shorter than PAUSE_MAX_MS, so it is not a question: callers
    that key as the IVR asks (`hamta-ivr dial`, the fake Asterisk, the bench) do not key into it."""
    return wait_for_digit(round(seconds * 1000))


# While the IVR waits for a key: a stream of silence (app_playtones, a 0 Hz tone looped) so the
# line carries RTP; WAIT FOR DIGIT still hears keys, and the next STREAM FILE / SAY stops it.
LISTENING_SILENCE = "EXEC PlayTones 0/1000"
CHANNEL_STATUS = "CHANNEL STATUS"
HANGUP = "HANGUP"


def loggable(command: str) -> str:
    """A command as it may appear in a log: digit strings said to the caller are masked."""
    return _MASKED.sub(lambda m: f"{m[1]} {'*' * len(m[2])}", command)


# --- replies -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgiReply:
    """One AGI reply. status 0: the connection is gone (no line at all)."""

    status: int
    result: str = ""
    data: str = ""  # the parenthesised part: `200 result=1 (done)`, `(timeout)`, `(hangup)`
    message: str = ""  # the text of a non-200 reply
    endpos: int | None = None  # STREAM FILE: where playback stopped, in samples

    @property
    def hung_up(self) -> bool:
        return self.status in (0, 511) or self.result == "-1" or self.data == "hangup"

    @property
    def key(self) -> str | None:
        """The key in `result=` (its ASCII code; 0 or nothing: none). Never raises: a code that
        is not a printable ASCII character (`99999999`, negative, non-ASCII digits, text) is
        UNEXPECTED_KEY, which the call API takes as an invalid entry. DTMF A-D come as `A`-`D`."""
        text = self.result.strip()
        if text in ("", "0"):
            return None
        if not _CODE.fullmatch(text):
            return UNEXPECTED_KEY
        code = int(text)
        return chr(code) if 32 < code < 127 else UNEXPECTED_KEY

    @property
    def line(self) -> str:
        """The reply line as Asterisk writes it ("" for a closed connection)."""
        if self.status == 0:
            return ""
        if self.status != 200:
            return f"{self.status} {self.message}".rstrip()
        text = f"200 result={self.result}"
        if self.data:
            text += f" ({self.data})"
        if self.endpos is not None:
            text += f" endpos={self.endpos}"
        return text


def key_reply(key: str, *, endpos: int | None = None) -> AgiReply:
    """A key pressed: Asterisk answers its ASCII code (`1` -> `200 result=49`)."""
    return AgiReply(200, str(ord(key)), endpos=endpos)


CLOSED = AgiReply(0, message="connection closed")


def parse_reply(line: str) -> AgiReply:
    """A reply line -> AgiReply. `HANGUP` counts as a hang-up; an empty line as a closed socket."""
    line = line.rstrip("\r\n")
    if line.startswith("200 result="):  # the reply to nearly every command: no regex for it
        value, _, tail = line[11:].partition(" ")
        if not tail:
            return AgiReply(200, value)
        if tail.startswith("endpos=") and _ASCII_INT.fullmatch(tail, 7):
            return AgiReply(200, value, endpos=int(tail[7:]))
    if not line:
        return CLOSED
    if line.strip() == HANGUP_LINE:
        return AgiReply(200, "-1", "hangup", "User hung up during execution")
    match = _REPLY.match(line)
    if match is None:
        return AgiReply(500, message=f"unreadable reply: {line[:80]}")
    status, rest = int(match["status"]), match["rest"] or ""
    if status != 200:
        return AgiReply(status, message=rest.strip())
    result = _RESULT.search(rest)
    endpos = _ENDPOS.search(rest)
    return AgiReply(200, result["value"] if result else "",
                    (result["data"] or "") if result else "",
                    endpos=int(endpos["endpos"]) if endpos else None)


Readline = Callable[[], Awaitable[bytes]]


async def read_reply(readline: Readline) -> tuple[AgiReply, list[str]]:
    """Read one command's reply from a stream: (the reply, the raw lines read).

    Skips `100 Trying`; after a `HANGUP` line reads the command's own reply too (briefly) so the
    stream stays in step, and answers the hang-up; reads a `520-` usage message to its end.
    """
    first = await readline()
    if first[:4] == b"200 ":  # nearly every reply: one line, nothing to skip
        text = first.decode("utf-8", "replace").rstrip("\r\n")
        return parse_reply(text), [text]
    raw: list[str] = []
    pending = [first]

    async def next_line() -> str:
        data = pending.pop() if pending else await readline()
        text = data.decode("utf-8", "replace").rstrip("\r\n")
        raw.append(text)
        return text if data else ""

    while True:
        text = await next_line()
        if text == "":  # end of stream (or a blank line, which Asterisk never sends)
            return CLOSED, raw
        if text.startswith("100 ") or text == "100":  # `100 Trying...`: the reply follows
            continue
        break
    parsed = parse_reply(text)
    if text.strip() == HANGUP_LINE:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(next_line(), HANGUP_FOLLOW_UP_SECONDS)
        return parsed, raw
    if text.startswith("520-"):
        parsed = AgiReply(520, message=text[4:].strip())
        while True:
            more = await next_line()
            if not more or more.startswith("520 "):
                break
    return parsed, raw


# --- the environment handshake -------------------------------------------------------------------
def format_environment(env: Mapping[str, str]) -> bytes:
    """The handshake Asterisk sends: `agi_name: value` lines, then a blank line."""
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()


def parse_environment_line(text: str) -> tuple[str, str] | None:
    """`agi_channel: PJSIP/x` -> ("agi_channel", "PJSIP/x"); None for a line without `: `."""
    key, sep, value = text.rstrip("\r\n").partition(": ")
    return (key, value) if sep else None


# --- text from the peer, as a log or a terminal may show it --------------------------------------
# C0 controls, DEL, C1 controls (U+0085 NEL and U+009B CSI among them), the Unicode line and
# paragraph separators, and the bidi marks, embeddings, overrides and isolates (U+061C, U+200E,
# U+200F, U+202A-U+202E, U+2066-U+2069). Not the zero-width non-joiner Persian text uses.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """Text from outside (the AGI peer, an old call-log row) safe to log or print: every control
    and bidi character written as a Python escape (`\\r`, `\\x1b`, `\\u202e`), so a value can
    neither start a forged log line nor move, colour or reverse a terminal's text. Backslashes
    are left alone: escaping twice changes nothing."""
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text
