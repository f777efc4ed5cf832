"""SMS receipts end to end: calls on the real Asterisk, `hamta-ivr sms deliver` running beside
`hamta-ivr serve`, a real Kannel and its test SMSC fakesmsc (ivr.testing.kannel), whose log says
what was delivered. A direct transfer leaves exactly one SMS to the seller and one to the buyer; a
refused transfer leaves none; with Kannel stopped during a transfer the receipts wait and are
delivered once Kannel is back."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.registry.demo import demo_imei
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.registry.tables import outbox
from ivr.testing.kannel import KannelLab, missing
from tests.asterisk.conftest import CLI, AgiServer, Env, dial
from tests.sms.conftest import cannot_run

pytestmark = [pytest.mark.asterisk, pytest.mark.kannel]

PIN = "2468"
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
# (seller, buyer, imei, code, status): numbers and devices of these tests only
PEOPLE = {
    "sold": ("09170009011", "09180009011", demo_imei(711), "24681357", "registered"),
    "blocked": ("09170009012", "09180009012", demo_imei(712), "35792468", "blocked"),
    "wrong": ("09170009013", "09180009013", demo_imei(713), "46813579", "registered"),
    "down": ("09170009014", "09180009014", demo_imei(714), "57924681", "registered"),
}


@pytest.fixture(scope="module")
def sms_cast(registry: Registry) -> dict:
    for seller, _, imei, code, status in PEOPLE.values():
        registry.portal.add_subscriber(seller, password=PIN)
        registry.portal.add_device(imei, owner=seller, brand="Samsung", model="Galaxy A54",
                                   activation_code=code, status=status)
    return PEOPLE


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KannelLab]:
    why = missing()
    if why:
        cannot_run(why)
    lab = KannelLab(tmp_path_factory.mktemp("kannel"))
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def sms_worker(agi_server: AgiServer, kannel: KannelLab) -> Iterator[subprocess.Popen[str]]:
    env: Env = agi_server.env
    log = env.data / "sms-deliver.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*CLI, "sms", "deliver", "--interval", "0.2"],
                                env=env.vars | kannel.settings_env(), stdout=out, stderr=out,
                                text=True)
    time.sleep(1)
    assert proc.poll() is None, Path(log).read_text()
    try:
        yield proc
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, Path(log).read_text()
        text = Path(log).read_text()
        for seller, buyer, *_ in PEOPLE.values():  # numbers masked in the worker's log
            assert normalize(seller) not in text and normalize(buyer) not in text


def to(kannel: KannelLab, number: str) -> list[str]:
    return [d.text for d in kannel.delivered() if d.to == normalize(number)]


def queued(registry: Registry, number: str) -> list:
    with registry.store.reading() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.msisdn == normalize(number))))


def transfer_keys(name: str) -> str:
    _, buyer, _, code, _ = PEOPLE[name]
    return f"3 1 {PIN}# 1 {code} {buyer} 1 2 h"


def wait_for(kannel: KannelLab, numbers: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(to(kannel, n) for n in numbers):
        time.sleep(0.2)


def test_a_direct_transfer_sends_one_sms_to_the_seller_and_one_to_the_buyer(
        sms_cast: dict, sms_worker: subprocess.Popen[str], kannel: KannelLab,
        agi_server: AgiServer, registry: Registry) -> None:
    seller, buyer, imei, _, _ = sms_cast["sold"]
    result = dial(agi_server.env, seller, transfer_keys("sold"))
    assert result.ok and "transferred" in result.prompts, result.prompts
    assert registry.portal.device_info(imei).owner == normalize(buyer)
    wait_for(kannel, [seller, buyer])
    time.sleep(2)  # anything more would have come by now
    [to_seller], [to_buyer] = to(kannel, seller), to(kannel, buyer)
    reference = registry.portal.transfers(imei=imei)[0].reference
    for text in (to_seller, to_buyer):
        assert imei.translate(PERSIAN) in text and reference.translate(PERSIAN) in text
    assert buyer.translate(PERSIAN) in to_seller and "درگاه همتا" in to_seller
    assert PEOPLE["sold"][3].translate(PERSIAN) not in to_seller + to_buyer  # never the code
    assert {row.state for row in queued(registry, seller) + queued(registry, buyer)} == {"sent"}


@pytest.mark.parametrize("name", ["blocked", "wrong"])
def test_a_refused_transfer_sends_none(name: str, sms_cast: dict,
                                       sms_worker: subprocess.Popen[str], kannel: KannelLab,
                                       agi_server: AgiServer, registry: Registry) -> None:
    seller, buyer, imei, _, _ = sms_cast[name]
    # blocked: refused as soon as the device is said; wrong: one wrong code, then hang up (a
    # third would lock the code, which is a receipt of its own)
    keys = f"3 1 {PIN}# h" if name == "blocked" else f"3 1 {PIN}# 1 11223344 h"
    result = dial(agi_server.env, seller, keys)
    assert result.ok, result.doc
    assert "transferred" not in result.prompts
    assert registry.portal.device_info(imei).owner == normalize(seller)
    time.sleep(2)
    assert to(kannel, seller) == [] and to(kannel, buyer) == []
    assert queued(registry, seller) == [] and queued(registry, buyer) == []


def test_kannel_down_during_a_transfer_delays_the_sms_and_loses_none(
        sms_cast: dict, sms_worker: subprocess.Popen[str], kannel: KannelLab,
        agi_server: AgiServer, registry: Registry) -> None:
    seller, buyer, imei, _, _ = sms_cast["down"]
    kannel.stop()
    try:
        result = dial(agi_server.env, seller, transfer_keys("down"))
        assert result.ok and "transferred" in result.prompts, result.prompts
        assert registry.portal.device_info(imei).owner == normalize(buyer)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(
                row.attempts for row in queued(registry, seller) + queued(registry, buyer)):
            time.sleep(0.2)
        waiting = queued(registry, seller) + queued(registry, buyer)
        assert len(waiting) == 2 and {row.state for row in waiting} == {"pending"}
        assert all(row.attempts >= 1 and "not reachable" in row.last_error for row in waiting)
    finally:
        kannel.start()
    wait_for(kannel, [seller, buyer])
    time.sleep(2)
    assert len(to(kannel, seller)) == 1 and len(to(kannel, buyer)) == 1
    assert {row.state for row in queued(registry, seller) + queued(registry, buyer)} == {"sent"}


# --- issue 17: the SIM as a second factor, through the real Kannel ----------------------------
SIM_PEOPLE = {  # one device each: said, then `1` goes on with it
    "sim_right": ("09170009021", "09180009021", demo_imei(721), "13572468"),
    "sim_wrong": ("09170009022", "09180009022", demo_imei(722), "24681357"),
    "sim_own": ("09170009023", "09180009023", demo_imei(723), "35792468"),
    "sim_voip": ("09170009024", "09180009024", demo_imei(724), "46813579"),
}
LATIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")


@pytest.fixture(scope="module")
def sim_cast(registry: Registry) -> dict:
    for seller, _, imei, code in SIM_PEOPLE.values():
        registry.portal.add_subscriber(seller, password=PIN)
        registry.portal.add_device(imei, owner=seller, brand="Samsung", model="Galaxy A54",
                                   activation_code=code)
    return SIM_PEOPLE


@pytest.fixture(scope="module")
def sms_serve(agi_server: AgiServer, kannel: KannelLab) -> Iterator[AgiServer]:
    """The session's `hamta-ivr serve`, restarted with Kannel configured: it sends SMS codes
    itself, at once, while the caller waits (then back as it was)."""
    agi_server.stop()
    agi_server.vars = agi_server.env.vars | kannel.settings_env()
    agi_server.start()
    try:
        yield agi_server
    finally:
        agi_server.stop()
        agi_server.vars = None
        agi_server.start()


def dial_reading_sms(env: Env, caller: str, keys: str, kannel: KannelLab, owner: str,
                     timeout: float = 400) -> tuple[dict, list[str]]:
    """`hamta-ivr dial` whose `?` is answered with the code of the SMS that reaches `owner`'s
    phone (fakesmsc's log) during the call, as the owner would read it off the screen."""
    proc = subprocess.Popen([*CLI, "dial", "--json", "--from", caller, "--keys", keys,
                             "--timeout", str(timeout)], env=env.vars, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    deadline, codes = time.monotonic() + 60, []
    while time.monotonic() < deadline and not codes and proc.poll() is None:
        codes = [text for text in to(kannel, owner) if "به هیچ‌کس نگویید" in text]
        time.sleep(0.2)
    assert codes, "no SMS code reached the owner's phone"
    code = "".join(ch for ch in codes[-1].split()[2].translate(LATIN) if ch.isdigit())
    proc.stdin.write(code + "\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=timeout + 30)
    assert proc.returncode == 0, err
    return json.loads(out), codes


def test_a_transfer_for_another_number_moves_only_with_the_sms_code_read_off_the_phone(
        sim_cast: dict, sms_serve: AgiServer, sms_worker: subprocess.Popen[str],
        kannel: KannelLab, registry: Registry) -> None:
    seller, buyer, imei, code = sim_cast["sim_right"]
    doc, codes = dial_reading_sms(sms_serve.env, buyer, f"3 2 {seller} {PIN}# 1 ? {code} {buyer} "
                                  "1 2 h", kannel, seller)
    assert doc["ok"] and "sim_code_sent" in doc["prompts"] and "transferred" in doc["prompts"]
    assert registry.portal.device_info(imei).owner == normalize(buyer)
    [text] = codes  # one code, for a transfer, telling the owner to tell no one
    assert text.startswith("همتا: کد ") and "انتقال مالکیت" in text
    wait_for(kannel, [buyer])
    keyed = text.split()[2]
    assert all(keyed not in t for t in to(kannel, buyer))  # the code went to the owner only
    log = sms_serve.log_text
    assert keyed.translate(LATIN) not in log and normalize(seller) not in log


def test_a_wrong_sms_code_moves_nothing(sim_cast: dict, sms_serve: AgiServer,
                                         kannel: KannelLab, registry: Registry) -> None:
    seller, buyer, imei, _code = sim_cast["sim_wrong"]
    result = dial(sms_serve.env, buyer, f"3 2 {seller} {PIN}# 1 000000 000001 000002 h")
    assert result.ok, result.doc
    assert "sim_code_sent" in result.prompts and "sim_code_void" in result.prompts
    assert "enter_activation_code" not in result.prompts
    assert registry.portal.device_info(imei).owner == normalize(seller)
    assert len([t for t in to(kannel, seller) if "به هیچ‌کس نگویید" in t]) == 1


def test_the_owners_own_line_on_a_trusted_trunk_needs_no_sms_code(
        sim_cast: dict, sms_serve: AgiServer, kannel: KannelLab, registry: Registry) -> None:
    seller, buyer, imei, code = sim_cast["sim_own"]
    result = dial(sms_serve.env, seller, f"3 1 {PIN}# 1 {code} {buyer} 1 2 h")
    assert result.ok and "transferred" in result.prompts, result.prompts
    assert "sim_code_sent" not in result.prompts
    assert registry.portal.device_info(imei).owner == normalize(buyer)
    assert not [t for t in to(kannel, seller) if "به هیچ‌کس نگویید" in t]


def test_the_same_call_from_a_voip_trunk_needs_the_sms_code(
        sim_cast: dict, sms_serve: AgiServer, kannel: KannelLab, registry: Registry) -> None:
    """The owner's number forged on an untrusted trunk: the PIN alone moves nothing."""
    seller, _buyer, imei, _code = sim_cast["sim_voip"]
    result = dial(sms_serve.env, seller, f"3 1 {PIN}# 1 000000 000001 000002 h", untrusted=True)
    assert result.ok, result.doc
    assert "sim_code_sent" in result.prompts and "enter_activation_code" not in result.prompts
    assert registry.portal.device_info(imei).owner == normalize(seller)
