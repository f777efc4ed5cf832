"""What the registry answers: plain values the call flows branch on and the CLI prints.

Kept apart from the database models so that flows never touch a session or a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ImeiStatus(StrEnum):
    """The answer to an IMEI inquiry (and a device's registry status, minus invalid/unknown)."""

    INVALID = "invalid"  # not 15 digits or the Luhn check fails
    UNKNOWN = "unknown"  # well-formed, but the registry has never heard of it
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    BLOCKED = "blocked"


class PasswordStatus(StrEnum):
    OK = "ok"
    NO_PASSWORD = "no_password"  # also a number the registry does not know: go to the web portal
    WRONG = "wrong"
    LOCKED = "locked"


class Refusal(StrEnum):
    """Why the registry said no; each has its own prompt (see ivr.flows)."""

    INVALID_IMEI = "invalid_imei"
    UNKNOWN_DEVICE = "unknown_device"
    NOT_REGISTERED = "not_registered"
    BLOCKED = "blocked"
    NOT_OWNER = "not_owner"
    NO_CODE = "no_code"  # the device has no activation code to check against
    WRONG_CODE = "wrong_code"
    CODE_LOCKED = "code_locked"  # too many wrong codes for this device
    INVALID_CODE = "invalid_code"  # a new code that is not 8 digits
    BUYER_INVALID = "buyer_invalid"
    BUYER_IS_OWNER = "buyer_is_owner"
    CHANGED = "changed"  # the device changed between the caller choosing it and confirming
    NO_CALLER_ID = "no_caller_id"


@dataclass(frozen=True)
class Inquiry:
    imei: str
    status: ImeiStatus
    brand: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class PasswordCheck:
    status: PasswordStatus
    attempts_left: int | None = None  # with WRONG
    locked_until: datetime | None = None  # with LOCKED (timezone-aware UTC)


@dataclass(frozen=True)
class Device:
    """A device as a kartabl lists it. `version` is what the caller saw when choosing it."""

    imei: str
    brand: str
    model: str
    status: ImeiStatus
    version: int


@dataclass(frozen=True)
class Outcome:
    """The result of a registry operation that may be refused."""

    refusal: Refusal | None = None
    reference: str | None = None  # transfer reference number (digits), on a transfer/activation
    code: str | None = None  # a freshly generated activation code: returned once, never stored
    attempts_left: int | None = None  # with WRONG_CODE
    locked_until: datetime | None = None  # with CODE_LOCKED
    device: Device | None = None  # the device concerned, when known (for the confirmation prompt)

    @property
    def ok(self) -> bool:
        return self.refusal is None
