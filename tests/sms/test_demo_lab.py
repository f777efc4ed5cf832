"""The demo's SMS codes: `hamta-ivr sms lab` takes the deployment's Kannel settings when kannel_url
names this machine (its port, kannel_username, the password of kannel_password_file, made when
missing), so the one-time codes serve sends through ivr.sms.kannel.code_sender reach the lab's
test SMSC and are printed, marked; a taken port or a password file it cannot make is one line."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.prompts import catalogue
from ivr.registry.msisdn import normalize
from ivr.sms import texts
from ivr.sms.kannel import Kannel, KannelSettings, Verdict, code_sender
from ivr.sms.lab import code_patterns, lab_line
from ivr.testing.kannel import free_port, missing
from tests.registry.cast import BUYER, CODE, PHONE, SELLER, populate
from tests.registry.support import transfer_direct
from tests.sms.conftest import cannot_run
from tests.sms.lab_run import LabRun

SETTINGS_ENV = ("HAMTA_KANNEL_URL", "HAMTA_KANNEL_USERNAME", "HAMTA_KANNEL_PASSWORD_FILE",
                "HAMTA_KANNEL_PASSWORD", "HAMTA_SMS_SENDER")


@pytest.fixture
def need_kannel() -> None:
    why = missing()
    if why:
        cannot_run(why)


def deployment(tmp_path: Path, port: int, password_file: Path, **more: str) -> dict[str, str]:
    """A config file as `./setup.sh demo` leaves it, and the environment that reads only it."""
    config = tmp_path / "config.toml"
    lines = [f'data_dir = "{tmp_path / "data"}"',
             f'kannel_url = "http://127.0.0.1:{port}/cgi-bin/sendsms"',
             'kannel_username = "demo-user"', f'kannel_password_file = "{password_file}"',
             'sms_sender = "7777"', *(f'{key} = "{value}"' for key, value in more.items())]
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    return env | {"HAMTA_CONFIG": str(config), "HAMTA_DATA_DIR": "", "HAMTA_DB_URL": ""}


def sms_lines(lines: list[str], prefix: str) -> list[str]:
    return [line.strip() for line in lines if line.startswith(prefix)]


@pytest.mark.kannel
def test_the_lab_takes_the_deployment_s_kannel_and_prints_serve_s_codes(
        need_kannel, sqlite_registry_factory, tmp_path, monkeypatch):
    registry = sqlite_registry_factory()
    populate(registry)
    transfer_direct(registry, SELLER, PHONE, CODE, BUYER)  # two receipts waiting in the outbox
    port = free_port()
    password_file = tmp_path / "data" / "kannel-password"
    env = deployment(tmp_path, port, password_file)
    env["HAMTA_DB_URL"] = str(registry.store.engine.url)
    folder = tmp_path / "data" / "kannel-lab"
    with LabRun(env) as lab:
        lab.wait_for(lambda lines: len(sms_lines(lines, "SMS to ")) == 2)
        assert f"127.0.0.1:{port} as demo-user" in lab.output
        assert "only because this is a demo on Kannel's test SMSC" in lab.output
        # the password file it made: a fresh random password, its owner's only
        password = password_file.read_text().strip()
        assert len(password) == 32 and password != "test-sendsms-password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((folder / "kannel.conf").stat().st_mode) == 0o600
        # serve's way of sending a code, with the deployment's settings
        for key in SETTINGS_ENV:
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setenv("HAMTA_CONFIG", env["HAMTA_CONFIG"])
        send = code_sender()
        assert send is not None
        assert send(normalize(SELLER), "sms_sim_code_transfer", {"code": "482913"})
        url = f"http://127.0.0.1:{port}/cgi-bin/sendsms"
        wrong = Kannel(KannelSettings(url, "demo-user", "not-" + password, "7777"))
        assert wrong.send(normalize(BUYER), "x").verdict is Verdict.RETRY  # 403: its password
        lines = lab.wait_for(lambda lines: bool(sms_lines(lines, "SMS CODE to ")))
        assert lab.stop() == 0, lab.output
    assert sms_lines(lines, "SMS CODE to ") == [
        f"SMS CODE to {SELLER}: 482913  (transfer; key it on the call that asked; shown only "
        "because this demo's SMSC is Kannel's test one)"]
    receipts = sms_lines(lines, "SMS to ")
    assert sorted(line.split(":")[0] for line in receipts) == [f"SMS to {SELLER}",
                                                               f"SMS to {BUYER}"]
    assert "482913" not in "".join(receipts)
    assert subprocess.run(["pgrep", "-f", str(folder)], capture_output=True,
                          timeout=10).returncode == 1  # no Kannel box left running


@pytest.mark.kannel
def test_a_second_lab_uses_the_password_file_there_is(need_kannel, sqlite_registry_factory,
                                                       tmp_path, monkeypatch):
    """As on the demo's second run: the file is kept, and HAMTA_KANNEL_* in the environment do
    as well as the config file."""
    registry = sqlite_registry_factory()
    password_file = tmp_path / "kannel-password"
    password_file.write_text("kept-from-the-first-run\n")
    password_file.chmod(0o600)
    port = free_port()
    env = deployment(tmp_path, port, tmp_path / "elsewhere")
    env |= {"HAMTA_KANNEL_PASSWORD_FILE": str(password_file), "HAMTA_SMS_SENDER": "7000",
            "HAMTA_DB_URL": str(registry.store.engine.url)}
    with LabRun(env) as lab:
        lab.wait_for(lambda lines: any("as demo-user" in line for line in lines))
        for key, value in env.items():
            if key.startswith("HAMTA_"):
                monkeypatch.setenv(key, value)
        send = code_sender()
        assert send is not None
        assert send(normalize(BUYER), "sms_sim_code_withdraw", {"code": "000731"})
        lines = lab.wait_for(lambda lines: bool(sms_lines(lines, "SMS CODE to ")))
    assert sms_lines(lines, "SMS CODE to ")[0].startswith(f"SMS CODE to {BUYER}: 000731  (withdraw")
    assert password_file.read_text() == "kept-from-the-first-run\n"
    assert not (tmp_path / "elsewhere").exists()


def run_lab_briefly(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", "sms", "lab"], env=env, text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.kannel
def test_a_taken_port_is_one_line_naming_kannel_url(need_kannel, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_lab_briefly(deployment(tmp_path, port, tmp_path / "kannel-password"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr and f"kannel_url in {tmp_path}" in done.stderr
    assert done.stdout == ""  # no Kannel started
    assert not (tmp_path / "data" / "kannel-lab").exists()


@pytest.mark.kannel
@pytest.mark.parametrize("case", ["no folder", "a folder", "https", "no port"])
def test_settings_the_lab_cannot_use_are_one_line(need_kannel, tmp_path, case):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    password_file = {"no folder": tmp_path / "file" / "kannel-password",
                     "a folder": tmp_path / "folder"}.get(case, tmp_path / "kannel-password")
    env = deployment(tmp_path, free_port(), password_file)
    config = Path(env["HAMTA_CONFIG"])
    if case in ("https", "no port"):
        url = {"https": "https://localhost:13013/cgi-bin/sendsms",
               "no port": "http://localhost/cgi-bin/sendsms"}[case]
        config.write_text("\n".join(
            f'kannel_url = "{url}"' if line.startswith("kannel_url") else line
            for line in config.read_text().splitlines()) + "\n")
    done = run_lab_briefly(env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    setting = "kannel_url" if case in ("https", "no port") else "kannel_password_file"
    assert f"{setting} in {config}" in done.stderr, done.stderr


def test_the_lab_marks_every_kind_of_sms_code_and_no_receipt():
    patterns = code_patterns()
    codes = [key for key in catalogue.messages() if key.startswith("sms_sim_code_")]
    assert len(patterns) == len(codes) >= 7
    for key in codes:
        line = lab_line(SELLER, texts.render(key, {"code": "013579"}), patterns)
        assert line.startswith(f"SMS CODE to {SELLER}: 013579  (")
    receipt = texts.render("sms_code_changed", {"imei": PHONE})
    assert lab_line(SELLER, receipt, patterns) == f"SMS to {SELLER}: {receipt}"
