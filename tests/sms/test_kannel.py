"""The worker and `hamta-ivr sms` against a real Kannel: what fakesmsc (Kannel's test SMSC) was
handed — recipient, sender and Persian text — and Kannel stopped then started again: the receipts
wait with their back-off and are delivered once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from ivr.registry import outbox
from ivr.registry.msisdn import normalize
from ivr.sms.kannel import Kannel, KannelSettings, Verdict
from ivr.sms.worker import Policy, Worker
from ivr.testing.kannel import SENDER, USERNAME, KannelLab, missing
from tests.registry.cast import BUYER, CODE, PHONE, SELLER, populate
from tests.registry.support import transfer_direct
from tests.sms.conftest import cannot_run
from tests.sms.lab_run import LabRun

pytestmark = pytest.mark.kannel

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def client(lab: KannelLab, password: str | None = None) -> Kannel:
    return Kannel(KannelSettings(lab.url, USERNAME, password or lab.password, SENDER))


@pytest.fixture
def registry(sqlite_registry_factory):
    reg = sqlite_registry_factory()  # the real clock: Kannel's time is real
    populate(reg)
    return reg


def test_a_transfer_s_receipts_reach_the_smsc_in_persian(kannel, registry):
    change = transfer_direct(registry, SELLER, PHONE, CODE, BUYER)
    tally = Worker(registry.store, client(kannel)).drain()
    assert tally.sent == 2
    got = kannel.wait_delivered(2)
    assert sorted(d.to for d in got) == sorted([normalize(SELLER), normalize(BUYER)])
    assert {d.sender for d in got} == {SENDER}
    texts = {d.to: d.text for d in got}
    seller = texts[normalize(SELLER)]
    assert PHONE.translate(PERSIAN) in seller and change.reference.translate(PERSIAN) in seller
    assert "۰۹۱۲۲۲۲۲۲۲۲" in seller and "درگاه همتا" in seller  # the buyer, and what to do
    assert "۰۹۱۲۱۱۱۱۱۱۱" in texts[normalize(BUYER)]
    assert CODE not in seller and CODE.translate(PERSIAN) not in seller
    assert len(kannel.delivered()) == 2  # and nothing else


def test_a_wrong_sendsms_password_is_retried_not_lost(kannel):
    answer = client(kannel, "wrong").send("+989121111111", "همتا")
    assert answer.verdict == Verdict.RETRY and "403" in answer.detail
    assert kannel.delivered() == []


def test_kannel_down_delays_the_receipts_and_loses_none(kannel, registry):
    kannel.stop()
    transfer_direct(registry, SELLER, PHONE, CODE, BUYER)
    worker = Worker(registry.store, client(kannel), Policy(base=0.2, cap=0.4),
                    rand=lambda: 1.0)
    tally = worker.run_once()
    assert tally.retried == 2 and tally.sent == 0
    waiting = outbox.messages(registry.store)
    assert {m.state for m in waiting} == {"pending"}
    assert {m.attempts for m in waiting} == {1}
    assert all("not reachable" in (m.last_error or "") for m in waiting)
    assert all(m.next_attempt_at > m.created_at for m in waiting)
    assert worker.run_once().handled == 0  # backing off
    kannel.start()
    time.sleep(0.25)
    assert worker.drain().sent == 2
    got = kannel.wait_delivered(2)
    time.sleep(0.5)
    assert len(kannel.delivered()) == 2 == len(got)
    assert {m.state for m in outbox.messages(registry.store)} == {"sent"}
    assert {m.attempts for m in outbox.messages(registry.store)} == {2}


def test_hamta_ivr_sms_deliver_and_list(kannel, registry, tmp_path):
    transfer_direct(registry, SELLER, PHONE, CODE, BUYER)
    url = str(registry.store.engine.url)
    env = {**os.environ, **kannel.settings_env(), "HAMTA_DB_URL": url,
           "HAMTA_DATA_DIR": str(tmp_path)}

    def cli(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ivr", *args], env=env | more, text=True,
                              capture_output=True, timeout=60)

    listed = cli("sms", "list", "--state", "pending")
    assert listed.returncode == 0 and listed.stdout.count("sms_transfer_") == 2
    assert "+98912•••1111" in listed.stdout and "+989121111111" not in listed.stdout
    done = cli("sms", "deliver", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent 2, to retry 0, dead 0"
    assert len(kannel.wait_delivered(2)) == 2
    assert "+989121111111" not in done.stderr and "همتا" not in done.stderr  # masked, no text
    assert cli("sms", "list", "--state", "sent").stdout.count("sms_transfer_") == 2
    no_password = cli("sms", "deliver", "--once",
                      HAMTA_KANNEL_PASSWORD_FILE=str(tmp_path / "nope"))
    assert no_password.returncode == 2
    assert no_password.stderr.count("\n") == 1 and "HAMTA_KANNEL_PASSWORD_FILE" in \
        no_password.stderr


def test_delivery_latency_commit_to_smsc(kannel, registry):
    """A running worker (looking every 0.1 s) gets a committed receipt to the SMSC quickly."""
    worker = Worker(registry.store, client(kannel))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 0.1))
    thread.start()
    try:
        latencies = []
        for i in range(10):
            before = len(kannel.delivered())
            started = time.monotonic()
            registry.store.write(lambda conn, i=i: outbox.queue(
                conn, normalize(f"0913000{i:04d}"), "sms_code_changed",
                at=registry.store.now(), imei=PHONE))
            assert len(kannel.wait_delivered(before + 1, timeout=10)) == before + 1
            latencies.append(time.monotonic() - started)
    finally:
        stop.set()
        thread.join(10)
    latencies.sort()
    print(f"\ncommit -> fakesmsc: median {latencies[5] * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms")
    assert latencies[5] < 2.0


def test_doctor_checks_kannel_when_sms_is_configured(kannel, registry, monkeypatch):
    from ivr.doctor import FAIL, OK, SKIP, check_kannel

    url = str(registry.store.engine.url)
    for key in kannel.settings_env():
        monkeypatch.delenv(key, raising=False)
    assert check_kannel(url).status == SKIP
    for key, value in kannel.settings_env().items():
        monkeypatch.setenv(key, value)
    healthy = check_kannel(url)
    assert healthy.status == OK and "no receipt dead or late" in healthy.detail
    assert kannel.delivered() == []  # the probe sends nothing
    monkeypatch.setenv("HAMTA_KANNEL_PASSWORD", "wrong")
    refused = check_kannel(url)
    assert refused.status == FAIL and "403" in refused.problem and "wrong" not in refused.problem
    monkeypatch.delenv("HAMTA_KANNEL_PASSWORD")
    registry.store.write(lambda conn: outbox.queue(conn, normalize(SELLER), "sms_nonexistent",
                                                   at=registry.store.now()))
    Worker(registry.store, client(kannel)).drain()
    dead = check_kannel(url)
    assert dead.status == FAIL and dead.problem.startswith("1 receipt(s) dead")
    kannel.stop()
    down = check_kannel(url)
    assert down.status == FAIL and "not reachable" in down.problem


def test_the_demo_s_sms_lab_prints_each_receipt_the_smsc_got(registry, tmp_path):
    """`hamta-ivr sms lab` (what ./setup.sh demo runs beside the IVR): its own Kannel, the real
    worker, and each SMS printed as the test SMSC got it; Ctrl-C stops the three Kannel boxes."""
    why = missing()
    if why:
        cannot_run(why)
    transfer_direct(registry, SELLER, PHONE, CODE, BUYER)
    env = {**os.environ, "HAMTA_DB_URL": str(registry.store.engine.url),
           "HAMTA_DATA_DIR": str(tmp_path), "HAMTA_CONFIG": ""}
    with LabRun(env) as lab:  # no blocking read: it cannot hang the run
        lines = lab.wait_for(lambda got: sum(line.startswith("SMS to ") for line in got) >= 2)
        assert lab.stop() == 0, lab.output
    sms = {line.split(":")[0]: line for line in lines if line.startswith("SMS to ")}
    assert set(sms) == {f"SMS to {SELLER}", f"SMS to {BUYER}"}
    assert PHONE.translate(PERSIAN) in sms[f"SMS to {SELLER}"]
    assert "kannel-lab" in "".join(lines)  # where its config and logs are
    assert subprocess.run(["pgrep", "-f", str(tmp_path / "kannel-lab")],
                          capture_output=True, timeout=10).returncode == 1  # no box left


def test_the_sms_lab_in_a_folder_it_cannot_make_is_one_line(tmp_path):
    why = missing()
    if why:
        cannot_run(why)
    (tmp_path / "file").write_text("not a folder")
    env = {**os.environ, "HAMTA_DATA_DIR": str(tmp_path), "HAMTA_CONFIG": ""}
    lab = subprocess.run([sys.executable, "-m", "ivr", "sms", "lab", "--folder",
                          str(tmp_path / "file" / "lab")], env=env, text=True,
                         capture_output=True, timeout=60)
    assert lab.returncode == 2
    assert lab.stderr.count("\n") == 1 and "--folder" in lab.stderr, lab.stderr
