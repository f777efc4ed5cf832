"""Sizing: how many concurrent callers one box carries while the pause after a key stays short.

Callers are paced as people (bench.human: every prompt as long as its built WAV, a pause to
think before a menu choice, 0.3-0.8 s between digits, silent questions waiting their timeout), so
a call lasts as long as a real one. One run per configuration (server × database × processes):
1. ramp: calls arrive evenly at a rate rising linearly from `rate_from` to `rate_to` calls/s
   over `ramp_s` seconds (then the callers still on the line hang up). Every `window_s` the
   steps that ended in it give a p99, beside the mean number of calls in progress. The callers
   carried: the most in progress in a window before the first window whose p99 of non-hashing
   steps is above the limit (5 ms); steps right after a PIN or a code (argon2) are reported apart.
2. overload: a fresh server with `--max-calls` at the callers carried, calls arriving at twice
   the rate that keeps that many on the line (callers ÷ mean call length) for `overload_s`;
   over its last third (the server full, calls ending and freeing places): the calls admitted,
   completed and told "busy" (HAMTA_RESULT=busy, the `busy` prompt) per second, and the
   admitted calls' steps.
The floor (bench.floor, the same commands with no flow and no database) takes the same ramp,
side by side. The load generator shares the machine's cores: its CPU share is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import scenario
from bench.caller import CallRecord, CallScript, fastagi_call, record_of
from bench.floor import TRACE_HEADER
from bench.human import HumanPacing, built_durations
from bench.load import FastAgiTarget, percentile, run_load
from bench.procstat import cpu_seconds
from bench.servers import ServerProcess, free_port, tool
from bench.sweep import machine, raise_fd_limit
from ivr import config
from ivr.call.agi_protocol import AgiCommand
from ivr.prompts.layout import PromptsError
from ivr.testing.fake_asterisk import FakeChannel, agi_environment, run_session

LIMIT_MS = 5.0  # the p99 of non-hashing steps a configuration must keep
UNCAPPED = 100_000
TRANSFER_EVERY = 20  # one call in 20 is a direct transfer (two argon2 verifications)
SIGN_IN_EVERY = 4  # of the rest, one in four signs in and hears "my devices"
MIN_STEPS = 200  # a window with fewer steps says little about a p99 (it is nearly the max)
WARM_UP_CALLS = 20  # per process, before each phase


@dataclass
class SizingPlan:
    ramp_s: float = 150.0
    rate_from: float = 1.0
    rate_to: float = 40.0  # calls/s at the end of the ramp
    window_s: float = 10.0
    overload_s: float = 150.0  # long enough to fill, then for calls to end and free places
    finish_s: float = 0.0  # then the callers still on the line are hung up on
    processes: list[int] = field(default_factory=lambda: [1, os.cpu_count() or 1])
    pg_url: str | None = None
    scale: float = 1.0  # prompt and key times × scale (quick runs shrink them)
    silence: float = 600.0  # cap on a silent question's wait (its own timeout below it)
    subscribers: int = 400  # signing-in callers take these numbers in turn
    sellers: int = 300  # transfers per database (each seller sells once)
    floor: bool = True
    limit_ms: float = LIMIT_MS
    min_steps: int = MIN_STEPS
    quick: bool = False
    seed: int = 12


QUICK = SizingPlan(ramp_s=6.0, rate_from=2.0, rate_to=8.0, window_s=2.0, overload_s=4.5,
                   finish_s=0.0, processes=[1], scale=0.02, silence=0.05, subscribers=8,
                   sellers=4, quick=True, limit_ms=1000.0, min_steps=1)  # structure, not timings


def call_script(index: int, transfers: list[int], subscribers: int) -> CallScript:
    """Call `index` of the mix: a transfer every TRANSFER_EVERY calls while sellers last (the
    next seller from `transfers`, a one-element counter and limit), else 3 inquiries to 1
    sign-in + my devices (the numbers taken in turn)."""
    if index % TRANSFER_EVERY == TRANSFER_EVERY - 1 and transfers[0] < transfers[1]:
        transfers[0] += 1
        return scenario.transfer_script(transfers[0] - 1)
    if index % SIGN_IN_EVERY == SIGN_IN_EVERY - 1:
        return scenario.my_devices_script(index // SIGN_IN_EVERY % subscribers)
    return scenario.inquiry_script()


class LiveChannel(FakeChannel):
    """The fake Asterisk's channel, noting each step as it happens (not from the transcript at
    the end), so that a caller the bench hangs up on at the end of a phase still counts."""

    def __init__(self, script: CallScript, pacing: HumanPacing) -> None:
        super().__init__(script.keys, pacing=pacing)
        self.hash_after = script.hash_after
        self.steps: list[tuple[float, float, bool]] = []
        self.opened = time.perf_counter()
        self.first: float | None = None
        self.replied: float | None = None
        self.pressed = 0
        self.hashing = False

    async def answer(self, command: AgiCommand) -> tuple[str, bool]:
        now = time.perf_counter()
        if self.replied is None:
            self.first = now - self.opened
        else:
            self.steps.append((now, now - self.replied, self.hashing))
        reply, key = await super().answer(command)
        self.hashing = key and self.pressed in self.hash_after
        self.pressed += key
        self.replied = time.perf_counter()
        return reply, key


async def live_call(port: int, script: CallScript, index: int, pacing: HumanPacing,
                    extra_env: dict[str, str] | None = None) -> CallRecord:
    """One call over FastAGI; cancelled (the bench hangs up at the end of a phase) it returns
    the steps so far with ended_by "cut"."""
    started = time.perf_counter()
    channel = LiveChannel(script, pacing)
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
        env = agi_environment(caller_id=script.caller_id, index=index, extra=extra_env,
                              request=f"agi://127.0.0.1:{port}/hamta")
        channel.opened = time.perf_counter()
        record = record_of(script, await run_session(reader, writer, env, channel), started)
    except asyncio.CancelledError:
        record = CallRecord(script.name, ended_by="cut", error="cut", started=started,
                            ended=time.perf_counter(), first_command=channel.first)
    except OSError as exc:
        record = CallRecord(script.name, ended_by="error", error=f"connect: {exc}",
                            started=started, ended=time.perf_counter())
    finally:
        if writer is not None:
            writer.close()
    record.steps = channel.steps
    return record


@dataclass
class Arrivals:
    """What one phase did: every call's record, calls in progress sampled over time."""

    records: list[CallRecord]  # cut ones too (ended_by "cut": the bench hung up at the end)
    samples: list[tuple[float, int]]  # (seconds since the start, calls in progress)
    started: float  # perf_counter at the start
    wall_s: float
    generator_cpu_s: float
    server_cpu_s: float


