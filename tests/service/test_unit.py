"""The systemd unit deploy/hamta-ivr@.service (static, in the repository): its content (sandbox,
user, drain on stop, journal, the code in /opt/hamta-ivr), the drop-in deploy/install.sh writes
for what a config file moves, `systemd-analyze verify` on both, and the config file
deploy/config.toml the script installs."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ivr import systemd as service
from ivr.config import DEFAULT_CONFIG_FILE, FILE_KEYS, read_config_file

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / service.UNIT_NAME
IN_CI = os.environ.get("CI", "").lower() == "true"


def cannot_run(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)


LISTS = {"Environment", "ExecStart", "ReadWritePaths"}  # systemd keys that add up


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> its values, read as systemd does a unit followed by its drop-in: a list
    key adds up (an empty value resets it), any other key's last value wins."""
    found: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            section = found.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        if key not in LISTS:
            section[key] = [value]
        elif value:
            section.setdefault(key, []).append(value)
        else:
            section[key] = []
    return found


def one(unit: dict[str, dict[str, list[str]]], key: str) -> str:
    [value] = unit["Service"][key]
    return value


def plan_for(tmp_path: Path, config_text: str = "") -> service.Plan:
    config = tmp_path / "config.toml"
    config.write_text(config_text)
    return service.make_plan(config)


def test_the_unit_runs_the_installed_serve_as_hamta_sandboxed_and_drains_on_stop():
    unit = parse_unit(UNIT.read_text())
    assert one(unit, "ExecStart") == f"{service.PREFIX}/venv/bin/hamta-ivr serve --port %i"
    assert one(unit, "User") == "hamta" and one(unit, "Group") == "hamta"
    assert unit["Service"]["Environment"] == [
        "HAMTA_CONFIG=/etc/hamta-ivr/config.toml", "XDG_DATA_HOME=/var/lib", "PYTHONUNBUFFERED=1"]
    expected = {
        "Type": "exec", "Restart": "on-failure", "RestartPreventExitStatus": "2",
        "KillSignal": "SIGTERM", "KillMode": "mixed",
        "TimeoutStopSec": str(int(service.DEFAULT_DRAIN) + service.STOP_SLACK),
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "RestrictNamespaces": "yes",
        "LockPersonality": "yes", "SystemCallArchitectures": "native",
        "SystemCallFilter": "@system-service", "UMask": "0077",
        "ReadWritePaths": str(service.SERVICE_HOME),
        "WorkingDirectory": str(service.SERVICE_HOME),
    }
    assert {key: one(unit, key) for key in expected} == expected
    # the journal: no StandardOutput/StandardError redirection, no reload that would not drain
    assert not {"StandardOutput", "StandardError", "ExecReload", "SendSIGHUP"} & set(
        unit["Service"])
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_units_defaults_need_no_drop_in(tmp_path):
    at_home = dataclasses.replace(plan_for(tmp_path), config=DEFAULT_CONFIG_FILE)
    assert service.render_dropin(at_home) == ""
    assert service.render_dropin(at_home, sms=True) == ""
    defaults = f'data_dir = "{service.SERVICE_HOME}"\ndrain = 120\n'
    spelt_out = dataclasses.replace(plan_for(tmp_path, defaults), config=DEFAULT_CONFIG_FILE)
    assert service.render_dropin(spelt_out) == ""
    # another config file: the unit's HAMTA_CONFIG names it
    unit = parse_unit(UNIT.read_text() + service.render_dropin(plan_for(tmp_path)))
    assert f"HAMTA_CONFIG={tmp_path}/config.toml" == unit["Service"]["Environment"][-1]


def test_a_config_that_moves_paths_and_the_drain_gets_a_drop_in(tmp_path):
    plan = plan_for(tmp_path, f'data_dir = "{tmp_path}/data"\nagi_port = 4600\n'
                              'spool_dir = "/srv/spool"\ndrain = 60\n')
    unit = parse_unit(UNIT.read_text() + service.render_dropin(plan, Path("/srv/hamta")))
    assert one(unit, "ExecStart") == "/srv/hamta/venv/bin/hamta-ivr serve --port %i"
    assert one(unit, "ReadWritePaths") == f"{tmp_path}/data -/srv/spool"
    assert one(unit, "WorkingDirectory") == f"{tmp_path}/data"
    assert one(unit, "TimeoutStopSec") == "90" and int("90") > plan.drain
    assert plan.instance == "hamta-ivr@4600.service"


