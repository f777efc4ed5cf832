"""Each secret a caller keys is verified exactly once: a direct transfer costs one argon2
verification of the password and one of the activation code, whatever the path, and its audit
trail has one row for each."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from .conftest import BUYER, CODE, PHONE, SELLER, SELLER_PIN


class CountingHasher:
    """The registry's hasher, counting verifications and hashes by purpose (`pin`, `code`)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.verified: Counter[str] = Counter()
        self.hashed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def verify(self, encoded, purpose, subject, secret):
        with self._lock:
            self.verified[purpose] += 1
        return self.inner.verify(encoded, purpose, subject, secret)

    def hash(self, purpose, subject, secret):
        with self._lock:
            self.hashed[purpose] += 1
        return self.inner.hash(purpose, subject, secret)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def hasher(registry) -> CountingHasher:
    counting = CountingHasher(registry.store.hasher)
    registry.store.hasher = counting
    return counting


def events_of(registry, msisdn: str) -> list[str]:
    return [e.event for e in registry.portal.audit(msisdn=msisdn)
            if e.gateway == "ivr"]


async def test_a_direct_transfer_verifies_the_password_once_and_the_code_once(
        dial, registry, hasher):
    result = await dial(f"3 1 {SELLER_PIN}# 1 {CODE} {BUYER} 1")
    assert result.path == ["transfer:completed"]
    assert hasher.verified == Counter(pin=1, code=1)
    assert sum(hasher.hashed.values()) == 0  # a move hashes nothing
    assert events_of(registry, SELLER) == ["login_ok", "code_ok", "transfer"]


async def test_a_wrong_code_then_the_right_one_verifies_each_keyed_code_once(
        dial, registry, hasher):
    result = await dial(f"3 1 {SELLER_PIN}# 1 87654321 {CODE} {BUYER} 1")
    assert result.path == ["transfer:completed"]
    assert hasher.verified == Counter(pin=1, code=2)
    assert events_of(registry, SELLER) == ["login_ok", "code_failed", "code_ok", "transfer"]


async def test_an_activation_verifies_the_code_once(dial, registry, hasher):
    result = await dial(f"2 {PHONE} {CODE} 1", caller=BUYER)
    assert result.path == ["activate:completed"]
    assert hasher.verified == Counter(code=1)
    assert events_of(registry, BUYER) == ["code_ok", "activation"]
