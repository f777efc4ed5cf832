"""deploy/install.sh, as root (which `./setup.sh test` is): from a copy of the clone into a
temporary prefix, unit folder and config, as it would into /opt/hamta-ivr. The service runs a
wheel built from the clone, never the clone: edit the clone and the installed code is unchanged,
for the unit's command and for what ./setup.sh demo runs as the service.
Then the unit's command as the unprivileged user: it listens, and stops cleanly on SIGTERM;
`hamta-ivr service status` sees it installed, and --uninstall removes it, keeping the data."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr import systemd as service
from ivr.testing.kannel import free_port
from tests.service.test_unit import cannot_run, one, parse_unit

CLONE = Path(__file__).resolve().parents[2]
USER = "hamta"


@dataclass(frozen=True)
class Installed:
    top: Path
    clone: Path  # the copy of the clone the install was made from
    prefix: Path
    units: Path
    bin_dir: Path
    config: Path
    port: int

    def script(self, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = ["bash", str(self.clone / "deploy" / "install.sh"), "--prefix", str(self.prefix),
                "--config", str(self.config), "--unit-dir", str(self.units), "--bin-dir",
                str(self.bin_dir), *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=900)

    def unit(self) -> dict[str, dict[str, list[str]]]:
        """The installed unit as systemd reads it: the static file, then its drop-in."""
        name = service.UNIT_NAME
        dropin = self.units / f"{name}.d" / service.DROPIN
        return parse_unit((self.units / name).read_text() + dropin.read_text())


def as_user(*argv: str, env: dict[str, str] | None = None) -> list[str]:
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "env", "-i",
            *extra, "PATH=/usr/bin:/bin", *argv]


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    if os.geteuid() != 0:
        pytest.skip("needs root (creates the user hamta, installs, runs as it): ./setup.sh test "
                    "is root")
    if shutil.which("setpriv") is None:
        cannot_run("setpriv is not installed (Debian package util-linux)")
    # the user must reach everything: a folder of its own, not pytest's (root-only) tmp_path
    top = Path(tempfile.mkdtemp(prefix="hamta-install-test-"))
    top.chmod(0o755)
    clone = top / "clone"
    shutil.copytree(CLONE, clone, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "*.egg-info", "build", ".mypy_cache", ".ruff_cache"))
    config = top / "etc" / "config.toml"
    config.parent.mkdir()
    port = free_port()
    config.write_text(f'data_dir = "{top}/data"\nagi_port = {port}\ndrain = 5\n')
    made = Installed(top, clone, top / "opt", top / "units", top / "bin", config, port)
    try:
        done = made.script("--no-start")
        assert done.returncode == 0, f"deploy/install.sh failed:\n{done.stdout}{done.stderr}"
        out = done.stdout
        assert "registry migrated (as the user hamta)" in out
        assert ("systemd-analyze verify: clean" in out
                or "systemd-analyze is not installed" in out)
        assert "not started (--no-start)" in out
        yield made
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_the_service_runs_the_installed_wheel_unchanged_when_the_clone_changes(installed):
    made = installed
    unit = made.unit()
    exe = made.prefix / "venv" / "bin" / "hamta-ivr"
    port = str(made.port)
    command = [arg.replace("%i", port) for arg in shlex.split(one(unit, "ExecStart"))]
    assert command == [str(exe), "serve", "--port", port]
    assert os.readlink(made.bin_dir / "hamta-ivr") == str(exe)
    # the clone changes: a command that no longer starts, a module that says where it is
    (made.clone / "ivr" / "cli" / "serve.py").write_text("raise SystemExit('the clone ran')\n")
    (made.clone / "ivr" / "__init__.py").write_text("WHERE = 'the clone'\n")
    python = made.prefix / "venv" / "bin" / "python"
    where = subprocess.run(
        as_user(str(python), "-c", "import ivr; print(ivr.__file__, getattr(ivr, 'WHERE', ''))"),
        cwd=made.top, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.split()[0]).is_relative_to(made.prefix / "venv" / "lib")
    assert "the clone" not in where.stdout
    # what ./setup.sh demo runs as the service (serve, where systemd is not PID 1): the same
    demo = subprocess.run(
        ["bash", "-c", 'source "$1" && SERVICE_PREFIX=$2 CONFIG_FILE=$3 && '
         'as_service hamta-ivr --help >/dev/null && '
         'as_service python -c "import ivr; print(ivr.__file__)"', "bash",
         str(made.clone / "setup.sh"), str(made.prefix), str(made.config)],
        cwd=made.top, capture_output=True, text=True, timeout=60)
    assert demo.returncode == 0, demo.stderr
    assert Path(demo.stdout.strip()).is_relative_to(made.prefix / "venv" / "lib")
    # the unit's ExecStart, its Environment, as its User (setpriv execs it, as systemd does:
    # the signal reaches serve itself, not a wrapper)
    entry = pwd.getpwnam(one(unit, "User"))
    assert entry.pw_uid != 0 and entry.pw_dir == "/var/lib/hamta-ivr"
    assert entry.pw_shell == "/usr/sbin/nologin"
    data = Path(one(unit, "WorkingDirectory"))
    assert (data.stat().st_uid, oct(data.stat().st_mode & 0o7777)) == (entry.pw_uid, "0o750")
    assert oct((data / "spool").stat().st_mode & 0o7777) == "0o2750"
    assert made.config.stat().st_uid == 0  # kept as written here; a new one is 640 root:hamta
    assert (data / "registry.db").stat().st_uid == entry.pw_uid  # migrated as hamta
    environment = dict(item.split("=", 1) for item in unit["Service"]["Environment"])
    assert environment["HAMTA_CONFIG"] == str(made.config)
    proc = subprocess.Popen(as_user(*command, env=environment), cwd=data,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        listening = service.wait_listening(made.port, 60)
        if not listening:
            proc.kill()
        assert listening, f"serve did not listen on {port}:\n{proc.communicate()[0]}"
        assert Path(f"/proc/{proc.pid}/status").read_text().count(f"\t{entry.pw_uid}\t") >= 1
        # a new registry: serve made its pepper, as the user, mode 600
        pepper = data / "pepper"
        assert pepper.stat().st_uid == entry.pw_uid
        assert oct(pepper.stat().st_mode & 0o777) == "0o600"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=int(one(unit, "TimeoutStopSec")))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log
    assert time.monotonic() - started < 5, "no call was running: the drain is immediate"
    assert re.search(r"FastAGI server \S* ?stopped", log) and "Traceback" not in log
    assert "the clone ran" not in log
    assert one(unit, "TimeoutStopSec") == "35"  # drain = 5, + 30


def test_status_then_uninstall_keeps_the_data(installed):
    made = installed
    exe = made.prefix / "venv" / "bin" / "hamta-ivr"
    status = subprocess.run([str(exe), "service", "status", "--config", str(made.config),
                             "--unit-dir", str(made.units)], capture_output=True, text=True,
                            timeout=60)
    assert status.returncode == 1, status.stdout + status.stderr  # installed, not running
    assert "installed" in status.stdout and "does not match" not in status.stdout
    assert f"port {made.port} NOT answering" in status.stdout
    done = made.script("--uninstall")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (made.units / service.UNIT_NAME).exists()
    assert not (made.units / f"{service.UNIT_NAME}.d").exists()
    assert not (made.bin_dir / "hamta-ivr").exists() and not exe.exists()
    assert made.config.exists() and (made.top / "data" / "registry.db").exists()  # data kept
