"""The behaviour every channel shares, driven by a fake phone that can press keys during prompts
and pause between keys."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ivr.call.api import (
    Answer,
    Call,
    CallerHungUp,
    Digits,
    Number,
    Sound,
    Status,
    entry,
    menu,
)


@dataclass
class FakePhone(Call):
    """`events`: what the caller does, in order — a key ("1"), a pause ("~", longer than any
    timeout), a key pressed during the next prompt ("!1"), or a hang-up ("h")."""

    call_id: str = "fake"
    caller_id: str | None = "09121111111"
    events: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)

    async def stream(self, sound: Sound, escape: str) -> str | None:
        self.played.append(sound.file.removeprefix("hamta/"))
        return self._barge_in(escape)

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        self.played.append(f"digits:{digits}")
        return self._barge_in(escape)

    def _barge_in(self, escape: str) -> str | None:
        if self.events and self.events[0] == "h":
            raise CallerHungUp
        if self.events and self.events[0].startswith("!") and self.events[0][1] in escape:
            return self.events.pop(0)[1]
        return None

    async def wait_digit(self, timeout: float) -> str | None:
        self.timeouts.append(timeout)
        if not self.events:
            return None
        event = self.events.pop(0)
        if event == "h":
            raise CallerHungUp
        return None if event == "~" else event.lstrip("!")

    async def hangup(self) -> None:
        self.played.append("<hangup>")


def phone(*events: str) -> FakePhone:
    return FakePhone(events=list(events))


PASSWORD = entry("password", "enter_password", length=(4, 8))


async def test_fixed_length_entry_completes_on_its_last_digit():
    call = phone(*"123456789012345", "9")
    answer = await call.ask(entry("imei", "enter_imei", length=15))
    assert answer == Answer(Status.ENTERED, "123456789012345")
    assert call.events == ["9"]  # the next key was not swallowed


async def test_variable_entry_ends_with_hash():
    call = phone(*"1234#")
    assert (await call.ask(PASSWORD)).value == "1234"


async def test_variable_entry_ends_after_a_pause_once_long_enough():
    call = phone(*"12345", "~")
    assert (await call.ask(PASSWORD)).value == "12345"
    assert call.timeouts[0] == 8.0 and call.timeouts[1] == 5.0  # first-digit, then inter-digit


async def test_a_key_pressed_during_the_prompt_is_kept_as_input():
    call = phone("!1", *"234#")
    assert (await call.ask(PASSWORD, prompt=["enter_password", "attempts_left"])).value \
        == "1234"
    assert call.played == ["enter_password"]  # the rest of the prompt was cut short


async def test_no_barge_in_plays_everything():
    call = phone("!1")
    await call.play("welcome", "goodbye", barge_in=False)
    assert call.played == ["welcome", "goodbye"]


async def test_too_short_then_right():
    call = phone(*"12#", *"1234#")
    assert (await call.ask(PASSWORD)).value == "1234"
    assert call.played == ["enter_password", "invalid_entry", "enter_password"]


async def test_too_long_variable_entry_is_refused():
    call = phone(*"123456789", *"1234#")
    assert (await call.ask(PASSWORD)).value == "1234"
    assert "invalid_entry" in call.played


async def test_star_starts_the_entry_over():
    call = phone("1", "2", "*", "~", *"5678#")
    assert (await call.ask(PASSWORD)).value == "5678"
    assert call.played == ["enter_password", "enter_password"]


async def test_a_key_right_after_star_starts_the_new_entry_and_skips_the_prompt():
    call = phone("1", "2", "*", *"5678#")
    assert (await call.ask(PASSWORD)).value == "5678"
    assert call.played == ["enter_password"]  # already keying: no need to hear it again


async def test_star_hash_code_is_explained_and_asked_again_for_free():
    call = phone(*"*#06#", *"*#06#", *"*#06#", *"1234#")
    assert (await call.ask(PASSWORD)).value == "1234"
    assert call.played == ["enter_password", "phone_code"] * 3 + ["enter_password"]


async def test_hash_alone_asks_for_the_main_menu():
    assert (await phone("#").ask(PASSWORD)).status is Status.BACK
    assert (await phone("#").ask(MAIN)).status is Status.BACK


async def test_star_does_not_cost_a_try():
    """`5 1 1* 1* 1* 1234#` once hung up: three restarts used the three tries."""
    call = phone("1", "*", "1", "*", "1", "*", *"1234#")
    assert (await call.ask(PASSWORD)).value == "1234"
    assert "invalid_entry" not in call.played and "no_input" not in call.played


async def test_endless_restarts_end_as_wrong_entries():
    call = phone(*["1", "*"] * 20)
    assert (await call.ask(PASSWORD)).status is Status.GAVE_UP


async def test_validator_reason_is_played_then_retry():
    call = phone(*"1111", *"2222")
    question = entry("code", "enter_new_code", length=4,
                     validator=lambda e: "codes_mismatch" if e == "1111" else None)
    assert (await call.ask(question)).value == "2222"
    assert call.played == ["enter_new_code", "codes_mismatch", "enter_new_code"]


async def test_the_reprompt_is_said_on_the_tries_after_the_first():
    call = phone("9", "9", "1")
    question = menu("device", "device_number", "choose_device", keys="12",
                    reprompt=["choose_device"])
    assert (await call.ask(question)).value == "1"
    assert call.played == ["device_number", "choose_device", "invalid_choice",
                           "choose_device", "invalid_choice", "choose_device"]


async def test_silence_three_times_answers_timed_out():
    call = phone()
    answer = await call.ask(entry("imei", "enter_imei", length=15))
    assert answer == Answer(Status.TIMED_OUT) and not answer.ok
    assert call.played == ["enter_imei", "no_input"] * 3


async def test_wrong_entries_three_times_answer_gave_up():
    call = phone(*"1#", *"1#", *"1#")
    assert (await call.ask(PASSWORD)).status is Status.GAVE_UP


async def test_immediate_key_is_a_whole_entry():
    call = phone("0", "5")
    question = entry("device", "choose_device_long", length=(1, 2), immediate="0")
    assert (await call.ask(question)).value == "0"
    assert call.events == ["5"]


MAIN = menu("main menu", "main_menu", keys="123456")


async def test_menu_star_repeats_without_using_a_try():
    call = phone("*", "*", "*", "7", "2")
    assert (await call.ask(MAIN)).value == "2"
    assert call.played == ["main_menu"] * 4 + ["invalid_choice", "main_menu"]


async def test_menu_gives_up_after_three_wrong_keys():
    call = phone("9", "9", "9")
    assert (await call.ask(MAIN)).status is Status.GAVE_UP


async def test_hang_up_during_a_prompt_or_an_entry_raises():
    with pytest.raises(CallerHungUp):
        await phone("h").play("welcome")
    with pytest.raises(CallerHungUp):
        await phone("1", "h").ask(PASSWORD)


async def test_numbers_are_said_as_persian_number_words_and_digits_one_by_one():
    call = phone()
    await call.play(Number(21), Digits("0912"))
    assert call.played == ["num/20", "num/and", "num/1", "digits:0912"]


async def test_secret_entries_are_masked_in_notes():
    notes: list[str] = []
    call = phone(*"4321#")
    call.note = notes.append  # type: ignore[method-assign]
    await call.ask(entry("password", "enter_password", length=(4, 8), secret=True))
    assert notes and all("4321" not in n for n in notes)


async def test_goodbye_plays_and_hangs_up():
    call = phone("!1")
    await call.goodbye()
    assert call.played == ["goodbye", "<hangup>"]
