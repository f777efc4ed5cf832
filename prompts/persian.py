"""Persian numbers: words with Persian grammar for counts, and the sound files that speak them."""

from __future__ import annotations

from ivr.prompts.catalogue import SOUND_FOLDER

_ONES = ["صفر", "یک", "دو", "سه", "چهار", "پنج", "شش", "هفت", "هشت", "نه", "ده", "یازده",
         "دوازده", "سیزده", "چهارده", "پانزده", "شانزده", "هفده", "هجده", "نوزده"]
_TENS = {20: "بیست", 30: "سی", 40: "چهل", 50: "پنجاه", 60: "شصت", 70: "هفتاد", 80: "هشتاد",
         90: "نود"}
_HUNDREDS = {100: "صد", 200: "دویست", 300: "سیصد", 400: "چهارصد", 500: "پانصد", 600: "ششصد",
             700: "هفتصد", 800: "هشتصد", 900: "نهصد"}
_SCALES = [(1_000_000_000, "billion", "میلیارد"), (1_000_000, "million", "میلیون"),
           (1000, "thousand", "هزار")]
AND = "و"
NUMBER_FOLDER = f"{SOUND_FOLDER}/num"


def _parts(n: int) -> list[int | str]:
    """The spoken parts of n: atoms (0-19, tens, hundreds) and scale names, without the «و»."""
    if n < 20:
        return [n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [tens * 10] + ([ones] if ones else [])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return [hundreds * 100] + (_parts(rest) if rest else [])
    for size, name, _ in _SCALES:
        if n >= size:
            count, rest = divmod(n, size)
            head = [name] if (count == 1 and size == 1000) else [*_parts(count), name]
            return head + (_parts(rest) if rest else [])
    raise AssertionError(n)


def _groups(n: int) -> list[list[int | str]]:
    """Parts grouped where Persian puts «و» between them (21 -> [[20], [1]])."""
    groups: list[list[int | str]] = []
    for part in _parts(n):
        if isinstance(part, str) and groups:
            groups[-1].append(part)  # a scale word joins the group it multiplies: «دو هزار»
        else:
            groups.append([part])
    return groups


def _word(part: int | str) -> str:
    if isinstance(part, str):
        return next(w for _, name, w in _SCALES if name == part)
    if part < 20:
        return _ONES[part]
    return _TENS.get(part) or _HUNDREDS[part]


def number_words(n: int) -> str:
    """21 -> «بیست و یک», 105 -> «صد و پنج», 2000 -> «دو هزار»."""
    if n < 0:
        return "منفی " + number_words(-n)
    return f" {AND} ".join(" ".join(_word(p) for p in group) for group in _groups(n))


def number_files(n: int) -> list[str]:
    """The sound files that say n, in order: hamta/num/<atom or scale> and hamta/num/and."""
    if n < 0:
        raise ValueError("the IVR never says a negative number")
    files: list[str] = []
    for i, group in enumerate(_groups(n)):
        if i:
            files.append(f"{NUMBER_FOLDER}/and")
        files += [f"{NUMBER_FOLDER}/{p}" for p in group]
    return files


def number_sounds() -> dict[str, str]:
    """Every number sound file the IVR may play -> its Persian words (for the audio builder)."""
    atoms = [*range(20), *_TENS, *_HUNDREDS]
    sounds = {f"{NUMBER_FOLDER}/{a}": _word(a) for a in atoms}
    sounds.update({f"{NUMBER_FOLDER}/{name}": word for _, name, word in _SCALES})
    sounds[f"{NUMBER_FOLDER}/and"] = AND
    return sounds
