"""A real SQLite registry file with a small cast of subscribers and devices, and a way to place
scripted console calls against it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from stdnum import luhn

from ivr.call.console import ConsoleCall, scripted_keys
from ivr.flows.session import handle_call
from ivr.registry.aio import AsyncRegistry
from ivr.registry.service import Registry

SELLER, SELLER_PIN = "09121111111", "1234"
BUYER, BUYER_PIN = "09122222222", "5678"
NO_PIN = "09123333333"  # a subscriber who never set a kartabl password
MANY, MANY_PIN = "09124444444", "4444"  # twelve devices
EMPTY, EMPTY_PIN = "09125555555", "5555"  # a password, no devices
STRANGER = "09126666666"  # not in the registry at all
CODE = "12345678"


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + luhn.calc_check_digit(body)


PHONE = imei(1)  # Samsung, the seller's, with CODE
PHONE_NO_CODE = imei(2)  # the seller's, no activation code
PHONE_BLOCKED = imei(3)  # the seller's, blocked, with CODE
UNREGISTERED = imei(4)  # nobody's
MANY_IMEIS = [imei(100 + i) for i in range(12)]
UNKNOWN = imei(999)


def populate(registry: Registry) -> None:
    registry.add_subscriber(SELLER, password=SELLER_PIN)
    registry.add_subscriber(BUYER, password=BUYER_PIN)
    registry.add_subscriber(NO_PIN)
    registry.add_subscriber(MANY, password=MANY_PIN)
    registry.add_subscriber(EMPTY, password=EMPTY_PIN)
    registry.add_device(PHONE, owner=SELLER, brand="Samsung", model="Galaxy A54",
                        activation_code=CODE)
    registry.add_device(PHONE_NO_CODE, owner=SELLER, brand="Xiaomi", model="Redmi Note 12")
    registry.add_device(PHONE_BLOCKED, owner=SELLER, brand="Apple", model="iPhone 13",
                        status="blocked", activation_code=CODE)
    registry.add_device(UNREGISTERED, owner=None, brand="Nokia", model="G21",
                        status="unregistered")
    for i, number in enumerate(MANY_IMEIS):
        registry.add_device(number, owner=MANY, brand="Honor", model=f"X{i + 1}",
                            activation_code=CODE)


@pytest.fixture
def registry(sqlite_registry_factory) -> Registry:
    reg = sqlite_registry_factory()
    populate(reg)
    return reg


@dataclass
class Result:
    outcome: str
    call: ConsoleCall

    @property
    def heard(self) -> list[str]:
        """Prompt keys in the order played (catalogue keys only)."""
        return [line[2:].split(":", 1)[0] for line in self.call.transcript
                if line.startswith("> ") and not line.startswith("> (")]

    @property
    def text(self) -> str:
        return "\n".join(self.call.transcript)

    def heard_in_order(self, *keys: str) -> bool:
        it = iter(self.heard)
        return all(any(k == h for h in it) for k in keys)


class Caller:
    """Places scripted calls; collects every prompt heard across a test run."""

    heard_everywhere: set[str] = set()

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def __call__(self, keys: str, caller: str | None = SELLER,
                       aregistry: AsyncRegistry | None = None) -> Result:
        own = aregistry is None
        aregistry = aregistry or AsyncRegistry(self.registry)
        call = ConsoleCall(caller_id=caller, keys=scripted_keys(keys), out=_Null())
        try:
            outcome = await handle_call(call, aregistry)
        finally:
            if own:
                aregistry.close()
        result = Result(outcome, call)
        Caller.heard_everywhere.update(result.heard)
        return result


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


@pytest.fixture
def dial(registry: Registry) -> Caller:
    return Caller(registry)


def snapshot(registry: Registry) -> dict:
    """What a failed or abandoned operation must leave exactly as it was."""
    devices = {n: registry.device_info(n) for n in
               [PHONE, PHONE_NO_CODE, PHONE_BLOCKED, UNREGISTERED, *MANY_IMEIS]}
    return {"devices": devices, "transfers": registry.transfers()}
