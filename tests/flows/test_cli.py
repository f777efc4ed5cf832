"""`hamta-ivr call` and `hamta-ivr calls` as staff use them: a real process, a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import BUYER, CODE, PHONE, SELLER, SELLER_PIN


@pytest.fixture
def cli(tmp_path):
    env = {**os.environ, "HAMTA_DATA_DIR": str(tmp_path), "HAMTA_PEPPER": "ab" * 32}
    env.pop("HAMTA_DB_URL", None)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ivr", *args], env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)

    assert run("db", "upgrade").returncode == 0
    assert run("db", "seed-demo").returncode == 0
    return run


def test_scripted_call_prints_the_transcript_and_logs_the_call(cli):
    done = cli("call", "--from", SELLER, "--keys", f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1")
    assert done.returncode == 0, done.stderr
    assert "> transferred:" in done.stdout
    assert "مالکیت منتقل شد" in done.stdout
    assert SELLER_PIN + "#" not in done.stdout and CODE not in done.stdout
    assert done.stdout.strip().endswith("[call ended: transfer:completed]")
    device = json.loads(cli("device", "show", PHONE, "--json").stdout)
    assert device["owner"] == "+98" + BUYER[1:]
    calls = json.loads(cli("calls", "--json").stdout)
    assert calls[0]["outcome"] == "transfer:completed"
    assert calls[0]["path"] == ["transfer:completed"]
    assert SELLER_PIN not in json.dumps(calls)


def test_a_scripted_ussd_session_shows_screens_and_logs_channel_ussd(cli):
    done = cli("call", "--ussd", "--from", SELLER, "--replies",
               f"3 1 {SELLER_PIN} 1 {CODE} {BUYER} 1")
    assert done.returncode == 0, done.stderr
    assert "┌" in done.stdout and " CON" in done.stdout
    assert "مالکیت منتقل شد." in done.stdout
    assert done.stdout.strip().endswith("[session ended: transfer:completed]")
    calls = json.loads(cli("calls", "--json").stdout)
    assert calls[0]["channel"] == "ussd" and calls[0]["outcome"] == "transfer:completed"


def test_an_interactive_ussd_session_reads_replies_from_the_terminal(cli):
    done = cli("call", "--ussd", "--from", BUYER, stdin=f"1\n{PHONE}\n")
    assert done.returncode == 0, done.stderr
    assert "reply (empty = none" in done.stdout
    assert "ثبت‌شده و قانونی: Samsung Galaxy A54" in done.stdout
    assert "[session ended: inquiry:registered]" in done.stdout


def test_ussd_kannel_conf_renders_the_sms_and_ussd_groups(cli, tmp_path):
    (tmp_path / "smpp-password").write_text("s3cret\n")
    done = cli("ussd", "kannel-conf", "--listen", "10.0.0.2:13140", "--ussd-smsc",
               "10.9.9.9:2775", "--password-file", str(tmp_path / "smpp-password"))
    assert done.returncode == 0, done.stderr
    assert 'get-url = "http://10.0.0.2:13140/sms?' in done.stdout
    assert "host = 10.9.9.9" in done.stdout and 'smsc-password = "s3cret"' in done.stdout
    assert "tag = 0x0501" in done.stdout and "sms-length = 160" in done.stdout


def test_withheld_caller_and_hang_up(cli):
    done = cli("call", "--keys", "2 h")
    assert done.returncode == 0
    assert "no_caller_id_activate" in done.stdout
    assert "[caller hangs up]" in done.stdout
    assert json.loads(cli("calls", "--json").stdout)[0]["msisdn"] is None


def test_interactive_call_reads_keys_from_the_terminal(cli):
    done = cli("call", "--from", SELLER, stdin=f"1\n{PHONE}\n\n\n\n")
    assert done.returncode == 0, done.stderr
    assert "> imei_registered:" in done.stdout
    assert "keys (empty = silence" in done.stdout
    assert "[call ended: inquiry:registered]" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["call", "--from", "12345"], "--from"),
    (["call", "--from", SELLER, "--keys", "1 x"], "--keys"),
])
def test_bad_input_exits_2_with_a_clear_message(cli, args, message):
    done = cli(*args)
    assert done.returncode == 2
    assert message in done.stderr and "error" in done.stderr
