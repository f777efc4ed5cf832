"""What the engines actually say: the phonemes espeak-ng gives every digit and number word.

`espeak-ng -v VOICE -x -q TEXT` prints the phonemes it would speak. Both offline engines (the
formant voice `fa` and MBROLA's `mb-ir1`) read through espeak-ng's Persian rules, so one table
pins both: a digit said as another word (nine «نه» said «na», "no") fails here.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from ivr.prompts import catalogue
from ivr.prompts.build import digit_items, number_items
from ivr.prompts.engines import MbrolaEngine, mbrola_missing
from ivr.prompts.lexicon import ESPEAK_WORDS, espeak_text

from .conftest import need

# espeak-ng 1.51 (Debian 12). ' marks the stressed syllable, , a secondary stress.
PHONEMES = {
    "digits/0": "s'efR", "digits/1": "j'ek", "digits/2": "d'o", "digits/3": "s'e:",
    "digits/4": "tS'AhAR", "digits/5": "p'andZ", "digits/6": "S'eS", "digits/7": "h'aft",
    "digits/8": "h'aSt", "digits/9": "n'oh",  # nine «نُه», not «نه» n'a ("no")
    "hamta/num/0": "s'efR", "hamta/num/1": "j'ek", "hamta/num/2": "d'o", "hamta/num/3": "s'e:",
    "hamta/num/4": "tS'AhAR", "hamta/num/5": "p'andZ", "hamta/num/6": "S'eS",
    "hamta/num/7": "h'aft", "hamta/num/8": "h'aSt", "hamta/num/9": "n'oh",
    "hamta/num/10": "d'ah", "hamta/num/11": "j'Azdah", "hamta/num/12": "d'avAzd,ah",
    "hamta/num/13": "s'izdah", "hamta/num/14": "tS'AhARd,ah", "hamta/num/15": "p'Anzdah",
    "hamta/num/16": "S'Anzdah", "hamta/num/17": "h'efdah", "hamta/num/18": "h'edZdah",
    "hamta/num/19": "n'u:zdah", "hamta/num/20": "b'ist", "hamta/num/30": "s'i",
    "hamta/num/40": "tS'ehel", "hamta/num/50": "pandZ'Ah", "hamta/num/60": "S'ast",
    "hamta/num/70": "h'aftAd", "hamta/num/80": "h'aStAd", "hamta/num/90": "n'avad",
    "hamta/num/100": "s'ad", "hamta/num/200": "d'evist", "hamta/num/300": "s'isad",
    "hamta/num/400": "tSAh'ARsad", "hamta/num/500": "p'Ansad", "hamta/num/600": "S'eSsad",
    "hamta/num/700": "h'aftsad", "hamta/num/800": "h'aStsad", "hamta/num/900": "n'ohsad",
    "hamta/num/thousand": "h'ezAR", "hamta/num/million": "mil'ijun",
    "hamta/num/billion": "m'iljARd",
    "hamta/num/and": "'o",  # «و» inside a number is «o»; alone espeak would say v'a
}
ITEMS = {item.name: item for item in [*digit_items(), *number_items()]}


def voices() -> list[str]:
    """The formant voice, and MBROLA's when installed (test_engines.py fails CI without it)."""
    return ["fa", *([MbrolaEngine().voice] if mbrola_missing() is None else [])]


def phonemes(voice: str, text: str) -> str:
    done = subprocess.run(["espeak-ng", "-v", voice, "-x", "-q", text],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_table_covers_every_digit_and_number_word():
    assert set(PHONEMES) == set(ITEMS)


@pytest.mark.parametrize("voice", voices())
def test_every_digit_and_number_word_is_said_right(voice):
    need("espeak-ng")
    said = {name: phonemes(voice, item.spoken("espeak")) for name, item in ITEMS.items()}
    wrong = {name: (said[name], want) for name, want in PHONEMES.items() if said[name] != want}
    assert wrong == {}, "(said, wanted) per sound"


def test_unvowelled_nine_is_no():
    """Why nine carries its vowel: this is the homograph the builder must never send."""
    need("espeak-ng")
    assert phonemes("fa", "نه") == "n'a"
    assert "نه" not in {item.text for item in ITEMS.values()}


def test_no_catalogue_text_says_nine_as_no():
    bare_nine = re.compile(r"(?<![\w\u064f])نه(?![\w\u200c\u064f])")
    found = sorted(key for key, entry in catalogue.entries().items()
                   if bare_nine.search(entry["text"]))
    assert found == [], "write nine «نُه» (with its vowel): unvowelled «نه» is said «na», no"


# numbers said inside sentences, where a rule of the sentence could change them: (key, phonemes
# the sentence must contain) — the rights' seven and thirty days, the return's three, key six
IN_SENTENCES = [
    ("rights_offer", "kel'ide S'eS"), ("rights_return", "h'aft R'u:z"),
    ("rights_deactivated", "s'i R'u:z"), ("return_started", "s'e: R'u:z"),
    ("return_window_over", "h'aft R'u:z"), ("menu_more", "kel'ide p'andZ"),
]


@pytest.mark.parametrize("voice", voices())
@pytest.mark.parametrize(("key", "wanted"), IN_SENTENCES)
def test_numbers_inside_sentences_are_said_right(voice, key, wanted):
    need("espeak-ng")
    said = " ".join(phonemes(voice, espeak_text(catalogue.text(key))).split())
    assert wanted in said, said


# the words espeak-ng's rules say wrongly, as the lexicon has them said (ivr/prompts/lexicon.py)
WORDS = {
    "فعال‌سازی": "fa?'Als'Azi", "غیرفعال": "q1,iRafa?'Al", "آیا": "'AjA", "رسید": "R'asid",
    "رسیده": "Ras'ide:", "دسترسی": "dastR'asi", "پشت‌سرهم": "p'oSte s'aRe h'am",
    "تغییر": "t'aq1jiR", "تغییری": "taq1j'iRi",
}


def test_the_table_covers_the_lexicon():
    assert set(WORDS) == set(ESPEAK_WORDS)


@pytest.mark.parametrize("voice", voices())
def test_the_lexicon_words_are_said_right(voice):
    need("espeak-ng")
    said = {word: " ".join(phonemes(voice, espeak_text(word)).split()) for word in WORDS}
    assert {w: (said[w], want) for w, want in WORDS.items() if said[w] != want} == {}


@pytest.mark.parametrize("voice", voices())
def test_an_ezafe_is_said(voice):
    """The kasra of the catalogue is said «-e», and after a final «ی» «-ye»."""
    need("espeak-ng")
    said = phonemes(voice, espeak_text("کدِ فعال‌سازیِ دستگاه"))
    assert said.split()[:2] == ["k'ode", "fa?'Als'Azij'e"], said


@pytest.mark.parametrize("voice", voices())
def test_no_prompt_pauses_inside_a_word(voice):
    """espeak-ng says a glottal stop it cannot join as a pause (`_`) in the middle of the word:
    «فعال‌سازی» came out as «fa… al-sazi», two words to the caller. A new word that does it
    goes into the lexicon."""
    need("espeak-ng")
    broken = {}
    for key, entry in catalogue.entries().items():
        said = phonemes(voice, espeak_text(entry["text"]))
        if re.search(r"[^\s_]_[^\s_]", said):
            broken[key] = said
    assert broken == {}
