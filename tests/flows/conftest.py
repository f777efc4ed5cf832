"""A real SQLite registry file holding the demo registry (ivr/registry/demo.py), and a way to place
scripted console calls against it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ivr.call.api import Digits
from ivr.call.console import ConsoleCall, scripted_keys
from ivr.flows.session import CallResult, handle_call
from ivr.registry import demo
from ivr.registry.aio import AsyncRegistry
from ivr.registry.service import Registry
from tests.registry.support import SmsGateway

SELLER, SELLER_PIN = demo.DEMO_SELLER, demo.DEMO_SELLER_PIN
BUYER, BUYER_PIN = demo.DEMO_BUYER, demo.DEMO_BUYER_PIN
NO_PIN = demo.DEMO_NO_PIN  # never set a kartabl password
MANY, MANY_PIN = demo.DEMO_MANY, demo.DEMO_MANY_PIN  # twelve devices
EMPTY, EMPTY_PIN = demo.DEMO_EMPTY, demo.DEMO_EMPTY_PIN  # a password, no devices
RETURNER, RETURNER_PIN = demo.DEMO_RETURNER, demo.DEMO_RETURNER_PIN  # stolen + returnable
STRANGER = "09126666666"  # not in the registry at all
CODE = demo.DEMO_CODE

PHONE = demo.DEMO_PHONE  # Samsung Galaxy A54, the seller's, with CODE
PHONE_NO_CODE = demo.DEMO_PHONE_NO_CODE  # the seller's, no activation code
PHONE_BLOCKED = demo.DEMO_PHONE_BLOCKED  # the seller's, blocked, with CODE
UNREGISTERED = demo.DEMO_UNREGISTERED  # nobody's
MANY_IMEIS = demo.DEMO_MANY_IMEIS
UNKNOWN = demo.DEMO_UNKNOWN_IMEI
STOLEN = demo.DEMO_STOLEN  # the returner's Galaxy S23, reported stolen
RETURNABLE = demo.DEMO_RETURNABLE  # the returner's Moto G84, bought from the seller at seeding


SIM_CODE = "482915"  # every SMS code of these tests (ivr.registry.sim_codes.new_sim_code)


@pytest.fixture
def sms_codes() -> SmsGateway:
    """The SMS codes the registry sent, as a fake SMS gateway took them."""
    return SmsGateway()


@pytest.fixture
def registry(sqlite_registry_factory, sms_codes) -> Registry:
    """The demo registry with SMS configured (a fake gateway: `sms_codes`; every code SIM_CODE)."""
    reg = sqlite_registry_factory()
    reg.sim_codes.sender, reg.sim_codes.draw = sms_codes, lambda: SIM_CODE
    demo.seed_demo(reg)
    return reg


@dataclass
class Result:
    ended: CallResult
    call: ConsoleCall

    @property
    def outcome(self) -> str:
        return self.ended.outcome

    @property
    def path(self) -> list[str]:
        return self.ended.path

    @property
    def heard(self) -> list[str]:
        """Prompt keys in the order played (catalogue keys only)."""
        return [line[2:].split(":", 1)[0] for line in self.call.transcript
                if line.startswith("> ") and not line.startswith("> (")]

    @property
    def text(self) -> str:
        return "\n".join(self.call.transcript)

    def digits_after(self, key: str) -> str:
        """The digits read right after the last time prompt `key` played (a code, a reference)."""
        lines = self.call.transcript
        at = max(i for i, line in enumerate(lines) if line.startswith(f"> {key}:"))
        start = next(i for i in range(at, len(lines)) if lines[i].startswith("> (digits)"))
        end = next((i for i in range(start, len(lines))
                    if not lines[i].startswith("> (digits)")), len(lines))
        return "".join(ch for line in lines[start:end] for ch in line if ch.isdigit())

    def heard_in_order(self, *keys: str) -> bool:
        it = iter(self.heard)
        return all(any(k == h for h in it) for k in keys)


class Caller:
    """Places scripted calls against the registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def __call__(self, keys: str, caller: str | None = SELLER,
                       aregistry: AsyncRegistry | None = None, *, trusted: bool = True,
                       call_id: str | None = None) -> Result:
        """`trusted`: the caller ID comes vouched for by the network (a mobile call from that
        SIM); False for a softphone or a VoIP trunk, where it proves nothing."""
        own = aregistry is None
        aregistry = aregistry or AsyncRegistry(self.registry)
        call = ConsoleCall(caller_id=caller, caller_trusted=trusted and caller is not None,
                           keys=scripted_keys(keys), out=_Null())
        if call_id is not None:
            call.call_id = call_id
        try:
            outcome = await handle_call(call, aregistry)
        finally:
            if own:
                aregistry.close()
        return Result(outcome, call)


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


@pytest.fixture
def dial(registry: Registry) -> Caller:
    return Caller(registry)


def said(digits: str, *groups: int) -> str:
    """How the console caller shows digits read out: one by one, a line per group."""
    return "\n".join(f"> (digits) {' '.join(part)}" for part in Digits(digits, groups).grouped())


def snapshot(registry: Registry) -> dict:
    """What a failed or abandoned operation must leave exactly as it was."""
    devices = {n: registry.portal.device_info(n) for n in
               [PHONE, PHONE_NO_CODE, PHONE_BLOCKED, UNREGISTERED, *MANY_IMEIS]}
    return {"devices": devices, "transfers": registry.portal.transfers()}
