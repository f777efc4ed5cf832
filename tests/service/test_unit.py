"""The systemd service `hamta-ivr service install` lays down: the unit's content (sandbox, user,
drain on stop, journal), `systemd-analyze verify` on it, the config file it writes, and — as root,
which `./setup.sh test` is — the whole install into a temporary folder and the unit's ExecStart
run as the unprivileged user: it listens, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.cli import main, service
from ivr.config import CONFIG_ENV, FILE_KEYS, read_config_file

IN_CI = os.environ.get("CI", "").lower() == "true"


def cannot_run(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value given (systemd keys may repeat)."""
    found: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            section = found.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return found


def plan_for(tmp_path: Path, config_text: str | None = None) -> service.Plan:
    config = tmp_path / "config.toml"
    if config_text is not None:
        config.write_text(config_text)
    return service.make_plan(config, tmp_path / "units", exe=Path("/usr/bin/true"))


def one(unit: dict[str, dict[str, list[str]]], key: str) -> str:
    [value] = unit["Service"][key]
    return value


def test_the_unit_runs_serve_as_hamta_sandboxed_and_drains_on_stop(tmp_path):
    plan = plan_for(tmp_path, f'data_dir = "{tmp_path}/data"\nagi_port = 4600\n'
                              f'spool_dir = "/srv/spool"\ndrain = 60\n')
    unit = parse_unit(service.render_unit(plan))
    assert one(unit, "ExecStart") == "/usr/bin/true serve --port %i"
    assert one(unit, "User") == "hamta" and one(unit, "Group") == "hamta"
    assert f"HAMTA_CONFIG={tmp_path}/config.toml" in unit["Service"]["Environment"]
    expected = {
        "Type": "exec", "Restart": "on-failure", "RestartPreventExitStatus": "2",
        "KillSignal": "SIGTERM", "KillMode": "mixed", "TimeoutStopSec": "90",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "RestrictNamespaces": "yes",
        "LockPersonality": "yes", "SystemCallArchitectures": "native",
        "SystemCallFilter": "@system-service", "UMask": "0077",
        "ReadWritePaths": f"{tmp_path}/data -/srv/spool",
        "WorkingDirectory": f"{tmp_path}/data",
    }
    assert {key: one(unit, key) for key in expected} == expected
    # the journal: no StandardOutput/StandardError redirection, no reload that would not drain
    assert not {"StandardOutput", "StandardError", "ExecReload", "SendSIGHUP"} & set(
        unit["Service"])
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert int(one(unit, "TimeoutStopSec")) > plan.drain
    assert plan.instance == "hamta-ivr@4600.service"


def test_defaults_and_a_registry_outside_the_data_dir(tmp_path):
    plan = plan_for(tmp_path, 'db_url = "sqlite:////srv/registry/registry.db"\n')
    unit = parse_unit(service.render_unit(plan))
    assert one(unit, "ReadWritePaths") == "/var/lib/hamta-ivr -/srv/registry"
    assert one(unit, "TimeoutStopSec") == "150"  # serve's default drain 120 + 30
    assert "XDG_DATA_HOME=/var/lib" in unit["Service"]["Environment"]
    assert plan.instance == "hamta-ivr@4573.service"
    # a venv under a home folder stays readable
    home_plan = service.make_plan(plan.config, exe=Path("/home/ops/venv/bin/hamta-ivr"))
    assert one(parse_unit(service.render_unit(home_plan)), "ProtectHome") == "read-only"


def test_a_bad_drain_in_the_file_names_it(tmp_path):
    with pytest.raises(service.ConfigError, match=r"config\.toml: drain = 9000 is outside"):
        plan_for(tmp_path, "drain = 9000\n")


def test_the_config_file_install_writes_is_valid_and_mirrors_the_keys(tmp_path):
    text = service.CONFIG_TEMPLATE.format(data_dir="/var/lib/hamta-ivr", port=4573)
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert read_config_file(path) == {"data_dir": "/var/lib/hamta-ivr", "agi_host": "127.0.0.1",
                                      "agi_port": "4573"}
    # every key is there, commented or not, and uncommented each one is valid
    uncommented = "\n".join(line.removeprefix("# ") for line in text.splitlines()
                            if line.startswith(tuple(f"# {k} =" for k in FILE_KEYS)) or
                            not line.startswith("#"))
    path.write_text(uncommented)
    keys = set(read_config_file(path))
    assert keys >= {"data_dir", "db_url", "pepper_file", "sounds_dir", "spool_dir", "agi_host",
                    "agi_port", "max_calls", "idle_limit", "workers", "drain"}


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        cannot_run("systemd-analyze is not installed (Debian package systemd)")
    exe = service.executable()
    plan = service.make_plan(tmp_path / "config.toml", tmp_path / "units", exe=exe)
    service.write_unit(plan)
    assert service.verify_unit(plan.unit_path) is None
    # and it does catch a mistake
    plan.unit_path.write_text(plan.unit_path.read_text().replace("KillMode=mixed",
                                                                 "KillMode=mixed\nDrian=1"))
    assert "Drian" in (service.verify_unit(plan.unit_path) or "")


