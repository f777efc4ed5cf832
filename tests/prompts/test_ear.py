"""The ear (ivr/prompts/ear.py): an offline recogniser's verdict on what a caller hears.

The tests marked `ear` run Whisper base (faster-whisper, the dev extra) on digit files and menus
built here with the default voice: skipped with the reason when the recogniser is not installed,
failed with CI=true (the dev extra installs it). The others check the scoring with a stand-in
recogniser and need nothing.
"""

from __future__ import annotations

import io
import json
import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.call.listening import listen_all
from ivr.cli import main
from ivr.prompts import catalogue, ear
from ivr.prompts.build import build, catalogue_items, digit_items, plan, save_manifest
from ivr.prompts.engines import make_engine, mbrola_missing
from ivr.prompts.layout import PromptsError, sound_path
from ivr.prompts.timing import CallSounds
from ivr.prompts.timing import Heard as Played

from .conftest import in_ci, need, write_wav

# Read-backs heard in CI: every digit once (a mobile number) and an activation code; the long
# runs of one digit (the demo's IMEI) make the recogniser loop, which costs seconds: not here.
CI_READ_BACKS = (("mobile", "09123456789", (4, 3, 4)), ("code", "86427531", (4, 4)))
# What MBROLA ir1 at 8 kHz must keep (measured: 8 of 10 digit files identified by their nearest
# digit word, 58 % of these read-backs' digits heard wrong; a margin for the recogniser's own
# wobble, which moves a read-back's figure by several points between near-identical audio). The
# formant voice is not held to it: at 8 kHz the recogniser identifies 2 of its 10 digits and none
# of a read-back, so it could not tell a swapped file either. Issue 21 asked for these to be
# raised to what tuning the digits reached; no variant beat the voice as built (docs/speech.md,
# "Digits and read-backs"), so they stay where the measurement puts them.
LEAST_IDENTIFIED = 7
MOST_WRONG = 0.75
# The menus' capped mean CER: MBROLA ir1 40.5 % (2026-12-05), the formant voice 69.7 %.
MOST_MENU_CER = 0.55


def need_ear() -> None:
    """The recogniser, and MBROLA's voice (the default one, whose digits it can tell apart)."""
    why = ear.available() or (
        None if mbrola_missing() is None
        else f"the ear's figures are MBROLA ir1's, and {mbrola_missing()}")
    if why is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but the ear cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The ten digit files, built with the default voice; (sounds dir, engine name)."""
    need("espeak-ng", "sox")
    out = tmp_path_factory.mktemp("ear") / "sounds"
    engine = make_engine(None)
    build(digit_items(), out, engine)
    return out, engine.name


def swapped(sounds: Path, dest: Path, a: int, b: int) -> Path:
    shutil.copytree(sounds, dest)
    first, second = (sound_path(dest, f"digits/{d}") for d in (a, b))
    tmp = first.with_suffix(".tmp")
    first.rename(tmp)
    second.rename(first)
    tmp.rename(second)
    return dest


# --- with the recogniser ------------------------------------------------------------------------
@pytest.mark.ear
def test_the_digits_and_read_backs_are_understood(digits_dir: tuple[Path, str]):
    need_ear()
    sounds, _ = digits_dir
    report = ear.listen(sounds, ear.whisper(), [ear.DIGITS, ear.READ_BACK],
                        read_backs=CI_READ_BACKS)
    problems = ear.digit_problems(report, LEAST_IDENTIFIED, MOST_WRONG)
    assert problems == [], report.render()


@pytest.mark.ear
def test_the_menus_are_understood(tmp_path: Path):
    """The menus built with the default voice, heard within MOST_MENU_CER; the same transcripts
    scored against another menu's words fail the bound (it can tell a menu from another)."""
    need_ear()
    entries = {key: entry for key, entry in catalogue.entries().items()
               if not key.startswith("sms_") and ear.group_of(entry["text"]) == ear.MENUS}
    out = tmp_path / "sounds"
    build(catalogue_items(entries), out, make_engine(None))
    transcribe = ear.whisper()
    report = ear.listen(out, transcribe, [ear.MENUS], entries=entries)
    figures = report.group_figures(ear.MENUS)
    assert figures["sounds"] == len(entries) >= 10
    assert figures["cer_capped_mean"] <= MOST_MENU_CER, report.render()
    keys = list(entries)
    shifted = {key: {"text": entries[keys[(n + 1) % len(keys)]]["text"]}
               for n, key in enumerate(keys)}  # each sound scored against the next menu's words
    wrong = ear.listen(out, transcribe, [ear.MENUS], entries=shifted)  # transcripts are cached
    assert wrong.group_figures(ear.MENUS)["cer_capped_mean"] > MOST_MENU_CER, wrong.render()


