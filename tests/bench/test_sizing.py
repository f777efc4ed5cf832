"""The sizing run's pacing, mix and accounting (bench.sizing, bench.human).

Nothing here asserts a speed: the pacing a fake caller applies, which steps count as hashing,
how calls are told apart (completed, busy, failed, cut), how windows and the callers carried are
derived, and the structure of a --quick run's report.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench import scenario
from bench.caller import CallScript, record_of
from bench.human import HumanPacing, built_durations
from bench.report import render_sizing
from bench.sizing import (
    QUICK,
    TRANSFER_EVERY,
    Arrivals,
    accounting,
    call_script,
    carried,
    run_sizing,
    windows,
)
from ivr.call.agi_protocol import parse_command
from ivr.cli import build_parser
from ivr.testing.fake_asterisk import CallResult, Exchange, FakeChannel

SECONDS = {"hamta/welcome": 4.0, "hamta/main_menu": 10.0, "digits/1": 0.5, "digits/2": 0.7}


def test_prompts_last_as_long_as_their_files_and_keys_come_at_human_speed() -> None:
    pacing = HumanPacing(seconds=SECONDS, rng=random.Random(1))
    assert pacing.prompt_seconds("hamta/main_menu") == 10.0
    assert pacing.prompt_seconds("fa/hamta/welcome") == 4.0
    assert pacing.prompt_seconds("/tmp/spool/secret-1") == pacing.default_prompt
    assert pacing.said_seconds("1212") == pytest.approx(2 * 0.5 + 2 * 0.7)
    thinks = [pacing.key_seconds(True) for _ in range(200)]
    keys = [pacing.key_seconds(False) for _ in range(200)]
    assert all(1.0 <= t <= 2.5 for t in thinks) and all(0.3 <= k <= 0.8 for k in keys)
    assert len(set(keys)) > 100  # jittered, not one fixed delay
    assert pacing.prompt_seconds("hamta/not_built") == pacing.default_prompt
    assert pacing.missing == {"hamta/not_built"}  # reported, not silently guessed
    half = HumanPacing(seconds=SECONDS, scale=0.5)
    assert half.prompt_seconds("hamta/main_menu") == 5.0


async def test_the_fake_asterisk_sleeps_the_pacing_it_is_given() -> None:
    slept: list[float] = []
    channel = FakeChannel("1 2", pacing=HumanPacing(seconds=SECONDS, rng=random.Random(2)))

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    channel._sleep = sleep  # type: ignore[method-assign]
    await channel.answer(parse_command('STREAM FILE hamta/main_menu "0123456789*#"'))
    await channel.answer(parse_command("WAIT FOR DIGIT 8000"))  # the first key: a think
    await channel.answer(parse_command("WAIT FOR DIGIT 5000"))  # the next: between keys
    await channel.answer(parse_command('SAY DIGITS 12 ""'))
    assert slept[0] == 10.0
    assert 1.0 <= slept[1] <= 2.5 and 0.3 <= slept[2] <= 0.8
    assert slept[3] == pytest.approx(1.2)


def test_built_durations_read_the_wav_files(tmp_path: Path) -> None:
    import wave

    for name, seconds in (("hamta/welcome", 1.5), ("digits/3", 0.25)):
        path = tmp_path / "fa" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(b"\0\0" * int(8000 * seconds))
    assert built_durations(tmp_path) == pytest.approx({"hamta/welcome": 1.5, "digits/3": 0.25})


def test_the_mix_transfers_while_sellers_last_then_asks() -> None:
    sellers = [0, 2]
    scripts = [call_script(i, sellers, subscribers=3) for i in range(3 * TRANSFER_EVERY)]
    names = [s.name for s in scripts]
    assert names.count("transfer") == 2 and sellers == [2, 2]  # the third finds none left
    assert {s.caller_id for s in scripts if s.name == "transfer"} == {
        scenario.transfer_msisdn(0), scenario.transfer_msisdn(1)}
    signing_in = [s for s in scripts if s.name == "my_devices"]
    assert len(signing_in) == 15 - 2  # every 4th call, but where a transfer took the slot
    assert {s.caller_id for s in signing_in} == {scenario.bench_msisdn(i) for i in range(3)}
    assert names.count("inquiry") == len(names) - len(signing_in) - 2


def _result(keys: list[bool], *, busy: bool = False) -> CallResult:
    result = CallResult({}, env_sent=0.0)
    for i, key in enumerate(keys):
        # command i arrives at 10 i + 1; the reply leaves at 10 i + 2 (so every step is 9 s)
        result.transcript.append(Exchange(f"C{i}", "200 result=0", 10 * i + 1, 10 * i + 2, key))
    result.closed, result.closed_at = True, 10 * len(keys)
    if busy:
        result.variables["HAMTA_RESULT"] = "busy"
    return result


def test_steps_after_a_secret_are_told_apart() -> None:
    script = CallScript("s", None, "5 2 #", hash_after=(2,))
    # commands: prompt, key 5, key 2, key #, the list (hashed before it), the end
    record = record_of(script, _result([False, True, True, True, False, False]), started=0.0)
    assert [h for _, _, h in record.steps] == [False, False, False, True, False]
    assert [lat for _, lat, _ in record.steps] == [9.0] * 5
    assert [at for at, _, _ in record.steps] == [11.0, 21.0, 31.0, 41.0, 51.0]
    assert record.ok and not record.busy


def test_a_busy_answer_is_counted_as_busy_not_failed() -> None:
    record = record_of(CallScript("inquiry", None, "1 2"), _result([False, False, False],
                                                                   busy=True), started=0.0)
    assert record.busy and not record.ok and record.ended_by == "busy"


def _run(records: list) -> Arrivals:
    samples = [(t / 4, 10 if t < 40 else 30) for t in range(80)]  # 10 calls, then 30
    return Arrivals(records, samples, started=0.0, wall_s=20.0, generator_cpu_s=2.0,
                    server_cpu_s=5.0)


def _record(steps: list[tuple[float, float, bool]], **kw) -> object:
    from bench.caller import CallRecord

    record = CallRecord("inquiry", ok=True, started=steps[0][0] - 0.5, ended=steps[-1][0],
                        first_command=0.002, **kw)
    record.steps = steps
    return record


def test_windows_and_the_callers_carried() -> None:
    fast = [(t / 30, 0.001, False) for t in range(300)]  # 0-10 s: 1 ms steps
    slow = [(10 + t / 30, 0.020, False) for t in range(300)]  # 10-20 s: 20 ms steps
    hashed = [(5.0, 0.080, True)]
    run = _run([_record(fast + hashed), _record(slow)])
    rows = windows(run, 10.0, 20.0)
    assert [(r["from_s"], r["steps"], r["hashing_steps"]) for r in rows] == [(0, 300, 1),
                                                                             (10, 300, 0)]
    assert rows[0]["step_p99_ms"] == 1.0 and rows[1]["step_p99_ms"] == 20.0
    assert rows[0]["hashing_p99_ms"] == 80.0  # apart: it does not raise the plain p99
    assert (rows[0]["in_progress"], rows[1]["in_progress"]) == (10, 30)
    best = carried(rows, 5.0)
    assert best is not None and best["in_progress"] == 10 and not best["capped"]
    assert carried(rows, 50.0)["in_progress"] == 30 and carried(rows, 50.0)["capped"]
    assert carried(rows[1:], 5.0) is None  # over the limit from the first window
    assert carried(rows, 5.0, min_steps=301) is None  # too few steps to say


def test_every_call_placed_is_counted_once() -> None:
    from bench.caller import CallRecord

    records = [CallRecord("a", ok=True, started=0, ended=60), CallRecord("b", ok=True,
                                                                       started=0, ended=80),
               CallRecord("c", busy=True, error="busy"), CallRecord("d", error="keys unused"),
               *(CallRecord("e", ended_by="cut", error="cut") for _ in range(3))]
    a = accounting(_run(records))
    assert (a["placed"], a["completed"], a["busy"], a["failed"], a["cut"]) == (7, 2, 1, 1, 3)
    assert a["failures"] == {"keys unused": 1} and a["call_s_mean"] == 70.0
    assert (a["generator_cpu_pct"], a["server_cpu_pct"]) == (10.0, 25.0)


def test_sizing_is_a_bench_option(bench_command: None) -> None:
    args = build_parser().parse_args(["bench", "--sizing", "--quick", "--rate", "30"])
    assert args.sizing and args.quick and args.rate == 30


def test_a_quick_sizing_run_reports_every_phase(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HAMTA_SOUNDS_DIR", str(tmp_path / "no-sounds"))
    report = run_sizing(QUICK, tmp_path / "work", echo=lambda line: None)
    assert [(c["server"], c["processes"]) for c in report["configs"]] == [
        ("floor", 1), ("ours-sqlite", 1)]
    for config in report["configs"]:
        ramp = config["ramp"]
        assert ramp["placed"] == ramp["completed"] + ramp["busy"] + ramp["failed"] + ramp["cut"]
        assert ramp["failed"] == 0 and ramp["busy"] == 0  # nobody is turned away in the ramp
        assert len(config["windows"]) == round(QUICK.ramp_s / QUICK.window_s)
        assert config["carried"] is not None
    ours = report["configs"][1]
    assert set(ours["ramp"]["call_s_by_kind"]) <= {"inquiry", "my_devices", "transfer"}
    overload = ours["overload"]
    assert overload["max_calls"] == max(1, round(ours["carried"]["in_progress"]))
    assert overload["placed"] == (overload["completed"] + overload["busy"] + overload["failed"]
                                  + overload["cut"])
    assert overload["busy"] > 0 and overload["failed"] == 0  # the excess told busy
    assert overload["steady_s"] == QUICK.overload_s / 3
    assert min(overload[k] for k in ("admitted_per_s", "busy_per_s", "completed_per_s")) >= 0
    text = render_sizing(report)
    assert "| server" in text and "Overload" in text and "ours-sqlite" in text
    assert report["machine"]["nproc"] >= 1


async def test_a_caller_hung_up_on_at_the_end_keeps_its_steps() -> None:
    import asyncio

    from bench.floor import FloorServer, synthetic_trace
    from bench.sizing import live_call

    server = FloorServer({"synthetic": synthetic_trace(40)})
    port = await server.start()
    try:
        script = CallScript("synthetic", "09121111111", "1 2 3 4 5 6 7 8 9")
        pacing = HumanPacing(seconds={}, default_prompt=0.01, think=(0.01, 0.01),
                             between_keys=(0.01, 0.01), silence=0.01)
        done = await live_call(port, script, 1, pacing)
        task = asyncio.create_task(live_call(port, script, 2, HumanPacing(
            seconds={}, default_prompt=0.01, think=(0.01, 0.01), between_keys=(5, 5))))
        await asyncio.sleep(0.3)  # into the call, waiting for a slow second key
        task.cancel()
        cut = await task
    finally:
        await server.close()
    assert done.ok and done.ended_by == "ivr" and len(done.steps) == 39
    assert cut.ended_by == "cut" and not cut.ok and 0 < len(cut.steps) < 39
    assert cut.first_command is not None


def test_a_full_sizing_run_without_built_audio_names_the_fix(tmp_path: Path, monkeypatch,
                                                              capsys, bench_command) -> None:
    from ivr.cli import main

    monkeypatch.setenv("HAMTA_SOUNDS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    assert main(["bench", "--sizing", "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "prompts build" in err and "Traceback" not in err
