"""Peppered argon2id at the real (OWASP minimum) costs."""

from __future__ import annotations

import time

import pytest

from ivr.registry.hashing import OWASP_MINIMUM, TEST_ONLY_FAST, SecretHasher
from ivr.registry.types import PasswordStatus

from .support import TEST_PEPPER


@pytest.fixture(scope="module")
def hasher() -> SecretHasher:
    return SecretHasher(TEST_PEPPER, OWASP_MINIMUM)


def test_argon2id_at_least_the_owasp_minimum(hasher):
    encoded = hasher.hash("pin", "+989121111111", "1234")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(encoded, "pin", "+989121111111", "1234")
    assert not hasher.verify(encoded, "pin", "+989121111111", "1235")


def test_salted_each_hash_differs(hasher):
    assert hasher.hash("pin", "+989121111111", "1234") != hasher.hash("pin", "+989121111111",
                                                                      "1234")


def test_the_pepper_is_needed_to_verify(hasher):
    encoded = hasher.hash("pin", "+989121111111", "1234")
    other = SecretHasher(bytes(32), OWASP_MINIMUM)
    assert not other.verify(encoded, "pin", "+989121111111", "1234")


def test_a_hash_is_bound_to_its_purpose_and_subject(hasher):
    encoded = hasher.hash("code", "350000000000014", "12345678")
    assert hasher.verify(encoded, "code", "350000000000014", "12345678")
    assert not hasher.verify(encoded, "code", "350000000000022", "12345678")
    assert not hasher.verify(encoded, "pin", "350000000000014", "12345678")


def test_garbage_and_missing_hashes_do_not_verify(hasher):
    assert not hasher.verify(None, "pin", "x", "1234")
    assert not hasher.verify("not a hash", "pin", "x", "1234")


def test_a_short_pepper_is_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        SecretHasher(b"short", OWASP_MINIMUM)


def test_cheaper_hashes_are_flagged_for_rehash(hasher):
    cheap = SecretHasher(TEST_PEPPER, TEST_ONLY_FAST).hash("pin", "x", "1234")
    assert hasher.needs_rehash(cheap)
    assert hasher.verify(cheap, "pin", "x", "1234")  # the costs are in the hash itself
    assert not hasher.needs_rehash(hasher.hash("pin", "x", "1234"))


def test_hashing_is_slow_on_purpose(hasher):
    started = time.perf_counter()
    hasher.hash("pin", "x", "1234")
    assert time.perf_counter() - started > 0.005


def test_the_registry_with_real_costs(sqlite_registry_factory):
    registry = sqlite_registry_factory(hash_params=OWASP_MINIMUM)
    registry.portal.add_subscriber("09121111111", password="1234")
    assert registry.kartabl.sign_in("09121111111", "1234").status is PasswordStatus.OK
    assert registry.kartabl.sign_in("09121111111", "4321").status is PasswordStatus.WRONG


def test_a_password_hashed_with_old_costs_is_upgraded_on_login(sqlite_registry_factory):
    cheap = sqlite_registry_factory()
    cheap.portal.add_subscriber("09121111111", password="1234")
    url = str(cheap.store.engine.url)
    cheap.close()
    from ivr.registry.service import Registry
    from ivr.registry.tables import subscribers

    strong = Registry.open(url, pepper=TEST_PEPPER, hash_params=OWASP_MINIMUM)
    try:
        assert strong.kartabl.sign_in("09121111111", "1234").status is PasswordStatus.OK
        with strong.store.engine.connect() as conn:
            stored = conn.execute(subscribers.select()).first().password_hash
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    finally:
        strong.close()