def test_install_needs_root(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["service", "install", "--config", str(tmp_path / "c.toml")]) == 2
    assert "sudo hamta-ivr service install" in capsys.readouterr().err


# --- as root: the real install, and the unit's command line as the user hamta -----------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def installed(capsys: pytest.CaptureFixture[str]) -> Iterator[service.Plan]:
    if os.geteuid() != 0:
        pytest.skip("needs root (creates the user hamta, runs as it): ./setup.sh test is root")
    # the user must reach everything: a folder of its own, not pytest's (root-only) tmp_path
    top = Path(tempfile.mkdtemp(prefix="hamta-service-test-"))
    top.chmod(0o755)
    config = top / "etc" / "config.toml"
    config.parent.mkdir()
    port = free_port()
    config.write_text(f'data_dir = "{top}/data"\nagi_port = {port}\ndrain = 5\n')
    argv = ["service", "install", "--config", str(config), "--unit-dir", str(top / "units")]
    service.ensure_user(service.SERVICE_USER)
    exe = service.executable()
    probe = subprocess.run(["setpriv", f"--reuid={service.SERVICE_USER}",
                            f"--regid={service.SERVICE_USER}", "--init-groups", "env", "-i",
                            str(exe), "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        cannot_run(f"the user hamta cannot run {exe} ({probe.stderr.strip()[-200:]}): this "
                   "venv's Python is not readable by other users (a pyenv Python under /root?); "
                   "./setup.sh builds it from Debian's /usr/bin/python3")
    try:
        code = main(argv)
        out = capsys.readouterr().out
        assert code == 0, f"hamta-ivr {shlex.join(argv)} failed:\n{out}"
        assert "registry migrated (as the user hamta)" in out
        assert ("systemd-analyze verify: clean" in out
                or "systemd-analyze is not installed" in out)
        assert "systemd is not running here" in out or "not systemd's" in out
        yield service.make_plan(config, top / "units")
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_install_then_the_units_command_runs_as_hamta_listens_and_drains(installed):
    plan = installed
    unit = parse_unit(plan.unit_path.read_text())
    user = one(unit, "User")
    entry = pwd.getpwnam(user)
    assert entry.pw_uid != 0 and entry.pw_dir == "/var/lib/hamta-ivr"
    assert entry.pw_shell == "/usr/sbin/nologin"
    data = plan.data_dir
    assert (data.stat().st_uid, oct(data.stat().st_mode & 0o7777)) == (entry.pw_uid, "0o750")
    assert oct(plan.spool_dir.stat().st_mode & 0o7777) == "0o2750"
    st = plan.config.stat()  # kept as written here; a new one is 640 root:hamta
    assert st.st_uid == 0
    assert (data / "registry.db").stat().st_uid == entry.pw_uid  # migrated as hamta
    # the unit's ExecStart, its Environment, as its User (setpriv execs it, as systemd does:
    # the signal reaches serve itself, not a wrapper)
    port = str(plan.port)
    command = [arg.replace("%i", port) for arg in shlex.split(one(unit, "ExecStart"))]
    environment = dict(item.split("=", 1) for item in unit["Service"]["Environment"])
    argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "env", "-i",
            *(f"{k}={v}" for k, v in environment.items()), "PATH=/usr/bin:/bin", *command]
    proc = subprocess.Popen(argv, cwd=one(unit, "WorkingDirectory"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        listening = service.wait_listening(plan.port, 30)
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
    assert not service._listening(plan.port)


def test_status_and_uninstall(installed, capsys):
    plan = installed
    args = ["--config", str(plan.config), "--unit-dir", str(plan.unit_dir)]
    assert main(["service", "status", *args]) == 1  # installed, not running
    out = capsys.readouterr().out
    assert "installed" in out and f"port {plan.port} NOT answering" in out
    assert main(["service", "uninstall", *args]) == 0
    assert not plan.unit_path.exists()
    assert plan.config.exists() and plan.data_dir.exists()  # data is kept
    assert CONFIG_ENV == "HAMTA_CONFIG"
