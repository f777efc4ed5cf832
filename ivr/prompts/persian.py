"""Persian numbers: words with Persian grammar for counts, and the sound files that speak them.

Homographs: written without short vowels, nine «نه» (noh) is the word for "no" «نه» (na), and
espeak-ng says "na" (`espeak-ng -v fa -x -q نه` prints n'a). Nine is therefore written with its
vowel, «نُه» (n'oh), the spelling a careful Persian text uses where it could be misread; every
engine (espeak-ng, MBROLA, gTTS) and every reader gets it right. Every other digit and number
word below was checked against what espeak-ng says (tests/prompts/test_pronunciation.py pins the
phonemes): only «و» needs help, read alone as the formal «va» where a number says «o»
(build.ESPEAK_PRONUNCIATION).
"""

from __future__ import annotations

from ivr.prompts.catalogue import SOUND_FOLDER

_ONES = ["صفر", "یک", "دو", "سه", "چهار", "پنج", "شش", "هفت", "هشت", "نُه", "ده", "یازده",
         "دوازده", "سیزده", "چهارده", "پانزده", "شانزده", "هفده", "هجده", "نوزده"]
_TENS = {20: "بیست", 30: "سی", 40: "چهل", 50: "پنجاه", 60: "شصت", 70: "هفتاد", 80: "هشتاد",
         90: "نود"}
_HUNDREDS = {100: "صد", 200: "دویست", 300: "سیصد", 400: "چهارصد", 500: "پانصد", 600: "ششصد",
             700: "هفتصد", 800: "هشتصد", 900: "نهصد"}
_SCALES = [(1_000_000_000, "billion", "میلیارد"), (1_000_000, "million", "میلیون"),
           (1000, "thousand", "هزار")]
AND = "و"
AND_NAME = "and"  # the sound file of «و»: hamta/num/and
NUMBER_FOLDER = f"{SOUND_FOLDER}/num"
DIGITS_FOLDER = "digits"  # Asterisk's SAY DIGITS plays <language>/digits/<d>
NINE = "نُه"  # with its vowel (damma): unvowelled «نه» is "no", see the module docstring
DIGIT_WORDS = tuple(_ONES[:10])  # «صفر» … «نُه», as IMEIs and phone numbers are read


def _tokens(n: int) -> list[int | str]:
    """What n is said as, in order: atoms (0-19, tens, hundreds), scale names and "and".

    Persian puts «و» between the parts of a number (21 «بیست و یک», 105 «صد و پنج») but not
    between a count and the scale it multiplies (2000 «دو هزار», 21000 «بیست و یک هزار»); a
    thousand alone is «هزار», never «یک هزار», while a million is «یک میلیون».
    """
    if n < 20:
        return [n]
    if n < 100:
        tens, ones = divmod(n, 10)
        tail: list[int | str] = [AND_NAME, ones] if ones else []
        return [tens * 10, *tail]
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [hundreds * 100, *([AND_NAME, *_tokens(rest)] if rest else [])]
    for size, name, _ in _SCALES:
        if n >= size:
            count, rest = divmod(n, size)
            head = [name] if (count == 1 and size == 1000) else [*_tokens(count), name]
            return head + ([AND_NAME, *_tokens(rest)] if rest else [])
    raise AssertionError(n)


def _word(part: int | str) -> str:
    if part == AND_NAME:
        return AND
    if isinstance(part, str):
        return next(w for _, name, w in _SCALES if name == part)
    if part < 20:
        return _ONES[part]
    return _TENS.get(part) or _HUNDREDS[part]


def number_words(n: int) -> str:
    """21 -> «بیست و یک», 105 -> «صد و پنج», 2000 -> «دو هزار», 1000 -> «هزار»."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"a count must be an int, not {n!r}")
    if n < 0:
        return "منفی " + number_words(-n)
    return " ".join(_word(t) for t in _tokens(n))


def number_files(n: int) -> list[str]:
    """The sound files that say n, in order: hamta/num/<atom or scale> and hamta/num/and."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"a count must be an int, not {n!r}")
    if n < 0:
        raise ValueError("the IVR never says a negative number")
    return [f"{NUMBER_FOLDER}/{t}" for t in _tokens(n)]


def number_sounds() -> dict[str, str]:
    """Every number sound file the IVR may play -> its Persian words (for the audio builder)."""
    atoms = [*range(20), *_TENS, *_HUNDREDS]
    sounds = {f"{NUMBER_FOLDER}/{a}": _word(a) for a in atoms}
    sounds.update({f"{NUMBER_FOLDER}/{name}": word for _, name, word in _SCALES})
    sounds[f"{NUMBER_FOLDER}/{AND_NAME}"] = AND
    return sounds


def digit_sounds() -> dict[str, str]:
    """digits/0 … digits/9 -> their words: what Asterisk's SAY DIGITS plays for language fa."""
    return {f"{DIGITS_FOLDER}/{d}": word for d, word in enumerate(DIGIT_WORDS)}