async def arrive(place: Callable[[int], Any], rate: Callable[[float], float], duration: float,
                 linger: float, server_pids: Callable[[], list[int]]) -> Arrivals:
    """Place calls evenly at `rate(t)` calls/s for `duration` s; wait up to `linger` for the
    calls in progress, then hang up on the rest."""
    records: list[CallRecord] = []
    tasks: set[asyncio.Task[None]] = set()
    samples: list[tuple[float, int]] = []
    active = 0
    started = time.perf_counter()

    async def one(index: int) -> None:
        nonlocal active
        active += 1
        try:
            records.append(await place(index))
        finally:
            active -= 1

    async def sample() -> None:
        while True:
            samples.append((time.perf_counter() - started, active))
            await asyncio.sleep(0.25)

    # the generator's own garbage collections would stop its loop and be read as the server's
    # latency: none during a phase (collected between phases)
    gc.collect()
    gc.disable()
    try:
        cpu0, srv0 = _own_cpu(), _cpu(server_pids())
        sampler = asyncio.create_task(sample())
        index, t = 0, 0.0
        while t < duration:
            task = asyncio.create_task(one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
            t += 1.0 / max(rate(t), 0.01)
            await asyncio.sleep(max(0.0, started + t - time.perf_counter()))
        if tasks:
            await asyncio.wait(set(tasks), timeout=linger)
        wall = time.perf_counter() - started
        generator, server = _own_cpu() - cpu0, _cpu(server_pids()) - srv0
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(set(tasks), timeout=10)
        sampler.cancel()
    finally:
        gc.enable()
    return Arrivals(records, samples, started, wall, generator, server)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += cpu_seconds(pid)
    return total


def family(pid: int) -> list[int]:
    """A server and its children (`serve --processes` forks them)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    return pids


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def windows(run: Arrivals, width: float, until: float) -> list[dict[str, Any]]:
    """Per window of `width` s up to `until`: calls in progress (mean, max), steps, p99s."""
    out = []
    steps = [(at - run.started, lat, hashing) for r in run.records for at, lat, hashing in r.steps]
    setups = [(r.started - run.started, r.first_command) for r in run.records
              if r.first_command is not None and not r.busy]  # when the call came, its setup
    start = 0.0
    while start < until - 1e-9:
        end = start + width
        plain = sorted(lat for at, lat, h in steps if start <= at < end and not h)
        hashed = sorted(lat for at, lat, h in steps if start <= at < end and h)
        setup = sorted(s for at, s in setups if start <= at < end)
        active = [n for at, n in run.samples if start <= at < end]
        out.append({
            "from_s": round(start, 1), "to_s": round(end, 1),
            "in_progress": round(sum(active) / len(active), 1) if active else 0,
            "in_progress_max": max(active) if active else 0,
            "steps": len(plain), "step_p50_ms": ms(percentile(plain, 50)),
            "step_p99_ms": ms(percentile(plain, 99)),
            "hashing_steps": len(hashed), "hashing_p99_ms": ms(percentile(hashed, 99)),
            "setup_p99_ms": ms(percentile(setup, 99)),
        })
        start = end
    return out


def carried(rows: list[dict[str, Any]], limit_ms: float = LIMIT_MS, min_steps: int = MIN_STEPS
            ) -> dict[str, Any] | None:
    """The window with the most calls in progress before the first window over the limit;
    None when even the first measurable window is over it. `capped`: the ramp ended first."""
    best = None
    for row in rows:
        if row["steps"] < min_steps:
            continue
        if row["step_p99_ms"] is not None and row["step_p99_ms"] > limit_ms:
            return None if best is None else {**best, "capped": False}
        if best is None or row["in_progress"] >= best["in_progress"]:
            best = row
    return None if best is None else {**best, "capped": True}


def accounting(run: Arrivals) -> dict[str, Any]:
    """Every call placed is exactly one of: completed as scripted, told busy, failed, cut."""
    records = run.records
    ok = sum(1 for r in records if r.ok)
    busy = sum(1 for r in records if r.busy)
    cut = sum(1 for r in records if r.ended_by == "cut")
    failed = [r for r in records if not r.ok and not r.busy and r.ended_by != "cut"]
    errors: dict[str, int] = {}
    for r in failed:
        errors[r.error or "?"] = errors.get(r.error or "?", 0) + 1
    lengths = sorted(r.ended - r.started for r in records if r.ok)
    kinds: dict[str, list[float]] = {}
    for r in records:
        if r.ok:
            kinds.setdefault(r.script, []).append(r.ended - r.started)
    return {
        "placed": len(records), "completed": ok, "busy": busy, "failed": len(failed),
        "cut": cut, "failures": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:5]),
        "call_s_mean": round(sum(lengths) / len(lengths), 1) if lengths else None,
        "call_s_p50": round(percentile(lengths, 50) or 0, 1) if lengths else None,
        "call_s_by_kind": {k: round(sum(v) / len(v), 1) for k, v in sorted(kinds.items())},
        "wall_s": round(run.wall_s, 1),
        "generator_cpu_pct": round(100 * run.generator_cpu_s / run.wall_s, 1),
        "server_cpu_pct": round(100 * run.server_cpu_s / run.wall_s, 1),
    }


class Sizing:
    def __init__(self, plan: SizingPlan, workdir: Path, echo: Callable[[str], None]) -> None:
        self.plan = plan
        self.workdir = workdir
        self.echo = echo
        self.index = 0
        self.report: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine(),
            "plan": {k: v for k, v in asdict(plan).items() if k != "pg_url"},
            "limit_ms": plan.limit_ms, "configs": [], "notes": [],
        }
        self.rng = random.Random(plan.seed)

    def pacing(self, seconds: dict[str, float]) -> HumanPacing:
        return HumanPacing(seconds=seconds, scale=self.plan.scale, rng=self.rng,
                           silence=self.plan.silence)

    def serve(self, db: scenario.BenchDb, port: int, processes: int, max_calls: int
              ) -> ServerProcess:
        exe = tool("hamta-ivr")
        if exe is None:
            raise RuntimeError("the hamta-ivr command is not installed (pip install -e .)")
        return ServerProcess(
            f"serve {db.name} ×{processes}",
            [exe, "serve", "--port", str(port), "--processes", str(processes),
             "--max-calls", str(max_calls), "--metrics", "off"],
            {**db.env(), "HAMTA_CONFIG": ""}, port,
            self.workdir / "logs" / f"serve-{db.name}-{processes}.log")

    def floor(self, port: int) -> ServerProcess:
        return ServerProcess("floor", [sys.executable, "-m", "bench.floor", "--port",
                                       str(port), "--traces", str(self.workdir / "traces.json")],
                             config.child_env(), port, self.workdir / "logs" / "floor.log")

    async def run(self) -> dict[str, Any]:
        plan = self.plan
        began = time.perf_counter()
        seconds = await self._durations()
        pacing = self.pacing(seconds)
        dbs = [scenario.sqlite_db(self.workdir / "sqlite")]
        pg = await self._postgres()
        if pg is not None:
            dbs.append(pg)
        try:
            for db in dbs:
                self.echo(f"setup: {db.name}: demo cast, {plan.subscribers} subscribers, "
                          f"{self._sellers_needed()} transfer sellers (production argon2)")
                await asyncio.to_thread(scenario.prepare, db, plan.subscribers)
                await asyncio.to_thread(scenario.prepare_transfers, db,
                                        self._sellers_needed(), 0, 2)
            await self._traces(dbs[0])
            if plan.floor:
                await self.config(None, 1, pacing, overload=False)
            for db in dbs:
                sellers = [0, 0]
                for processes in plan.processes:
                    await self.config(db, processes, pacing, sellers=sellers)
        finally:
            if pg is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(scenario.drop_postgres, pg)
        if pacing.missing and seconds:
            self.note(f"{len(pacing.missing)} prompt(s) not in the built audio, paced at "
                      f"{pacing.default_prompt:g} s: {', '.join(sorted(pacing.missing))} "
                      "(`hamta-ivr prompts build` makes them)")
        self.report["elapsed_s"] = round(time.perf_counter() - began, 1)
        return self.report

    def _sellers_needed(self) -> int:
        """Each configuration's ramp and overload share `sellers`; one more calibrates."""
        return self.plan.sellers * len(self.plan.processes) + 1

    async def _durations(self) -> dict[str, float]:
        from ivr.prompts.layout import sounds_dir

        if self.plan.quick:
            try:
                seconds = built_durations(sounds_dir())
            except Exception:
                seconds = {}
        else:
            seconds = built_durations(sounds_dir())  # PromptsError names the fix
            if not seconds:
                raise PromptsError(f"no built audio in {sounds_dir()} (HAMTA_SOUNDS_DIR): the "
                                   "sizing paces its callers by it; run `hamta-ivr prompts "
                                   "build` first")
        heard = {k: seconds[k] for k in ("hamta/welcome", "hamta/main_menu") if k in seconds}
        self.report["prompts"] = {"sounds": str(sounds_dir()), "files": len(seconds),
                                  "examples_s": {k: round(v, 2) for k, v in heard.items()}}
        if not seconds:
            self.note("no built audio: prompts paced at 2 s each (quick run)")
        return seconds

    async def _postgres(self) -> scenario.BenchDb | None:
        if not self.plan.pg_url:
            self.note("PostgreSQL not run: no server (HAMTA_TEST_PG_URL or --pg URL)")
            return None
        try:
            return await asyncio.to_thread(scenario.postgres_db, self.plan.pg_url,
                                           self.workdir / "pg")
        except Exception as exc:
            self.note(f"PostgreSQL not run: {str(exc).splitlines()[0][:200]}")
            return None

    def note(self, text: str) -> None:
        self.report["notes"].append(text)
        self.echo(f"note: {text}")

    async def _traces(self, db: scenario.BenchDb) -> None:
        """The commands of each kind of call, for the floor to replay."""
        traces: dict[str, list[str]] = {}
        port = free_port()
        kinds = [scenario.inquiry_script(), scenario.my_devices_script(0),
                 scenario.transfer_script(self._sellers_needed() - 1)]
        async with self.serve(db, port, 1, UNCAPPED):
            for script in kinds:
                record = await fastagi_call("127.0.0.1", port, script, self._indices(1),
                                            keep_trace=True)
                if not record.ok or not record.trace:
                    raise RuntimeError(f"calibration call {script.name!r} failed: "
                                       f"{record.error}")
                traces[script.name] = record.trace
        (self.workdir / "traces.json").write_text(json.dumps(traces))

    async def warm_up(self, port: int, processes: int, trace: bool = False) -> None:
        """Calls without pacing before a phase, so that no process meets its first call
        (imports, statement caches, argon2's memory) inside a measured window."""
        scripts = [scenario.inquiry_script()] * 3 + [
            scenario.my_devices_script(self.plan.subscribers - 1)]
        calls = WARM_UP_CALLS * processes
        await run_load(FastAgiTarget("127.0.0.1", port, trace_arg=trace), scripts,
                       concurrency=min(calls, 8), calls=calls, by_call=True,
                       first_index=self._indices(calls))

    def _indices(self, count: int) -> int:
        first = self.index
        self.index += count
        return first

    async def config(self, db: scenario.BenchDb | None, processes: int, pacing: HumanPacing,
                     *, overload: bool = True, sellers: list[int] | None = None) -> None:
        plan = self.plan
        name = "floor" if db is None else f"ours-{db.name}"
        row: dict[str, Any] = {"server": name, "processes": processes}
        self.report["configs"].append(row)
        sellers = sellers if sellers is not None else [0, 0]
        sellers[1] += plan.sellers
        base = self._indices(1_000_000)

        def placer(port: int, trace: bool) -> Callable[[int], Any]:
            def place(i: int) -> Any:
                script = call_script(i, sellers, plan.subscribers)
                extra = {TRACE_HEADER: script.name} if trace else None
                return live_call(port, script, base + i, pacing, extra)
            return place

        def ramp(t: float) -> float:
            return plan.rate_from + (plan.rate_to - plan.rate_from) * min(1.0, t / plan.ramp_s)

        port = free_port()
        server = self.floor(port) if db is None else self.serve(db, port, processes, UNCAPPED)
        self.echo(f"ramp: {name} ×{processes}, {plan.rate_from:g} → {plan.rate_to:g} calls/s "
                  f"over {plan.ramp_s:g} s")
        async with server:
            await self.warm_up(port, processes, trace=db is None)
            run = await arrive(placer(port, db is None), ramp, plan.ramp_s, 2.0,
                               lambda: family(server.pid))
        rows = windows(run, plan.window_s, plan.ramp_s)
        best = carried(rows, plan.limit_ms, plan.min_steps)
        row.update(ramp=accounting(run), windows=rows, carried=best)
        if best is None:
            self.echo("     no window within the limit")
            return
        self.echo(f"     carried {best['in_progress']:g} callers (step p99 "
                  f"{best['step_p99_ms']} ms){' — the ramp ended first' if best['capped'] else ''}"
                  f"; {row['ramp']['completed']} completed, {row['ramp']['failed']} failed")
        if not overload or db is None:
            return
        callers = max(1, round(best["in_progress"]))
        length = row["ramp"]["call_s_mean"] or 60.0
        sustained = callers / length  # Little's law: the arrivals that keep `callers` on
        rate = 2 * sustained
        row["carried"]["sustained_per_s"] = round(sustained, 2)
        port = free_port()
        cap = max(1, round(callers / processes))  # --max-calls is per process
        self.echo(f"overload: {name} ×{processes}, {rate:.1f} calls/s for {plan.overload_s:g} s,"
                  f" --max-calls {cap} per process")
        async with self.serve(db, port, processes, cap) as server:
            await self.warm_up(port, processes)
            run = await arrive(placer(port, False), lambda t: rate, plan.overload_s,
                               plan.finish_s, lambda: family(server.pid))
        row["overload"] = {"rate": round(rate, 2), "max_calls": cap * processes,
                           "max_calls_per_process": cap, **accounting(run),
                           **steady(run, plan.overload_s / 3)}
        o = row["overload"]
        self.echo(f"     {o['placed']} placed: {o['completed']} completed, {o['busy']} busy, "
                  f"{o['failed']} failed, {o['cut']} cut; in the last {o['steady_s']:g} s: "
                  f"{o['admitted_per_s']} admitted/s, {o['busy_per_s']} busy/s, step p99 "
                  f"{o['step_p99_ms']} ms")


def steady(run: Arrivals, last: float) -> dict[str, Any]:
    """The overload's last `last` seconds (full by then: each admitted call frees its place
    when it ends): calls admitted, told busy and completed per second, the admitted calls'
    step p99s."""
    since = run.started + run.wall_s - last
    came = [r for r in run.records if r.started >= since]
    plain = sorted(lat for r in run.records if not r.busy for at, lat, h in r.steps
                   if at >= since and not h)
    hashed = sorted(lat for r in run.records if not r.busy for at, lat, h in r.steps
                    if at >= since and h)
    return {
        "steady_s": round(last, 1),
        "admitted_per_s": round(sum(1 for r in came if not r.busy) / last, 2),
        "busy_per_s": round(sum(1 for r in came if r.busy) / last, 2),
        "completed_per_s": round(sum(1 for r in run.records if r.ok and r.ended >= since)
                                 / last, 2),
        "step_p99_ms": ms(percentile(plain, 99)),
        "hashing_p99_ms": ms(percentile(hashed, 99)),
    }


def run_sizing(plan: SizingPlan, workdir: Path | None = None,
               echo: Callable[[str], None] = print) -> dict[str, Any]:
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrating the bench databases
    raise_fd_limit()
    folder = workdir or Path(tempfile.mkdtemp(prefix="hamta-sizing-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def stamped(line: str) -> None:
        echo(f"[{time.perf_counter() - t0:6.1f}s] {line}")

    from ivr.call.fastagi import loop_factory

    sizing = Sizing(plan, folder, stamped)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:  # the generator on uvloop too
        report = runner.run(sizing.run())
    report["workdir"] = str(folder) if workdir else None
    if workdir is None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return report
