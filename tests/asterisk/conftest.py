"""The real thing for end-to-end tests: a development Asterisk, the FastAGI server, a registry.

One session: a fresh data dir (registry, pepper, secrets, prompts built from the catalogue by
`hamta-ivr prompts build`, Asterisk's rendered config and logs), free ports for AMI, SIP, RTP and
FastAGI, `hamta-ivr asterisk up` and `hamta-ivr serve` as subprocesses, both stopped at the end.
Outside CI a machine that cannot run Asterisk (not root, no network for the first bootstrap)
skips these tests; with CI=true it fails them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ivr.registry.demo import seed_demo
from ivr.registry.service import Registry

CLI = [sys.executable, "-m", "ivr"]
IN_CI = os.environ.get("CI", "").lower() == "true"


def cannot_run(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"end-to-end Asterisk tests cannot run in CI: {reason}")
    pytest.skip(reason)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _udp_free(ports: range) -> bool:
    """Can each of `ports` be bound on loopback now?"""
    held: list[socket.socket] = []
    try:
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(sock)
            sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for sock in held:
            sock.close()


def free_udp_range(size: int = 200) -> int:
    """The start of `size` consecutive free UDP ports (Asterisk's RTP range)."""
    for _ in range(50):
        start = free_port(socket.SOCK_DGRAM) // 2 * 2
        if start + size <= 65000 and _udp_free(range(start, start + size, 20)):
            return start
    raise RuntimeError("no free UDP range")


def softphone_media_ports(size: int = 4) -> int:
    """The start of `size` free UDP ports for a SIPp softphone's RTP, below the kernel's
    ephemeral range (32768+). Asterisk's own RTP range (free_udp_range) comes from that range and
    Asterisk picks its ports in it at random: a softphone port taken from there could be one
    Asterisk binds for the same call between our check and SIPp's bind (errno 98, seen in CI)."""
    for _ in range(200):
        start = random.randrange(20000, 32000 - size, 2)
        if _udp_free(range(start, start + size)):
            return start
    raise RuntimeError("no free UDP ports for a softphone between 20000 and 32000")


@dataclass
class Env:
    """The session's deployment: its environment variables and paths."""

    data: Path
    vars: dict[str, str]
    agi_port: int
    sip_port: int
    agi_port2: int = 0  # the dialplan's second FastAGI server (HAMTA_AGI_SERVERS); none runs there

    def run(self, *args: str, timeout: float = 120, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*CLI, *args], env=self.vars, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"hamta-ivr {' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    @property
    def log(self) -> Path:
        return self.data / "asterisk" / "log"

    def sip_password(self, name: str = "staff1") -> str:
        return (self.data / "secrets" / f"sip-{name}").read_text().strip()


@dataclass
class Dialed:
    """One `hamta-ivr dial --json` call."""

    returncode: int
    doc: dict
    stderr: str

    @property
    def prompts(self) -> list[str]:
        return self.doc["prompts"]

    @property
    def call_id(self) -> str:
        return self.doc["call_id"]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.doc["ok"]


def dial(env: Env, caller: str | None, keys: str, *, ext: str = "7777",
         timeout: float = 400, barge_in: bool = False, untrusted: bool = False) -> Dialed:
    """`hamta-ivr dial`: a call from the caller's own SIM (context hamta-ivr-trusted);
    `untrusted`: as a softphone or VoIP trunk calls (hamta-ivr)."""
    args = ["dial", "--json", "--keys", keys, "--ext", ext, "--timeout", str(timeout)]
    if barge_in:
        args.append("--barge-in")
    if untrusted:
        args.append("--untrusted")
    if caller:
        args += ["--from", caller]
    done = env.run(*args, timeout=timeout + 30, check=False)
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"dial printed no JSON ({done.returncode}):\n{done.stdout}\n"
                             f"{done.stderr}") from None
    return Dialed(done.returncode, doc, done.stderr)


def is_subsequence(expected: list[str], heard: list[str]) -> bool:
    """`expected` appears in `heard` in order (other prompts may come between)."""
    it = iter(heard)
    return all(any(item == got for got in it) for item in expected)


@dataclass
class AgiServer:
    """`hamta-ivr serve` as a subprocess, restartable by tests that stop or kill it."""

    env: Env
    options: tuple[str, ...] = ()  # more `hamta-ivr serve` options (`--max-calls 1`)
    name: str = "serve"  # its log files: <data>/<name>-<n>.log
    port: int | None = None  # default env.agi_port
    vars: dict[str, str] | None = None  # its environment (default env.vars)
    proc: subprocess.Popen[str] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        log = self.env.data / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        with open(log, "w") as out:
            self.proc = subprocess.Popen([*CLI, "-v", "serve", "--drain", "150",
                                          "--port", str(self.listens), *self.options],
                                         env=self.vars or self.env.vars, stdout=out, stderr=out,
                                         text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hamta-ivr serve exited:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.listens), timeout=1):
                return
            time.sleep(0.2)
        raise AssertionError(f"hamta-ivr serve did not listen:\n{log.read_text()}")

    @property
    def listens(self) -> int:
        return self.port or self.env.agi_port

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 180) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    @property
    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


