"""What the IVR counts, and the loopback HTTP endpoint that shows it: every Prometheus metric is
defined here, in one registry (`REGISTRY`, which tests read). The call server (ivr.call.fastagi)
counts directly; the registry is watched through its hook, ivr.registry.observe, where this
module attaches `PROMETHEUS` when imported (the registry imports no metrics).

    hamta_calls_in_progress                    calls being handled now (not those turned away)
    hamta_calls_total{outcome}                 calls ended, by the call-log outcome's first part
    hamta_calls_turned_away_total{overflow}    callers told "busy" (overflow=yes: handed back to
                                               the dialplan for another server)
    hamta_step_seconds{kind}                   our reply -> the next AGI command: the pause a caller
                                               hears after a key; kind=hashing when a question
                                               that hashes a secret ran in that pause, else plain
    hamta_registry_seconds{question}           one registry question (sign_in, check_code, …),
                                               queueing for a thread included
    hamta_registry_queue{pool}                 questions waiting for a thread (hashing, database)
    hamta_sign_in_failures_total               wrong kartabl PINs (the spraying signal)
    hamta_lockouts_total{secret}               locks engaged (secret=pin; code when counted)
    hamta_prompts_missing_total                prompts Asterisk could not play

Labels are bounded sets, never a number, caller ID or call id: the hot path costs a clock read
and a lock per observation. Per process: with several `serve` processes each needs its own
metrics port.

The endpoint (`MetricsServer`, run by `hamta-ivr serve` on the event loop it reports on):
`/metrics` (Prometheus text), `/healthz` (200 while the process and its event loop answer),
`/readyz` (200 when the server takes calls, is under its cap and the registry answers, else 503
with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from ivr import config
from ivr.registry import observe
from ivr.registry.aio import HASHING, questions
from ivr.registry.aio import NotReady as NotReady  # the registry's ping raises it; /readyz says it

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = config.DEFAULT_METRICS
METRICS_ENV = "HAMTA_METRICS"

disable_created_metrics()  # no `_created` series beside every counter: half the lines to scrape
REGISTRY = CollectorRegistry(auto_describe=True)

# The outcome label: the call log outcome's first part (`transfer:completed` -> transfer): an
# operation of the menu (`outcomes()`) or one of these ends of a call; any other value is counted
# as `other`, so a bug can never grow the label set.
CALL_ENDS = frozenset({"hung_up", "timed_out", "gave_up", "error", "busy", "interrupted",
                       "handoff"})  # handoff: `0`, to a person (ivr.flows.staff)
OTHER = "other"

CALLS_IN_PROGRESS = Gauge("hamta_calls_in_progress", "Calls being handled now",
                          registry=REGISTRY)
CALLS = Counter("hamta_calls", "Calls ended, by the call log outcome's first part",
                ["outcome"], registry=REGISTRY)
TURNED_AWAY = Counter("hamta_calls_turned_away", "Callers told busy (over --max-calls)",
                      ["overflow"], registry=REGISTRY)
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STEP_SECONDS = Histogram(
    "hamta_step_seconds", "From an AGI reply to our next command: the pause a caller hears",
    ["kind"], buckets=STEP_BUCKETS, registry=REGISTRY)
REGISTRY_SECONDS = Histogram(
    "hamta_registry_seconds", "One registry question, waiting for a thread included",
    ["question"], buckets=STEP_BUCKETS, registry=REGISTRY)
REGISTRY_QUEUE = Gauge("hamta_registry_queue", "Registry questions waiting for a thread",
                       ["pool"], registry=REGISTRY)
SIGN_IN_FAILURES = Counter("hamta_sign_in_failures", "Wrong kartabl PINs", registry=REGISTRY)
LOCKOUTS = Counter("hamta_lockouts", "Locks engaged after too many wrong secrets", ["secret"],
                   registry=REGISTRY)
PROMPTS_MISSING = Counter("hamta_prompts_missing", "Prompts Asterisk could not play",
                          registry=REGISTRY)

STEP_PLAIN = STEP_SECONDS.labels("plain")
STEP_HASHING = STEP_SECONDS.labels("hashing")
for _secret in ("pin", "code"):
    LOCKOUTS.labels(_secret)


def outcomes() -> frozenset[str]:
    """The outcome labels but `other`: the operations the menu offers (the menu's own
    ivr.flows.session.OPERATION_NAMES, imported only when asked) and CALL_ENDS."""
    from ivr.flows.session import OPERATION_NAMES

    return frozenset(OPERATION_NAMES) | CALL_ENDS


@functools.cache
def _calls() -> dict[str, Counter]:
    """hamta_calls_total by label, every series made at once (a dashboard sees 0, not nothing):
    when the metrics endpoint starts, else at the first call's end."""
    return {outcome: CALLS.labels(outcome) for outcome in (*outcomes(), OTHER)}