def test_a_registry_outside_the_data_dir_is_writable(tmp_path):
    plan = plan_for(tmp_path, 'db_url = "sqlite:////srv/registry/registry.db"\n')
    unit = parse_unit(UNIT.read_text() + service.render_dropin(plan))
    assert one(unit, "ReadWritePaths") == "/var/lib/hamta-ivr -/srv/registry"
    assert one(unit, "TimeoutStopSec") == "150"  # serve's default drain 120 + 30
    assert one(unit, "ExecStart").startswith("/opt/hamta-ivr/venv/bin/hamta-ivr ")
    assert plan.instance == "hamta-ivr@4573.service"


def test_a_bad_drain_in_the_file_names_it(tmp_path):
    # the settings room's one message for drain, as serve gives it: the key, the file, the fix
    with pytest.raises(service.ConfigError, match=r"drain in \S+config\.toml 9000: give 0-3600"):
        plan_for(tmp_path, "drain = 9000\n")


def test_the_config_file_install_writes_is_valid_and_mirrors_the_keys(tmp_path):
    text = (DEPLOY / "config.toml").read_text()
    assert read_config_file(DEPLOY / "config.toml") == {
        "data_dir": str(service.SERVICE_HOME), "agi_host": "127.0.0.1",
        "agi_port": str(service.DEFAULT_PORT)}
    # every key is there, commented or not, and uncommented each one is valid
    uncommented = "\n".join(line.removeprefix("# ") for line in text.splitlines()
                            if line.startswith(tuple(f"# {k} =" for k in FILE_KEYS)) or
                            not line.startswith("#"))
    path = tmp_path / "config.toml"
    path.write_text(uncommented)
    keys = set(read_config_file(path))
    assert keys >= {"data_dir", "db_url", "pepper_file", "sounds_dir", "spool_dir", "agi_host",
                    "agi_port", "max_calls", "idle_limit", "workers", "drain"}


def verify(folder: Path, *units: str) -> str:
    """systemd-analyze verify's complaints on units in folder (drop-ins beside them), "" if none."""
    if shutil.which("systemd-analyze") is None:
        cannot_run("systemd-analyze is not installed (Debian package systemd)")
    run = subprocess.run(["systemd-analyze", "verify", *units], cwd=folder, capture_output=True,
                         text=True, timeout=60)
    return (run.stdout + run.stderr).strip() or ("" if run.returncode == 0 else "failed")


def installed_like(tmp_path: Path, config_text: str = "") -> Path:
    """The units as deploy/install.sh lays them down for a prefix whose hamta-ivr exists."""
    prefix = tmp_path / "prefix"
    (prefix / "venv" / "bin").mkdir(parents=True)
    (prefix / "venv" / "bin" / "hamta-ivr").symlink_to("/usr/bin/true")
    units = tmp_path / "units"
    units.mkdir()
    plan = plan_for(tmp_path, config_text)
    for name, sms in ((service.UNIT_NAME, False), (service.SMS_UNIT_NAME, True)):
        target = units / service.instance_name(4573) if not sms else units / name
        shutil.copy(DEPLOY / name, target)
        (units / f"{name}.d").mkdir()
        (units / f"{name}.d" / service.DROPIN).write_text(service.render_dropin(plan, prefix,
                                                                               sms))
    return units


def test_the_units_and_their_drop_ins_pass_systemd_analyze_verify(tmp_path):
    units = installed_like(tmp_path, 'spool_dir = "/srv/spool"\ndrain = 60\n')
    instance = service.instance_name(4573)
    assert verify(units, instance, service.SMS_UNIT_NAME) == ""
    # and it does catch a mistake
    path = units / instance
    path.write_text(path.read_text().replace("KillMode=mixed", "KillMode=mixed\nDrian=1"))
    assert "Drian" in verify(units, instance)
