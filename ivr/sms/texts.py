"""An outbox row's text: its catalogue template (`kind = "sms"`, prompts/catalogue.toml) with its
params, digits written as Persian digits (the catalogue's note says why).

Rendered when the worker sends, not when the change commits: a corrected text reaches messages
still waiting. Params are what the registry wrote (an IMEI, a reference, a number, a duration);
`queue` has already refused any secret.
"""

from __future__ import annotations

from ivr.prompts import catalogue

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
UCS2_SEGMENT = 70  # characters in one UCS-2 SMS
UCS2_CONCATENATED = 67  # per segment of a concatenated one (the UDH takes 6 of 140 bytes)
MAX_SEGMENTS = 2
MAX_CHARS = UCS2_CONCATENATED * MAX_SEGMENTS  # 134


class UnknownTemplate(KeyError):
    """An outbox row names a template the catalogue no longer has (a permanent failure)."""


def render(template: str, params: dict[str, str]) -> str:
    try:
        text = catalogue.messages()[template]["text"]
    except KeyError:
        raise UnknownTemplate(f"no SMS template {template!r} in prompts/catalogue.toml") from None
    try:
        return text.format(**params).translate(PERSIAN_DIGITS)
    except (KeyError, IndexError) as exc:
        raise UnknownTemplate(f"SMS template {template!r} needs {exc}") from None


def segments(text: str) -> int:
    """How many UCS-2 segments a text takes."""
    if len(text) <= UCS2_SEGMENT:
        return 1
    return -(-len(text) // UCS2_CONCATENATED)

