"""`hamta-ivr bench` input checks, and the table rendered from a small real run's figures."""

from __future__ import annotations

import argparse

import pytest

from bench.caller import CallScript
from bench.cli import _sizes, register
from bench.floor import FloorServer, synthetic_trace
from bench.load import FastAgiTarget, run_load
from bench.report import render
from bench.sweep import Plan, ratios
from ivr.cli import UsageError


def test_sizes_parse_and_reject() -> None:
    assert _sizes("10,100, 1000", "--sizes") == [10, 100, 1000]
    assert _sizes("0", "--paced-sizes") == []
    assert _sizes(None, "--sizes") is None
    with pytest.raises(UsageError):
        _sizes("10,lots", "--sizes")
    with pytest.raises(UsageError):
        _sizes("999999", "--sizes")


def test_bench_is_a_command() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--quick", "--sizes", "10", "--out", "r.json"])
    assert args.quick and args.sizes == "10" and callable(args.func)


async def test_table_from_a_small_run(tmp_path) -> None:
    from dataclasses import asdict

    from bench.load import summarize
    from bench.sweep import machine

    floor = FloorServer({"synthetic": synthetic_trace(6)})
    port = await floor.start()
    try:
        run = await run_load(FastAgiTarget("127.0.0.1", port),
                             [CallScript("synthetic", None, "1")], concurrency=3, calls=6)
    finally:
        await floor.close()
    rows = []
    for target in ("floor", "ours-sqlite"):
        rows.append({"target": target, "mode": "fast", "n": 3, **summarize(run),
                     "server_cpu_ms_per_call": 1.0, "rss_kib_per_call": None,
                     "rss_peak_mib": 30.0, "generator_cpu_pct": 50.0})
    report = {"machine": machine(), "started": "now", "plan": asdict(Plan()),
              "mix": "test", "runs": rows, "ratios": ratios(rows), "notes": [],
              "e2e": {"status": "not run: test"}}
    text = render(report)
    assert "| floor " in text and "| ours-sqlite " in text
    assert "ours-sqlite/floor" in text  # ratios side by side
    assert "End to end on Asterisk: not run: test" in text
    assert report["ratios"][0]["step_p50"] == 1.0  # the same figures on both sides
