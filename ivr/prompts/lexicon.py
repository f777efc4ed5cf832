"""How espeak-ng should say the words its Persian rules say wrongly (issue 21).

Both offline engines (the formant voice `fa` and MBROLA's `mb-ir1`) read through espeak-ng's
Persian rules, and `espeak-ng -v fa -x -q TEXT` prints the phonemes they would speak. Where those
are not what a Persian speaker says, the catalogue keeps the plain word (what a voice artist
reads and a screen shows) and the espeak engines are given a respelling instead: short vowels
written out, or phoneme input `[[…]]` where no spelling gets it right.
tests/prompts/test_pronunciation.py pins the phonemes of every entry.

The ezafe (the unwritten «-e» of «کلیدِ یک», «کدِ فعال‌سازی») is marked in the catalogue itself
with a kasra, as careful Persian writing does: espeak-ng says it, and a voice artist sees it.
After a final «ی» the ezafe is «-ye», which espeak-ng only says when the «ی» is doubled.
"""

from __future__ import annotations

import re

KASRA = "\u0650"  # «ِ», the ezafe mark
ZWNJ = "\u200c"

# word as the catalogue writes it -> what espeak-ng is given (espeak-ng 1.51's phonemes after #)
ESPEAK_WORDS: dict[str, str] = {
    "فعال‌سازی": "فَعال‌سازی",  # f'a:?_Al (a pause inside the word) -> fa?'Al
    "غیرفعال": "غیرفَعال",  # q1'ejRef,a:?_Al -> q1,iRafa?'Al
    "آیا": "[['AjA]]",  # 'Ai'A, three syllables -> 'AjA
    "رسید": "رَسید",  # R'esid -> R'asid («arrived», not «resid»)
    "رسیده": "رَسیده",  # R'esid,e: -> Ras'ide:
    "دسترسی": "دَستْرَسی",  # dast_R'esi (a pause) -> dastR'asi
    "پشت‌سرهم": "پشتِ سرِ هم",  # p'oSts'aR_ham (a pause) -> p'oSte s'aRe h'am
    "تغییر": "تَغْییر",  # t'aq1i:R (no /j/) -> t'aq1jiR
    "تغییری": "تَغْییری",
}

_WORD = re.compile(r"[^\s.،؛:؟!«»]+")
_YE_EZAFE = re.compile(f"ی{KASRA}(?=[\\s.،؛:؟!«»]|$)")


def espeak_text(text: str) -> str:
    """`text` as espeak-ng should be given it: ESPEAK_WORDS respelt (a word with an ezafe too),
    and an ezafe after a final «ی» written «ی‌یِ» so it is said «-ye»."""

    def respell(match: re.Match[str]) -> str:
        word = match.group()
        bare, ezafe = (word[:-1], KASRA) if word.endswith(KASRA) else (word, "")
        return ESPEAK_WORDS.get(bare, bare) + ezafe

    return _YE_EZAFE.sub(f"ی{ZWNJ}ی{KASRA}", _WORD.sub(respell, text))
