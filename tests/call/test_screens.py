"""The screen forms of the prompts (a text channel's: USSD) and how screens are built and paged:
every prompt a flow can play has a screen form or is declared voice-only; each fits a USSD
screen (160 octets: 80 characters in UCS-2); menus show their keys as numbered lines."""

from __future__ import annotations

import pytest

from ivr.call.api import DeviceName, Digits, Number, Question
from ivr.call.screens import (
    MORE_LINE,
    SCREEN_CHARS,
    compose,
    paginate,
    persian,
    reply_text,
    width,
)
from ivr.flows import questions
from ivr.flows.keys import USED_KEYS
from ivr.prompts import catalogue

SCREENS = catalogue.screens()
MENUS = {name: q for name, q in vars(questions).items() if isinstance(q, Question) and q.keys}


def test_every_prompt_a_flow_plays_has_a_screen_form_or_is_voice_only():
    missing = sorted(key for key in USED_KEYS if key not in SCREENS)
    assert missing == [], "give each a `screen = \"…\"` (or `voice_only = true`) in the catalogue"


def test_every_spoken_prompt_has_one_or_the_other_not_both():
    for key, entry in catalogue.entries().items():
        has_screen, voice_only = "screen" in entry, entry.get("voice_only") is True
        assert has_screen != voice_only, key


def test_voice_only_is_what_a_screen_has_no_use_for():
    voice_only = {key for key, screen in SCREENS.items() if screen is None}
    assert voice_only == {"no_input", "phone_code", "code_repeat_or_finish",
                          "service_unavailable", "staff_busy"}
    assert questions.REPEAT.voice_only  # «hear it again?»: the text stays on the screen


@pytest.mark.parametrize("key", sorted(k for k, s in SCREENS.items() if s))
def test_each_screen_form_fits_a_ussd_screen(key):
    screen = SCREENS[key]
    assert screen is not None
    assert width(screen) <= SCREEN_CHARS, f"{key}: {width(screen)} characters"
    assert all(ord(ch) < 0x10000 for ch in screen), "UCS-2: the Basic Multilingual Plane only"
    assert "ي" not in screen and "ك" not in screen


@pytest.mark.parametrize("name", sorted(MENUS))
def test_a_menu_screen_shows_its_keys_as_numbered_lines(name):
    question = MENUS[name]
    shown = compose(question.prompt)
    if name.startswith("MAIN_MENU_AGAIN"):  # the short menu: `*` shows the whole one
        shown = compose(question.star)
    if name in ("DEVICE", "DEVICE_LONG", "ONE_DEVICE", "RETURN_ARRIVAL"):  # the list numbers them
        return
    if question.voice_only:
        return
    lines = shown.split("\n")
    # `6`, the buyer's rights, is not in the main menu (as by voice): offered after each verdict
    for key in question.keys.replace("6", "") if name.startswith("MAIN") else question.keys:
        assert any(line.startswith(persian(key) + " ") for line in lines), (name, key, shown)


def test_the_first_screen_is_the_welcome_and_the_main_menu_on_one_page():
    first = compose(["welcome", *questions.MAIN_MENU.prompt])
    assert width(first) <= SCREEN_CHARS
    staff = compose(["welcome", *questions.MAIN_MENU_STAFF.prompt])
    assert len(paginate(staff)) <= 2


def test_values_show_as_persian_digits_and_names_inline():
    shown = compose(["imei_registered", DeviceName("Samsung", "Galaxy A54"), "rights_offer"])
    assert shown == "ثبت‌شده و قانونی: Samsung Galaxy A54\n۶ حقوق خریدار"
    shown = compose(["wrong_password", "attempts_left", Number(2), "attempts_left_end"])
    assert shown == "رمز نادرست است.\nتا ۲ بار دیگر می‌توانید بکوشید."
    shown = compose(["reference_is", Digits("1234567890", (3, 3, 4)), "is_end",
                     "main_menu_again"])
    assert shown.split("\n")[0] == "پیگیری: ۱۲۳ ۴۵۶ ۷۸۹۰"


def test_a_long_screen_is_paged_between_lines_each_page_within_the_limit():
    text = compose(["rights_inquire", "rights_transfer", "rights_return", "rights_deactivated",
                    "rights_free", "main_menu_again"])
    pages = paginate(text)
    assert len(pages) > 1
    assert all(width(page) <= SCREEN_CHARS for page in pages)
    assert all(page.endswith(MORE_LINE) for page in pages[:-1])
    # cut between lines, a line too long for what is left of a page between words
    assert " ".join(p.removesuffix(MORE_LINE) for p in pages).split() == text.split()


def test_a_line_longer_than_a_page_is_cut_between_words():
    text = " ".join(["کلمه"] * 60)
    pages = paginate(text)
    assert all(width(page) <= SCREEN_CHARS for page in pages)
    assert " ".join(p.removesuffix(MORE_LINE) for p in pages).split() == text.split()


@pytest.mark.parametrize(("typed", "entry"), [
    ("۳۵۰۰۰ ۰۰۰۰۰ ۰۰۰۱۴", "350000000000014"),  # Persian digits, spaces
    ("35000-00000-00014", "350000000000014"),  # dashes
    ("٣٥٠", "350"),  # Arabic-Indic digits
    (" 1 ", "1"),
    ("#", "#"),
])
def test_a_reply_is_read_as_an_entry(typed, entry):
    assert reply_text(typed) == entry
