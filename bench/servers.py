"""Server processes under test: started, awaited until they listen, stopped.

Each runs in a process of its own so that its CPU and memory can be read from /proc apart from
the load generator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from bench.procstat import listening


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str | None:
    """A console script of this package: beside this interpreter (the virtualenv), else PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


class ServerProcess:
    """One server on 127.0.0.1:port; its output goes to `log`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 60.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                env=self.env,
            )
        deadline = time.monotonic() + timeout
        while not listening(self.port):
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"listening; see {self.log}: {self.tail()}")
            if time.monotonic() > deadline:
                await self.stop()
                raise RuntimeError(f"{self.name} did not listen on {self.port} in {timeout:.0f}s;"
                                   f" see {self.log}")
            await asyncio.sleep(0.05)

    def tail(self, lines: int = 3) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
