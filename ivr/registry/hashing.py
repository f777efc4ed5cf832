"""Peppered argon2id for kartabl PINs and activation codes.

A PIN has at most 10^8 values and an activation code 10^8, so a salted hash alone does not stop
someone holding a copy of the database from trying them all. Each secret is therefore first keyed
with HMAC-SHA256 under a pepper that lives outside the database (ivr.config.load_pepper), then
hashed with argon2id (salted, memory-hard). The HMAC input also binds the secret to its purpose and
subject (`pin` + number, `code` + IMEI), so a hash copied to another row does not verify there.

Hashing is slow on purpose (~30-60 ms at the OWASP minimum on a small machine): call it from a
worker thread (ivr.registry.aio), never from an event loop.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PEPPER_MIN_BYTES = 32


@dataclass(frozen=True)
class HashParams:
    """argon2id costs. The defaults are the OWASP minimum (19 MiB, 2 passes, 1 lane)."""

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1


OWASP_MINIMUM = HashParams()
# Only for tests that are not about hashing: argon2's smallest legal costs.
TEST_ONLY_FAST = HashParams(time_cost=1, memory_kib=8, parallelism=1)


class SecretHasher:
    """hash/verify secrets; `purpose` and `subject` are part of what is hashed."""

    def __init__(self, pepper: bytes, params: HashParams = OWASP_MINIMUM) -> None:
        if len(pepper) < PEPPER_MIN_BYTES:
            raise ValueError(f"the pepper must be at least {PEPPER_MIN_BYTES} bytes")
        self._pepper = pepper
        self.params = params
        self._argon = PasswordHasher(
            time_cost=params.time_cost, memory_cost=params.memory_kib,
            parallelism=params.parallelism, hash_len=32, salt_len=16, type=Type.ID,
        )

    def _keyed(self, purpose: str, subject: str, secret: str) -> bytes:
        message = "\x00".join((purpose, subject, secret)).encode()
        return hmac.new(self._pepper, message, hashlib.sha256).digest()

    def hash(self, purpose: str, subject: str, secret: str) -> str:
        return self._argon.hash(self._keyed(purpose, subject, secret))

    def verify(self, encoded: str | None, purpose: str, subject: str, secret: str) -> bool:
        if not encoded:
            return False
        try:
            return self._argon.verify(encoded, self._keyed(purpose, subject, secret))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """True when `encoded` was made with other costs than this hasher's."""
        try:
            return self._argon.check_needs_rehash(encoded)
        except InvalidHashError:
            return True
