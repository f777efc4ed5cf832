"""Input rules, defined once for the registry, the call flows and the CLI: IMEI, kartabl PIN,
activation code, a mobile number as keyed, national ID.

- IMEI: exactly 15 digits with a valid Luhn check digit (python-stdnum), as the field does it.
- PIN (kartabl password): 4 to 8 digits, because callers key it on a telephone keypad.
  One the subscriber chooses (the portal's set-password) must also not be an easy guess
  (weak_pin_reason: NIST SP 800-63B's blocklist of commonly used values).
- Activation code: exactly 8 digits (the length the registry hands out).
- Mobile number as a caller keys it: 11 digits, 09… (ivr.registry.msisdn accepts more spellings).
- National ID (کد ملی): 10 digits with the Iranian check digit.
- A device's brand and model: printable text of at most NAME_MAX characters, cleaned at the door
  (Unicode NFC, control characters and terminal escapes removed, spaces folded), because it is
  read back on terminals, in logs, and fits a 64-character column on PostgreSQL.

Digits are ASCII 0-9 only (a keypad sends those; a regex \\d would let Persian
digits through).
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from importlib import resources

from stdnum import imei as stdnum_imei

from ivr.registry.errors import InvalidInput

PIN_MIN, PIN_MAX = 4, 8
CODE_LEN = 8
IMEI_LEN = 15
MSISDN_LEN = 11  # 09xxxxxxxxx
REFERENCE_LEN = 10  # a transfer's reference number, a lost/stolen report's case number
NAME_MAX = 64  # devices.brand and devices.model
STATUSES = ("registered", "unregistered", "blocked")
COMMON_PINS_FILE = "common_pins.txt"  # in this package; its header names the source


def is_imei(raw: str | None) -> bool:
    """15 digits and a valid Luhn check digit (an IMEISV or a 14-digit body is not enough)."""
    return (
        isinstance(raw, str) and re.fullmatch(rf"[0-9]{{{IMEI_LEN}}}", raw) is not None
        and stdnum_imei.is_valid(raw)
    )


def imei(raw: str) -> str:
    cleaned = re.sub(r"[\s\-]", "", raw or "")
    if not is_imei(cleaned):
        raise InvalidInput(
            f"{raw!r} is not an IMEI: it needs 15 digits with a valid check digit "
            "(dial *#06# on the phone to read it)"
        )
    return cleaned


def is_pin(raw: str | None) -> bool:
    pattern = rf"[0-9]{{{PIN_MIN},{PIN_MAX}}}"
    return isinstance(raw, str) and re.fullmatch(pattern, raw) is not None


def pin(raw: str) -> str:
    if not is_pin(raw):
        raise InvalidInput(f"a kartabl password is {PIN_MIN} to {PIN_MAX} digits (0-9 only)")
    return raw


@functools.cache
def common_pins() -> frozenset[str]:
    """The 100 most common four-digit PINs (ivr/registry/common_pins.txt)."""
    text = resources.files("ivr.registry").joinpath(COMMON_PINS_FILE).read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def weak_pin_reason(raw: str, msisdn: str | None = None) -> str | None:
    """Why a well-formed PIN is too easy to guess to be chosen as a kartabl password, else None:
    one of the 100 most common four-digit PINs; one digit repeated or a run up or down, at any
    length (0000, 55555555, 123456, 9876, the rule of is_strong_code); or, given the kartabl's
    mobile number (any spelling msisdn.normalize takes), the number's last digits (a cheap
    check, and a guess a stranger who dialled the number tries early)."""
    common = "this PIN is among the most common PINs"
    if raw in common_pins():
        return f"{common}: choose another"
    if _run_or_repeat(raw):
        return f"{common} (one digit repeated, or a run up or down): choose another"
    if msisdn is not None and re.sub(r"[^0-9]", "", msisdn).endswith(raw):
        return f"{common} (the last digits of the mobile number): choose another"
    return None


def chosen_pin(raw: str, msisdn: str | None = None) -> str:
    """A kartabl password a subscriber chooses: pin(), and no weak_pin_reason (InvalidInput)."""
    checked = pin(raw)
    reason = weak_pin_reason(checked, msisdn)
    if reason is not None:
        raise InvalidInput(reason)
    return checked


def is_keyed_mobile(raw: str | None) -> bool:
    """A mobile number as keyed on a phone: 09 and nine more digits."""
    return isinstance(raw, str) and re.fullmatch(r"09[0-9]{9}", raw) is not None


def is_reference(raw: str | None) -> bool:
    """A transfer's reference number as keyed (what a return starts from)."""
    return isinstance(raw, str) and re.fullmatch(rf"[0-9]{{{REFERENCE_LEN}}}", raw) is not None


def is_code(raw: str | None) -> bool:
    return isinstance(raw, str) and re.fullmatch(rf"[0-9]{{{CODE_LEN}}}", raw) is not None


def is_strong_code(raw: str | None) -> bool:
    """A code an owner may choose: 8 digits, not one digit repeated (00000000) and not a run up
    or down (12345678, 98765432, wrapping 90123456 too)."""
    if not is_code(raw):
        return False
    assert raw is not None
    return not _run_or_repeat(raw)


def _run_or_repeat(digits: str) -> bool:
    """One digit repeated, or each digit one up (or one down) from the last, wrapping 9 -> 0."""
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(digits)}
    return steps in ({0}, {1}, {9})


def code(raw: str) -> str:
    if not is_code(raw):
        raise InvalidInput(f"an activation code is exactly {CODE_LEN} digits (0-9 only)")
    return raw


def status(raw: str) -> str:
    if raw not in STATUSES:
        raise InvalidInput(f"status {raw!r} is not one of {', '.join(STATUSES)}")
    return raw


def national_id_check_digit(first9: str) -> int:
    """The Iranian national-ID check digit: weights 10..2, remainder mod 11."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(first9))
    rest = total % 11
    return rest if rest < 2 else 11 - rest


def national_id(raw: str) -> str:
    cleaned = re.sub(r"[\s\-]", "", raw or "")
    if (
        not re.fullmatch(r"[0-9]{10}", cleaned)
        or len(set(cleaned)) == 1
        or national_id_check_digit(cleaned[:9]) != int(cleaned[9])
    ):
        raise InvalidInput(
            f"{raw!r} is not an Iranian national ID (10 digits with a valid check digit)"
        )
    return cleaned


def device_name(raw: str | None, what: str) -> str:
    """A brand or model, cleaned: NFC, no control or format characters (an ESC sequence keeps
    only its printable tail), spaces folded. InvalidInput when empty or too long."""
    text = unicodedata.normalize("NFC", raw or "")
    text = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", text)  # CSI sequences, whole
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    if not text:
        raise InvalidInput(f"a device needs a brand and a model (e.g. Samsung, Galaxy A54): "
                           f"the {what} is empty")
    if len(text) > NAME_MAX:
        raise InvalidInput(f"a device's {what} is at most {NAME_MAX} characters, not {len(text)}")
    return text
