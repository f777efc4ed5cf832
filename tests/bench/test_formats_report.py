"""`hamta-ivr bench --formats` without Asterisk: medians, ratios and the table from phases."""

from __future__ import annotations

from bench.formats import Phase, medians, ratios, render


def phase(codec: str, files: str, cpu: float, path: str = "x") -> Phase:
    return Phase(codec, files, calls=50, playing=50, cpu=cpu, window=20.0, write_path=path)


def test_medians_ratios_and_table() -> None:
    phases = [phase("ulaw", "native", 2.0, "none (frames sent as read)"),
              phase("ulaw", "wav", 2.4, "(slin@8000)->(ulaw@8000)"),
              phase("ulaw", "wav", 2.2), phase("ulaw", "native", 1.8),
              phase("ulaw", "native", 5.0), phase("ulaw", "wav", 2.3)]
    middle = medians(phases)
    assert middle["ulaw/native"] == {"median": 2.0, "low": 1.8, "high": 5.0, "cpu_percent": 10.0}
    assert middle["ulaw/wav"]["median"] == 2.3  # ms per call-second: 2.3 s / 20 s / 50 calls
    assert ratios(phases) == {"ulaw": 1.15}
    report = {"status": "run", "calls": 50, "window_s": 20.0, "rounds": 3,
              "phases": [p.as_dict() for p in phases], "medians": middle,
              "ratios": ratios(phases)}
    table = render(report)
    assert "| ulaw | .wav only | 2.30 (2.20–2.40) | 11.5 | (slin@8000)->(ulaw@8000) |" in table
    assert "ulaw: .wav only costs 1.15× the CPU of the native files" in table
    assert render({"status": "not run: sipp is not installed"}) == \
        "prompt formats: not run: sipp is not installed"


def test_calls_that_never_played_are_not_divided_by() -> None:
    empty = Phase("g722", "native", calls=50)
    assert empty.ms_per_call_second == 0.0 and empty.cpu_percent == 0.0
    assert ratios([empty, phase("g722", "wav", 1.0)]) == {"g722": None}
