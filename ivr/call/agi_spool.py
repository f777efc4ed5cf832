"""The spool of secret WAV files: how a secret digit string reaches the caller without entering
an AGI command (every command is an AMI event, which anyone allowed to watch the PBX sees).

The digits are assembled from the built digit prompts into one temporary WAV file that Asterisk
plays by path (`write_secret_digits`). The file (`secret-<pid>-<process token>-<random>.wav`,
mode 0640, the spool folder's group: the group Asterisk reads with) is deleted right after the
prompt; `sweep_spool` removes the files a dead process left (kill -9) and any older than a
bound: the FastAGI server at every start and on a timer while serving, a classic AGI script at
every run. Only files: nothing here speaks AGI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
import wave
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_PREFIX = "secret-"
SECRET_MODE = 0o640  # the owner writes, the spool's group (Asterisk's) reads, nobody else
PROCESS_TOKEN = secrets.token_hex(4)  # tells this process's files from a dead one's of the same pid
_SECRET_NAME = re.compile(r"secret-(?P<pid>[0-9]+)-(?P<token>[0-9a-f]+)-[0-9a-f]+\.wav")


class DigitPromptsError(ValueError):
    """The digit prompts cannot be joined into one file (nothing to say, formats that differ)."""


def write_secret_digits(digits: str, folder: Path, spool: Path) -> Path:
    """One WAV file in `spool` saying `digits` from the prompts in `folder` (`<digit>.wav`),
    back to back as Asterisk's SAY DIGITS plays every other digit string (a gap between them
    made each digit an isolated word: issue 21's ear heard an activation code 33 % wrong without
    one, 100 % with 0.12 s); its path. Only a .wav: Asterisk transcodes these few seconds, which
    costs less than it would to keep more copies of a secret on disk (no .ulaw/.alaw/.sln16)."""
    spool.mkdir(parents=True, exist_ok=True, mode=0o750)
    path = spool / f"{SECRET_PREFIX}{os.getpid()}-{PROCESS_TOKEN}-{secrets.token_hex(12)}.wav"
    params = None
    frames: list[bytes] = []
    for digit in digits:
        with wave.open(str(folder / f"{digit}.wav"), "rb") as src:
            if params is None:
                params = src.getparams()
            elif src.getparams()[:3] != params[:3]:
                raise DigitPromptsError(f"digit prompts in {folder} differ in format")
            frames.append(src.readframes(src.getnframes()))
    if params is None:
        raise DigitPromptsError("nothing to say")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        _owner_and_asterisk_only(fd, spool)
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as out:
            out.setnchannels(params.nchannels)
            out.setsampwidth(params.sampwidth)
            out.setframerate(params.framerate)
            out.writeframes(b"".join(frames))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _owner_and_asterisk_only(fd: int, spool: Path) -> None:
    """Mode 0640 whatever the umask, group the spool folder's (the group Asterisk reads with)."""
    os.fchmod(fd, SECRET_MODE)
    with contextlib.suppress(OSError):
        group = spool.stat().st_gid
        if os.fstat(fd).st_gid != group:
            os.fchown(fd, -1, group)  # allowed when we belong to that group (or are root)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, someone else's
        return True
    return True


def sweep_spool(spool: Path, max_age: float, *, now: float | None = None,
                mine: bool = False) -> int:
    """Delete the secret files nobody needs any more; the number deleted.

    A secret file is needed only until Asterisk has opened it for its one STREAM FILE (Linux
    plays on from an open file that is deleted). Deleted: files of a process that is gone (a
    crash, kill -9; a restarted process with the same pid tells its files by PROCESS_TOKEN), files
    of an unknown name, and any older than `max_age` seconds (a call cancelled mid-prompt);
    with `mine`, this process's too (it has no call left)."""
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(spool))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.startswith(SECRET_PREFIX):
            continue
        match = _SECRET_NAME.fullmatch(entry.name)
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if match is not None and age <= max_age:
                pid = int(match["pid"])
                if pid == os.getpid() and match["token"] == PROCESS_TOKEN and not mine:
                    continue  # ours, playing now
                if pid != os.getpid() and _alive(pid):
                    continue  # another server's or AGI script's, playing now
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            continue  # deleted meanwhile by its call
        except OSError as exc:
            log.error("cannot delete %s from the spool: %s", entry.path, exc.strerror)
    if removed:
        log.info("spool %s: %d leftover secret file(s) deleted", spool, removed)
    return removed

