"""Iranian mobile numbers: every accepted spelling maps to one canonical E.164 form (+989…)."""

from __future__ import annotations

import re

from ivr.registry.errors import InvalidInput


class InvalidMsisdn(InvalidInput):
    """Not an Iranian mobile number in any accepted form."""


_FORMS = re.compile(r"^(?:\+98|0098|98|0)?(9[0-9]{9})$")


def normalize(raw: str) -> str:
    """`09121234567`, `9121234567`, `989121234567`, `+989121234567` -> `+989121234567`."""
    cleaned = re.sub(r"[\s\-()]", "", raw or "")
    match = _FORMS.match(cleaned)
    if not match:
        raise InvalidMsisdn(
            f"{raw!r} is not a mobile number; use 09xxxxxxxxx, 9xxxxxxxxx, 989xxxxxxxxx "
            "or +989xxxxxxxxx"
        )
    return "+98" + match.group(1)


def national(msisdn: str) -> str:
    """The 11-digit form callers know and key (09…), for reading a number back to them."""
    return "0" + normalize(msisdn)[3:]


def try_normalize(raw: str | None) -> str | None:
    """A caller ID that may be withheld or not a mobile number (a landline, 'anonymous')."""
    if not raw:
        return None
    try:
        return normalize(raw)
    except InvalidMsisdn:
        return None