@pytest.mark.ear
def test_a_swapped_digit_file_is_caught(digits_dir: tuple[Path, str], tmp_path: Path):
    """digits/3 and digits/5 exchanged: the ear must say which files sound like another digit."""
    need_ear()
    sounds, _ = digits_dir
    bad = swapped(sounds, tmp_path / "swapped", 3, 5)
    report = ear.listen(bad, ear.whisper(), [ear.DIGITS, ear.READ_BACK],
                        read_backs=CI_READ_BACKS)
    problems = ear.digit_problems(report, LEAST_IDENTIFIED, MOST_WRONG)
    assert any(p.startswith(("digits/3 sounds like", "digits/5 sounds like"))
               for p in problems), report.render()


# --- the scoring, with a stand-in recogniser ------------------------------------------------------
def test_letters_are_normalised_as_the_issue_says():
    assert ear.normalise("نُه") == "نه"
    assert ear.normalise("شماره‌ی همراه، لطفاً!") == "شمارهیهمراهلطفا"
    assert ear.normalise("كي") == ear.normalise("کی") == "کی"
    assert ear.normalise("۳ 5") == "سهپنج"  # a numeral is its digit word
    assert ear.cer("سه", "سی") == 0.5
    assert ear.cer("یک", "یک یک یک یک") == 3.0  # uncapped; the report also caps at 1


def test_a_transcript_names_its_nearest_digit():
    assert ear.nearest_digit("سی") == 3
    assert ear.nearest_digit("شیش") == 6
    assert ear.nearest_digit("پنج") == 5
    assert ear.nearest_digit("حشت") == 8  # ح and ه are one sound to a listener
    assert ear.nearest_digit("یک یک یک یک یک") is None  # a loop identifies nothing
    assert ear.sound_alike("صفر حشت") == "سفرهشت"
    assert ear.nearest_digit("") is None  # every digit word is as far: a tie
    assert ear.heard_digits("صفر نو یک دو، ۳ سلام") == "0?123?"


def test_prompt_groups():
    assert ear.group_of("برای تأیید کلید یک و برای انصراف کلید دو را فشار دهید.") == ear.MENUS
    assert ear.group_of("شماره‌ی همراه یازده‌رقمی را وارد کنید.") == ear.QUESTIONS
    assert ear.group_of("مهلت هفت روز است.") == ear.NUMBERS
    assert ear.group_of("با گزینه‌ی یکِ همین سامانه") == ear.NUMBERS  # an ezafe's kasra
    assert ear.group_of("به همتا خوش آمدید.") == ear.STATEMENTS


def test_read_back_pauses_like_the_channel(digits_dir: tuple[Path, str]):
    from ivr.call.api import GROUP_PAUSE

    assert ear.GROUP_PAUSE == GROUP_PAUSE
    sounds, _ = digits_dir

    def seconds(wav: bytes) -> float:
        with wave.open(io.BytesIO(wav)) as w:
            return w.getnframes() / w.getframerate()

    files = sum(seconds(sound_path(sounds, f"digits/{d}").read_bytes()) for d in "0912345")
    said = seconds(ear.read_back(sounds, "0912345", (4, 3)))
    assert said == pytest.approx(files + GROUP_PAUSE, abs=0.002)


