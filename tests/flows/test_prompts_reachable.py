"""Every prompt the flows may play is reachable by some sequence of keys, and every registry
refusal has words; a prompt nobody can reach is dead text for the voice artist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ivr.flows import return_device, staff
from ivr.flows.common import REFUSAL_PROMPTS, refusal_words
from ivr.flows.keys import USED_KEYS
from ivr.prompts import catalogue
from ivr.prompts.timing import ONE_DEVICE, ONE_DEVICE_IMEI
from ivr.registry import lockout
from ivr.registry.store import utc_now
from ivr.registry.types import CodeCheck, Refusal
from tests.registry.support import transfer_direct

from .conftest import (
    BUYER,
    CODE,
    EMPTY,
    EMPTY_PIN,
    MANY,
    MANY_IMEIS,
    MANY_PIN,
    NO_PIN,
    PHONE,
    PHONE_BLOCKED,
    PHONE_NO_CODE,
    RETURNABLE,
    RETURNER,
    RETURNER_PIN,
    SELLER,
    SELLER_PIN,
    STRANGER,
    UNKNOWN,
    UNREGISTERED,
)

# Refusals the flows pre-empt by checking the entry first (the registry still refuses them, as a
# second line of defence), the prompts only the dialplan or the server plays (`busy`: above
# serve --max-calls, tests/call/test_load_shedding.py), and what only a race or a crash makes
# heard (tests/flows/test_transcripts.py, tests/flows/test_failures.py).
NOT_REACHABLE_BY_KEYS = {
    "refused_not_owner", "refused_not_registered", "invalid_code", "buyer_invalid",
    "service_unavailable", "busy", "system_error", "changed_meanwhile",
    "staff_busy",  # the dialplan's, when nobody of the staff queue answers (test_staff_queue.py)
    "hours_later",  # a lock longer than 90 minutes: the third in a row (test_transcripts.py)
}
NOT_LUHN = "1" * 15


def _days_later(days: int) -> type[datetime]:
    class Later(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return datetime.now(tz) + timedelta(days=days)
    return Later

NEW_CODE = "11112222"


async def test_every_used_prompt_is_heard_on_some_path(dial, registry, sms_codes, monkeypatch):
    heard: set[str] = set()

    async def call(caller: str | None, keys: str):
        result = await dial(keys, caller=caller)
        heard.update(result.heard)
        return result

    await call(SELLER, f"* 9 1 *#06# 12345 . {NOT_LUHN} {PHONE} 1 {UNREGISTERED} 1 {PHONE_BLOCKED} "
                       f"1 {UNKNOWN}")
    await call(SELLER, f"3 1 9999# {SELLER_PIN}# 1 87654321 {CODE} {SELLER} {BUYER} 2 "
                       f"3 2 01234567890 {SELLER} {SELLER_PIN}# 2")
    await call(BUYER, f"2 {PHONE_NO_CODE}")  # no code yet: refused right after the IMEI
    await call(SELLER, f"5 2 1 {SELLER_PIN}# 1 00000000 {NEW_CODE} 11113333 {NEW_CODE} "
                       f"{NEW_CODE}")
    generated = await call(SELLER, f"4 1 {SELLER_PIN}# 3 4 1 {SELLER_PIN}# 1 2 "
                                   f"4 1 {SELLER_PIN}# 2 1 2 5 1 1 {SELLER_PIN}#")
    code = generated.digits_after("code_is")
    await call(BUYER, f"2 {PHONE_NO_CODE} {code} 1 2 2 {PHONE_BLOCKED}")
    await call(SELLER, f"2 {PHONE}")  # already the caller's
    await call(NO_PIN, "5 1 1")
    await call(EMPTY, f"5 1 1 {EMPTY_PIN}#")
    await call(MANY, f"3 1 {MANY_PIN}# 0 0 1#")
    await call(SELLER, f"3 1 {SELLER_PIN}# 1 {NEW_CODE} {BUYER} 1")
    await call(BUYER, f"5 1 2 {SELLER} {SELLER_PIN}# 5 1 2 {MANY} {MANY_PIN}# 5 1 2 {EMPTY}")
    # lost or stolen (5 3), the buyer's rights (6), the 7-day return (5 4)
    await call(MANY, f"5 3 1 {MANY_PIN}# 1# 2 1 2 5 3 1 {MANY_PIN}# 2# 1 1 2 "
                     f"3 1 {MANY_PIN}# 1#")
    await call(STRANGER, f"1 {MANY_IMEIS[0]} 1 {MANY_IMEIS[1]} 6")
    await call(RETURNER, f"5 3 1 {RETURNER_PIN}# 1 1")
    [sale] = registry.portal.transfers(imei=RETURNABLE)
    await call(RETURNER, f"5 4 1 {RETURNER_PIN}# 0 1111111111 {sale.reference} 1")
    await call(RETURNER, f"5 4 1 {RETURNER_PIN}# {sale.reference}")  # asked already
    await call(MANY, f"5 4 2 {SELLER} {SELLER_PIN}# 1 000000 000001 000002")  # not the line
    await call(SELLER, f"5 4 1 {SELLER_PIN}# 1 1")
    await call(RETURNER, f"5 4 1 {RETURNER_PIN}# {sale.reference}")  # returned: moved on
    later = transfer_direct(registry, MANY, MANY_IMEIS[2], CODE, RETURNER).reference
    for days in (1, 3):  # the arrivals listed «yesterday», «3 days ago» (the flow's calendar)
        registry.store.clock = lambda days=days: utc_now() + timedelta(days=days)
        monkeypatch.setattr(return_device, "datetime", _days_later(days))
        await call(RETURNER, f"5 4 1 {RETURNER_PIN}# #")
    monkeypatch.setattr(return_device, "datetime", datetime)
    registry.store.clock = lambda: utc_now() + timedelta(days=8)
    await call(RETURNER, f"5 4 1 {RETURNER_PIN}# {later}")
    registry.store.clock = utc_now
    await call(None, f"2 3 {SELLER} 0000# 0000# 0000#")
    # the SMS code that proves the SIM: not taken by the gateway, the day's codes used up, SMS
    # not configured (wrong codes and a spent one: the return above)
    sms_codes.taken = False
    await call(STRANGER, f"4 2 {MANY} {MANY_PIN}# 4#")
    monkeypatch.setattr(lockout, "SIM_CODES_PER_DAY", 1)
    await call(STRANGER, f"4 2 {MANY} {MANY_PIN}# 4#")
    registry.sim_codes.sender = None
    await call(STRANGER, f"4 2 {MANY} {MANY_PIN}# 4#")
    # a kartabl of one device: asked about too (tests/flows/test_transcripts_keys.py)
    registry.portal.add_subscriber(ONE_DEVICE, password="3917")
    registry.portal.add_device(ONE_DEVICE_IMEI, owner=ONE_DEVICE, brand="Nokia", model="G42",
                               activation_code="52617384")
    await call(ONE_DEVICE, "3 1 3917# 2 #")
    # a person behind `0` (a staff queue configured): handed over; then outside the hours,
    # every day said (ivr.flows.staff)
    monkeypatch.setenv("HAMTA_CONFIG", "")
    monkeypatch.setenv("HAMTA_STAFF_QUEUE", "hamta-staff")
    monkeypatch.delenv("HAMTA_STAFF_WAIT", raising=False)
    monkeypatch.delenv("HAMTA_STAFF_HOURS", raising=False)
    await call(SELLER, "0")
    monkeypatch.setenv("HAMTA_STAFF_HOURS", "sat-sun 08:00-16:30, mon-tue 08:00-16:00, wed "
                                            "08:00-12:00, thu-fri 09:00-10:00")
    monkeypatch.setattr(staff, "now", lambda: datetime(2026, 12, 4, 20, 0, tzinfo=UTC))
    await call(SELLER, "0")
    missing = USED_KEYS - NOT_REACHABLE_BY_KEYS - heard
    assert not missing, f"never heard: {sorted(missing)}"
    # and the other way: what a call plays is declared used (`prompts check` notes the rest as
    # keys no flow plays, for the voice artist to skip)
    undeclared = (heard & set(catalogue.keys())) - USED_KEYS
    assert not undeclared, f"played but not in ivr.flows.keys.USED_KEYS: {sorted(undeclared)}"


def test_used_keys_are_all_in_the_catalogue():
    assert set(catalogue.keys()) >= USED_KEYS


def test_every_refusal_has_words():
    assert set(REFUSAL_PROMPTS) == set(Refusal)
    for refusal in Refusal:
        words = refusal_words(CodeCheck(refusal=refusal, attempts_left=1))
        assert all(catalogue.text(w) for w in words if isinstance(w, str))
