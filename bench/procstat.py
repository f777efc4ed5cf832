"""What a server process costs, read from /proc: CPU time and resident memory.

Read from outside the process so the server runs unchanged (the production `hamta-ivr serve`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_kib(pid: int) -> tuple[int | None, int | None]:
    """(RSS, PSS): PSS shares the pages many processes map, the fair figure per process."""
    try:
        rss = rss_kib(pid)
        pss = None
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
        return rss, pss
    except OSError:
        return None, None


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1/0.0.0.0:port (without connecting to it: a probe
    connection would be a call to the server)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except OSError:
            continue
    return False


@dataclass
class Usage:
    cpu_s: float
    rss_before_kib: int
    rss_peak_kib: int

    @property
    def rss_delta_kib(self) -> int:
        return max(0, self.rss_peak_kib - self.rss_before_kib)


class Monitor:
    """CPU before/after and peak RSS of one process, sampled while a load runs."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = 0.0
        self._rss0 = 0
        self._peak = 0

    async def __aenter__(self) -> Monitor:
        self._cpu0 = cpu_seconds(self.pid)
        self._rss0 = self._peak = rss_kib(self.pid)
        self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            try:
                self._peak = max(self._peak, rss_kib(self.pid))
            except OSError:
                return
            await asyncio.sleep(self.interval)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        try:
            self._peak = max(self._peak, rss_kib(self.pid))
            self.usage = Usage(cpu_seconds(self.pid) - self._cpu0, self._rss0, self._peak)
        except OSError:
            self.usage = Usage(0.0, self._rss0, self._peak)
