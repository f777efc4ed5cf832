"""The registry's one hook (ivr.registry.observe): what an attached observer is told, the same
that the Prometheus metrics and the bench's timers are told."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.registry import observe
from ivr.registry.aio import HASHING, AsyncRegistry, questions
from ivr.registry.types import Origin, PasswordStatus

from .cast import BUYER, PHONE, SELLER, SELLER_PIN, populate


class Watcher(observe.Observer):
    def __init__(self) -> None:
        self.asked: list[observe.Asked] = []
        self.waiting_now: dict[str, int] = {}
        self.most_waiting = 0
        self.locks: list[tuple[str, int]] = []
        self.failed_pins = 0

    def waiting(self, pool: str, change: int) -> None:
        self.waiting_now[pool] = self.waiting_now.get(pool, 0) + change
        self.most_waiting = max(self.most_waiting, *self.waiting_now.values())

    def question(self, asked: observe.Asked) -> None:
        self.asked.append(asked)

    def lockouts(self, secret: str, count: int) -> None:
        self.locks.append((secret, count))

    def sign_in_failed(self) -> None:
        self.failed_pins += 1


async def test_an_observer_sees_each_question_by_the_name_the_flows_ask(registry) -> None:
    populate(registry)
    async with AsyncRegistry(registry, workers=1) as desk:
        with observe.attached(Watcher()) as watcher:
            await desk.inquire(PHONE)
            await desk.sign_in(SELLER, SELLER_PIN)
        await desk.inquire(PHONE)  # detached: not seen
    inquire, sign_in = watcher.asked
    assert (inquire.name, inquire.pool, inquire.ok) == ("inquire", "database", True)
    assert (sign_in.name, sign_in.pool, sign_in.ok) == ("sign_in", HASHING, True)
    for asked in watcher.asked:
        assert 0 <= asked.waited <= asked.took and 0 < asked.ran <= asked.took
    assert sign_in.cpu > 0  # the argon2 verification, on its worker thread
    assert watcher.most_waiting == 1 and set(watcher.waiting_now.values()) == {0}


async def test_a_failed_question_is_seen_as_failed(registry) -> None:
    populate(registry)
    registry.store.clock = lambda: datetime(2026, 1, 1)  # naive: refused
    async with AsyncRegistry(registry, workers=1) as desk:
        with observe.attached(Watcher()) as watcher, pytest.raises(ValueError):
            await desk.door(SELLER)
    [asked] = watcher.asked
    assert asked.name == "door" and not asked.ok
    assert watcher.waiting_now == {"database": 0}


def test_an_observer_sees_wrong_pins_and_a_lockout(registry) -> None:
    populate(registry)
    origin = Origin(caller=BUYER, call_id="c1")
    with observe.attached(Watcher()) as watcher:
        answers = [registry.kartabl.sign_in(SELLER, "9999", origin).status for _ in range(4)]
    assert answers == [PasswordStatus.WRONG, PasswordStatus.WRONG, PasswordStatus.LOCKED,
                       PasswordStatus.LOCKED]
    assert watcher.failed_pins == 3  # the 4th was refused unverified
    assert watcher.locks == [("pin", 1)]


def test_attaching_twice_tells_once() -> None:
    watcher = Watcher()
    with observe.attached(watcher):
        observe.attach(watcher)
        observe.sign_in_failed()
    observe.sign_in_failed()
    assert watcher.failed_pins == 1 and watcher not in observe.observers()


def test_every_question_is_declared_with_its_pool() -> None:
    declared = questions()
    assert declared["sign_in"] == HASHING and declared["call_started"] == "database"
    assert set(declared.values()) == {"hashing", "database", "sms"}
