"""SMS receipts end to end: calls on the real Asterisk, `hamta-ivr sms deliver` running beside
`hamta-ivr serve`, a real Kannel and its test SMSC fakesmsc (ivr.testing.kannel), whose log says
what was delivered. A direct transfer leaves exactly one SMS to the seller and one to the buyer; a
refused transfer leaves none; with Kannel stopped during a transfer the receipts wait and are
delivered once Kannel is back."""

from __future__ import annotations

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
    return f"3 1 {PIN}# {code} {buyer} 1 2 h"


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
    keys = f"3 1 {PIN}# h" if name == "blocked" else f"3 1 {PIN}# 11223344 h"
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
