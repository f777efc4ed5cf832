"""N concurrent simulated callers against one target, and the figures of that run.

N workers each place calls back to back until `calls` calls have been placed, so N calls are in
progress at once (the concurrency an operator means by "N callers"). Connections open at most
`connect_limit` at a time, as calls arrive at a real Asterisk over time rather than all in the
same microsecond.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bench.caller import NO_PACING, CallRecord, CallScript, Pacing, classic_call, fastagi_call
from bench.floor import TRACE_HEADER


@dataclass(frozen=True)
class FastAgiTarget:
    host: str
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    trace_arg: bool = False  # send the script's name as agi_arg_1 (the floor picks its trace so)


@dataclass(frozen=True)
class ClassicTarget:
    argv: list[str]
    env: dict[str, str]


Target = FastAgiTarget | ClassicTarget


@dataclass
class LoadRun:
    records: list[CallRecord]
    wall_s: float
    peak_concurrency: int
    generator_cpu_s: float  # this process: when it nears wall_s, the generator is the limit


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, round(p / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_ms(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 3)

    return {
        "samples": len(ordered),
        "p50": ms(percentile(ordered, 50)),
        "p95": ms(percentile(ordered, 95)),
        "p99": ms(percentile(ordered, 99)),
        "max": ms(ordered[-1] if ordered else None),
    }


def summarize(run: LoadRun) -> dict:
    """The figures of one run, JSON-ready (times in ms)."""
    records = run.records
    ok = [r for r in records if r.ok]
    failures = Counter(r.error for r in records if not r.ok)
    steps = [v for r in records for v in r.latencies]
    keyed = [v for r in records for v in r.key_latencies]
    setup = [r.first_command for r in records if r.first_command is not None]
    teardown = [r.teardown for r in records if r.teardown is not None]
    return {
        "calls": len(records),
        "completed": len(ok),
        "failed": len(records) - len(ok),
        "hung_up_by_caller": sum(1 for r in records if r.ended_by == "caller"),
        "failures": dict(failures.most_common(5)),
        "commands": sum(r.commands for r in records),
        "wall_s": round(run.wall_s, 3),
        "flows_per_s": round(len(ok) / run.wall_s, 2) if run.wall_s > 0 else None,
        "peak_concurrency": run.peak_concurrency,
        "step_ms": latency_ms(steps),
        "after_key_ms": latency_ms(keyed),
        "setup_ms": latency_ms(setup),
        "teardown_ms": latency_ms(teardown),  # last reply -> the server closed the AGI
        "generator_cpu_s": round(run.generator_cpu_s, 3),
    }


async def run_load(
    target: Target, scripts: Sequence[CallScript], *, concurrency: int, calls: int | None = None,
    pacing: Pacing = NO_PACING, deadline: float = 120.0, connect_limit: int = 100,
    keep_trace: bool = False, first_index: int = 0, ramp: float = 0.0, by_call: bool = False,
) -> LoadRun:
    """Place `calls` calls (default: one per worker) with `concurrency` in progress at once.

    Worker w follows scripts[w % len(scripts)] for every call it places, so a script (one caller,
    e.g. one subscriber signing in) never has more calls in progress than workers sharing it.
    With `ramp`, workers start evenly over that many seconds (calls arriving over time, as at a
    real exchange) instead of all at once. `by_call`: call i follows scripts[i % len(scripts)]
    instead (a mix with one worker).
    """
    if concurrency < 1 or not scripts:
        raise ValueError("need at least one worker and one script")
    total = calls if calls is not None else concurrency
    records: list[CallRecord] = []
    next_index = 0
    active = peak = 0
    gate = asyncio.Semaphore(connect_limit)
    place = _placer(target, pacing, deadline, keep_trace, gate)

    async def worker(number: int) -> None:
        nonlocal next_index, active, peak
        script = scripts[number % len(scripts)]
        if ramp > 0:
            await asyncio.sleep(ramp * number / workers)
        while next_index < total:
            index = next_index
            next_index += 1
            active += 1
            peak = max(peak, active)
            try:
                chosen = scripts[index % len(scripts)] if by_call else script
                records.append(await place(chosen, first_index + index))
            finally:
                active -= 1

    workers = min(concurrency, total)
    cpu0 = _own_cpu()
    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    wall = time.perf_counter() - started
    return LoadRun(records, wall, peak, _own_cpu() - cpu0)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _placer(
    target: Target, pacing: Pacing, deadline: float, keep_trace: bool, gate: asyncio.Semaphore
) -> Callable[[CallScript, int], Awaitable[CallRecord]]:
    if isinstance(target, FastAgiTarget):
        async def place(script: CallScript, index: int) -> CallRecord:
            return await fastagi_call(
                target.host, target.port, script, index, pacing, deadline=deadline,
                extra_env={**target.extra_env, **_trace_env(target, script)},
                keep_trace=keep_trace, gate=gate,
            )
        return place

    async def spawn(script: CallScript, index: int) -> CallRecord:
        return await classic_call(
            target.argv, target.env, script, index, pacing, deadline=deadline,
            keep_trace=keep_trace,
        )
    return spawn


def _trace_env(target: FastAgiTarget, script: CallScript) -> dict[str, str]:
    return {TRACE_HEADER: script.name} if target.trace_arg else {}
