"""Device names: stable file names, how callers hear them, and where the names come from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.prompts.devices import (
    device_slug,
    device_sound,
    distinct_names,
    parse_device,
    spoken_name,
)
from ivr.prompts.layout import PromptsError

from .conftest import write_wav


@pytest.mark.parametrize(("brand", "model", "slug"), [
    ("Samsung", "Galaxy A54", "samsung-galaxy-a54"),
    ("samsung", "  galaxy   a54 ", "samsung-galaxy-a54"),
    ("Apple", "iPhone 13", "apple-iphone-13"),
    ("Samsung", "Galaxy S23+", "samsung-galaxy-s23-plus"),
    ("Xiaomi", "Redmi Note 12 (4G)", "xiaomi-redmi-note-12-4g"),
])
def test_slug(brand, model, slug):
    assert device_slug(brand, model) == slug


def test_slug_of_a_name_outside_ascii_is_safe_and_distinct():
    one = device_slug("سامسونگ", "گلکسی آ۵۴")
    two = device_slug("سامسونگ", "گلکسی آ۵۵")
    assert re.fullmatch(r"[a-z0-9-]+", one) and one != two
    assert one == device_slug("سامسونگ", "گلکسی آ۵۴")  # stable
    assert device_slug("Motorola", "Édge 40") == "motorola-edge-40"  # accents fold to ASCII


@pytest.mark.parametrize(("brand", "model", "words"), [
    ("Samsung", "Galaxy A54", "سامسونگ گلکسی آ پنجاه و چهار"),
    ("Samsung", "Galaxy S23+", "سامسونگ گلکسی اس بیست و سه پلاس"),
    ("Apple", "iPhone 13", "آیفون سیزده"),
    ("Apple", "iPhone 15 Pro Max", "آیفون پانزده پرو مکس"),
    ("Xiaomi", "Redmi Note 12", "شیائومی ردمی نوت دوازده"),
    ("Xiaomi", "Xiaomi 13", "شیائومی سیزده"),
    ("Huawei", "Nova 9", "هوآوی نوا نُه"),
    ("Nokia", "G21", "نوکیا جی بیست و یک"),
    ("Motorola", "Moto G54", "موتورولا موتو جی پنجاه و چهار"),
    ("Honor", "X7", "آنر ایکس هفت"),
    ("Realme", "C55", "ریلمی سی پنجاه و پنج"),
    ("Oppo", "Reno 8", "اوپو رنو هشت"),
    ("Vivo", "Y36", "ویوو وای سی و شش"),
    ("Sony", "Xperia 10 V", "سونی اکسپریا ده وی"),
    ("Google", "Pixel 8", "گوگل پیکسل هشت"),
    ("LG", "K62", "ال‌جی کی شصت و دو"),
    ("Nokia", "105 4G", "نوکیا صد و پنج فورجی"),
    ("Nokia", "3310", "نوکیا سه هزار و سیصد و ده"),
    ("Acme", "Phone 00123", "Acme فون صفر صفر یک دو سه"),
    ("Tecno", "Pova 5", "تکنو Pova پنج"),
])
def test_spoken_name(brand, model, words):
    assert spoken_name(brand, model) == words


def test_device_sound_only_when_built(out: Path, monkeypatch: pytest.MonkeyPatch):
    assert device_sound("Samsung", "Galaxy A54", out) is None
    write_wav(out / "fa" / "hamta" / "device" / "samsung-galaxy-a54.wav")
    assert device_sound("Samsung", "Galaxy A54", out) == "hamta/device/samsung-galaxy-a54"
    assert device_sound("Apple", "iPhone 13", out) is None
    monkeypatch.setenv("HAMTA_SOUNDS_DIR", str(out))  # the default place is the setting
    assert device_sound("SAMSUNG", "galaxy a54") == "hamta/device/samsung-galaxy-a54"


def test_parse_device():
    assert parse_device(" Samsung | Galaxy A54 ") == ("Samsung", "Galaxy A54")
    for bad in ["Samsung", "|A54", "Samsung|"]:
        with pytest.raises(PromptsError, match=r"BRAND\|MODEL"):
            parse_device(bad)


def test_distinct_names():
    pairs = [("Samsung", "Galaxy A54"), (" Samsung ", "Galaxy A54 "), ("Apple", "iPhone 13"),
             ("", "nameless"), ("Nokia", "  ")]
    assert distinct_names(pairs) == [("Apple", "iPhone 13"), ("Samsung", "Galaxy A54")]
