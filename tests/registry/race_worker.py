"""The body of a racing process (importable, for multiprocessing's spawn start method)."""

from __future__ import annotations

from typing import Any

from ivr.registry.hashing import TEST_ONLY_FAST
from ivr.registry.service import Registry
from tests.registry.support import TEST_PEPPER, transfer_direct


def race(url: str, buyer: str, seller: str, code: str, imeis: list[str], barrier: Any,
         results: Any) -> None:
    """For each device: wait for the other racers, then try to transfer it to `buyer`."""
    registry = Registry.open(url, pepper=TEST_PEPPER, hash_params=TEST_ONLY_FAST)
    try:
        for imei in imeis:
            barrier.wait(timeout=60)
            outcome = transfer_direct(registry, seller, imei, code, buyer, expected_version=1)
            results.put((imei, buyer, outcome.refusal.value if outcome.refusal else "ok"))
    finally:
        registry.close()
