"""The IMEI inquiry by SMS: an IMEI sent to the short code (7777) gets the voice inquiry's verdict
in one SMS; anything else gets a one-line help. Kannel's smsbox asks us through an sms-service
(`get-url`, rendered by ivr.sms.service_conf) and sends our answer back as the reply.

An IMEI may come in Persian or Latin digits, with spaces or dashes (as copied from a box: 35 988…,
35-988…). Per-sender limits (`sms_inquiry_limit`, default 5 an hour and 20 a day) keep anyone
from walking the IMEI space by SMS: past them the sender is told once, then gets no reply at all
(an empty answer: Kannel's `omit-empty`), so a flood costs us no SMS either. The limits are kept
in this process (one `hamta-ivr ussd serve`); a restart forgets them, which costs an
enumerator at most one more window.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr import config
from ivr.call.http_callbacks import Reply, Request
from ivr.call.screens import reply_text
from ivr.prompts import catalogue
from ivr.registry.aio import AsyncRegistry
from ivr.registry.msisdn import try_normalize
from ivr.registry.types import ImeiStatus, Inquiry, Reported
from ivr.registry.validate import IMEI_LEN, is_imei
from ivr.sms.texts import PERSIAN_DIGITS

LIMIT_KEY = "sms_inquiry_limit"

VERDICTS = {
    ImeiStatus.REGISTERED: "sms_inquiry_registered",
    ImeiStatus.UNREGISTERED: "sms_inquiry_unregistered",
    ImeiStatus.BLOCKED: "sms_inquiry_blocked",
    ImeiStatus.UNKNOWN: "sms_inquiry_unknown",
    ImeiStatus.INVALID: "sms_inquiry_invalid",
}
REPORTED = {Reported.LOST: "sms_inquiry_reported_lost",
            Reported.STOLEN: "sms_inquiry_reported_stolen"}
HELP, OVER_LIMIT = "sms_inquiry_help", "sms_inquiry_limit"


def imei_in(text: str) -> str | None:
    """The 15 digits of an IMEI message (Persian or Latin digits, spaces and dashes tolerated),
    valid or not; None when the message is not fifteen digits."""
    entry = reply_text(text)
    return entry if re.fullmatch(rf"[0-9]{{{IMEI_LEN}}}", entry) else None


def reply_for(imei: str, answer: Inquiry | None) -> str:
    """The SMS answering an inquiry of `imei` (`answer` None: its check digit is wrong)."""
    if answer is None:
        key = VERDICTS[ImeiStatus.INVALID]
    elif answer.reported is not None:
        key = REPORTED[answer.reported]
    else:
        key = VERDICTS[answer.status]
    device = f"{answer.brand or ''} {answer.model or ''}".strip() if answer else ""
    text = catalogue.messages()[key]["text"]
    # the IMEI in Persian digits (as every SMS writes digits); the name as the registry holds it
    return text.format(imei=imei.translate(PERSIAN_DIGITS), device=device or "-")


def message(key: str) -> str:
    return catalogue.messages()[key]["text"].translate(PERSIAN_DIGITS)


def limits_setting() -> tuple[tuple[int, float], ...]:
    """`sms_inquiry_limit` ("5/hour,20/day") as (count, window seconds) pairs: parsed and
    checked by the Settings."""
    return config.current().checked(LIMIT_KEY).sms_inquiry_limit


@dataclass
class SenderLimits:
    """How many inquiries each sender may make per window; told once when over."""

    limits: tuple[tuple[int, float], ...]
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _told: set[str] = field(default_factory=set)

    def take(self, sender: str) -> str:
        """`ok`, `over` (tell them once) or `silent` (told already)."""
        now = self.clock()
        seen = self._seen[sender]
        longest = max(window for _, window in self.limits)
        while seen and now - seen[0] > longest:
            seen.popleft()
        if any(sum(1 for at in seen if now - at <= window) >= count
               for count, window in self.limits):
            if sender in self._told:
                return "silent"
            self._told.add(sender)
            return "over"
        self._told.discard(sender)
        seen.append(now)
        return "ok"


@dataclass
class SmsInquiry:
    """Answers one incoming SMS: the reply's text, "" for none."""

    registry: AsyncRegistry
    limits: SenderLimits

    async def handle(self, request: Request) -> Reply:
        """Kannel's sms-service get-url: `from`, `text` -> the reply, in UCS-2."""
        sender = request.params.get("from", "")
        if not sender:
            return 400, ""
        return 200, await self.answer(sender, request.params.get("text", "")), \
            {"X-Kannel-Coding": "2"}

    async def answer(self, sender: str, text: str) -> str:
        """Every message counts against its sender's limits, help requests too (a flood of
        anything must not become a flood of replies)."""
        verdict = self.limits.take(try_normalize(sender) or sender.strip())
        if verdict == "over":
            return message(OVER_LIMIT)
        if verdict == "silent":
            return ""
        imei = imei_in(text)
        if imei is None:
            return message(HELP)
        if not is_imei(imei):
            return reply_for(imei, None)
        return reply_for(imei, await self.registry.inquire(imei))
