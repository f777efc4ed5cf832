"""Persian number grammar: «و» between parts, none between a count and its scale."""

from __future__ import annotations

import pytest

from ivr.prompts.persian import (
    AND,
    digit_sounds,
    number_files,
    number_sounds,
    number_words,
)

CASES = {
    0: "صفر",
    1: "یک",
    9: "نُه",
    10: "ده",
    11: "یازده",
    16: "شانزده",
    18: "هجده",
    19: "نوزده",
    20: "بیست",
    21: "بیست و یک",
    30: "سی",
    45: "چهل و پنج",
    60: "شصت",
    99: "نود و نُه",
    100: "صد",
    101: "صد و یک",
    105: "صد و پنج",
    110: "صد و ده",
    120: "صد و بیست",
    200: "دویست",
    300: "سیصد",
    305: "سیصد و پنج",
    500: "پانصد",
    999: "نهصد و نود و نُه",
    1000: "هزار",
    1001: "هزار و یک",
    1100: "هزار و صد",
    1234: "هزار و دویست و سی و چهار",
    2000: "دو هزار",
    2021: "دو هزار و بیست و یک",
    10000: "ده هزار",
    21000: "بیست و یک هزار",
    100000: "صد هزار",
    101000: "صد و یک هزار",
    120000: "صد و بیست هزار",
    999999: "نهصد و نود و نُه هزار و نهصد و نود و نُه",
    1000000: "یک میلیون",
    1001000: "یک میلیون و هزار",
    1000001: "یک میلیون و یک",
    2500000: "دو میلیون و پانصد هزار",
    1000000000: "یک میلیارد",
    1001000000: "یک میلیارد و یک میلیون",
    2000000000000: "دو هزار میلیارد",
}


@pytest.mark.parametrize(("n", "words"), CASES.items())
def test_number_words(n, words):
    assert number_words(n) == words


def test_files_say_the_words():
    sounds = number_sounds()
    for n in [*CASES, *range(0, 2100), 12345, 654321, 7_000_007]:
        files = number_files(n)
        assert all(f in sounds for f in files), f"{n}: every file it plays is built"
        assert " ".join(sounds[f] for f in files) == number_words(n), n


def test_file_naming_is_the_contract():
    assert number_files(21) == ["hamta/num/20", "hamta/num/and", "hamta/num/1"]
    assert number_files(2000) == ["hamta/num/2", "hamta/num/thousand"]
    assert number_files(1000) == ["hamta/num/thousand"]
    assert number_sounds()["hamta/num/and"] == AND == "و"
    assert len(number_sounds()) == 20 + 8 + 9 + 3 + 1


def test_no_thousand_is_one_thousand():
    assert all(not number_words(n).startswith("یک هزار") for n in range(1000, 2000))


def test_bad_numbers():
    assert number_words(-3) == "منفی سه"
    with pytest.raises(ValueError):
        number_files(-1)
    with pytest.raises(TypeError):
        number_words(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        number_files(True)


def test_digits_for_say_digits():
    digits = digit_sounds()
    assert list(digits) == [f"digits/{d}" for d in range(10)]
    assert digits["digits/0"] == "صفر" and digits["digits/9"] == "نُه"
