"""A bench-only FastAGI server: the production server and flows, with timing around the registry.

Runs `ivr.call.fastagi.FastAgiServer` with `ivr.app.Ivr` exactly as `hamta-ivr serve` does,
with timers on the registry's declared hook (ivr.registry.observe; in this process only, no
production module changes):
- every registry question: its wall and thread CPU in its worker thread (the database work), and
  the time the flows awaited it (queueing for a worker included),
- the hasher is timed inside it (argon2: the hashing),
- a ticker task measures event-loop lag: how late a 5 ms sleep wakes up. Were hashing on the
  loop, every sign-in would stall all calls for a hash's ~20-60 ms and the lag would show it.
`--mode loop` is that counterfactual: the registry's pools run each question on the event loop
(never do this).

Signals: SIGUSR1 resets the figures, SIGUSR2 writes them to --stats (JSON), SIGTERM stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, cast

from ivr.registry.aio import AsyncRegistry
from ivr.registry.observe import Asked, Observer, attach

LAG_INTERVAL = 0.005
MAX_LAG_SAMPLES = 500_000


class Stats:
    """Figures shared by the event loop and the registry's worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls = 0
            self.registry: dict[str, list[float]] = {}  # method -> [count, wall, cpu]
            self.registry_await = 0.0
            self.hash_count = 0
            self.hash_wall = 0.0
            self.hash_cpu = 0.0
            self.lag: list[float] = []
            self.hash_threads: set[str] = set()

    def add_registry(self, name: str, wall: float, cpu: float) -> None:
        with self.lock:
            entry = self.registry.setdefault(name, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += wall
            entry[2] += cpu

    def add_hash(self, wall: float, cpu: float) -> None:
        with self.lock:
            self.hash_count += 1
            self.hash_wall += wall
            self.hash_cpu += cpu
            self.hash_threads.add(threading.current_thread().name)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            lag = sorted(self.lag)
            from bench.load import percentile

            def ms(v: float | None) -> float | None:
                return None if v is None else round(v * 1000, 3)

            return {
                "calls": self.calls,
                "registry_await_s": self.registry_await,
                "registry": {k: {"count": int(v[0]), "wall_s": v[1], "cpu_s": v[2]}
                             for k, v in self.registry.items()},
                "hash": {"count": self.hash_count, "wall_s": self.hash_wall,
                         "cpu_s": self.hash_cpu, "threads": sorted(self.hash_threads)},
                "loop_lag_ms": {"samples": len(lag), "p50": ms(percentile(lag, 50)),
                                "p99": ms(percentile(lag, 99)),
                                "max": ms(lag[-1] if lag else None)},
            }


STATS = Stats()


def _thread_timed(fn: Any, record: Any) -> Any:
    """`fn`, reporting (wall, thread CPU) seconds of each call to `record`."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            record(time.perf_counter() - wall, time.thread_time() - cpu)
    return timed


class TimedHasher:
    """The registry's SecretHasher, timed (hash, verify and needs_rehash all hash or parse)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name not in ("hash", "verify"):
            return value
        return _thread_timed(value, STATS.add_hash)


class Timers(Observer):
    """Each registry question's thread wall and CPU, and the time awaited on the loop."""

    def question(self, asked: Asked) -> None:
        STATS.add_registry(asked.name, asked.ran, asked.cpu)
        STATS.registry_await += asked.took  # told on the event loop: no lock needed


class OnTheLoop(Executor):
    """The counterfactual's pool: runs each job at once, on the thread that submits it (the
    event loop's), blocking every other call meanwhile."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            done.set_exception(exc)
        return done


def on_the_loop(desk: AsyncRegistry) -> AsyncRegistry:
    """`desk` with every pool replaced by OnTheLoop."""
    for name, pool in desk.pools.items():
        pool.shutdown(wait=True)
        desk.pools[name] = OnTheLoop()
    return desk


async def ticker() -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(LAG_INTERVAL)
        late = time.perf_counter() - started - LAG_INTERVAL
        if len(STATS.lag) < MAX_LAG_SAMPLES:
            STATS.lag.append(max(0.0, late))


def write_stats(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(STATS.snapshot()))
    os.replace(tmp, path)


async def serve(port: int, mode: str, workers: int, stats_path: Path) -> None:
    from ivr.app import Ivr
    from ivr.asterisk.config import spool_dir
    from ivr.call.fastagi import FastAgiServer, ServerSettings
    from ivr.config import db_url
    from ivr.prompts.layout import sounds_dir
    from ivr.registry.hashing import SecretHasher
    from ivr.registry.service import Registry

    # the hasher's wrapper stands in for it by duck typing (this server only)
    registry = Registry.open(db_url())
    registry.store.hasher = cast(SecretHasher, TimedHasher(registry.store.hasher))
    desk = AsyncRegistry(registry, workers=workers)
    if mode == "loop":
        on_the_loop(desk)
    attach(Timers())
    ivr = Ivr(registry, desk=desk)

    async def handle(call: Any) -> Any:
        STATS.calls += 1
        return await ivr.handle(call)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, STATS.reset)
    loop.add_signal_handler(signal.SIGUSR2, write_stats, stats_path)
    settings = ServerSettings(host="127.0.0.1", port=port, sounds=sounds_dir(),
                              spool=spool_dir(), drain_seconds=5, max_calls=100_000)
    tick = asyncio.create_task(ticker())
    try:
        await FastAgiServer(settings, handle).serve_until_signalled()
    finally:
        tick.cancel()
        desk.close()
        registry.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("pool", "loop"), default="pool")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--stats", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.mode, args.workers, args.stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
