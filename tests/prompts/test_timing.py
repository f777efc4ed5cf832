"""`prompts timing`: the speech time of each operation's main path, from the built audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.call.listening import listen_all
from ivr.cli import main
from ivr.prompts.build import build, plan
from ivr.prompts.engines import make_engine
from ivr.prompts.layout import PromptsError, sound_path
from ivr.prompts.timing import (
    OPERATIONS,
    CallSounds,
    Heard,
    Operation,
    main_path,
    measure,
    time_operations,
)

from .conftest import need, write_wav

MENU = Operation("menu", None, "", "main_menu", 15.0)
SHORT = {"hamta/welcome": 1.5, "hamta/main_menu": 4.0, "hamta/imei_registered": 2.0,
         "hamta/device/samsung-galaxy-a54": 1.0, "digits/1": 0.25, "hamta/enter_imei": 3.0}


def synthetic(out: Path, lengths: dict[str, float], default: float = 0.5) -> None:
    """Every sound the IVR plays as a tone of known length (0.5 s unless given)."""
    names = {item.name for item in plan(devices=[("Samsung", "Galaxy A54")])}
    for name in names | set(lengths):
        write_wav(sound_path(out, name), lengths.get(name, default))


def test_the_arithmetic_on_known_durations(out: Path):
    synthetic(out, SHORT)
    call = CallSounds([Heard("hamta/welcome"), Heard("hamta/main_menu"),
                       Heard("hamta/enter_imei"), Heard("hamta/imei_registered"),
                       Heard("hamta/device/samsung-galaxy-a54"), Heard("digits/1", 0.12),
                       Heard("digits/1", 0.12), Heard("digits/1"), Heard("hamta/main_menu")],
                      last_key_at=3)
    inquiry = Operation("inquiry", None, "1 …", "imei_registered", 10.0)
    timing = measure(inquiry, call, {n: s for n, s in SHORT.items()})
    # the verdict, the device name and the digits said right after it; not the menu again
    assert timing.sounds == 8
    assert timing.seconds == pytest.approx(1.5 + 4 + 3 + 2 + 1 + 3 * 0.25 + 2 * 0.12)
    assert timing.verdict == "OVER" and timing.budget == 10.0
    menu = measure(MENU, CallSounds(call.heard[:2], 0), SHORT)
    assert (menu.seconds, menu.sounds, menu.verdict) == (5.5, 2, "PASS")
    with pytest.raises(PromptsError, match=r"never played 'list_end'.*played imei_registered"):
        main_path(call, "list_end")


def test_real_calls_on_a_synthetic_sounds_dir(out: Path, capsys: pytest.CaptureFixture[str]):
    synthetic(out, {"hamta/welcome": 1.25, "hamta/main_menu": 2.0})
    timings = {t.operation: t for t in time_operations(listen_all(out), out)}
    assert list(timings) == [op.name for op in OPERATIONS]
    assert (timings["main menu"].seconds, timings["main menu"].sounds) == (3.25, 2)
    inquiry = timings["inquiry, registered device"]  # every other sound lasts 0.5 s
    assert inquiry.sounds >= 4
    assert inquiry.seconds == pytest.approx(3.25 + 0.5 * (inquiry.sounds - 2))
    for t in timings.values():
        assert t.sounds >= 2 and t.seconds >= 3.25

    assert main(["prompts", "timing", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [o["operation"] for o in data["operations"]] == list(timings)
    assert data["operations"][0] == {"operation": "main menu", "seconds": 3.25, "sounds": 2,
                                     "budget": 15.0, "verdict": "PASS"}
    assert main(["prompts", "timing", "--out", str(out), "--sounds"]) == 0
    printed = capsys.readouterr().out
    assert "| main menu " in printed and "PASS" in printed and "1.25 s  hamta/welcome" in printed


def test_missing_audio_says_to_build(out: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["prompts", "timing", "--out", str(out)]) == 2
    assert "prompts build" in capsys.readouterr().err


def test_budgets_on_the_default_voice(out: Path):
    need("espeak-ng", "sox")
    build(plan(devices=[("Samsung", "Galaxy A54"), ("Xiaomi", "Redmi Note 12"),
                        ("Apple", "iPhone 13")]), out, make_engine())
    timings = time_operations(listen_all(out), out)
    over = {t.operation: round(t.seconds, 1) for t in timings if t.verdict == "OVER"}
    assert over == {}
