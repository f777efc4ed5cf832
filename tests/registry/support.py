"""Test helpers shared by tests/conftest.py and the registry tests: a migrated SQLite template
copied per test, the test pepper, and the cheap hash costs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.registry.db import upgrade
from ivr.registry.hashing import TEST_ONLY_FAST, HashParams
from ivr.registry.msisdn import try_normalize
from ivr.registry.service import Registry
from ivr.registry.types import Change, CodeCheck, Device, ImeiStatus, Owner

TEST_PEPPER = bytes.fromhex("5e" * 32)


class FakeClock:
    """An injectable clock: stands still until advanced."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 21, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def migrated_sqlite(path: Path) -> Path:
    upgrade(f"sqlite:///{path}")
    return path


class SqliteFactory:
    """Fresh registries on copies of one migrated SQLite file; closes them at teardown."""

    def __init__(self, template: Path, where: Path) -> None:
        self.template, self.where = template, where
        self.made: list[Registry] = []

    def url(self) -> str:
        path = self.where / f"registry-{len(self.made)}-{id(self)}.db"
        shutil.copy(self.template, path)  # its mode too: a registry's files are 0600
        return f"sqlite:///{path}"

    def __call__(self, *, hash_params: HashParams = TEST_ONLY_FAST,
                 clock: Callable[[], datetime] | None = None) -> Registry:
        registry = Registry.open(self.url(), pepper=TEST_PEPPER, hash_params=hash_params,
                                 clock=clock)
        self.made.append(registry)
        return registry

    def close(self) -> None:
        for registry in self.made:
            registry.close()


class SmsGateway(list[tuple[str, str, dict[str, str]]]):
    """A fake SMS gateway for ivr.registry.sim_codes: what it was handed (number, template,
    params), in order; `taken = False` makes it refuse."""

    taken = True

    def __call__(self, number: str, template: str, params: dict[str, str]) -> bool:
        self.append((number, template, params))
        return self.taken

    @property
    def last_code(self) -> str:
        return self[-1][2]["code"]


# --- the IVR's steps, as one call each (what a flow does between the caller's keys) -------------
def owner(msisdn: str, *, sim: bool = True) -> Owner:
    """A signed-in owner, as ivr.registry.kartabl.sign_in answers one (its kartabl left empty);
    `sim`: who also holds the number's SIM (own vouched line or an SMS code), as the portal's
    sign-in and most tests have it."""
    return Owner(try_normalize(msisdn) or msisdn, (), sim=sim)


def devices_of(registry: Registry, msisdn: str) -> list[Device]:
    return list(registry.kartabl.devices(msisdn))


def refused(check: CodeCheck) -> Change:
    """A code check that granted nothing, as the move's answer (nothing moved)."""
    return Change(refusal=check.refusal, device=check.device)


def transfer_direct(registry: Registry, seller: str, imei: str, code: str, buyer: str, *,
                    expected_version: int | None = None) -> Change:
    """Option 3 after the sign-in: the code verified once, then the move it grants."""
    check = registry.devices.check_code(imei, code, owner=owner(seller),
                                        expected_version=expected_version)
    if check.grant is None:
        return refused(check)
    return registry.devices.transfer(owner(seller), check.grant, buyer)


def activate(registry: Registry, buyer: str, imei: str, code: str,
             gateway: str = "ivr") -> Change:
    """Option 2: the code verified once by the buyer, then the move it grants."""
    check = registry.devices.check_code(imei, code, buyer=buyer, gateway=gateway)
    if check.grant is None:
        return refused(check)
    return registry.devices.activate(buyer, check.grant, gateway=gateway)


def chosen(registry: Registry, imei: str, version: int | None = None) -> Device:
    """A device as the caller chose it from the kartabl (at `version`, default the current)."""
    info = registry.portal.device_info(imei)
    return Device(imei=imei, brand="", model="", status=ImeiStatus.REGISTERED,
                  version=version or (info.version if info else 1))


def generate_code(registry: Registry, seller: str, imei: str, *,
                  expected_version: int | None = None) -> Change:
    return registry.devices.generate_code(owner(seller), chosen(registry, imei, expected_version))


def change_code(registry: Registry, seller: str, imei: str, code: str, *,
                expected_version: int | None = None) -> Change:
    return registry.devices.change_code(owner(seller), chosen(registry, imei, expected_version),
                                        code)
