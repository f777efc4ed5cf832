"""Device names (brand and model from the registry) as sounds: their file names and Persian words.

Names are generated ahead of the call by `prompts build` (for the (brand, model) pairs it is given:
the registry's and --device), never during it: a call says the name when its file exists and
otherwise falls back to the IMEI's last digits, so a new model in the registry never delays or
breaks a call.

Callers hear Latin brand names the way Iranians say them: a table of common brand and product
words in Persian script (Samsung «سامسونگ», iPhone «آیفون»), Latin letters by the names people
use for them (A54 «آ پنجاه و چهار»), numbers as Persian words. A word not in the table stays in
Latin letters; espeak-ng's Persian voice reads those with its English rules.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ivr.prompts.layout import DEVICE_FOLDER, PromptsError, sound_path, sounds_dir
from ivr.prompts.persian import DIGIT_WORDS, number_words

# Brand and product words, lower case -> how an Iranian caller says them.
WORDS = {
    "samsung": "سامسونگ", "galaxy": "گلکسی",
    "apple": "اپل", "iphone": "آیفون", "ipad": "آیپد",
    "xiaomi": "شیائومی", "redmi": "ردمی", "poco": "پوکو", "mi": "می",
    "huawei": "هوآوی", "nova": "نوا", "mate": "میت", "honor": "آنر", "magic": "مجیک",
    "nokia": "نوکیا", "motorola": "موتورولا", "moto": "موتو", "razr": "ریزر",
    "realme": "ریلمی", "narzo": "نارزو", "oppo": "اوپو", "reno": "رنو", "find": "فایند",
    "vivo": "ویوو", "sony": "سونی", "xperia": "اکسپریا",
    "google": "گوگل", "pixel": "پیکسل", "lg": "ال‌جی", "oneplus": "وان‌پلاس", "nord": "نورد",
    "tecno": "تکنو", "spark": "اسپارک", "camon": "کمن", "infinix": "اینفینیکس", "hot": "هات",
    "nothing": "ناتینگ", "phone": "فون", "smart": "اسمارت",
    "note": "نوت", "pro": "پرو", "max": "مکس", "plus": "پلاس", "mini": "مینی", "ultra": "اولترا",
    "lite": "لایت", "neo": "نئو", "prime": "پرایم", "power": "پاور", "play": "پلی",
    "edge": "اج", "fold": "فولد", "flip": "فلیپ", "tab": "تب", "pad": "پد",
    "5g": "فایوجی", "4g": "فورجی",
}
# Latin letters by the names Iranians use for them in model codes (A54, S23, X6, G21).
LETTERS = {
    "a": "آ", "b": "بی", "c": "سی", "d": "دی", "e": "ای", "f": "اف", "g": "جی", "h": "اچ",
    "i": "آی", "j": "جی", "k": "کی", "l": "ال", "m": "ام", "n": "ان", "o": "او", "p": "پی",
    "q": "کیو", "r": "آر", "s": "اس", "t": "تی", "u": "یو", "v": "وی", "w": "دبلیو",
    "x": "ایکس", "y": "وای", "z": "زد",
}
# A model that starts with one of these product lines is said without the brand before it:
# callers know an iPhone as «آیفون سیزده», not «اپل آیفون سیزده».
SAID_WITHOUT_BRAND = {"apple": {"iphone", "ipad"}}
SPELL_MAX = 3  # Latin words this short (or all capitals) are codes: spelled letter by letter


def device_slug(brand: str, model: str) -> str:
    """The file name of a device's name sound: `samsung-galaxy-a54` (ASCII, stable, no spaces).

    Case and punctuation do not matter ("Galaxy A54" = "galaxy-a54"); a name with letters outside
    ASCII (a brand stored in Persian script) gets a short hash so different names never collide.
    """
    full = f"{brand} {model}".replace("+", " plus ")
    ascii_text = unicodedata.normalize("NFKD", full).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].strip("-")
    lossy = any(ch.isalnum() and not ch.isascii()
                for ch in unicodedata.normalize("NFKD", full) if not unicodedata.combining(ch))
    if lossy or not slug:
        digest = hashlib.sha256(_normal(brand, model).encode()).hexdigest()[:10]
        slug = f"{slug}-{digest}" if slug else f"device-{digest}"
    return slug


def device_sound_name(brand: str, model: str) -> str:
    """The sound name Asterisk plays for a device's name: hamta/device/<slug>."""
    return f"{DEVICE_FOLDER}/{device_slug(brand, model)}"


def device_sound(brand: str, model: str, sounds: Path | None = None) -> str | None:
    """The name's sound, if `prompts build` made it (else None: say the IMEI's digits instead)."""
    name = device_sound_name(brand, model)
    return name if sound_path(sounds or sounds_dir(), name).is_file() else None


def spoken_name(brand: str, model: str) -> str:
    """The Persian words of a device name: Samsung, Galaxy A54 -> «سامسونگ گلکسی آ پنجاه و چهار»."""
    brand_tokens = _tokens(brand)
    model_tokens = _tokens(model)
    first = model_tokens[0].lower() if model_tokens else ""
    if first in SAID_WITHOUT_BRAND.get(brand.strip().lower(), set()) or (
        brand_tokens and [t.lower() for t in brand_tokens] == [
            t.lower() for t in model_tokens[: len(brand_tokens)]
        ]
    ):
        brand_tokens = []  # "Apple iPhone 13", "Xiaomi Xiaomi 13": the brand is said once
    words = [_say(token) for token in brand_tokens + model_tokens]
    return " ".join(w for w in words if w)


def _normal(brand: str, model: str) -> str:
    return " ".join(f"{brand} {model}".lower().split())


def _tokens(text: str) -> list[str]:
    """Words of a name, with letter/digit runs apart (A54 -> A, 54) and + as a word."""
    text = text.replace("+", " plus ")
    tokens: list[str] = []
    for word in re.split(r"[\s\-_/(),.]+", text):
        if not word:
            continue
        if word.lower() in WORDS:
            tokens.append(word)
        else:
            tokens += re.findall(r"[A-Za-z]+|[0-9]+|[^A-Za-z0-9]+", word)
    return tokens


def _say(token: str) -> str:
    low = token.lower()
    if low in WORDS:
        return WORDS[low]
    if token.isdigit():
        if len(token) <= 4 and not (len(token) > 1 and token.startswith("0")):
            return number_words(int(token))
        return " ".join(DIGIT_WORDS[int(d)] for d in token)  # a long code: digit by digit
    if token.isascii() and token.isalpha():
        if len(token) <= SPELL_MAX or (token.isupper() and len(token) <= 5):
            return " ".join(LETTERS[c] for c in low)
        return token  # unknown word: left in Latin letters for the engine to read
    return token  # already Persian (or other script): as stored


def distinct_names(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each (brand, model) once, trimmed and sorted; a pair without a brand or a model is skipped.

    The pairs come from the caller (`hamta-ivr prompts build` reads them from the registry and
    --device): this module never opens the registry.
    """
    return sorted({(b.strip(), m.strip()) for b, m in pairs if b.strip() and m.strip()})


def parse_device(value: str) -> tuple[str, str]:
    """--device "Samsung|Galaxy A54" -> ("Samsung", "Galaxy A54")."""
    brand, sep, model = value.partition("|")
    if not sep or not brand.strip() or not model.strip():
        raise PromptsError(
            f"--device {value!r} must be BRAND|MODEL, e.g. --device 'Samsung|Galaxy A54'"
        )
    return brand.strip(), model.strip()
