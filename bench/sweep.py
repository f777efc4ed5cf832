"""One benchmark run: every figure side by side, from the same run on the same machine.

Phases (each server in a fresh process per measured run, warmed up with 20 calls first):
1. setup: a SQLite registry file (and a PostgreSQL database when a server is given) with the demo
   cast and one bench subscriber per two signing-in callers;
2. calibration: one call of each script through `hamta-ivr serve`, recording the commands it
   sends; the floor replays exactly these;
3. the sweep: for each N, the floor and `hamta-ivr serve` without pacing, then with pacing;
   `hamta-ivr serve` on PostgreSQL; classic process-per-call AGI (`hamta-ivr-agi`);
4. where time goes: the bench-only probe server (bench.probe) and the floor, one call at a
   time; event-loop lag under load with the registry in its thread pool and, as the
   counterfactual, on the loop;
5. end to end on the real Asterisk (bench.e2e), when it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import platform
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import scenario
from bench.caller import HUMAN, NO_PACING, CallRecord, CallScript, Pacing, fastagi_call
from bench.load import ClassicTarget, FastAgiTarget, LoadRun, Target, run_load, summarize
from bench.procstat import Monitor
from bench.servers import ServerProcess, free_port, tool
from ivr import config
from ivr.registry.aio import default_workers

# the lag runs: callers brisk enough to keep hashes coming, slow enough that the event loop is
# not simply saturated (then its lag would be its own backlog, not a blocking call)
BRISK = Pacing(prompt=0.2, digit=0.05, key=0.05, silence=0.2)
WIDE_POOL = 4  # the lag run's contrast: more hashing threads than cores
UNCAPPED = 100_000  # serve --max-calls for the sweep (the cap's own behaviour: tests/call)
WARMUP_CALLS = 40  # at 40 at once: every registry thread has hashed (argon2 memory is resident)


@dataclass
class Plan:
    sizes: list[int] = field(default_factory=lambda: [10, 100, 1000, 5000])
    paced_sizes: list[int] = field(default_factory=lambda: [1000, 5000])
    pg_sizes: list[int] = field(default_factory=lambda: [10, 100, 1000])
    classic_sizes: list[int] = field(default_factory=lambda: [10, 100])
    min_calls: int = 200  # calls per unpaced run at least (workers call again and again)
    classic_min_calls: int = 40
    pacing: Pacing = HUMAN
    ramp: float = 15.0  # paced runs: calls arrive over this many seconds (about a call's length)
    workers: int = field(default_factory=default_workers)  # serve --workers (hashing threads)
    pg_url: str | None = None
    breakdown_calls: int = 40
    lag_size: int = 200  # callers in each event-loop lag run (one call each)
    e2e_calls: int = 16
    e2e_concurrency: int = 8
    deadline: float = 240.0  # seconds one call may take before it counts as failed
    quick: bool = False


QUICK = Plan(sizes=[10, 100], paced_sizes=[100], pg_sizes=[10], classic_sizes=[10],
             min_calls=100, classic_min_calls=10,
             pacing=Pacing(prompt=0.05, digit=0.01, key=0.02, silence=0.05), ramp=0.5,
             breakdown_calls=12, lag_size=50, e2e_calls=1, e2e_concurrency=1, quick=True)


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        mem = int(fh.readline().split()[1]) // 1024
    return {"nproc": os.cpu_count(), "cpu": model, "mem_mib": mem,
            "kernel": platform.release(), "python": platform.python_version()}


class Bench:
    """Runs the plan; `report` is the JSON document, `echo` says what is going on."""

    def __init__(self, plan: Plan, workdir: Path, echo: Callable[[str], None]) -> None:
        self.plan = plan
        self.workdir = workdir
        self.echo = echo
        self.report: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": machine(),
            "plan": {k: v for k, v in asdict(plan).items() if k != "pg_url"},
            "mix": f"{scenario.SIGN_IN_EVERY - 1} IMEI inquiries : 1 sign-in + my devices",
            "runs": [],
            "notes": [],
        }
        self.traces: dict[str, list[str]] = {}
        self.index = 0  # unique call numbers across the run (agi_uniqueid)

    # --- helpers --------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        self.report["notes"].append(text)
        self.echo(f"note: {text}")

    def _next_indices(self, count: int) -> int:
        first = self.index
        self.index += count
        return first

    def ours(self, db: scenario.BenchDb, port: int) -> ServerProcess:
        exe = tool("hamta-ivr")
        if exe is None:
            raise RuntimeError("the hamta-ivr command is not installed (pip install -e .)")
        # the sweep measures what one server carries: no load shedding below its largest N
        return ServerProcess(f"hamta-ivr serve ({db.name})",
                             [exe, "serve", "--port", str(port), "--workers",
                              str(self.plan.workers), "--max-calls", str(UNCAPPED),
                              "--metrics", "off"],
                             db.env(), port, self.workdir / "logs" / f"serve-{db.name}.log")

    def floor(self, port: int) -> ServerProcess:
        traces = self.workdir / "traces.json"
        return ServerProcess("floor", [sys.executable, "-m", "bench.floor", "--port",
                                       str(port), "--traces", str(traces)],
                             config.child_env(), port, self.workdir / "logs" / "floor.log")

    def probe(self, db: scenario.BenchDb, port: int, mode: str, workers: int | None = None
              ) -> ServerProcess:
        env = db.env()
        return ServerProcess(f"probe ({mode})", [
            sys.executable, "-m", "bench.probe", "--port", str(port), "--mode", mode,
            "--workers", str(workers or self.plan.workers), "--stats", str(self.stats_path)],
            env, port, self.workdir / "logs" / f"probe-{mode}.log")

    @property
    def stats_path(self) -> Path:
        return self.workdir / "probe-stats.json"

    async def load(self, target: Target, scripts: list[CallScript], n: int, calls: int,
                   pacing: Pacing = NO_PACING, ramp: float = 0.0, by_call: bool = False
                   ) -> LoadRun:
        return await run_load(target, scripts, concurrency=n, calls=calls, pacing=pacing,
                              deadline=self.plan.deadline, ramp=ramp, by_call=by_call,
                              first_index=self._next_indices(calls))

    # --- the phases -----------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        plan = self.plan
        most = max([*plan.sizes, *plan.paced_sizes, *plan.pg_sizes, *plan.classic_sizes,
                    plan.lag_size])
        needed = scenario.subscribers_needed(most)
        sqlite = scenario.sqlite_db(self.workdir / "sqlite")
        self.echo(f"setup: SQLite registry, demo cast + {needed} bench subscribers "
                  "(PINs hashed at production cost)")
        await asyncio.to_thread(scenario.prepare, sqlite, needed)
        self.mix = scenario.mix(needed)
        pg = await self._postgres(needed)
        try:
            await self.calibrate(sqlite)
            for n in plan.sizes:
                await self.measure(None, n, NO_PACING)
                await self.measure(sqlite, n, NO_PACING)
            for n in plan.paced_sizes:
                await self.measure(None, n, plan.pacing)
                await self.measure(sqlite, n, plan.pacing)
            if pg is not None:
                for n in plan.pg_sizes:
                    await self.measure(pg, n, NO_PACING)
            await self.classic(sqlite)
            await self.breakdown(sqlite)
            await self.end_to_end(sqlite)
        finally:
            if pg is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(scenario.drop_postgres, pg)
        self.report["ratios"] = ratios(self.report["runs"])
        self.report["elapsed_s"] = round(time.perf_counter() - started, 1)
        return self.report

    async def _postgres(self, needed: int) -> scenario.BenchDb | None:
        url = self.plan.pg_url
        if not url:
            self.report["postgresql"] = "not run: no server (HAMTA_TEST_PG_URL or --pg URL)"
            self.note(self.report["postgresql"])
            return None
        try:
            pg = await asyncio.to_thread(scenario.postgres_db, url, self.workdir / "pg")
            self.echo(f"setup: PostgreSQL database, demo cast + {needed} bench subscribers")
            await asyncio.to_thread(scenario.prepare, pg, needed)
        except Exception as exc:
            self.report["postgresql"] = f"not run: {str(exc).splitlines()[0][:200]}"
            self.note(self.report["postgresql"])
            return None
        self.report["postgresql"] = "run"
        return pg

    async def calibrate(self, db: scenario.BenchDb) -> None:
        """Record the commands the real server sends for each script: the floor's traces."""
        port = free_port()
        async with self.ours(db, port):
            for script in scenario.script_kinds():
                record = await fastagi_call("127.0.0.1", port, script, self._next_indices(1),
                                            keep_trace=True)
                if not record.ok or not record.trace:
                    raise RuntimeError(f"calibration call {script.name!r} through hamta-ivr "
                                       f"serve failed: {record.error}")
                self.traces[script.name] = record.trace
        (self.workdir / "traces.json").write_text(json.dumps(self.traces, indent=1))
        self.report["commands_per_call"] = {k: len(v) for k, v in self.traces.items()}
        self.echo("calibrated: commands per call " + ", ".join(
            f"{k} {len(v)}" for k, v in self.traces.items()))

    async def measure(self, db: scenario.BenchDb | None, n: int, pacing: Pacing
                      ) -> dict[str, Any]:
        """One measured run at concurrency n: the floor (db None) or `hamta-ivr serve` on db."""
        paced = pacing.paced
        calls = n if paced else max(n, self.plan.min_calls)
        port = free_port()
        if db is None:
            name, server = "floor", self.floor(port)
        else:
            name, server = f"ours-{db.name}", self.ours(db, port)
        target = FastAgiTarget("127.0.0.1", port, trace_arg=db is None)
        self.echo(f"run: {name:18} {'paced' if paced else 'fast':5} N={n:<5} calls={calls}")
        async with server:
            await self.load(target, self.mix, WARMUP_CALLS, WARMUP_CALLS)
            async with Monitor(server.pid) as mon:
                run = await self.load(target, self.mix, n, calls, pacing,
                                      ramp=self.plan.ramp if paced else 0.0)
        return self._record(name, "paced" if paced else "fast", n, run, mon.usage.cpu_s,
                            mon.usage.rss_delta_kib, server, mon.usage.rss_peak_kib)

    def _record(self, name: str, mode: str, n: int, run: LoadRun, cpu_s: float,
                rss_delta_kib: float, server: ServerProcess | None, rss_peak_kib: float = 0
                ) -> dict[str, Any]:
        summary = summarize(run)
        calls = max(1, summary["calls"])
        row = {
            "target": name, "mode": mode, "n": n, **summary,
            "server_cpu_ms_per_call": round(cpu_s * 1000 / calls, 2),
            # below ~100 calls the growth is lost among caches warming up: not a per-call figure
            "rss_kib_per_call": round(rss_delta_kib / run.peak_concurrency, 1)
            if run.peak_concurrency >= 100 else None,
            "rss_peak_mib": round(rss_peak_kib / 1024, 1) if rss_peak_kib else None,
            "generator_cpu_pct": round(100 * run.generator_cpu_s / run.wall_s, 1)
            if run.wall_s else None,
        }
        if summary["failed"]:
            detail = "; ".join(f"{k} ×{v}" for k, v in summary["failures"].items())
            self.note(f"{name} {mode} N={n}: {summary['failed']} failed ({detail})"
                      + (f"; server log: {server.log}" if server else ""))
        self.report["runs"].append(row)
        self.echo(f"     {summary['completed']}/{summary['calls']} ok, "
                  f"{summary['flows_per_s']} flows/s, step p50 {summary['step_ms']['p50']} ms "
                  f"p99 {summary['step_ms']['p99']} ms, CPU {row['server_cpu_ms_per_call']} "
                  f"ms/call")
        return row

    async def classic(self, db: scenario.BenchDb) -> None:
        """Process-per-call AGI: hamta-ivr-agi started for every call, as Asterisk does."""
        exe = tool("hamta-ivr-agi")
        if exe is None or importlib.util.find_spec("ivr.call.classic_agi") is None:
            self.report["classic"] = ("not run: the classic AGI entry point "
                                      "(ivr.call.classic_agi, hamta-ivr-agi) is not there")
            self.note(self.report["classic"])
            return
        self.report["classic"] = "run"
        target = ClassicTarget([exe], db.env())
        for n in self.plan.classic_sizes:
            calls = max(n, self.plan.classic_min_calls)
            self.echo(f"run: {'classic-' + db.name:18} fast  N={n:<5} calls={calls}")
            await self.load(target, self.mix, min(n, 4), min(calls, 8))  # page cache warm
            before = _children_cpu()
            run = await self.load(target, self.mix, n, calls)
            cpu = _children_cpu() - before
            row = self._record(f"classic-{db.name}", "fast", n, run, cpu, 0, None)
            pss = [r.pss_kib for r in run.records if r.pss_kib]
            rss = [r.rss_kib for r in run.records if r.rss_kib]
            # each call is a process of its own: its memory is the memory per concurrent call
            row["rss_kib_per_call"] = round(sum(pss) / len(pss), 1) if pss else None
            row["process_rss_kib"] = round(sum(rss) / len(rss), 1) if rss else None
            row["rss_peak_mib"] = None

    async def breakdown(self, db: scenario.BenchDb) -> None:
        """Where a call's server time goes, and whether hashing stays off the event loop."""
        plan = self.plan
        seq = [scenario.inquiry_script()] * (scenario.SIGN_IN_EVERY - 1) + [
            scenario.my_devices_script(0)]
        calls = plan.breakdown_calls
        self.echo(f"run: where time goes, {calls} calls one at a time (probe, floor)")
        result: dict[str, Any] = {"calls": calls, "mix": "3 inquiries : 1 sign-in"}
        port = free_port()
        async with self.probe(db, port, "pool") as probe:
            target = FastAgiTarget("127.0.0.1", port)
            await self.load(target, seq, 1, 8, by_call=True)
            stats, mon, run = await self._probe_run(probe, target, seq, 1, calls, by_call=True)
        ours_cpu = mon.usage.cpu_s * 1000 / calls
        ours_wall = _server_time_ms(run.records)
        port = free_port()
        async with self.floor(port) as floor:
            target = FastAgiTarget("127.0.0.1", port, trace_arg=True)
            await self.load(target, seq, 1, 8, by_call=True)
            async with Monitor(floor.pid) as fmon:
                frun = await self.load(target, seq, 1, calls, by_call=True)
        floor_cpu = fmon.usage.cpu_s * 1000 / calls
        floor_wall = _server_time_ms(frun.records)
        reg = stats["registry"]
        reg_cpu = sum(v["cpu_s"] for v in reg.values()) * 1000 / calls
        reg_wall = sum(v["wall_s"] for v in reg.values()) * 1000 / calls
        hash_cpu = stats["hash"]["cpu_s"] * 1000 / calls
        hash_wall = stats["hash"]["wall_s"] * 1000 / calls
        await_wall = stats["registry_await_s"] * 1000 / calls
        result["cpu_ms_per_call"] = {
            "total": round(ours_cpu, 2),
            "agi_io": round(floor_cpu, 2),
            "flow_logic": round(max(0.0, ours_cpu - floor_cpu - reg_cpu), 2),
            "database": round(reg_cpu - hash_cpu, 2),
            "hashing": round(hash_cpu, 2),
        }
        result["wall_ms_per_call"] = {
            "total": round(ours_wall, 2),
            "agi_io": round(floor_wall, 2),
            "flow_logic": round(max(0.0, ours_wall - floor_wall - await_wall), 2),
            "database": round(reg_wall - hash_wall, 2),
            "hashing": round(hash_wall, 2),
            "registry_queue": round(max(0.0, await_wall - reg_wall), 2),
        }
        result["hashes"] = stats["hash"]["count"]
        result["hash_threads"] = stats["hash"]["threads"]
        result["registry_calls"] = {k: v["count"] for k, v in reg.items()}
        result["transfer"] = await self._transfers(db, max(4, calls // 4))
        result["event_loop"] = []
        variants = [("pool", plan.workers)]
        if plan.workers != WIDE_POOL and not plan.quick:  # hashing on every core, for contrast
            variants.append(("pool", WIDE_POOL))
        variants.append(("loop", 0))
        for mode, workers in variants:
            n = count = plan.lag_size
            where = (f"in its thread pool ({workers} threads)" if mode == "pool"
                     else "ON THE LOOP (counterfactual)")
            self.echo(f"run: event-loop lag, registry {where}, N={n}")
            port = free_port()
            async with self.probe(db, port, mode, workers or None) as probe:
                target = FastAgiTarget("127.0.0.1", port)
                await self.load(target, self.mix, WARMUP_CALLS, WARMUP_CALLS)
                stats, mon, run = await self._probe_run(probe, target, self.mix, n, count,
                                                        pacing=BRISK, ramp=1.0)
            summary = summarize(run)
            result["event_loop"].append({
                "registry": mode, "workers": workers, "pacing": asdict(BRISK),
                "hashes": stats["hash"]["count"],
                "n": n, "calls": summary["calls"], "completed": summary["completed"],
                "loop_lag_ms": stats["loop_lag_ms"], "step_ms": summary["step_ms"],
                "flows_per_s": summary["flows_per_s"],
                "hash_threads": stats["hash"]["threads"],
            })
        self.report["breakdown"] = result

    async def _transfers(self, db: scenario.BenchDb, count: int) -> dict[str, Any]:
        """Direct transfers one at a time through the probe: each secret verified once (a PIN
        and a code: two argon2 verifications), and where a transfer's CPU goes."""
        self.echo(f"run: where a direct transfer's time goes, {count} transfers one at a time")
        await asyncio.to_thread(scenario.prepare_transfers, db, count)
        port = free_port()
        async with self.probe(db, port, "pool") as probe:
            target = FastAgiTarget("127.0.0.1", port)
            scripts = [scenario.transfer_script(i) for i in range(count)]
            stats, mon, run = await self._probe_run(probe, target, scripts, 1, count,
                                                    by_call=True)
        ok = sum(1 for r in run.records if r.ok)
        reg = stats["registry"]
        reg_cpu = sum(v["cpu_s"] for v in reg.values()) * 1000 / count
        hash_cpu = stats["hash"]["cpu_s"] * 1000 / count
        return {
            "calls": count, "ok": ok,
            "verifications_per_transfer": round(stats["hash"]["count"] / count, 2),
            "cpu_ms_per_transfer": {
                "total": round(mon.usage.cpu_s * 1000 / count, 2),
                "database": round(reg_cpu - hash_cpu, 2),
                "hashing": round(hash_cpu, 2),
            },
        }

    async def _probe_run(self, probe: ServerProcess, target: Target, scripts: list[CallScript],
                         n: int, calls: int, by_call: bool = False, pacing: Pacing = NO_PACING,
                         ramp: float = 0.0) -> tuple[dict[str, Any], Monitor, LoadRun]:
        self.stats_path.unlink(missing_ok=True)
        probe.signal(signal.SIGUSR1)
        await asyncio.sleep(0.1)
        async with Monitor(probe.pid) as mon:
            run = await self.load(target, scripts, n, calls, pacing, ramp, by_call=by_call)
        probe.signal(signal.SIGUSR2)
        for _ in range(100):
            if self.stats_path.exists():
                break
            await asyncio.sleep(0.05)
        return json.loads(self.stats_path.read_text()), mon, run

    async def end_to_end(self, db: scenario.BenchDb) -> None:
        from bench import e2e

        if self.plan.e2e_calls < 1:
            self.report["e2e"] = {"status": "not run: skipped (--no-e2e)"}
            return
        self.echo("run: end to end on the real Asterisk")
        try:
            self.report["e2e"] = await e2e.run(
                db, calls=self.plan.e2e_calls, concurrency=self.plan.e2e_concurrency,
                workdir=self.workdir, echo=self.echo)
        except Exception as exc:  # report why; the rest of the run stands
            self.report["e2e"] = {"status": f"not run: {exc}"}
        status = self.report["e2e"].get("status", "")
        if status.startswith("not run"):
            self.note(f"end to end: {status}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_time_ms(records: list[CallRecord]) -> float:
    """Mean server time of a call: setup + every step + teardown (one call at a time)."""
    ok = [r for r in records if r.ok]
    if not ok:
        return 0.0
    total = sum((r.first_command or 0) + sum(r.latencies) + (r.teardown or 0) for r in ok)
    return total * 1000 / len(ok)


def ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ours/floor at each N and mode; classic/ours where both ran at the same N."""
    by = {(r["target"], r["mode"], r["n"]): r for r in runs}
    out = []
    for (target, mode, n), row in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        if target.startswith("ours-"):
            base = by.get(("floor", mode, n))
            if base:
                out.append(_ratio(f"{target}/floor", mode, n, row, base))
        if target.startswith("classic-"):
            base = by.get((target.replace("classic-", "ours-"), mode, n))
            if base:
                out.append(_ratio(f"{target}/{base['target']}", mode, n, row, base))
    return out


def _ratio(name: str, mode: str, n: int, top: dict[str, Any], bottom: dict[str, Any]
           ) -> dict[str, Any]:
    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    return {
        "ratio": name, "mode": mode, "n": n,
        "step_p50": div(top["step_ms"]["p50"], bottom["step_ms"]["p50"]),
        "step_p99": div(top["step_ms"]["p99"], bottom["step_ms"]["p99"]),
        "setup_p50": div(top["setup_ms"]["p50"], bottom["setup_ms"]["p50"]),
        "cpu_per_call": div(top["server_cpu_ms_per_call"], bottom["server_cpu_ms_per_call"]),
        "flows_per_s": div(top["flows_per_s"], bottom["flows_per_s"]),
        "rss_per_call": div(top["rss_kib_per_call"], bottom["rss_kib_per_call"]),
    }


def raise_fd_limit() -> int:
    """Thousands of calls need thousands of sockets (and the servers inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def run_bench(plan: Plan, workdir: Path | None = None, echo: Callable[[str], None] = print
              ) -> dict[str, Any]:
    limit = raise_fd_limit()
    most = max([*plan.sizes, *plan.paced_sizes, *plan.pg_sizes, *plan.classic_sizes, 1])
    if limit < 2 * most + 200:
        fitted = [n for n in plan.sizes if 2 * n + 200 <= limit]
        echo(f"note: the open-file limit is {limit}; sizes above {(limit - 200) // 2} dropped")
        plan = replace(plan, sizes=fitted,
                       paced_sizes=[n for n in plan.paced_sizes if 2 * n + 200 <= limit],
                       pg_sizes=[n for n in plan.pg_sizes if 2 * n + 200 <= limit])
    folder = workdir or Path(tempfile.mkdtemp(prefix="hamta-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrating the bench databases
    t0 = time.perf_counter()
    plain = echo

    def stamped(line: str) -> None:
        plain(f"[{time.perf_counter() - t0:6.1f}s] {line}")

    echo = stamped
    bench = Bench(plan, folder, echo)
    keep = workdir is not None
    try:
        report = asyncio.run(bench.run())
        keep = keep or any(r["failed"] for r in report["runs"])
        return report
    except BaseException:
        keep = True
        raise
    finally:
        if keep:
            echo(f"databases, traces and server logs kept in {folder}")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
