"""What the registry answers: typed values the call flows branch on and the CLI prints.

Kept apart from the tables so that flows never touch a connection or a row. The IVR's answers
(SignIn, CodeCheck, Change, …) each carry everything the next prompt needs; the portal's records
(SubscriberRecord, DeviceRecord, …) are what an operator is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ImeiStatus(StrEnum):
    """The answer to an IMEI inquiry (and a device's registry status, minus invalid/unknown)."""

    INVALID = "invalid"  # not 15 digits or the Luhn check fails
    UNKNOWN = "unknown"  # well-formed, but the registry has never heard of it
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    BLOCKED = "blocked"


class Reported(StrEnum):
    """Why the owner reported a device (ivr.registry.reports): a reported device is frozen —
    no transfer, activation, code or return — until the owner withdraws the report."""

    LOST = "lost"
    STOLEN = "stolen"


@dataclass(frozen=True)
class Origin:
    """Who is asking: the calling line (E.164; None when withheld) and the call. Lockouts and
    throttles count by it, and every audit row of a secret attempt records it.

    `vouched`: the network vouches for `caller` (the call came in on a trunk the PBX trusts,
    ivr.call.api.Call.caller_trusted). Only a vouched number is a kartabl's *own line*: a caller
    ID from a softphone or a VoIP trunk can be anything, so it counts as another line (and is
    still recorded in the audit)."""

    caller: str | None = None
    call_id: str | None = None
    vouched: bool = False

    def own_line(self, number: str) -> bool:
        """Is this the vouched-for line of `number` (E.164)?"""
        return self.vouched and self.caller is not None and self.caller == number


ADMIN = Origin()  # the portal (the CLI) and tests: no calling line


class PasswordStatus(StrEnum):
    ASK = "ask"  # before the PIN: a password is set and not locked
    THROTTLED = "throttled"  # this line or call has tried too many numbers
    OK = "ok"
    NO_PASSWORD = "no_password"  # also a number the registry does not know: go to the web portal
    WRONG = "wrong"
    LOCKED = "locked"
    # prove the SIM first (an SMS code to the number), then the PIN: a caller not on the number's
    # own vouched line once failed sign-ins have spent the registry's budget, or once a withheld
    # or unvouched caller ID tried too many numbers (ivr.registry.kartabl)
    SIM_FIRST = "sim_first"


class Refusal(StrEnum):
    """Why the registry said no; each has its own prompt (see ivr.flows.common)."""

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
    THROTTLED = "throttled"  # this line or call has tried the codes of too many devices
    REPORTED = "reported"  # the owner reported the device lost or stolen: frozen
    NO_SUCH_TRANSFER = "no_such_transfer"  # no returnable transfer with this reference to you
    RETURN_WINDOW_OVER = "return_window_over"  # past the 7 days (or the confirmation deadline)
    MOVED_ON = "moved_on"  # the device changed hands since the transfer to be returned
    # what moves a device or a secret needs the SIM: the kartabl's own vouched line, or an SMS
    # code sent to the number and keyed on this call (ivr.registry.sim_codes)
    NEEDS_SIM = "needs_sim"
    ALREADY_REQUESTED = "already_requested"  # one return request per transfer, one SMS for it


@dataclass(frozen=True)
class Inquiry:
    imei: str
    status: ImeiStatus
    brand: str | None = None
    model: str | None = None
    reported: Reported | None = None  # the owner reported it lost or stolen: do not buy it


@dataclass(frozen=True)
class Device:
    """A device as a kartabl lists it, with what choosing it will run into. `version` is what the
    caller saw when choosing it: a later change to the device refuses the operation (CHANGED)."""

    imei: str
    brand: str
    model: str
    status: ImeiStatus
    version: int
    has_code: bool = False
    code_locked_until: datetime | None = None  # a code lock in force (timezone-aware UTC)
    reported: Reported | None = None  # reported lost or stolen by its owner


@dataclass(frozen=True)
class Owner:
    """A number whose kartabl password was verified on this call, and its kartabl. Only
    ivr.registry.kartabl makes one (and ivr.registry.sim_codes one with `sim`): operations that
    need a signed-in owner take it.

    `sim`: the caller also holds the number's SIM — they call from its own vouched line, or keyed
    the SMS code sent to it on this call (or the portal signed them in, with its own SMS code).
    Whatever moves a device or a secret needs it: a PIN alone can be known to shop staff or
    guessed."""

    msisdn: str
    devices: tuple[Device, ...]
    sim: bool = False


class SimCode(StrEnum):
    """What became of an SMS code (ivr.registry.sim_codes): sending one, then checking it."""

    SENT = "sent"
    NO_SMS = "no_sms"  # SMS is not configured: only the number's own vouched line can do this
    CAPPED = "capped"  # the number had its SMS codes for today
    UNSENT = "unsent"  # the SMS gateway did not take it (nothing to key)
    OK = "ok"
    WRONG = "wrong"  # with attempts_left
    VOID = "void"  # expired, used, never sent or its tries ran out: a new one is needed


@dataclass(frozen=True)
class SimProof:
    """An SMS code sent to `msisdn` was keyed right on call `call_id`: the caller holds the SIM.
    Only ivr.registry.sim_codes makes one; a sign-in takes it when the SIM comes first."""

    msisdn: str
    call_id: str | None


@dataclass(frozen=True)
class SimAnswer:
    status: SimCode
    attempts_left: int | None = None  # with WRONG
    proof: SimProof | None = None  # with OK
    owner: Owner | None = None  # with OK, when a signed-in owner keyed it: now with Owner.sim


@dataclass(frozen=True)
class SignIn:
    """A kartabl's door: before the PIN (ASK, NO_PASSWORD, LOCKED) and after it (OK with the
    owner, WRONG with the attempts left, LOCKED with until when)."""

    status: PasswordStatus
    attempts_left: int | None = None  # with WRONG
    locked_until: datetime | None = None  # with LOCKED (timezone-aware UTC)
    owner: Owner | None = None  # with OK


@dataclass(frozen=True)
class Grant:
    """A device whose activation code was verified on this call: good for one ownership move as
    long as the device (version) and its code stay as they were. Only ivr.registry.devices makes
    one, so a move never verifies the code a second time."""

    imei: str
    version: int
    code_hash: str = field(repr=False)


@dataclass(frozen=True)
class Ruling:
    """What every registry answer that may be a no carries, the same way: `refusal`, why not
    (None: go ahead). The flows tell the caller a refusal whatever the answer it came in."""

    refusal: Refusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class CodeCheck(Ruling):
    """The answer to a keyed activation code: a grant, or why not (and what stops an
    operation on a device just chosen, ivr.registry.devices.on_choice)."""

    grant: Grant | None = None
    device: Device | None = None
    attempts_left: int | None = None  # with WRONG_CODE
    locked_until: datetime | None = None  # with CODE_LOCKED


@dataclass(frozen=True)
class Change(Ruling):
    """The result of a change a caller asked for (a move, a new or changed code)."""

    reference: str | None = None  # transfer reference number (digits), after a move
    code: str | None = None  # a freshly generated activation code: returned once, never stored
    device: Device | None = None


@dataclass(frozen=True)
class ReturnCase:
    """A transfer that can be undone (ivr.registry.returns): what the new owner confirms before
    starting the return, and what the previous owner hears before taking the device back.
    `version` is the device's version when the case was read: a later change voids it."""

    reference: str  # the transfer's reference number
    imei: str
    brand: str
    model: str
    previous_owner: str  # E.164: takes the device back, confirms from this line
    new_owner: str  # E.164: asked for the return
    version: int
    transferred_at: datetime
    requested_at: datetime | None = None  # once the return is started
    confirm_by: datetime | None = None  # the previous owner's deadline, once started


@dataclass(frozen=True)
class ReturnCheck(Ruling):
    """A return case, or why not."""

    case: ReturnCase | None = None


# --- what the portal (the admin CLI) shows ------------------------------------------------------
@dataclass(frozen=True)
class SubscriberRecord:
    msisdn: str
    national_id: str | None
    has_password: bool
    password_changed_at: datetime | None
    failed_attempts: int  # from the number's own line
    locked_until: datetime | None
    lock_level: int
    others_failed_attempts: int  # from other lines
    others_locked_until: datetime | None
    devices: int
    created_at: datetime


@dataclass(frozen=True)
class DeviceRecord:
    imei: str
    brand: str
    model: str
    status: str
    owner: str | None
    owner_since: datetime | None
    has_activation_code: bool
    code_changed_at: datetime | None
    code_failed_attempts: int  # keyed by the signed-in owner
    code_locked_until: datetime | None
    buyer_failed_attempts: int  # keyed by would-be buyers
    buyer_locked_until: datetime | None
    status_changed_at: datetime
    version: int
    created_at: datetime
    reported: str | None = None  # lost / stolen: the owner's live report (ivr.registry.reports)


@dataclass(frozen=True)
class TransferRecord:
    reference: str
    imei: str
    from_msisdn: str | None
    to_msisdn: str
    kind: str
    gateway: str
    at: datetime


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    event: str
    msisdn: str | None
    imei: str | None
    gateway: str
    detail: str | None
    caller: str | None = None
    call_id: str | None = None


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    msisdn: str | None
    channel: str
    started: datetime
    ended: datetime | None
    path: list[str]
    outcome: str | None
    server: str | None = None
