"""Two calls on the same device at the same moment: exactly one wins, the other is told the
device changed meanwhile. Real parallel transactions on a SQLite file and on PostgreSQL: threads
sharing one registry (as the FastAGI server does), and separate processes with their own
connections (as several IVR servers would)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from ivr.registry.demo import demo_imei
from ivr.registry.msisdn import normalize
from ivr.registry.types import PasswordStatus, Refusal

from .cast import BUYER, CODE, SELLER, SELLER_PIN, STRANGER
from .support import activate, generate_code, transfer_direct

ROUNDS = 50


class OverlappingHasher:
    """Holds every verification until `parties` of them are in step 2 together, so the racers
    are certainly between their snapshot and their write at the same time."""

    def __init__(self, inner, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=30)
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, *args, **kwargs):
        with self._lock:
            self.verified += 1
        self.barrier.wait()
        return self.inner.verify(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def devices_for_race(registry, count: int, first: int = 200) -> list[str]:
    registry.portal.add_subscriber(SELLER, password=SELLER_PIN)
    imeis = [demo_imei(first + i) for i in range(count)]
    for imei in imeis:
        registry.portal.add_device(imei, owner=SELLER, brand="Samsung", model="A54",
                            activation_code=CODE)
    return imeis


def run_together(*calls):
    start = threading.Barrier(len(calls), timeout=30)

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def assert_one_winner(registry, imei, outcomes, buyers):
    refusals = sorted(o.refusal.value if o.refusal else "ok" for o in outcomes)
    assert refusals == ["changed", "ok"], imei
    winner = buyers[[o.ok for o in outcomes].index(True)]
    assert registry.portal.device_info(imei).owner == normalize(winner)
    assert len(registry.portal.transfers(imei=imei)) == 1
    assert registry.portal.device_info(imei).version == 2


def test_two_transfers_overlapping_exactly_one_wins(registry):
    [imei] = devices_for_race(registry, 1)
    registry.store.hasher = OverlappingHasher(registry.store.hasher, 2)
    outcomes = run_together(
        lambda: transfer_direct(registry, SELLER, imei, CODE, BUYER, expected_version=1),
        lambda: transfer_direct(registry, SELLER, imei, CODE, STRANGER, expected_version=1),
    )
    assert registry.store.hasher.verified == 2  # both really were in flight together
    assert_one_winner(registry, imei, outcomes, [BUYER, STRANGER])


def test_transfer_and_activation_overlapping_exactly_one_wins(registry):
    [imei] = devices_for_race(registry, 1)
    registry.store.hasher = OverlappingHasher(registry.store.hasher, 2)
    outcomes = run_together(
        lambda: transfer_direct(registry, SELLER, imei, CODE, BUYER, expected_version=1),
        lambda: activate(registry, STRANGER, imei, CODE),
    )
    assert_one_winner(registry, imei, outcomes, [BUYER, STRANGER])
    assert {t.kind for t in registry.portal.transfers(imei=imei)} <= {"direct", "activation"}


def test_two_activations_overlapping_exactly_one_wins(registry):
    [imei] = devices_for_race(registry, 1)
    registry.store.hasher = OverlappingHasher(registry.store.hasher, 2)
    outcomes = run_together(lambda: activate(registry, BUYER, imei, CODE),
                            lambda: activate(registry, STRANGER, imei, CODE))
    assert_one_winner(registry, imei, outcomes, [BUYER, STRANGER])


def test_code_generation_racing_a_transfer(registry):
    """Whichever commits first, the other sees the change: never a transfer that keeps a code
    generated for the old owner."""
    imeis = devices_for_race(registry, ROUNDS)
    for imei in imeis:
        moved, generated = run_together(
            lambda imei=imei: transfer_direct(registry, SELLER, imei, CODE, BUYER,
                                                       expected_version=1),
            lambda imei=imei: generate_code(registry, SELLER, imei,
                                                                expected_version=1),
        )
        assert sorted([moved.ok, generated.ok]) == [False, True], imei
        loser = generated if moved.ok else moved
        assert loser.refusal in (Refusal.CHANGED, Refusal.WRONG_CODE), imei
        info = registry.portal.device_info(imei)
        assert info.has_activation_code is generated.ok
        assert info.owner == normalize(BUYER if moved.ok else SELLER)


def test_transfer_race_many_times_with_threads(registry_factory):
    """Free-running: two threads with their own registries (pools) per round, ROUNDS rounds."""
    first, second = registry_factory(use_clock=False), registry_factory(use_clock=False)
    imeis = devices_for_race(first, ROUNDS)
    for imei in imeis:
        outcomes = run_together(
            lambda imei=imei: transfer_direct(first, SELLER, imei, CODE, BUYER,
                                                    expected_version=1),
            lambda imei=imei: transfer_direct(second, SELLER, imei, CODE, STRANGER,
                                                     expected_version=1),
        )
        assert_one_winner(first, imei, outcomes, [BUYER, STRANGER])


def test_transfer_race_many_times_with_processes(registry, db_url):
    imeis = devices_for_race(registry, ROUNDS)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    racers = [ctx.Process(target=_race, args=(db_url, buyer, SELLER, CODE, imeis, barrier,
                                              results)) for buyer in (BUYER, STRANGER)]
    for racer in racers:
        racer.start()
    seen = [results.get(timeout=120) for _ in range(2 * ROUNDS)]
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    by_device: dict[str, list[tuple[str, str]]] = {}
    for imei, buyer, answer in seen:
        by_device.setdefault(imei, []).append((buyer, answer))
    for imei in imeis:
        answers = by_device[imei]
        assert sorted(a for _, a in answers) == ["changed", "ok"], (imei, answers)
        [winner] = [b for b, a in answers if a == "ok"]
        assert registry.portal.device_info(imei).owner == normalize(winner)
        assert len(registry.portal.transfers(imei=imei)) == 1


def _race(*args):
    from tests.registry.race_worker import race

    race(*args)


def test_parallel_password_guesses_get_at_most_three_verifications(registry):
    """However many calls guess at once, only three guesses are ever verified per lock."""
    registry.portal.add_subscriber(SELLER, password=SELLER_PIN)
    slow = SlowHasher(registry.store.hasher)
    registry.store.hasher = slow
    guesses = [f"{n:04d}" for n in range(10)]
    answers = run_together(*[lambda g=g: registry.kartabl.sign_in(SELLER, g) for g in guesses])
    assert slow.verified <= 3
    assert registry.portal.subscriber_info(SELLER).others_locked_until is not None
    counts = Counter(a.status for a in answers)
    assert counts[PasswordStatus.LOCKED] >= len(guesses) - 3
    assert registry.kartabl.sign_in(SELLER, SELLER_PIN).status is PasswordStatus.LOCKED


def test_parallel_code_guesses_get_at_most_three_verifications(registry):
    [imei] = devices_for_race(registry, 1)
    slow = SlowHasher(registry.store.hasher)
    registry.store.hasher = slow
    guesses = [f"{n:08d}" for n in range(10)]
    answers = run_together(*[lambda g=g: activate(registry, BUYER, imei, g) for g in guesses])
    assert slow.verified <= 3
    assert all(not a.ok for a in answers)
    assert registry.portal.device_info(imei).buyer_locked_until is not None


def test_a_right_guess_within_the_allowance_wins_despite_a_parallel_lock(registry):
    registry.portal.add_subscriber(SELLER, password=SELLER_PIN)
    slow = SlowHasher(registry.store.hasher)
    registry.store.hasher = slow
    registry.kartabl.sign_in(SELLER, "0000")
    registry.kartabl.sign_in(SELLER, "0000")  # one attempt left
    right, extra = run_together(lambda: registry.kartabl.sign_in(SELLER, SELLER_PIN),
                                lambda: (time.sleep(0.01), registry.kartabl.sign_in(SELLER,
                                                                                   "0000"))[1])
    assert right.status is PasswordStatus.OK
    assert extra.status is PasswordStatus.LOCKED


class SlowHasher(OverlappingHasher):
    """Verification takes a while (as real argon2 does), and is counted."""

    def __init__(self, inner) -> None:
        super().__init__(inner, 1)

    def verify(self, *args, **kwargs):
        with self._lock:
            self.verified += 1
        time.sleep(0.05)
        return self.inner.verify(*args, **kwargs)


