"""`hamta-ivr serve --processes N` (issue 12): N forked processes accept on one port with
SO_REUSEPORT; calls from the fake Asterisk land on more than one of them (the call log's `server`
column says host:port/i), a process killed with SIGKILL is logged and started again, SIGTERM to
the parent drains them all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.registry import demo
from ivr.testing.fake_asterisk import FakeAsterisk

CLI = [sys.executable, "-m", "ivr"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def until(condition: Callable[[], bool], what: Callable[[], str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what()}"
        time.sleep(0.1)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    vars_ = {**{k: v for k, v in os.environ.items() if not k.startswith("HAMTA_")},
             "HAMTA_CONFIG": "", "HAMTA_DATA_DIR": str(tmp_path / "data"),
             "HAMTA_SOUNDS_DIR": str(tmp_path / "sounds"),
             "HAMTA_SPOOL_DIR": str(tmp_path / "spool"), "PYTHONUNBUFFERED": "1"}
    for step in (["db", "upgrade"], ["db", "seed-demo"]):
        done = subprocess.run([*CLI, *step], env=vars_, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
    return vars_


async def _calls(port: int, count: int) -> list:  # type: ignore[type-arg]
    asterisk = FakeAsterisk("127.0.0.1", port)
    return list(await asyncio.gather(*(
        asterisk.call(f"1 {demo.DEMO_PHONE} h", caller_id=demo.DEMO_BUYER) for _ in range(count))))


def test_two_processes_share_the_port_restart_and_drain(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--processes", "2",
                                 "--metrics", "off"], env=env, stdout=out, stderr=out)
    text = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        def listening() -> bool:
            assert proc.poll() is None, text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return len(children(proc.pid)) == 2 and text().count("FastAGI server on") == 2
            return False

        until(listening, what=text)
        first = children(proc.pid)
        results = asyncio.run(_calls(port, 24))
        assert all(r.error is None and r.prompts[:1] == ["welcome"] for r in results), results[0]

        with contextlib.closing(sqlite3.connect(tmp_path / "data" / "registry.db")) as db:
            rows = db.execute("SELECT server, outcome FROM calls").fetchall()
        assert len(rows) == 24, rows
        assert {outcome for _, outcome in rows} == {"inquiry:registered"}, rows
        servers = {server for server, _ in rows}
        assert servers == {f"127.0.0.1:{port}/1", f"127.0.0.1:{port}/2"}, servers

        # a process that dies is logged and replaced; calls still land on two processes
        os.kill(first[0], signal.SIGKILL)
        until(lambda: "died (signal SIGKILL)" in text() and len(children(proc.pid)) == 2
              and text().count("FastAGI server on") == 3, what=text)
        assert set(children(proc.pid)) != set(first)
        assert all(r.error is None and r.prompts[:1] == ["welcome"]
                   for r in asyncio.run(_calls(port, 4)))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, text()
    assert text().count("FastAGI server 127.0.0.1:") == 2, text()  # both stopped, drained


def test_processes_need_a_fixed_port(env: dict[str, str]) -> None:
    done = subprocess.run([*CLI, "serve", "--port", "0", "--processes", "2"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--processes needs a fixed --port" in done.stderr


def test_a_port_held_by_a_single_server_is_named_once(env: dict[str, str]) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([*CLI, "serve", "--port", str(port), "--processes", "2",
                               "--metrics", "off"], env=env, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("cannot listen on") == 1, done.stderr
