"""The admin and db commands of `hamta-ivr`, through ivr.cli.main (and once as a process)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from ivr.cli import main
from ivr.registry import demo
from ivr.registry.service import Registry

from .support import TEST_PEPPER, transfer_direct

PIN, CODE = "73916482", "48151623"


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAMTA_PEPPER", TEST_PEPPER.hex())
    monkeypatch.delenv("HAMTA_DB_URL", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_upgrade_and_seed_the_default_database(capsys, tmp_path):
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "revision 0005" in out
    assert (tmp_path / "data" / "registry.db").exists()
    assert run(capsys, "db", "seed-demo")[0] == 0
    code, out, _ = run(capsys, "db", "seed-demo")
    assert code == 0 and "already" in out
    seller = as_json(capsys, "subscriber", "show", demo.DEMO_SELLER)
    assert seller["msisdn"] == "+989121111111" and seller["has_password"] is True
    assert seller["failed_attempts"] == 0 and seller["locked_until"] is None
    assert as_json(capsys, "subscriber", "show", demo.DEMO_NO_PIN)["has_password"] is False
    device = as_json(capsys, "device", "show", demo.DEMO_PHONE_BLOCKED)
    assert device["status"] == "blocked" and device["owner"] == "+989121111111"
    assert device["has_activation_code"] is True


def test_commands_on_a_database_never_upgraded_say_what_to_do(capsys, tmp_path):
    code, _, err = run(capsys, "--db", f"sqlite:///{tmp_path / 'new.db'}", "device", "show",
                       demo.DEMO_PHONE)
    assert code == 2 and "hamta-ivr db upgrade" in err


def test_subscriber_commands(capsys, db_url):
    db = ("--db", db_url)
    code, out, _ = run(capsys, *db, "subscriber", "add", "9121111111", "--password", PIN,
                       "--national-id", "0012345679")
    assert code == 0 and "+989121111111" in out
    shown = as_json(capsys, *db, "subscriber", "show", "+989121111111")
    assert shown["has_password"] and shown["national_id"] == "0012345679"
    assert run(capsys, *db, "subscriber", "add", "09122222222")[0] == 0
    assert as_json(capsys, *db, "subscriber", "show", "989122222222")["has_password"] is False
    code, _, err = run(capsys, *db, "subscriber", "add", "09121111111")
    assert code == 1 and "already" in err
    assert run(capsys, *db, "subscriber", "set-password", "09122222222", "2479")[0] == 0
    code, out, _ = run(capsys, *db, "subscriber", "show", "09122222222")
    assert code == 0 and "has_password" in out and "True" in out
    code, _, err = run(capsys, *db, "subscriber", "show", "09123333333")
    assert code == 1 and "not in the registry" in err
    code, _, err = run(capsys, *db, "subscriber", "set-password", "09123333333", "2479")
    assert code == 1 and "subscriber add" in err


def test_set_password_from_standard_input(capsys, db_url, monkeypatch):
    assert run(capsys, "--db", db_url, "subscriber", "add", "09121111111")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(PIN + "\n"))
    assert run(capsys, "--db", db_url, "subscriber", "set-password", "09121111111", "-")[0] == 0
    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        assert registry.kartabl.sign_in("09121111111", PIN).status == "ok"
    finally:
        registry.close()


@pytest.mark.parametrize(("argv", "fix"), [
    (["subscriber", "add", "0212345678"], "09xxxxxxxxx"),
    (["subscriber", "add", "09121111111", "--password", "12"], "4 to 8 digits"),
    (["subscriber", "add", "09121111111", "--national-id", "123"], "national ID"),
    (["subscriber", "set-password", "09121111111", "12345678901"], "4 to 8 digits"),
    (["subscriber", "show", "12"], "09xxxxxxxxx"),
    (["device", "add", "123", "--owner", "09121111111", "--brand", "B", "--model", "M"],
     "15 digits"),
    (["device", "add", demo.DEMO_PHONE, "--owner", "0912", "--brand", "B", "--model", "M"],
     "09xxxxxxxxx"),
    (["device", "add", demo.DEMO_PHONE, "--brand", "B", "--model", "M", "--status", "stolen"],
     "registered, unregistered, blocked"),
    (["device", "add", demo.DEMO_PHONE, "--brand", "B", "--model", "M",
      "--activation-code", "123"], "exactly 8 digits"),
    (["device", "add", demo.DEMO_PHONE, "--brand", " ", "--model", "M"], "brand and a model"),
    (["device", "show", demo.DEMO_PHONE[:-1] + "0"], "check digit"),
    (["transfers", "--msisdn", "x"], "09xxxxxxxxx"),
    (["audit", "--limit", "0"], "--limit"),
])
def test_bad_input_exits_2_naming_the_fix(capsys, db_url, argv, fix):
    code, _, err = run(capsys, "--db", db_url, *argv)
    assert code == 2
    assert fix in err and err.startswith("hamta-ivr: error:")


def test_device_commands(capsys, db_url):
    db = ("--db", db_url)
    code, out, _ = run(capsys, *db, "device", "add", demo.DEMO_PHONE, "--owner", "09121111111",
                       "--brand", "Samsung", "--model", "Galaxy A54", "--activation-code", CODE)
    assert code == 0 and "+989121111111" in out
    assert run(capsys, *db, "device", "add", demo.DEMO_UNREGISTERED, "--brand", "Nokia",
               "--model", "G21", "--status", "unregistered")[0] == 0
    shown = as_json(capsys, *db, "device", "show", demo.DEMO_PHONE)
    assert {k: shown[k] for k in ("imei", "owner", "status", "has_activation_code")} == {
        "imei": demo.DEMO_PHONE, "owner": "+989121111111", "status": "registered",
        "has_activation_code": True}
    assert as_json(capsys, *db, "device", "show", demo.DEMO_UNREGISTERED)["owner"] is None
    code, _, err = run(capsys, *db, "device", "add", demo.DEMO_PHONE, "--owner", "09121111111",
                       "--brand", "B", "--model", "M")
    assert code == 1 and "already" in err
    code, _, err = run(capsys, *db, "device", "show", demo.DEMO_UNKNOWN_IMEI)
    assert code == 1 and "no device" in err
    code, out, _ = run(capsys, *db, "device", "show", demo.DEMO_PHONE)
    assert code == 0 and "has_activation_code" in out


def test_transfers_and_audit(capsys, db_url):
    db = ("--db", db_url)
    assert as_json(capsys, *db, "transfers") == []
    run(capsys, *db, "subscriber", "add", "09121111111", "--password", PIN)
    run(capsys, *db, "device", "add", demo.DEMO_PHONE, "--owner", "09121111111", "--brand", "S",
        "--model", "A", "--activation-code", CODE)
    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        reference = transfer_direct(registry, "09121111111", demo.DEMO_PHONE, CODE,
                                    "09122222222").reference
    finally:
        registry.close()
    [record] = as_json(capsys, *db, "transfers", "--imei", demo.DEMO_PHONE)
    assert record["reference"] == reference and record["kind"] == "direct"
    assert record["from_msisdn"] == "+989121111111" and record["to_msisdn"] == "+989122222222"
    assert as_json(capsys, *db, "transfers", "--msisdn", "09122222222") == [record]
    assert as_json(capsys, *db, "transfers", "--msisdn", "09123333333") == []
    code, out, _ = run(capsys, *db, "transfers")
    assert code == 0 and reference in out
    events = as_json(capsys, *db, "audit")
    assert [e["event"] for e in events][-1] == "transfer"
    assert PIN not in json.dumps(events) and CODE not in json.dumps(events)
    assert len(as_json(capsys, *db, "audit", "--limit", "1")) == 1
    code, out, _ = run(capsys, *db, "audit", "--msisdn", "09121111111")
    assert code == 0 and "subscriber_added" in out


def test_the_installed_command_exit_codes(sqlite_registry_factory, tmp_path):
    url = sqlite_registry_factory.url()
    env = {"HAMTA_DATA_DIR": str(tmp_path), "HAMTA_PEPPER": TEST_PEPPER.hex(), "PATH": "/usr/bin"}
    base = [sys.executable, "-m", "ivr", "--db", url]
    unknown = subprocess.run([*base, "device", "show", demo.DEMO_UNKNOWN_IMEI],
                             capture_output=True, text=True, env=env, timeout=60)
    assert unknown.returncode == 1 and "no device" in unknown.stderr
    bad = subprocess.run([*base, "device", "show", "1234"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert bad.returncode == 2 and "15 digits" in bad.stderr


def test_a_listing_cut_short_by_its_reader_ends_quietly(db_url):
    """Issue 18: `hamta-ivr calls | head -1` printed a BrokenPipe traceback."""
    from datetime import UTC, datetime

    registry = Registry.open(db_url, pepper=TEST_PEPPER)
    try:
        for n in range(3000):
            registry.call_log.started(f"call-{n}", None, "console", datetime.now(UTC))
    finally:
        registry.close()
    done = subprocess.run(["bash", "-c", f"{sys.executable} -m ivr --db '{db_url}' calls "
                           "| head -1"], capture_output=True, text=True, timeout=120)
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
