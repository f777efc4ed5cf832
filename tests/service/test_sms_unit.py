"""The SMS worker's unit (`hamta-ivr-sms.service`), laid down by `hamta-ivr service install` next
to the FastAGI server's: its command, the same user, settings and sandbox, enabled only when SMS
is configured, and clean under `systemd-analyze verify`."""

from __future__ import annotations

import shutil
from pathlib import Path

from ivr.cli import service
from tests.service.test_unit import cannot_run, one, parse_unit

SANDBOX = ("User", "Group", "ProtectSystem", "ReadWritePaths", "NoNewPrivileges",
           "CapabilityBoundingSet", "SystemCallFilter", "RestrictAddressFamilies", "UMask")


def plan(tmp_path: Path, config: str = "") -> service.Plan:
    path = tmp_path / "config.toml"
    path.write_text(config)
    return service.make_plan(path, tmp_path / "units", exe=Path("/opt/venv/bin/hamta-ivr"))


def test_the_sms_unit_runs_the_worker_as_the_server_runs_serve(tmp_path):
    made = plan(tmp_path)
    sms = parse_unit(service.render_sms_unit(made))
    serve = parse_unit(service.render_unit(made))
    assert one(sms, "ExecStart") == "/opt/venv/bin/hamta-ivr sms deliver"
    assert one(sms, "SyslogIdentifier") == "hamta-ivr-sms"
    assert "%i" not in service.render_sms_unit(made)
    for key in SANDBOX:
        assert sms["Service"][key] == serve["Service"][key], key
    assert sms["Service"]["Environment"] == serve["Service"]["Environment"]


def test_it_is_enabled_only_when_kannel_is_configured(tmp_path):
    assert plan(tmp_path).sms is False
    assert plan(tmp_path, 'kannel_url = "http://127.0.0.1:13013/cgi-bin/sendsms"\n').sms


def test_install_writes_both_units_and_systemd_analyze_accepts_the_sms_one(tmp_path):
    if shutil.which("systemd-analyze") is None:
        cannot_run("systemd-analyze is not installed (Debian package systemd)")
    made = service.make_plan(tmp_path / "config.toml", tmp_path / "units",
                             exe=service.executable())
    service.write_unit(made)
    assert made.unit_path.exists() and made.sms_unit_path.exists()
    assert service.verify_unit(made.sms_unit_path) is None
