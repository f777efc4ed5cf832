"""No secret on disk after any exit (issue 11).

A generated activation code is read to its owner from a one-off WAV in the spool. It is created
mode 0640 with the spool's group, deleted right after its prompt, and swept: files of a process
that is gone (kill -9) at every start, files older than a bound on a timer. The crash test runs a
real `hamta-ivr serve` on a demo registry and kills it with SIGKILL while it reads a generated
code (option 4, `4 1 1234# 1` from 09121111111), 20 times, restarting it each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.call.agi_call import AgiCall
from ivr.call.agi_protocol import AgiCommand, parse_reply
from ivr.call.agi_spool import PROCESS_TOKEN, sweep_spool
from ivr.call.api import Digits
from ivr.call.fastagi import FastAgiServer, ServerSettings
from ivr.call.idle import COMMAND_TIMEOUT
from ivr.registry import demo
from ivr.testing.fake_asterisk import FakeChannel, agi_environment, run_session

CLI = [sys.executable, "-m", "ivr"]
ROUNDS = 20
# option 4, device 1; then `1` again for any confirmation the flow asks (replacing a live code)
OPTION_4 = f"4 1 {demo.DEMO_SELLER_PIN}# 1 1 1"


def digit_sounds(sounds: Path) -> None:
    folder = sounds / "fa" / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    for digit in "0123456789":
        with wave.open(str(folder / f"{digit}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(bytes([int(digit) + 1, 0]) * 800)


def secret_files(spool: Path) -> list[Path]:
    return sorted(spool.glob("secret-*")) if spool.is_dir() else []


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _touch(path: Path, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF")
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


# --- the sweep ------------------------------------------------------------------------------------
def test_sweep_deletes_what_no_live_process_plays(tmp_path: Path) -> None:
    me, parent, gone = os.getpid(), os.getppid(), dead_pid()
    keep = [
        _touch(tmp_path / f"secret-{me}-{PROCESS_TOKEN}-aa.wav"),  # ours, playing
        _touch(tmp_path / f"secret-{parent}-0badf00d-bb.wav"),  # a live process's
        _touch(tmp_path / "welcome.wav"),  # not a secret file
    ]
    swept = [
        _touch(tmp_path / f"secret-{gone}-0badf00d-cc.wav"),  # a killed process's
        _touch(tmp_path / f"secret-{me}-0badf00d-dd.wav"),  # a dead process with our pid
        _touch(tmp_path / "secret-0123456789abcdef.wav"),  # an unknown (older) name
        _touch(tmp_path / f"secret-{parent}-0badf00d-ee.wav", age=120),  # too old
        _touch(tmp_path / f"secret-{me}-{PROCESS_TOKEN}-ff.wav", age=120),  # ours, but too old
    ]
    assert sweep_spool(tmp_path, max_age=60) == len(swept)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in swept)
    assert sweep_spool(tmp_path, max_age=60, mine=True) == 1  # ours, once no call is left
    assert sweep_spool(tmp_path / "missing", max_age=60) == 0


async def test_the_server_sweeps_at_start_on_a_timer_and_at_stop(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    crashed = _touch(spool / f"secret-{dead_pid()}-0badf00d-aa.wav")
    server = FastAgiServer(ServerSettings(port=0, sounds=tmp_path, spool=spool,
                                          command_timeout=1.0), lambda call: asyncio.sleep(0))
    assert server.settings.sweep_interval == 1.0
    await server.start()
    try:
        assert not crashed.exists()  # swept before the server listened
        leaked = _touch(spool / f"secret-{os.getpid()}-{PROCESS_TOKEN}-bb.wav")
        fresh = _touch(spool / f"secret-{os.getppid()}-0badf00d-cc.wav")
        await asyncio.sleep(0.5)
        assert leaked.exists()
        deadline = time.monotonic() + 5
        while leaked.exists() and time.monotonic() < deadline:  # older than 1 s: swept
            await asyncio.sleep(0.1)
        assert not leaked.exists()
        leaked = _touch(spool / f"secret-{os.getpid()}-{PROCESS_TOKEN}-dd.wav")
    finally:
        await server.stop()
    assert not leaked.exists()  # at stop, none of ours is needed
    assert not fresh.exists()  # older than the bound by now


async def test_a_secret_file_is_for_the_owner_and_asterisks_group_only(tmp_path: Path) -> None:
    digit_sounds(tmp_path / "sounds")
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o750)
    seen: dict[str, Any] = {}
    call = AgiCall.from_env({"agi_uniqueid": "1.1"}, _Peeking(seen), sounds=tmp_path / "sounds",
                            spool=spool)
    old = os.umask(0o077)  # a strict umask must not keep Asterisk's group out
    try:
        await call.say_digit_string("48151623", "", secret=True)
    finally:
        os.umask(old)
    assert seen["mode"] == 0o640 and seen["gid"] == spool.stat().st_gid
    assert seen["pid"] == str(os.getpid())
    assert secret_files(spool) == []  # deleted right after the prompt


class _Answer:
    async def command(self, line: str) -> Any:
        return parse_reply("200 result=0 endpos=10")


class _Peeking(_Answer):
    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen

    async def command(self, line: str) -> Any:
        path = Path(line.split()[2] + ".wav")
        info = path.stat()
        self.seen.update(mode=stat.S_IMODE(info.st_mode), gid=info.st_gid,
                         pid=path.name.split("-")[1])
        return await super().command(line)


async def test_secret_digits_still_never_enter_an_agi_command(tmp_path: Path) -> None:
    digit_sounds(tmp_path / "sounds")
    call = AgiCall.from_env({"agi_uniqueid": "1.1"}, _Answer(), sounds=tmp_path / "sounds",
                            spool=tmp_path / "spool")
    sent: list[str] = []
    assert call.transport is not None
    answer = call.transport.command

    class Recording(_Answer):
        async def command(self, line: str) -> Any:
            sent.append(line)
            return await answer(line)

    call.transport = Recording()
    await call.play(Digits("48151623", secret=True))
    assert len(sent) == 1 and "48151623" not in sent[0] and "/secret-" in sent[0]


# --- kill -9 while a code is read -----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`hamta-ivr serve` as a subprocess on one port, killed and restarted by the test."""

    def __init__(self, env: dict[str, str], port: int, logs: Path) -> None:
        self.env, self.port, self.logs = env, port, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.logs / f"serve-{self.starts}.log", "wb") as out:
            self.proc = subprocess.Popen([*CLI, "serve", "--port", str(self.port)],
                                         env=self.env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise AssertionError(f"serve did not listen:\n{self.log()}")

    def log(self) -> str:
        return (self.logs / f"serve-{self.starts}.log").read_text(errors="replace")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path, Path]]:
    data = tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HAMTA_")},
           "HAMTA_DATA_DIR": str(data), "HAMTA_SOUNDS_DIR": str(tmp_path / "sounds"),
           "HAMTA_SPOOL_DIR": str(tmp_path / "spool"), "PYTHONUNBUFFERED": "1"}
    for step in (["db", "upgrade"], ["db", "seed-demo"]):
        done = subprocess.run([*CLI, *step], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
    digit_sounds(tmp_path / "sounds")
    server = Server(env, free_port(), tmp_path)
    try:
        yield server, tmp_path / "spool", data / "registry.db"
    finally:
        server.stop()


async def read_a_code_and_die(server: Server, spool: Path, index: int) -> list[Path]:
    """One call to option 4; SIGKILL when the code's file is played. The secret files then."""
    at_kill: list[Path] = []

    def on_command(command: AgiCommand) -> None:
        if command.verb == "STREAM FILE" and "/secret-" in command.file and not at_kill:
            at_kill.extend(secret_files(spool))
            server.kill()

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    env = agi_environment(caller_id=demo.DEMO_SELLER, index=index, uniqueid=f"kill.{index}",
                          request=f"agi://127.0.0.1:{server.port}/hamta")
    try:
        async with asyncio.timeout(30):
            await run_session(reader, writer, env, FakeChannel(OPTION_4), on_command=on_command)
    finally:
        writer.close()
    return at_kill


async def test_no_secret_file_survives_kill_9(served: tuple[Server, Path, Path]) -> None:
    server, spool, db = served
    server.start()
    left_at_kill, left_after_restart = [], []
    for index in range(1, ROUNDS + 1):
        at_kill = await read_a_code_and_die(server, spool, index)
        assert server.proc is not None and server.proc.wait(10) == -signal.SIGKILL
        left_at_kill.append(len(at_kill))
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in secret_files(spool))
        server.start()  # sweeps before it listens
        left_after_restart.append(len(secret_files(spool)))
    server.stop()
    print(f"\nkill -9 while reading a code, {ROUNDS} rounds: secret files at the kill "
          f"{sum(left_at_kill)}, after each restart {sum(left_after_restart)}, after the last "
          f"stop {len(secret_files(spool))}")
    assert left_at_kill == [1] * ROUNDS  # each kill came while a code's file was on disk
    assert left_after_restart == [0] * ROUNDS
    assert secret_files(spool) == []
    with sqlite3.connect(db) as conn:  # each restart closed the killed call as interrupted
        rows = dict(conn.execute("SELECT outcome, COUNT(*) FROM calls GROUP BY outcome").fetchall())
    assert rows == {"interrupted": ROUNDS}


def test_the_default_bound_is_the_idle_limit() -> None:
    assert ServerSettings().secret_max_age == COMMAND_TIMEOUT
