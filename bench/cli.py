"""`hamta-ivr bench`: how many callers one server carries and how fast each step answers.

`register` is the entry point `hamta_ivr.commands: bench` (pyproject.toml), which ivr.cli loads:
the runtime package never imports the bench. The runs themselves are imported when asked, so
every other `hamta-ivr` command starts as fast as before.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ivr import config
from ivr.cli import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench", help="benchmark the FastAGI server against the floor and classic AGI",
        description="Drives simulated callers (speaking AGI exactly as Asterisk does) at a bare "
        "FastAGI floor server, at `hamta-ivr serve` on a fresh SQLite registry (and PostgreSQL "
        "when given) and at process-per-call `hamta-ivr-agi`; splits a call's server time; "
        "measures end to end on the development Asterisk. Prints one table and writes JSON. "
        "Loopback only. Takes under ten minutes (--quick: about a minute).",
    )
    bench.add_argument("--quick", action="store_true", help="a short smoke run")
    bench.add_argument("--sizing", action="store_true",
                       help="the sizing run instead (bench.sizing): callers paced by the "
                       "built audio and human keying, arriving at a rising rate; the callers one "
                       "box carries with step p99 ≤ 5 ms, for 1 process and one per core, on "
                       "SQLite and PostgreSQL, then twice that rate against --max-calls; prints "
                       "Markdown for docs/performance.md (about 25 min; with --quick under a "
                       "minute)")
    bench.add_argument("--formats", action="store_true",
                       help="the prompt-format run instead (bench.formats): Asterisk's CPU "
                       "playing prompts to --calls concurrent SIP calls (G.711 and G.722) from "
                       "the native .ulaw/.sln16 files and from the .wav alone, on a private "
                       "development Asterisk (about 10 minutes)")
    bench.add_argument("--calls", type=int, default=50, metavar="N",
                       help="--formats: concurrent calls (default 50)")
    bench.add_argument("--window", type=float, default=20.0, metavar="SECONDS",
                       help="--formats: how long the CPU is measured per case (default 20)")
    bench.add_argument("--rounds", type=int, default=3, metavar="N",
                       help="--formats: rounds of every case, medians reported (default 3)")
    bench.add_argument("--rate", type=float, metavar="CALLS_PER_S",
                       help="--sizing: the arrival rate the ramp ends at (default 40)")
    bench.add_argument("--out", type=Path, metavar="FILE.json", help="write the report as JSON")
    bench.add_argument("--sizes", metavar="N,N,…",
                       help="concurrent calls for the unpaced sweep (default 10,100,1000,5000)")
    bench.add_argument("--paced-sizes", metavar="N,N,…",
                       help="concurrent calls with caller pacing (default 1000,5000; 0 = none)")
    bench.add_argument("--pg-sizes", metavar="N,N,…",
                       help="concurrent calls on PostgreSQL (default 10,100,1000; 0 = none)")
    bench.add_argument("--classic-sizes", metavar="N,N,…",
                       help="concurrent calls through classic AGI (default 10,50; 0 = none)")
    bench.add_argument("--pg", metavar="URL",
                       help="PostgreSQL server to use (default HAMTA_TEST_PG_URL; a database of "
                       "the run's own is created on it and dropped afterwards)")
    bench.add_argument("--workers", type=int,
                       help="hamta-ivr serve --workers: hashing threads (default: the server's "
                       "own, one per CPU but one)")
    bench.add_argument("--no-e2e", action="store_true",
                       help="skip the end-to-end calls through a private development Asterisk")
    bench.add_argument("--workdir", type=Path,
                       help="keep databases, traces and server logs here (default: a temporary "
                       "folder, removed afterwards)")
    bench.set_defaults(func=run_bench)


def _sizes(text: str | None, name: str) -> list[int] | None:
    if text is None:
        return None
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{name} takes numbers separated by commas, e.g. 10,100,1000") from None
    if any(n < 0 or n > 20000 for n in sizes):
        raise UsageError(f"{name}: each size must be between 1 and 20000 (0 = none)")
    return [n for n in sizes if n > 0]


def run_sizing(args: argparse.Namespace) -> int:
    from bench.report import render_sizing
    from bench.sizing import QUICK, SizingPlan, run_sizing
    plan = QUICK if args.quick else SizingPlan()
    if args.rate is not None:
        if not 0 < args.rate <= 1000:
            raise UsageError("--rate takes calls per second between 0 and 1000, e.g. 40")
        plan = replace(plan, rate_to=args.rate)
    plan = replace(plan, pg_url=args.pg or config.current().test_pg_url)
    report = run_sizing(plan, args.workdir, _echo)
    return _print_and_save(render_sizing(report), report, args.out)


def run_bench(args: argparse.Namespace) -> int:
    from bench.report import render
    from bench.sweep import QUICK, Plan, run_bench

    if args.sizing:
        return run_sizing(args)
    if args.formats:
        return run_formats(args)

    plan = QUICK if args.quick else Plan()
    for attr, flag in (("sizes", "--sizes"), ("paced_sizes", "--paced-sizes"),
                       ("pg_sizes", "--pg-sizes"), ("classic_sizes", "--classic-sizes")):
        sizes = _sizes(getattr(args, attr), flag)
        if sizes is not None:
            changes: dict[str, Any] = {attr: sizes}
            plan = replace(plan, **changes)
    if not plan.sizes:
            raise UsageError("--sizes needs at least one size")
    if args.workers is not None:
        plan = replace(plan, workers=args.workers)
    plan = replace(plan, pg_url=args.pg or config.current().test_pg_url)
    if args.no_e2e:
        plan = replace(plan, e2e_calls=0)
    report = run_bench(plan, args.workdir, _echo)
    return _print_and_save(render(report), report, args.out)


def run_formats(args: argparse.Namespace) -> int:
    import asyncio

    from bench import formats
    if not 1 <= args.calls <= 500:
        raise UsageError("--calls takes 1 to 500 concurrent calls")
    if not 2 <= args.window <= 600:
        raise UsageError("--window takes 2 to 600 seconds")
    if not 1 <= args.rounds <= 20:
        raise UsageError("--rounds takes 1 to 20")
    report = asyncio.run(formats.run(calls=args.calls, window=args.window, rounds=args.rounds,
                                     workdir=args.workdir, echo=_echo))
    code = _print_and_save(formats.render(report), report, args.out)
    return code if report.get("status") == "run" else 1


def _echo(line: str) -> None:
    """Progress, on stderr: stdout is the tables."""
    print(line, file=sys.stderr, flush=True)


def _print_and_save(tables: str, report: dict[str, Any], out: Path | None) -> int:
    print(tables)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n")
        print(f"\n(report written to {out})")
    return 0
