"""The SMS texts of the catalogue (`kind = "sms"`): Persian, UCS-2 within two segments with the
longest values substituted, never a secret, and a way out for an owner who did not make the
change."""

from __future__ import annotations

import re
import string

import pytest

from ivr.prompts import catalogue
from ivr.registry.outbox import SECRET_PARAMS, queue
from ivr.registry.sim_codes import PURPOSES
from ivr.sms.texts import MAX_CHARS, PERSIAN_DIGITS, UCS2_SEGMENT, render, segments

MESSAGES = catalogue.messages()
# the longest value each placeholder can take (a new placeholder must be added here)
LONGEST = {"imei": "350000000000014", "reference": "9" * 10, "number": "09999999999",
           "duration": "24 ساعت", "case": "9" * 10, "days": "7", "code": "9" * 6,
           "device": "Samsung Galaxy Z Fold5 Ultra"}  # an SMS inquiry's brand and model
# the one-time SMS codes (ivr.registry.sim_codes): the only texts that carry a secret, sent at
# once and never through the outbox
SIM_CODE_TEXTS = {key for key in MESSAGES if key.startswith("sms_sim_code_")}
# messages about a change the recipient may not have made say what to do then
WAY_OUT = re.compile(r"اگر .*(درگاه همتا|تلفن گویای همتا)")
TOLD_WHAT_TO_DO = {"sms_transfer_seller", "sms_activation_previous", "sms_code_generated",
                   "sms_code_changed", "sms_login_locked"}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_catalogue_has_the_receipts_the_registry_writes():
    assert TOLD_WHAT_TO_DO | {"sms_transfer_buyer", "sms_activation_buyer",
                              "sms_code_locked"} <= set(MESSAGES)
    assert not set(MESSAGES) & set(catalogue.entries())  # never built as audio


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_each_text_is_persian_and_fits_two_ucs2_segments(key):
    entry = MESSAGES[key]
    assert key.startswith("sms_") and entry.get("note")
    names = placeholders(entry["text"])
    assert names <= LONGEST.keys(), f"{key}: add the longest value of {names - LONGEST.keys()}"
    text = render(key, {name: LONGEST[name] for name in names})
    assert text.startswith("همتا:")
    assert not re.search(r"[0-9]", text), "digits are written as Persian digits"
    assert not re.search("[يك]", text), "Persian ی and ک, never the Arabic ones"
    assert len(text) <= MAX_CHARS and segments(text) <= 2, f"{key}: {len(text)} characters"
    text.encode("utf-16-be")  # UCS-2: every character in the Basic Multilingual Plane
    assert all(ord(c) < 0x10000 for c in text)


@pytest.mark.parametrize("key", sorted(set(MESSAGES) - SIM_CODE_TEXTS))
def test_no_receipt_names_a_secret(key):
    assert not placeholders(MESSAGES[key]["text"]) & SECRET_PARAMS


def test_each_sms_code_text_says_what_it_is_for_and_to_tell_no_one():
    assert {f"sms_sim_code_{purpose}" for purpose in PURPOSES} == SIM_CODE_TEXTS
    texts = [MESSAGES[key]["text"] for key in sorted(SIM_CODE_TEXTS)]
    assert all(placeholders(text) == {"code"} and "به هیچ‌کس نگویید" in text for text in texts)
    assert len({text.split("{code}")[1] for text in texts}) == len(texts)  # each its purpose


def test_the_outbox_never_takes_an_sms_code_text():
    with pytest.raises(ValueError, match="never"):
        queue(None, "+989121111111", "sms_sim_code_transfer", at=None)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", sorted(TOLD_WHAT_TO_DO))
def test_a_change_the_owner_may_not_have_made_says_what_to_do(key):
    assert WAY_OUT.search(MESSAGES[key]["text"]), key


def test_segments_count_ucs2_as_operators_bill_it():
    assert segments("ا" * UCS2_SEGMENT) == 1
    assert segments("ا" * (UCS2_SEGMENT + 1)) == 2
    assert segments("ا" * MAX_CHARS) == 2 and segments("ا" * (MAX_CHARS + 1)) == 3
    assert "0123456789".translate(PERSIAN_DIGITS) == "۰۱۲۳۴۵۶۷۸۹"