def outcome_label(outcome: object) -> str:
    """The label of a call-log outcome: its first part, from a bounded set."""
    first = str(outcome).partition(":")[0]
    return first if first in _calls() and first != OTHER else OTHER


def call_ended(outcome: object) -> None:
    _calls()[outcome_label(outcome)].inc()


def value(name: str, labels: dict[str, str] | None = None) -> float:
    """A sample's current value (0 when absent): for tests and `doctor`."""
    found = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if found is None else found


# --- per call: registry time, and whether a step hashed -------------------------------------------
@dataclass
class CallTimes:
    """What one call spent waiting for the registry (the call's task holds it in CURRENT)."""

    started: float
    registry_seconds: float = 0.0
    hashed: bool = False  # a hashing question ran since the last AGI reply


CURRENT: contextvars.ContextVar[CallTimes | None] = contextvars.ContextVar("hamta_call",
                                                                           default=None)


def begin_call() -> CallTimes:
    """Start counting for the call running in this task."""
    times = CallTimes(time.perf_counter())
    CURRENT.set(times)
    return times


def registry_waited(seconds: float, hashing: bool) -> None:
    times = CURRENT.get()
    if times is not None:
        times.registry_seconds += seconds
        times.hashed = times.hashed or hashing


def step(seconds: float) -> None:
    """One pause between an AGI reply and our next command."""
    times = CURRENT.get()
    if times is not None and times.hashed:
        times.hashed = False
        STEP_HASHING.observe(seconds)
    else:
        STEP_PLAIN.observe(seconds)


# --- the registry, through its hook -------------------------------------------------------------
class Prometheus(observe.Observer):
    """The registry's questions, locks and wrong PINs as the metrics above."""

    def __init__(self) -> None:
        # every question's and pool's series made now (a dashboard sees 0, not nothing)
        declared = questions()
        self.seconds = {name: REGISTRY_SECONDS.labels(name) for name in declared}
        self.queue = {pool: REGISTRY_QUEUE.labels(pool) for pool in declared.values()}

    def waiting(self, pool: str, change: int) -> None:
        queue = self.queue.get(pool) or self.queue.setdefault(pool, REGISTRY_QUEUE.labels(pool))
        queue.inc(change)

    def question(self, asked: observe.Asked) -> None:
        name = asked.name  # a question declared since (a test's own desk) gets its series now
        seconds = self.seconds.get(name) or self.seconds.setdefault(
            name, REGISTRY_SECONDS.labels(name))
        seconds.observe(asked.took)
        registry_waited(asked.took, asked.pool == HASHING)

    def lockouts(self, secret: str, count: int) -> None:
        LOCKOUTS.labels(secret).inc(count)

    def sign_in_failed(self) -> None:
        SIGN_IN_FAILURES.inc()


PROMETHEUS = Prometheus()
observe.attach(PROMETHEUS)


# --- the endpoint --------------------------------------------------------------------------------
Readiness = Callable[[], Awaitable[str | None]]  # None: ready; else the reason it is not
REQUEST_TIMEOUT = 5.0
MAX_REQUEST_BYTES = 8192


parse_address = config.parse_metrics_address  # its home is the settings room now


class MetricsServer:
    """`/metrics`, `/healthz`, `/readyz` over plain HTTP/1.0 on the event loop being watched."""

    def __init__(self, host: str, port: int, ready: Readiness | None = None) -> None:
        self.host, self.wanted_port, self.ready = host, port, ready
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        _calls()  # every outcome a series from the first scrape
        self.server = await asyncio.start_server(self._serve, self.host, self.wanted_port)
        log.info("metrics on http://%s:%d/metrics (health: /healthz, /readyz)", self.host,
                 self.port)

    @property
    def port(self) -> int:
        if self.server and self.server.sockets:
            return int(self.server.sockets[0].getsockname()[1])
        return self.wanted_port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("", "")
            status, ctype, body = await self._answer(method, path)
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode("latin-1"))
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, method: str, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", text, b"GET only\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(REGISTRY)
        if path == "/healthz":
            return "200 OK", text, b"ok\n"
        if path == "/readyz":
            reason = await self.ready() if self.ready is not None else None
            if reason is None:
                return "200 OK", text, b"ready\n"
            return "503 Service Unavailable", text, f"not ready: {reason}\n".encode()
        return "404 Not Found", text, b"/metrics, /healthz or /readyz\n"