@pytest.fixture(scope="session")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if os.geteuid() != 0 and not _host_asterisk():
        cannot_run("the development Asterisk needs root (chroot, bind mounts)")
    for tool in ("espeak-ng", "sox", "sipp"):
        if not _which(tool):
            cannot_run(f"{tool} is not installed (asterisk-conf/dev-asterisk.sh bootstrap)")
    data = tmp_path_factory.mktemp("hamta-e2e")
    env = Env(data=data, vars={}, agi_port=free_port(), sip_port=free_port(socket.SOCK_DGRAM),
              agi_port2=free_port())
    env.vars = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HAMTA_")
           or k in ("HAMTA_CACHE", "HAMTA_ASTERISK_ROOT", "HAMTA_ASTERISK_MODE")},
        "HAMTA_DATA_DIR": str(data),
        "HAMTA_DB_URL": f"sqlite:///{data / 'registry.db'}",
        "HAMTA_AGI_PORT": str(env.agi_port),
        # two servers tried in order; only the first runs, but for tests/asterisk/test_failover.py
        "HAMTA_AGI_SERVERS": f"127.0.0.1:{env.agi_port},127.0.0.1:{env.agi_port2}",
        "HAMTA_AMI_PORT": str(free_port()),
        "HAMTA_SIP_PORT": str(env.sip_port),
        "HAMTA_RTP_START": str(free_udp_range()),
        "PYTHONUNBUFFERED": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.vars.items():
            if key.startswith("HAMTA_"):
                mp.setenv(key, value)
        env.run("db", "upgrade")
        yield env


@pytest.fixture(scope="session")
def registry(e2e_env: Env) -> Iterator[Registry]:
    reg = Registry.open(e2e_env.vars["HAMTA_DB_URL"])
    seed_demo(reg)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="session")
def asterisk(e2e_env: Env, registry: Registry, cast: dict) -> Iterator[Env]:
    """Prompts built (device names from the seeded registry), then Asterisk up; down at the end."""
    e2e_env.run("prompts", "build", "-q", timeout=300)
    started = time.monotonic()
    done = e2e_env.run("asterisk", "up", timeout=900, check=False)
    if done.returncode != 0:
        e2e_env.run("asterisk", "down", check=False)
        cannot_run(f"hamta-ivr asterisk up failed:\n{done.stdout}\n{done.stderr}")
    print(f"\nasterisk up: {time.monotonic() - started:.1f}s", file=sys.stderr)
    try:
        yield e2e_env
    finally:
        down = e2e_env.run("asterisk", "down", check=False)
        assert down.returncode == 0, down.stderr
        status = e2e_env.run("asterisk", "status", check=False)
        assert status.returncode == 1, status.stdout


@pytest.fixture(scope="session")
def agi_server(asterisk: Env) -> Iterator[AgiServer]:
    server = AgiServer(asterisk)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def quiet_port(asterisk: Env, agi_server: AgiServer) -> Iterator[Env]:
    """The session's FastAGI port with nothing listening: a module's own FastAGI server (a
    recorder, a player) takes it; the session's `serve` comes back after the module."""
    agi_server.stop()
    try:
        yield asterisk
    finally:
        agi_server.start()


def missing_sounds(env: Env) -> list[str]:
    """Lines of Asterisk's log saying a sound could not be played (file.c's warnings)."""
    try:
        text = (env.log / "messages").read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines()
            if "does not exist in any format" in line
            or ("Unable to open " in line and "(format" in line)]


@pytest.fixture(scope="session")
def cast(registry: Registry) -> dict:
    """Subscribers and devices of our own per test, so the calls can run at the same time."""
    from ivr.registry.demo import demo_imei

    pin = "2468"
    people = {f"s{i}": f"0917000{i:04d}" for i in range(1, 9)}
    people |= {f"b{i}": f"0918000{i:04d}" for i in range(1, 9)}
    for key, number in people.items():
        if key.startswith("s"):
            registry.portal.add_subscriber(number, password=pin)
    devices = {
        "activate": (demo_imei(601), people["s2"], "Samsung", "Galaxy S23", "13572468"),
        "transfer": (demo_imei(602), people["s3"], "Xiaomi", "Redmi Note 12", "11223344"),
        "code": (demo_imei(603), people["s4"], "Nokia", "C32", None),
        "list1": (demo_imei(604), people["s5"], "Samsung", "Galaxy A54", "55667788"),
        "list2": (demo_imei(605), people["s5"], "Apple", "iPhone 13", None),
        "change": (demo_imei(606), people["s6"], "Honor", "X5", "99887766"),
        "hangup": (demo_imei(607), people["s7"], "Samsung", "Galaxy A54", "44332211"),
    }
    for imei, owner, brand, model, code in devices.values():
        registry.portal.add_device(imei, owner=owner, brand=brand, model=model,
                                   activation_code=code)
    return {"pin": pin, **people, "devices": devices}


def _which(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def _host_asterisk() -> bool:
    return _which("asterisk") and os.environ.get("HAMTA_ASTERISK_MODE") != "chroot"
