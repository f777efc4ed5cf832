"""End-to-end calls on a real Asterisk for issue 13: a lost/stolen report and its withdrawal
(`5` `3`), and the 7-day return from both sides (`5` `4`: the new owner starts it, the previous
owner confirms it from their own line), through `hamta-ivr dial` with the real Persian audio.
The report, the withdrawal and the start of the return run at the same time; the confirmation
follows the start. Each checks the prompts in order, the registry and the call log afterwards.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ivr.registry.demo import demo_imei
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.registry.types import Owner, Reported
from tests.asterisk.conftest import AgiServer, Dialed, dial, is_subsequence
from tests.registry.support import transfer_direct

pytestmark = pytest.mark.asterisk

PIN = "2468"
CODE = "24681357"
# numbers and devices of these tests only: each call works on its own kartabl
REPORTER, REPORTED_PHONE = "09170008001", demo_imei(801)
FINDER, FOUND_PHONE = "09170008002", demo_imei(802)
SELLER, BUYER, SOLD_PHONE = "09170008003", "09180008003", demo_imei(803)


@pytest.fixture(scope="module")
def sale(registry: Registry) -> str:
    """The kartabls: one device each; the finder's already reported lost; the sold one moved
    from SELLER to BUYER. The sale's reference."""
    for number in (REPORTER, FINDER, SELLER, BUYER):
        registry.portal.add_subscriber(number, password=PIN)
    for imei, owner in ((REPORTED_PHONE, REPORTER), (FOUND_PHONE, FINDER),
                        (SOLD_PHONE, SELLER)):
        registry.portal.add_device(imei, owner=owner, brand="Samsung", model="Galaxy A54",
                                   activation_code=CODE)
    [found] = registry.kartabl.devices(FINDER)
    assert registry.reports.report(Owner(normalize(FINDER), ()), found, Reported.LOST).ok
    moved = transfer_direct(registry, SELLER, SOLD_PHONE, CODE, BUYER)
    assert moved.ok and moved.reference
    return moved.reference


@pytest.fixture(scope="module")
def calls(agi_server: AgiServer, sale: str) -> dict[str, Dialed]:
    env = agi_server.env
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            # the one device (1), stolen (2), confirm (1), then `2`: the case number was heard
            "report": pool.submit(dial, env, REPORTER, f"5 3 1 {PIN}# 1 2 1 2 h"),
            "withdraw": pool.submit(dial, env, FINDER, f"5 3 1 {PIN}# 1 1 h"),
            # the device from the week's arrivals (1), confirm (1)
            "start": pool.submit(dial, env, BUYER, f"5 4 1 {PIN}# 1 1 h"),
        }
        done = {name: f.result() for name, f in futures.items()}
    # the previous owner, from their own line: 1 the waiting requests, 1 take it back, 2 go on
    done["confirm"] = dial(env, SELLER, f"5 4 1 {PIN}# 1 1 2 h")
    return done


def check(result: Dialed, expected: list[str]) -> None:
    assert result.ok, (result.doc, result.stderr)
    assert not result.doc["unused_keys"], result.doc
    assert is_subsequence(["welcome", "main_menu", "menu_more", *expected], result.prompts), \
        result.prompts
    assert "service_unavailable" not in result.prompts


def outcome(registry: Registry, result: Dialed) -> str | None:
    [row] = [r for r in registry.call_log.calls() if r.call_id == result.call_id]
    return row.outcome


def test_report_stolen(calls: dict[str, Dialed], registry: Registry) -> None:
    result = calls["report"]
    check(result, ["whose_devices", "enter_password", "device_number", "choose_one_device",
                   "lost_or_stolen",
                   "report_confirm", "report_confirm_stolen_end", "confirm_or_cancel",
                   "reported", "case_is", "is_end", "code_repeat_or_finish", "main_menu_again"])
    case = registry.reports.case_of(REPORTED_PHONE)
    at = result.prompts.index("case_is")
    read = "".join(p.removeprefix("(digits) ").replace(" ", "")
                   for p in result.prompts[at + 1:at + 4])
    assert read == case
    assert registry.devices.inquire(REPORTED_PHONE).reported is Reported.STOLEN
    assert outcome(registry, result) == "lost_stolen:completed:stolen"


def test_withdraw_the_report(calls: dict[str, Dialed], registry: Registry) -> None:
    result = calls["withdraw"]
    check(result, ["enter_password", "device_number", "device_reported", "choose_one_device",
                   "report_exists",
                   "case_is", "is_end", "withdraw_confirm", "confirm_or_cancel",
                   "report_withdrawn", "main_menu_again"])
    assert registry.devices.inquire(FOUND_PHONE).reported is None
    assert outcome(registry, result) == "lost_stolen:completed:withdrawn"


def test_return_started_then_confirmed(calls: dict[str, Dialed], registry: Registry,
                                       sale: str) -> None:
    started = calls["start"]
    check(started, ["enter_password", "returns_arrived", "device_number", "arrived_from",
                    "choose_arrival", "activate_confirm",
                    "transfer_confirm_to", "return_confirm_end", "confirm_or_cancel",
                    "return_started", "main_menu_again"])
    assert outcome(registry, started) == "return:completed:return_started"
    confirmed = calls["confirm"]
    check(confirmed, ["enter_password", "returns_waiting", "return_side", "return_take_back",
                      "return_take_back_from", "return_take_back_end", "confirm_or_cancel",
                      "returned", "reference_is", "is_end", "main_menu_again"])
    assert outcome(registry, confirmed) == "return:completed"
    assert registry.portal.device_info(SOLD_PHONE).owner == normalize(SELLER)
    assert [t.kind for t in registry.portal.transfers(imei=SOLD_PHONE)] == ["direct", "return"]
    assert registry.returns.returnable(Owner(normalize(BUYER), ()), sale).refusal is not None
