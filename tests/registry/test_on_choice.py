"""The registry is the one judge of what stops an operation on a device: what the flow tells the
owner right after the choice (devices.on_choice) is what the move itself would answer
(devices.precheck), from the one rule (devices.standing)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from ivr.registry.devices import on_choice, precheck
from ivr.registry.types import Device, ImeiStatus, Refusal, Reported

LATER = datetime(2030, 1, 1, tzinfo=UTC)


def device(status: ImeiStatus = ImeiStatus.REGISTERED, *, has_code: bool = True,
           locked: datetime | None = None, reported: Reported | None = None) -> Device:
    return Device("356938035643809", "Samsung", "A54", status, version=1, has_code=has_code,
                  code_locked_until=locked, reported=reported)


@pytest.mark.parametrize(("chosen", "refusal"), [
    (device(), None),
    (device(ImeiStatus.BLOCKED), Refusal.BLOCKED),
    (device(ImeiStatus.UNREGISTERED), Refusal.NOT_REGISTERED),
    (device(reported=Reported.STOLEN), Refusal.REPORTED),
    (device(ImeiStatus.BLOCKED, reported=Reported.LOST), Refusal.BLOCKED),
])
def test_the_choice_and_the_move_answer_alike(chosen: Device, refusal: Refusal | None) -> None:
    row = SimpleNamespace(version=chosen.version, owner="+989121234567",
                          status=chosen.status.value,
                          reported=chosen.reported.value if chosen.reported else None)
    assert on_choice(chosen).refusal is refusal
    assert precheck(row, owner="+989121234567", expected_version=1) is refusal  # type: ignore[arg-type]


def test_a_sale_needs_a_code_that_is_not_locked() -> None:
    assert on_choice(device(has_code=False), sale=True).refusal is Refusal.NO_CODE
    locked = on_choice(device(locked=LATER), sale=True)
    assert (locked.refusal, locked.locked_until) == (Refusal.CODE_LOCKED, LATER)
    assert on_choice(device(has_code=False)).ok  # a new code needs none


def test_a_reported_device_can_always_be_withdrawn() -> None:
    assert on_choice(device(ImeiStatus.BLOCKED, reported=Reported.STOLEN), reported_ok=True).ok
    assert on_choice(device(ImeiStatus.BLOCKED), reported_ok=True).refusal is Refusal.BLOCKED
