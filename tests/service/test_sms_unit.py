"""The SMS worker's unit deploy/hamta-ivr-sms.service, installed by deploy/install.sh next to the
FastAGI server's: its command, the same user, settings and sandbox, its drop-in, enabled only
when SMS is configured."""

from __future__ import annotations

from pathlib import Path

from ivr import systemd as service
from tests.service.test_unit import DEPLOY, UNIT, one, parse_unit, plan_for

SANDBOX = ("User", "Group", "ProtectSystem", "ReadWritePaths", "NoNewPrivileges",
           "CapabilityBoundingSet", "SystemCallFilter", "RestrictAddressFamilies", "UMask",
           "WorkingDirectory", "Environment")
SMS_UNIT = DEPLOY / service.SMS_UNIT_NAME


def test_the_sms_unit_runs_the_worker_as_the_server_runs_serve():
    sms = parse_unit(SMS_UNIT.read_text())
    serve = parse_unit(UNIT.read_text())
    assert one(sms, "ExecStart") == f"{service.PREFIX}/venv/bin/hamta-ivr sms deliver"
    assert one(sms, "SyslogIdentifier") == "hamta-ivr-sms"
    assert "%i" not in SMS_UNIT.read_text()
    for key in SANDBOX:
        assert sms["Service"][key] == serve["Service"][key], key


def test_its_drop_in_moves_what_the_server_s_does_but_its_command(tmp_path):
    plan = plan_for(tmp_path, 'data_dir = "/srv/hamta"\ndrain = 60\n')
    sms = parse_unit(SMS_UNIT.read_text() + service.render_dropin(plan, Path("/srv/p"), sms=True))
    serve = parse_unit(UNIT.read_text() + service.render_dropin(plan, Path("/srv/p")))
    assert one(sms, "ExecStart") == "/srv/p/venv/bin/hamta-ivr sms deliver"
    assert one(sms, "TimeoutStopSec") == "30"  # the message in hand, not the calls' drain
    for key in SANDBOX:
        assert sms["Service"][key] == serve["Service"][key], key


def test_it_is_enabled_only_when_kannel_is_configured(tmp_path):
    assert plan_for(tmp_path).sms is False
    assert plan_for(tmp_path, 'kannel_url = "http://127.0.0.1:13013/cgi-bin/sendsms"\n').sms
