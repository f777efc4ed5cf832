"""The registry service: every operation the IVR (and the admin CLI) performs, one transaction each.

CONTRACT STUB — the registry issue implements these bodies; the signatures are what the call flows
use. All mobile numbers given to these methods may be in any accepted form (09…, 9…, 989…,
+989…); they are normalised with ivr.registry.msisdn.normalize. Nothing here logs or stores a
password or activation code in clear.
"""

from __future__ import annotations

from datetime import datetime

from ivr.registry.types import Device, Inquiry, Outcome, PasswordCheck

GATEWAY_IVR = "ivr"


class Registry:
    """Synchronous; the FastAGI server runs it through ivr.registry.aio.AsyncRegistry."""

    @classmethod
    def open(cls, url: str | None = None, *, pepper: bytes | None = None) -> Registry:
        """Connect (ivr.config.db_url/load_pepper when not given). Does not migrate: see
        ivr.registry.db.upgrade(url), which `hamta-ivr db upgrade` runs."""
        raise NotImplementedError

    # --- administration (stands in for the web portal; used by the CLI, demo data, tests) ------
    def add_subscriber(
        self, msisdn: str, *, password: str | None = None, national_id: str | None = None
    ) -> None:
        raise NotImplementedError

    def set_password(self, msisdn: str, pin: str) -> None:
        raise NotImplementedError

    def add_device(
        self, imei: str, *, owner: str | None, brand: str, model: str,
        status: str = "registered", activation_code: str | None = None,
    ) -> None:
        raise NotImplementedError

    def device_info(self, imei: str) -> dict | None:
        """JSON-ready: imei, owner, status, brand, model, has_activation_code, version, …"""
        raise NotImplementedError

    def subscriber_info(self, msisdn: str) -> dict | None:
        """JSON-ready: msisdn, has_password, failed_attempts, locked_until (None), …"""
        raise NotImplementedError

    def transfers(self, *, imei: str | None = None, msisdn: str | None = None) -> list[dict]:
        raise NotImplementedError

    def audit(self) -> list[dict]:
        raise NotImplementedError

    def calls(self) -> list[dict]:
        """The call log, newest first: call_id, msisdn, channel, started, ended, path, outcome."""
        raise NotImplementedError

    # --- queries -------------------------------------------------------------------------------
    def inquire_imei(self, imei: str) -> Inquiry:
        raise NotImplementedError

    def devices_of(self, msisdn: str) -> list[Device]:
        """The kartabl, oldest entry first (the order the IVR reads and numbers it)."""
        raise NotImplementedError

    # --- kartabl password --------------------------------------------------------------------
    def check_password(self, msisdn: str, pin: str, gateway: str = GATEWAY_IVR) -> PasswordCheck:
        raise NotImplementedError

    # --- activation codes --------------------------------------------------------------------
    def check_activation_code(
        self, imei: str, code: str, *, owner: str | None = None, gateway: str = GATEWAY_IVR
    ) -> Outcome:
        """Verify a device's code (counts toward the device's lockout). With `owner`, also
        refuses NOT_OWNER. Used to tell the caller early, before the final confirmation."""
        raise NotImplementedError

    def generate_activation_code(
        self, owner: str, imei: str, *, expected_version: int | None = None,
        gateway: str = GATEWAY_IVR,
    ) -> Outcome:
        """A fresh random 8-digit code in Outcome.code; the old one stops working."""
        raise NotImplementedError

    def change_activation_code(
        self, owner: str, imei: str, new_code: str, *, expected_version: int | None = None,
        gateway: str = GATEWAY_IVR,
    ) -> Outcome:
        raise NotImplementedError

    # --- ownership -----------------------------------------------------------------------------
    def transfer_direct(
        self, owner: str, imei: str, code: str, buyer: str, *,
        expected_version: int | None = None, gateway: str = GATEWAY_IVR,
    ) -> Outcome:
        """Seller moves the device to the buyer. Outcome.reference is the transfer reference."""
        raise NotImplementedError

    def activate(self, buyer: str, imei: str, code: str, *, gateway: str = GATEWAY_IVR) -> Outcome:
        """The buyer takes the device over with its code (indirect sale)."""
        raise NotImplementedError

    # --- call log ------------------------------------------------------------------------------
    def call_started(self, call_id: str, msisdn: str | None, channel: str, at: datetime) -> None:
        raise NotImplementedError

    def call_ended(self, call_id: str, path: list[str], outcome: str, at: datetime) -> None:
        raise NotImplementedError
