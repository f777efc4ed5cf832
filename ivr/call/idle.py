"""The idle limit: how long one AGI command may go unanswered before the peer counts as gone,
measured from the built audio (the longest thing one command plays, then the longest wait for a
key). The FastAGI transport drops a call past it (ivr.call.agi_transport); the spool's bound on a
secret file's age follows from it (ivr.call.agi_spool)."""

from __future__ import annotations

import wave
from pathlib import Path

from ivr.call.api import FIRST_DIGIT_TIMEOUT, INTER_DIGIT_TIMEOUT, READ_FIRST_TIMEOUT

# Used when the built audio cannot be measured (`idle_limit` derives a tighter one from it); the
# longest command is a prompt or a digit string said, then WAIT FOR DIGIT takes at most 8 s.
COMMAND_TIMEOUT = 120.0
IDLE_SLACK = 15.0  # added to the longest command: a loaded Asterisk, a slow start of playback
IDLE_LIMIT_RANGE = (30.0, 600.0)  # what `idle_limit` may return
MOST_DIGITS_SAID = 20  # the longest digit string one SAY DIGITS reads (an IMEI is 15)
DEVICE_NAME_SECONDS = 10.0  # the longest device-name sound `prompts check` accepts


def _wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / float(wav.getframerate() or 1)
    except (OSError, EOFError, wave.Error):
        return 0.0


def longest_command(sounds: Path, language: str = "fa") -> float | None:
    """Seconds the longest playing AGI command lasts with the built audio: the longest prompt,
    a device name, or MOST_DIGITS_SAID of the longest digit. None when nothing is built."""
    folder = sounds / language
    prompts = [_wav_seconds(p) for p in (folder / "hamta").glob("*.wav")]
    digits = [_wav_seconds(p) for p in (folder / "digits").glob("*.wav")]
    if not prompts or not digits:
        return None
    return max(max(prompts), DEVICE_NAME_SECONDS, MOST_DIGITS_SAID * max(digits))


def idle_limit(sounds: Path, language: str = "fa") -> float:
    """How long one AGI command may go unanswered: the longest playing command with the built
    audio, plus the longest wait for a first key (READ_FIRST_TIMEOUT: an SMS code), the
    inter-digit timeout and IDLE_SLACK (within IDLE_LIMIT_RANGE); COMMAND_TIMEOUT when the audio
    is not built."""
    longest = longest_command(sounds, language)
    if longest is None:
        return COMMAND_TIMEOUT
    limit = longest + max(FIRST_DIGIT_TIMEOUT, READ_FIRST_TIMEOUT) + INTER_DIGIT_TIMEOUT + \
        IDLE_SLACK
    low, high = IDLE_LIMIT_RANGE
    return round(min(max(limit, low), high), 1)

