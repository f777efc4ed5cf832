"""The catalogue against the flows' keys, and the Persian a native speaker expects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.flows.keys import USED_KEYS
from ivr.prompts import catalogue
from ivr.prompts.lexicon import KASRA

ZWNJ = "\u200c"
LETTERS = set("ءآأؤئابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهی")
NON_JOINING = set("ءآأؤادذرزژو")  # letters that never join the next one: a ZWNJ after them is noise
# tanvin in «لطفاً», hamza above in «ۀ», damma in nine «نُه» (bare «نه» is "no"), kasra for the
# ezafe «کلیدِ یک» (ivr/prompts/lexicon.py)
MARKS = {"\u064b", "\u0654", "\u064f", KASRA}
PUNCTUATION = set(" .،؛:؟!«»")
ALLOWED = LETTERS | MARKS | PUNCTUATION | {ZWNJ}
KEY_NAMES = {"صفر": "0", "یک": "1", "دو": "2", "سه": "3", "چهار": "4", "پنج": "5", "شش": "6",
             "هفت": "7", "هشت": "8", "نُه": "9", "نه": "9", "ستاره": "*", "مربع": "#"}

ENTRIES = catalogue.entries()
TEXTS = {key: entry["text"] for key, entry in ENTRIES.items()}


def pressed(text: str) -> list[str]:
    """The keys a prompt tells the caller to press, in order: «کلید یک» -> "1"."""
    return [KEY_NAMES[w] for w in re.findall(r"کلیدِ? (\S+?)(?=[\s،؛.]|$)", text)]


def test_every_key_the_flows_play_is_in_the_catalogue():
    assert sorted(USED_KEYS - set(ENTRIES)) == []


def test_draft_keys_are_all_kept():
    # the keys the lead's draft defined; the call flows rely on them (add, never rename)
    draft = {
        "welcome", "main_menu", "invalid_choice", "invalid_entry", "no_input",
        "too_many_attempts", "goodbye", "service_unavailable", "system_error", "cancelled",
        "confirm_or_cancel", "whose_devices", "enter_other_number", "invalid_number",
        "no_caller_id", "no_caller_id_activate", "enter_password", "no_password",
        "wrong_password", "attempts_left", "locked", "try_again_after", "no_devices",
        "device_count", "device_number", "imei_ending", "choose_device", "choose_device_long",
        "list_end", "enter_imei", "imei_invalid", "imei_unknown", "imei_registered",
        "imei_unregistered", "imei_blocked", "enter_activation_code", "code_is",
        "code_generated", "code_repeat_or_finish", "enter_new_code", "repeat_new_code",
        "codes_mismatch", "code_changed", "change_code_advice", "activate_confirm",
        "activate_confirm_to", "activated", "enter_buyer_number", "transfer_confirm",
        "transfer_confirm_to", "transferred", "reference_is", "refused_blocked",
        "refused_not_registered", "refused_not_owner", "refused_no_code", "wrong_code",
        "invalid_code", "buyer_is_owner", "buyer_invalid", "changed_meanwhile",
    }
    assert draft <= set(ENTRIES)


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_entry_shape(key):
    entry = ENTRIES[key]
    assert re.fullmatch(r"[a-z][a-z0-9_]*", key), "keys name sound files: a-z, 0-9, _"
    assert entry["text"].strip() == entry["text"] != ""
    assert entry.get("note", "").strip(), "a note tells the voice artist where it is heard"
    assert "  " not in entry["text"]


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_text_is_persian_script(key):
    text = TEXTS[key]
    strange = sorted({ch for ch in text if ch not in ALLOWED})
    assert strange == [], f"{key}: not Persian script: {[f'U+{ord(c):04X}' for c in strange]}"
    assert not re.search(r"[0-9٠-٩۰-۹]", text), "numbers are spoken: words, not digits"
    assert "ي" not in text and "ك" not in text, "Persian ی and ک, not the Arabic letters"
    assert any(ch in LETTERS for ch in text)


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_half_spaces(key):
    text = TEXTS[key]
    assert ZWNJ * 2 not in text
    for match in re.finditer(ZWNJ, text):
        before = text[match.start() - 1] if match.start() else ""
        after = text[match.end()] if match.end() < len(text) else ""
        assert before in LETTERS and after in LETTERS, f"{key}: a ZWNJ must sit inside a word"
        assert before not in NON_JOINING, f"{key}: ZWNJ after «{before}», which never joins"
    # the common places a half-space belongs: the present prefix and plural/ezafe suffixes
    assert not re.search(r"(^|\s)(ن?می) ", text), f"{key}: «می‌» needs a half-space"
    assert not re.search(r"\S (ها|های|ی|ای|اید)(\s|[.،؛:]|$)", text), f"{key}: «‌ها»، «‌ی» …"


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_one_way_of_pressing_keys(key):
    text = TEXTS[key]
    assert "بفشارید" not in text and "بزنید" not in text
    if pressed(text):
        assert text.count("را فشار دهید") >= 1, f"{key}: «… را فشار دهید»"


@pytest.mark.parametrize(("key", "keys"), [
    ("main_menu", ["1", "2", "3", "4", "5"]),  # docs/callers.md: the keys a caller presses
    ("main_menu_again", ["*"]),
    ("menu_more", ["1", "2", "3", "4", "5"]),
    ("rights_offer", ["6"]),
    ("lost_or_stolen", ["1", "2"]),
    ("return_side", ["1", "2"]),
    ("choose_device_long_last", ["#", "0"]),
    ("confirm_or_cancel", ["1", "2"]),
    ("whose_devices", ["1", "2"]),
    ("code_repeat_or_finish", ["1", "2"]),
    ("enter_password", ["#"]),
    ("choose_device_long", ["#", "0"]),
])
def test_menu_digits_are_the_flows_digits(key, keys):
    assert pressed(TEXTS[key]) == keys


def test_main_menu_says_what_each_key_does():
    menu = TEXTS["main_menu"].replace(KASRA, "")
    order = ["استعلام", "فعال‌سازی", "انتقال مالکیت", "کد فعال‌سازی", "دستگاه‌های من"]
    positions = [menu.index(words) for words in order]
    assert positions == sorted(positions)


def test_a_key_is_named_with_its_ezafe():
    """«کلیدِ یک», not «کلید یک»: without the kasra espeak-ng says «kelid yek», which no Persian
    speaker says (the same holds for every ezafe; this one is in nearly every menu)."""
    bare = {key for key, text in TEXTS.items()
            if re.search(f"کلید (?:{'|'.join(KEY_NAMES)})(?=[\\s،؛.]|$)", text)}
    assert sorted(bare) == []


def test_no_sentence_ends_in_a_colon_before_a_lone_number():
    """Numbers sit inside sentences («تا دو بار دیگر …»), never after «…:» like a form."""
    assert [key for key, text in TEXTS.items() if text.endswith(":")] == []


def test_confirmation_questions_have_a_verb():
    for key in ("transfer_confirm_end", "activate_confirm_end", "report_confirm_lost_end",
                "report_confirm_stolen_end", "return_confirm_end", "return_take_back_end"):
        assert TEXTS[key].endswith("شود؟"), key


def test_polite_plural():
    for key, text in TEXTS.items():
        # singular imperatives («بکن»، «بزن»، «وارد کن.») would be rude on a government line
        assert not re.search(r"(^|\s)(بکن|کن|بده|بگیر|بزن)(\s|[.،؛]|$)", text), key


def test_load_reports_a_broken_entry(tmp_path: Path):
    bad = tmp_path / "catalogue.toml"
    bad.write_text('[welcome]\nnote = "no text"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"catalogue.toml: \[welcome\] needs a `text"):
        catalogue.load(bad)
    assert catalogue.load(Path(catalogue.__file__).with_name("catalogue.toml")) == ENTRIES


def test_sound_file_names_the_catalogue_on_a_missing_key():
    assert catalogue.sound_file("welcome") == "hamta/welcome"
    with pytest.raises(KeyError, match=r"catalogue\.toml"):
        catalogue.sound_file("no_such_prompt")
