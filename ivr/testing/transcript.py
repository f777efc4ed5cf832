"""Recorded AGI exchanges (command line, Asterisk's reply line) and their in-process replay.

A recording is what crossed one FastAGI connection on a real call (tests/fixtures/agi/*.json,
recorded from the development Asterisk by tests/asterisk/test_agi_recordings.py). Replaying it,
panoramisk.testing-style, needs no socket and no Asterisk: `ReplayTransport` is an AgiTransport
that checks every command the flows send against the recorded one and answers the recorded
reply. What varies from run to run is normalised on both sides (`normalize`): the random name of
a secret digit WAV file, a transfer's reference number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.call import agi_protocol as agi
from ivr.call.agi_protocol import AgiReply, parse_command

SECRET_FILE = "<spool>/secret-<random>"
REFERENCE = "<reference>"
_SECRET = re.compile(r"^(STREAM FILE )\S*/secret-[0-9a-f-]+(?=\s|$)")


def normalize(commands: Iterable[str]) -> list[str]:
    """Commands with what varies per run replaced: the secret WAV path (`<spool>/secret-<random>`)
    and the digits said right after the `reference_is` prompt (`<reference>`: each of its groups,
    read with a pause between them; digits said after it without a pause are not its)."""
    out: list[str] = []
    previous = agi.AgiCommand("", (), "")
    in_reference = False
    for line in commands:
        command = parse_command(line)
        text = _SECRET.sub(rf"\g<1>{SECRET_FILE}", line)
        # the reference's first group, then each pause and the group after it
        in_reference = previous.file == "hamta/reference_is" or (in_reference and (
            _is_pause(command) or (command.verb == "SAY DIGITS" and _is_pause(previous))))
        if command.verb == "SAY DIGITS" and in_reference:
            text = agi.say_digits(REFERENCE, command.escape)
        out.append(text)
        previous = command
    return out


def _is_pause(command: agi.AgiCommand) -> bool:
    """The silence between the groups of a digit string (agi.pause)."""
    return command.pauses


@dataclass
class Recording:
    """One recorded call: who called with which keys, the exchanges, the call log's outcome."""

    exchanges: list[tuple[str, str]]  # (command, reply line(s)); reply "" = connection closed
    caller_id: str | None = None
    keys: str = ""
    outcome: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # how and where it was recorded

    @property
    def commands(self) -> list[str]:
        return [c for c, _ in self.exchanges]

    def dumps(self) -> str:
        """JSON with one exchange a line (readable diffs when re-recorded)."""
        head = {"caller_id": self.caller_id, "keys": self.keys, "outcome": self.outcome,
                **self.meta}
        lines = ",\n".join(f"  {json.dumps([c, r], ensure_ascii=False)}"
                           for c, r in self.exchanges)
        text = json.dumps(head, indent=1, ensure_ascii=False)
        return text[:-2] + f',\n "exchanges": [\n{lines}\n ]\n}}\n'

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.dumps())

    @classmethod
    def load(cls, path: Path) -> Recording:
        doc = json.loads(path.read_text())
        exchanges = [(str(c), str(r)) for c, r in doc.pop("exchanges")]
        return cls(exchanges, doc.pop("caller_id", None), doc.pop("keys", ""),
                   doc.pop("outcome", None), doc)


class ReplayMismatch(AssertionError):
    """The flows sent a command other than the recorded one (or one past the recording)."""


class ReplayTransport:
    """An AgiTransport answering from a recording; the command sent must equal the recorded one.

    A mismatch is raised (and kept in `mismatch`: the flows catch unexpected errors and end the
    call politely, so tests call `assert_done()`); after it, every command gets a closed
    connection so the call ends at once.
    """

    def __init__(self, exchanges: Sequence[tuple[str, str]], *, normalized: bool = True) -> None:
        self.exchanges = list(exchanges)
        self.normalized = normalized
        self.sent: list[str] = []  # the commands as sent
        self.mismatch: ReplayMismatch | None = None

    @classmethod
    def from_recording(cls, recording: Recording) -> ReplayTransport:
        return cls(recording.exchanges)

    async def command(self, line: str) -> AgiReply:
        self.sent.append(line)
        if self.mismatch is not None:
            return agi.CLOSED
        index = len(self.sent) - 1
        if index >= len(self.exchanges):
            self.mismatch = ReplayMismatch(
                f"command {index + 1} {line!r} comes after the recording's "
                f"{len(self.exchanges)} exchanges")
            raise self.mismatch
        expected, reply = self.exchanges[index]
        got = normalize(self.sent)[-1] if self.normalized else line
        if got != expected:
            self.mismatch = ReplayMismatch(
                f"command {index + 1}: sent {got!r}, recorded {expected!r}")
            raise self.mismatch
        return agi.parse_reply(reply.split("\n", 1)[0])

    @property
    def done(self) -> bool:
        return self.mismatch is None and len(self.sent) == len(self.exchanges)

    def assert_done(self) -> None:
        """Every recorded command was sent, in order, and nothing else."""
        if self.mismatch is not None:
            raise self.mismatch
        if len(self.sent) != len(self.exchanges):
            missing = self.exchanges[len(self.sent)][0]
            raise ReplayMismatch(f"{len(self.sent)} of {len(self.exchanges)} recorded commands "
                                 f"sent; the next one was {missing!r}")
