"""A small cast for the registry tests (the demo data's numbers, kept separate so the tests do not
depend on the demo staying as it is)."""

from __future__ import annotations

from ivr.registry.demo import demo_imei
from ivr.registry.service import Registry

SELLER, SELLER_PIN = "09121111111", "1234"
BUYER, BUYER_PIN = "09122222222", "56789012"
NO_PIN = "09123333333"
STRANGER = "09126666666"  # not in the registry
CODE = "12345678"

PHONE = demo_imei(1)  # the seller's, registered, with CODE
PHONE_NO_CODE = demo_imei(2)  # the seller's, no code
PHONE_BLOCKED = demo_imei(3)  # the seller's, blocked, with CODE
UNREGISTERED = demo_imei(4)  # nobody's, unregistered
UNREGISTERED_OWNED = demo_imei(5)  # the seller's, unregistered, with CODE
UNKNOWN = demo_imei(999)
BAD_LUHN = PHONE[:-1] + str((int(PHONE[-1]) + 1) % 10)


def populate(registry: Registry) -> None:
    registry.portal.add_subscriber(SELLER, password=SELLER_PIN)
    registry.portal.add_subscriber(BUYER, password=BUYER_PIN)
    registry.portal.add_subscriber(NO_PIN)
    registry.portal.add_device(PHONE, owner=SELLER, brand="Samsung", model="Galaxy A54",
                        activation_code=CODE)
    registry.portal.add_device(PHONE_NO_CODE, owner=SELLER, brand="Xiaomi", model="Redmi Note 12")
    registry.portal.add_device(PHONE_BLOCKED, owner=SELLER, brand="Apple", model="iPhone 13",
                        status="blocked", activation_code=CODE)
    registry.portal.add_device(UNREGISTERED, owner=None, brand="Nokia", model="G21",
                        status="unregistered")
    registry.portal.add_device(UNREGISTERED_OWNED, owner=SELLER, brand="Nokia", model="C32",
                        status="unregistered", activation_code=CODE)