def by_bytes(sounds: Path) -> Callable[[bytes], str]:
    """A recogniser that hears each built digit file right, and a read-back digit by digit."""
    words = {sound_path(sounds, f"digits/{d}").read_bytes(): w
             for d, w in enumerate(ear.DIGIT_WORDS)}
    frames = {ear.read_frames(sound_path(sounds, f"digits/{d}"))[0]: w
              for d, w in enumerate(ear.DIGIT_WORDS)}

    def transcribe(wav: bytes) -> str:
        if wav in words:
            return words[wav]
        with wave.open(io.BytesIO(wav)) as w:
            data = w.readframes(w.getnframes())
        out = []
        while data:
            data = data.lstrip(b"\0")
            match = next((f for f in frames if data.startswith(f.lstrip(b"\0"))), None)
            if match is None:
                break
            out.append(frames[match])
            data = data[len(match.lstrip(b"\0")):]
        return " ".join(out)

    return transcribe


def test_the_swap_check_itself(digits_dir: tuple[Path, str], tmp_path: Path):
    """With a recogniser that hears every file as the word it says, a good set passes and a
    swapped one names both files (what the `ear` tests rely on, without Whisper)."""
    sounds, _ = digits_dir
    hear = by_bytes(sounds)
    good = ear.listen(sounds, hear, [ear.DIGITS, ear.READ_BACK], read_backs=CI_READ_BACKS)
    assert ear.digit_problems(good, 10, 0.0) == []
    assert good.group_figures(ear.DIGITS)["recognised"] == 10
    bad = ear.listen(swapped(sounds, tmp_path / "swapped", 3, 5), hear,
                     [ear.DIGITS, ear.READ_BACK], read_backs=CI_READ_BACKS)
    problems = ear.digit_problems(bad, 10, 0.0)
    assert [p.split(":")[0] for p in problems[:2]] == ["digits/3 sounds like 5 (پنج)",
                                                       "digits/5 sounds like 3 (سه)"]
    assert any("read back are heard wrong" in p for p in problems)


def test_the_command_writes_a_json_report(digits_dir: tuple[Path, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]):
    sounds, _ = digits_dir
    monkeypatch.setattr(ear, "whisper", lambda threads=2: by_bytes(sounds))
    report = tmp_path / "ear.json"
    assert main(["prompts", "ear", "--out", str(sounds), "--group", "digits",
                 "--json", str(report)]) == 0
    assert "digits alone: 10 sounds, CER 0.0%" in capsys.readouterr().out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["groups"]["digits alone"]["recognised"] == 10
    assert data["floor"]["cer_8k"] == 0.295 and data["settings"]["beam_size"] == 5
    assert [h["name"] for h in data["heard"]] == [f"digits/{d}" for d in range(10)]


def test_digits_built_fresh_at_another_rate(tmp_path: Path):
    """The wideband comparison: the ten digits made like the build, at 16 kHz, elsewhere."""
    need("espeak-ng", "sox")
    sounds = ear.build_digits(tmp_path / "wide", make_engine("espeak"), 16000)
    for d in range(10):
        with wave.open(str(sound_path(sounds, f"digits/{d}"))) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
    assert ear.voice_of(sounds).endswith("rate=16000")
    assert sorted(p.name for p in (sounds / "fa" / "digits").iterdir()) == [
        f"{d}.wav" for d in range(10)]  # no synthesiser output left behind


def test_the_command_hears_fresh_digits(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]):
    need("espeak-ng", "sox")
    monkeypatch.setattr(ear, "whisper", lambda threads=2: lambda wav: "دو")
    assert main(["prompts", "ear", "--digits-rate", "16000", "--engine", "espeak"]) == 0
    out = capsys.readouterr().out
    assert "digits alone: 10 sounds" in out and "recognised 1/10" in out
    assert "menus" not in out  # only the digits and the read-backs
    assert main(["prompts", "ear", "--engine", "espeak"]) == 2  # --engine needs --digits-rate


# --- the operations' paths, as heard --------------------------------------------------------------
def test_a_call_is_cut_where_the_ivr_waits_for_a_key():
    call = CallSounds([Played("hamta/welcome"), Played("hamta/main_menu"),
                       Played("hamta/enter_imei"), Played("digits/1", 0.2), Played("digits/2")],
                      waits=[2, 3])
    assert [[p.name for p in u] for u in ear.utterances(call)] == [
        ["hamta/welcome", "hamta/main_menu"], ["hamta/enter_imei"], ["digits/1", "digits/2"]]
    assert ear.utterances(CallSounds([Played("hamta/welcome")], waits=[0, 1])) == [
        [Played("hamta/welcome")]]


