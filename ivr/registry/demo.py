"""The demo registry (`hamta-ivr db seed-demo`): a small cast to try every IVR path with.

These numbers, PINs and codes are public demo data, never real secrets. The PINs are easy to type
on purpose, and so among the most common PINs the portal's set-password refuses
(validate.weak_pin_reason): they are set when the subscribers are added, which does not check;
Portal.set_password(..., allow_common_pin=True) is the named bypass for the demo and tests.

| Number      | PIN  | Who                      | Devices (kartabl order)                        |
|-------------|------|--------------------------|------------------------------------------------|
| 09121111111 | 1234 | DEMO_SELLER, a shop      | Samsung Galaxy A54 (code 12345678)             |
|             |      |                          | Xiaomi Redmi Note 12 (no code)                 |
|             |      |                          | Apple iPhone 13, BLOCKED (code 12345678)       |
| 09122222222 | 5678 | DEMO_BUYER               | none                                           |
| 09123333333 | none | DEMO_NO_PIN, no password | Nokia C32 (code 24681357)                      |
| 09124444444 | 4444 | DEMO_MANY                | Honor X1 … X12 (12 devices, all code 12345678) |
| 09125555555 | 5555 | DEMO_EMPTY               | none                                           |
| 09128888888 | 8888 | DEMO_RETURNER            | Samsung Galaxy S23, STOLEN (code 12345678)     |
|             |      |                          | Motorola Moto G84, bought from DEMO_SELLER     |
|             |      |                          | just now (returnable for 7 days, no code)      |
| (nobody)    |      |                          | Nokia G21, UNREGISTERED                        |

IMEIs are `35` + a 12-digit serial + the Luhn check digit (demo_imei(n)): the seller's phones are
n = 1, 2, 3, the unregistered one 4, the no-password subscriber's 5, the twelve 100…111, the
stolen one 6, the returnable one 7. DEMO_UNKNOWN_IMEI (n = 999) is well-formed but not in the
registry.

The stolen report and the returnable transfer are made the way a caller makes them (the
registry's own report and move), so their case and reference numbers are random: `hamta-ivr
transfers --imei 350000000000071` shows the reference. The SMS receipts those two changes wrote
are dropped: they tell of no one's real change.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete
from stdnum import luhn

from ivr.config import PEPPER_MIN_BYTES
from ivr.registry.db import upgrade
from ivr.registry.hashing import TEST_ONLY_FAST
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.registry.store import GATEWAY_ADMIN
from ivr.registry.tables import outbox
from ivr.registry.types import Owner, Reported


def demo_imei(n: int) -> str:
    """A deterministic, Luhn-valid IMEI."""
    body = f"35{n:012d}"
    return body + luhn.calc_check_digit(body)


DEMO_SELLER, DEMO_SELLER_PIN = "09121111111", "1234"
DEMO_BUYER, DEMO_BUYER_PIN = "09122222222", "5678"
DEMO_NO_PIN = "09123333333"
DEMO_MANY, DEMO_MANY_PIN = "09124444444", "4444"
DEMO_EMPTY, DEMO_EMPTY_PIN = "09125555555", "5555"
DEMO_RETURNER, DEMO_RETURNER_PIN = "09128888888", "8888"
DEMO_CODE = "12345678"
DEMO_NO_PIN_CODE = "24681357"

DEMO_PHONE = demo_imei(1)
DEMO_PHONE_NO_CODE = demo_imei(2)
DEMO_PHONE_BLOCKED = demo_imei(3)
DEMO_UNREGISTERED = demo_imei(4)
DEMO_NO_PIN_PHONE = demo_imei(5)
DEMO_MANY_IMEIS = [demo_imei(100 + i) for i in range(12)]
DEMO_STOLEN = demo_imei(6)  # DEMO_RETURNER's, reported stolen
DEMO_RETURNABLE = demo_imei(7)  # sold by DEMO_SELLER to DEMO_RETURNER when seeded
DEMO_UNKNOWN_IMEI = demo_imei(999)

# number, PIN (None: no kartabl password)
SUBSCRIBERS: list[tuple[str, str | None]] = [
    (DEMO_SELLER, DEMO_SELLER_PIN),
    (DEMO_BUYER, DEMO_BUYER_PIN),
    (DEMO_NO_PIN, None),
    (DEMO_MANY, DEMO_MANY_PIN),
    (DEMO_EMPTY, DEMO_EMPTY_PIN),
    (DEMO_RETURNER, DEMO_RETURNER_PIN),
]

# IMEI, owner, brand, model, status, activation code — in kartabl order
DEVICES: list[tuple[str, str | None, str, str, str, str | None]] = [
    (DEMO_PHONE, DEMO_SELLER, "Samsung", "Galaxy A54", "registered", DEMO_CODE),
    (DEMO_PHONE_NO_CODE, DEMO_SELLER, "Xiaomi", "Redmi Note 12", "registered", None),
    (DEMO_PHONE_BLOCKED, DEMO_SELLER, "Apple", "iPhone 13", "blocked", DEMO_CODE),
    (DEMO_UNREGISTERED, None, "Nokia", "G21", "unregistered", None),
    (DEMO_NO_PIN_PHONE, DEMO_NO_PIN, "Nokia", "C32", "registered", DEMO_NO_PIN_CODE),
    *[(imei, DEMO_MANY, "Honor", f"X{i + 1}", "registered", DEMO_CODE)
      for i, imei in enumerate(DEMO_MANY_IMEIS)],
    (DEMO_STOLEN, DEMO_RETURNER, "Samsung", "Galaxy S23", "registered", DEMO_CODE),
    (DEMO_RETURNABLE, DEMO_SELLER, "Motorola", "Moto G84", "registered", DEMO_CODE),
]


def is_seeded(registry: Registry) -> bool:
    return registry.portal.subscriber_info(DEMO_SELLER) is not None


def seed_demo(registry: Registry) -> bool:
    """Add the demo cast; False (and nothing changed) when it is already there."""
    if is_seeded(registry):
        return False
    for number, pin in SUBSCRIBERS:
        registry.portal.add_subscriber(number, password=pin)
    for imei, owner, brand, model, status, code in DEVICES:
        registry.portal.add_device(imei, owner=owner, brand=brand, model=model, status=status,
                            activation_code=code)
    _report_and_sell(registry)
    return True


def _report_and_sell(registry: Registry) -> None:
    """The stolen Galaxy S23 reported by its owner, and the Moto G84 sold by the seller to the
    returner (a direct transfer, so it can be returned within 7 days of the seeding)."""
    returner = Owner(normalize(DEMO_RETURNER), (), sim=True)  # as the portal signs in
    [stolen] = [d for d in registry.kartabl.devices(DEMO_RETURNER) if d.imei == DEMO_STOLEN]
    assert registry.reports.report(returner, stolen, Reported.STOLEN, gateway=GATEWAY_ADMIN).ok
    seller = Owner(normalize(DEMO_SELLER), (), sim=True)
    grant = registry.devices.check_code(DEMO_RETURNABLE, DEMO_CODE, owner=seller,
                                        gateway=GATEWAY_ADMIN).grant
    assert grant is not None
    assert registry.devices.transfer(seller, grant, DEMO_RETURNER, gateway=GATEWAY_ADMIN).ok
    registry.store.write(lambda conn: conn.execute(
        delete(outbox).where(outbox.c.imei.in_([DEMO_STOLEN, DEMO_RETURNABLE]))))


@dataclass(frozen=True)
class DemoTemplate:
    """A throwaway SQLite file holding the demo registry (and what `more` added to it)."""

    path: Path
    pepper: bytes


@contextmanager
def demo_template(more: Callable[[Registry], None] | None = None) -> Iterator[DemoTemplate]:
    """The demo registry in a temporary SQLite file, fast hashes and a random pepper: a template
    to copy, one fresh registry per call placed on it (`prompts timing`). Gone on exit."""
    with tempfile.TemporaryDirectory(prefix="hamta-timing-") as tmp:
        path = Path(tmp) / "template.db"
        url = f"sqlite:///{path}"
        alembic_log = logging.getLogger("alembic")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)  # its INFO lines are for `hamta-ivr db upgrade`
        try:
            upgrade(url)
        finally:
            alembic_log.setLevel(level)
        # throwaway: fast hashes and a random pepper; nothing here outlives the command
        pepper = os.urandom(PEPPER_MIN_BYTES)
        with Registry.open(url, pepper=pepper, hash_params=TEST_ONLY_FAST) as registry:
            seed_demo(registry)
            if more is not None:
                more(registry)
        yield DemoTemplate(path, pepper)
