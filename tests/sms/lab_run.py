"""`hamta-ivr sms lab` in a subprocess for tests, which cannot hang: its output is read by a thread
(never a blocking readline in the test), every wait has a deadline, and the end is Ctrl-C with 30 s
to stop, then SIGKILL to its whole process group (the lab and the Kannel boxes it started)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable


class LabRun:
    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ivr", "sms", "lab", *args], env=env,
                                     text=True, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 60) -> list[str]:
        """The lines so far once `done(lines)`; an AssertionError with the output when the
        deadline passes or the lab exits first."""
        deadline = time.monotonic() + timeout
        while not done(list(self.lines)):
            if self.proc.poll() is not None:
                self.reader.join(5)
                if done(list(self.lines)):
                    break
                raise AssertionError(f"the lab exited {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s:\n{self.output}")
            time.sleep(0.05)
        return list(self.lines)

    def stop(self) -> int:
        """Ctrl-C, as the demo's user does; the exit code (SIGKILL to the group after 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.lines.append("(killed: Ctrl-C did not stop it within 30 s)\n")
        self.reader.join(10)
        return self.proc.returncode

    def __enter__(self) -> LabRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        # whatever the lab left in its group (nothing, when it stopped as it should)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