def test_the_paths_are_heard_as_stretches_with_their_words(tmp_path: Path):
    sounds = tmp_path / "sounds"
    lengths = {"hamta/transfer_confirm": 1.0, "digits/3": 0.5, "hamta/transfer_confirm_end": 0.75}
    for name, seconds in lengths.items():
        write_wav(sound_path(sounds, name), seconds)
    texts = {"hamta/transfer_confirm": "آیا مالکیتِ شناسه‌ی", "digits/3": "سه",
             "hamta/transfer_confirm_end": "منتقل شود؟"}
    save_manifest(sounds, {name: {"kind": "x", "text": text} for name, text in texts.items()})
    call = CallSounds([Played("hamta/transfer_confirm"), Played("digits/3", 0.2),
                       Played("hamta/transfer_confirm_end")], waits=[3])
    durations: list[float] = []

    def transcribe(wav: bytes) -> str:
        with wave.open(io.BytesIO(wav)) as w:
            durations.append(w.getnframes() / w.getframerate())
        return "آیا مالکیت شناسه سه منتقل شود"

    report = ear.listen(sounds, transcribe, [ear.PATHS],
                        paths={"transfer": call, "the same again": call})
    [heard] = report.heard  # a stretch heard on two paths is heard once
    assert (heard.name, heard.group) == ("transfer #1", ear.PATHS)
    assert heard.text == "آیا مالکیتِ شناسه‌ی سه منتقل شود؟"
    assert heard.cer == pytest.approx(1 / 25)  # the «ی» of «شناسه‌ی» unheard
    assert durations == [pytest.approx(1.0 + 0.5 + 0.2 + 0.75)]  # the group pause is heard
    assert report.as_dict()["groups"][ear.PATHS]["sounds"] == 1  # type: ignore[index]
    assert "all prompts" not in report.as_dict()["groups"]  # type: ignore[operator]

    save_manifest(sounds, {})
    with pytest.raises(PromptsError, match="no text in the build's manifest"):
        ear.listen(sounds, transcribe, [ear.PATHS], paths={"transfer": call})


def test_a_listening_call_marks_where_the_ivr_waits(tmp_path: Path):
    """The console calls the paths group hears: every operation waits for a key after its
    menu, and the main menu call is cut after the welcome and menu."""
    names = {item.name for item in plan(devices=[("Samsung", "Galaxy A54")])}
    for name in names:
        write_wav(sound_path(tmp_path, name), 0.5)
    calls = listen_all(tmp_path)
    main_menu = calls["main menu"]
    assert [p.name for p in main_menu.heard[:main_menu.waits[0]]] == [
        "hamta/welcome", "hamta/main_menu"]
    for name, call in calls.items():
        assert call.waits and call.waits == sorted(set(call.waits)), name
        assert all(ear.utterances(call)), name


def test_the_wideband_copy_is_heard_at_16_khz(tmp_path: Path):
    """--wideband: the .sln16 copy a G.722 call hears, beside the 8 kHz .wav."""
    write_wav(sound_path(tmp_path, "digits/3"), 0.5)
    with pytest.raises(PromptsError, match=r"digits/3\.sln16 is missing; run `hamta-ivr prompts"):
        ear.sound_frames(tmp_path, "digits/3", wide=True)
    sound_path(tmp_path, "digits/3").with_suffix(".sln16").write_bytes(b"\x01\x00" * 16000)
    frames, params = ear.sound_frames(tmp_path, "digits/3", wide=True)
    assert (len(frames), params.framerate, params.nchannels, params.sampwidth) == (32000, 16000,
                                                                                   1, 2)
    with wave.open(io.BytesIO(ear.to_wav(frames, params))) as heard:
        assert heard.getnframes() / heard.getframerate() == 1.0
    assert ear.sound_frames(tmp_path, "digits/3")[1].framerate == 8000
