"""What a text channel shows: played items as screen text, and screens cut into pages.

A prompt key shows its catalogue `screen` form (nothing for a voice-only one); digits, numbers
and device names show as themselves, digits in Persian (as the SMS texts write them). Pieces join
into lines: a menu (numbered lines) or a sentence's end starts a new line, an open phrase and the
value after it share one. A USSD screen holds 160 octets: 80 characters in UCS-2, which any
Persian text needs; a longer screen is shown a page at a time, each page but the last ending in
«۰۰ ادامه» (reply 00 for the next).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ivr.call.api import DeviceName, Digits, Number, Say
from ivr.prompts import catalogue

SCREEN_OCTETS = 160
SCREEN_CHARS = SCREEN_OCTETS // 2  # UCS-2: two octets a character
NEXT_PAGE = "00"  # the reply that shows the next page
PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
LATIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
MORE_LINE = "\n" + (catalogue.screen("ussd_more") or NEXT_PAGE)  # ends a page that has a next
_ENDS_LINE = tuple(".؟?!)")
_MENU_START = re.compile(r"^[۰-۹0-9*#]+ ")


def width(text: str) -> int:
    """Characters as a UCS-2 screen counts them (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def persian(digits: str) -> str:
    return digits.translate(PERSIAN_DIGITS)


def piece(item: Say) -> tuple[str, bool]:
    """(the item's screen text, whether it is a value shown inside a sentence)."""
    if isinstance(item, str):
        return catalogue.screen(item) or "", False
    if isinstance(item, Digits):
        return " ".join(persian(group) for group in item.grouped()), True
    if isinstance(item, Number):
        return persian(str(item.value)), True
    if isinstance(item, DeviceName):
        return f"{item.brand} {item.model}".strip(), True
    raise TypeError(f"cannot show {item!r}")


def compose(items: Iterable[Say]) -> str:
    """The items as one screen's text (before paging)."""
    out = ""
    last_value = False
    label = False  # the value being shown follows a label («پیگیری:»): its line ends with it
    menu = False  # the last piece was a menu line («۶ حقوق خریدار»): what follows starts a line
    for item in items:
        text, value = piece(item)
        if not text:
            continue
        if not out or text.startswith("\n"):
            sep = ""
        elif out.endswith("\n") or out.endswith(_ENDS_LINE) or "\n" in text or menu \
                or (not value and _MENU_START.match(text)) \
                or (last_value and not value and (label or text.endswith(":"))):
            sep = "\n"
        else:
            sep = " "
        out += sep + text
        if not value:
            label = text.endswith(":")
        menu = not value and bool(_MENU_START.match(text))
        last_value = value
    return re.sub(r"[ \t]*\n[ \t\n]*", "\n", out).strip()


def paginate(text: str, limit: int = SCREEN_CHARS) -> list[str]:
    """`text` as pages of at most `limit` characters, cut between lines (a line too long for a
    page, between words); every page but the last ends with the «next page» line."""
    if width(text) <= limit:
        return [text]
    more = MORE_LINE
    room = limit - width(more)
    pages: list[str] = []
    current = ""
    for line in _fitted_lines(text, room):
        joined = f"{current}\n{line}" if current else line
        if width(joined) <= room:
            current = joined
            continue
        pages.append(current)
        current = line
    rest = current
    if pages and width(rest) > limit:  # cannot happen: lines fit `room`
        raise AssertionError(rest)
    return [page + more for page in pages] + [rest]


def _fitted_lines(text: str, room: int) -> list[str]:
    lines: list[str] = []
    for line in text.split("\n"):
        while width(line) > room:
            cut = line.rfind(" ", 0, room)
            cut = cut if cut > 0 else room
            lines.append(line[:cut])
            line = line[cut:].lstrip()
        lines.append(line)
    return lines


def reply_text(raw: str) -> str:
    """A subscriber's reply as an entry: Persian or Arabic-Indic digits as Latin ones, spaces
    and dashes (an IMEI copied as 35 988… or 35-988…) dropped."""
    return re.sub(r"[\s\-‐-―]", "", raw.translate(LATIN_DIGITS))
