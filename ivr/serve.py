"""What `hamta-ivr serve` runs: the FastAGI server Asterisk's dialplan calls (`AGI(agi://…/hamta)`).

Before it listens it checks that it can work: the settings are sane (a bad one is a usage error
naming it, exit 2), the registry is reachable and takes writes (closing the calls a crash of this
server left "in progress" as `interrupted` proves it; a read-only database is named with the fix),
and the spool holds no secret file a crash left behind. While it serves, calls whose end the
database could not take (an outage) are closed as `interrupted` once it takes writes again.

While it serves, a loopback HTTP endpoint (`--metrics`, HAMTA_METRICS, default 127.0.0.1:9573;
`off` disables it) shows the Prometheus metrics (`/metrics`) and the probes a load balancer or
systemd uses (`/healthz`, `/readyz`; see ivr.metrics). A port that is taken stops serve when it
was set, and only costs the endpoint (one warning) when it is the default. Each call's end is one
JSON line on standard output (the `ivr.calls` logger); the human log stays on standard error.

`processes` > 1 (HAMTA_PROCESSES): N forked processes accept on the same port (SO_REUSEPORT: the
kernel spreads the connections), each with its own event loop, registry pools and metrics;
process i (1..N) is `host:port/i` in the call log and serves its metrics on the metrics port + i
- 1. The parent only watches (ivr.supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ivr.app import Ivr
from ivr.asterisk.config import spool_dir
from ivr.call.fastagi import MAX_CALLS, FastAgiServer, ServerSettings, run_server
from ivr.call.idle import idle_limit
from ivr.config import ConfigError, agi_address, setting, setting_source, staff_queue
from ivr.metrics import MetricsServer, parse_address
from ivr.prompts.layout import sounds_dir
from ivr.supervisor import supervise
from ivr.usage import UsageError

log = logging.getLogger(__name__)

MAX_CALLS_ENV = "HAMTA_MAX_CALLS"
IDLE_LIMIT_ENV = "HAMTA_IDLE_LIMIT"
METRICS_ENV = "HAMTA_METRICS"
DRAIN_SECONDS = 120.0


@dataclass(frozen=True)
class ServeFlags:
    """What the serve command was given; None: the setting (environment, config file) decides."""

    db: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int | None = None
    drain: float | None = None
    max_calls: int | None = None
    idle_limit: float | None = None
    metrics: str | None = None
    processes: int | None = None


def _number(value: object, name: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(str(value))
    except ValueError:
        raise UsageError(f"{name} {value!r} is not a number") from None


def _setting(given: object, flag: str, key: str, kind: type[int] | type[float]
             ) -> tuple[int | float | None, str]:
    """A serve setting: the flag, else the environment or the config file (ivr.config.setting);
    (its value or None when unset, the name to quote in an error)."""
    if given is not None:
        return _number(given, flag, kind), flag
    raw, name = setting(key), setting_source(key)
    return (None if raw in (None, "") else _number(raw, name, kind)), name


def checked_settings(flags: ServeFlags) -> tuple[int | None, float, int, float | None]:
    """(workers, drain, max_calls, idle limit or None to derive it); UsageError names the bad
    one."""
    workers, name = _setting(flags.workers, "--workers", "workers", int)
    if workers is not None and not 1 <= workers <= 64:
        raise UsageError(f"{name} {workers}: give 1-64 hashing threads (or leave it out: one per "
                         "CPU but one)")
    drain, name = _setting(flags.drain, "--drain", "drain", float)
    drain = DRAIN_SECONDS if drain is None else drain
    if not 0 <= drain <= 3600:  # NaN fails too
        raise UsageError(f"{name} {drain:g}: give 0-3600 seconds for running calls to end")
    max_calls, name = _setting(flags.max_calls, "--max-calls", "max_calls", int)
    max_calls = MAX_CALLS if max_calls is None else max_calls
    if not 1 <= max_calls <= 100_000:
        raise UsageError(f"{name} {max_calls}: give 1-100000 calls in progress (default "
                         f"{MAX_CALLS})")
    idle, name = _setting(flags.idle_limit, "--idle-limit", "idle_limit", float)
    if idle is not None and not 1 <= idle <= 3600:
        raise UsageError(f"{name} {idle:g}: give 1-3600 seconds (or leave it out: derived from "
                         "the built prompts)")
    return (None if workers is None else int(workers)), float(drain), int(max_calls), idle


def checked_processes(given: int | None) -> int:
    """--processes, else HAMTA_PROCESSES / `processes`, else 1; UsageError names a bad one."""
    processes, name = _setting(given, "--processes", "processes", int)
    processes = 1 if processes is None else int(processes)
    if not 1 <= processes <= 64:
        raise UsageError(f"{name} {processes}: give 1-64 processes (e.g. one per core)")
    return processes


def metrics_address(given: str | None) -> tuple[str, int] | None:
    """--metrics, else HAMTA_METRICS, else 127.0.0.1:9573; None for `off`. UsageError names the
    bad one."""
    raw, name = (given, "--metrics") if given is not None else (metrics_setting(), METRICS_ENV)
    try:
        return parse_address(raw or None)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}; give HOST:PORT (default 127.0.0.1:9573) or off"
                         ) from None


def metrics_setting() -> str | None:
    """HAMTA_METRICS, else the config file's `metrics` key."""
    return setting("metrics") or None


def call_lines_to_stdout() -> None:
    """The `ivr.calls` JSON lines, bare, on standard output (the journal keeps both streams)."""
    calls = logging.getLogger("ivr.calls")
    if not any(getattr(h, "hamta_calls", False) for h in calls.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.hamta_calls = True  # type: ignore[attr-defined]
        calls.addHandler(handler)
    calls.setLevel(logging.INFO)
    calls.propagate = False


def check_registry(ivr: Ivr, server: str) -> int:
    """Close this server's stale calls: the registry is reachable and takes writes. ConfigError
    naming HAMTA_DB_URL/--db and the fix otherwise."""
    try:
        return ivr.registry.call_log.close_stale(server, datetime.now(UTC))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        if "readonly" in reason.replace("-", "").replace(" ", "").lower():
            raise ConfigError(
                f"the registry (HAMTA_DB_URL/--db) does not take writes ({reason}); serve needs "
                "a writable database: fix the file's owner or mode (and its folder's), drop "
                "mode=ro, or point HAMTA_DB_URL/--db at the writable registry") from None
        raise ConfigError(
            f"the registry (HAMTA_DB_URL/--db) cannot be written ({reason}); check that the "
            "database is up and HAMTA_DB_URL/--db names it, then `hamta-ivr db upgrade`"
        ) from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"the registry (HAMTA_DB_URL/--db) cannot be written "
                          f"({type(exc).__name__}); check HAMTA_DB_URL/--db") from None


def _warn_file_limit(max_calls: int) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < max_calls + 64:
        log.warning("open-file limit %d is below --max-calls %d + 64: raise it (ulimit -n, "
                    "LimitNOFILE=) or lower --max-calls", soft, max_calls)


def serve(flags: ServeFlags) -> int:
    """Check every setting once, then serve (one process, or `processes` under a supervisor)
    until SIGTERM/SIGINT; the exit code."""
    workers, drain, max_calls, idle = checked_settings(flags)
    staff_queue()  # `0` to a person: a bad staff_queue/staff_hours/staff_wait fails here, once
    processes = checked_processes(flags.processes)
    metrics_at = metrics_address(flags.metrics)
    metrics_chosen = bool(flags.metrics or metrics_setting())
    address = agi_address(flags.host, flags.port)
    if processes > 1 and address.port == 0:
        raise UsageError("--processes needs a fixed --port: the processes share it")
    sounds = sounds_dir()
    settings = ServerSettings(host=address.host, port=address.port, sounds=sounds,
                              spool=spool_dir(), drain_seconds=drain, max_calls=max_calls,
                              command_timeout=idle if idle is not None else idle_limit(sounds))
    if processes == 1:
        return serve_one(flags.db, workers, settings, metrics_at, metrics_chosen)
    return serve_many(processes, flags.db, workers, settings, metrics_at, metrics_chosen)


def serve_one(db: str | None, workers: int | None, settings: ServerSettings,
              metrics_at: tuple[str, int] | None, metrics_chosen: bool) -> int:
    """One server (one process, one event loop) until SIGTERM/SIGINT; its name in the call log
    is settings.name, else host:port."""
    server = settings.name or f"{settings.host}:{settings.port}"
    ivr = Ivr.open(db, workers=workers, server=server)
    try:
        closed = check_registry(ivr, server)
    except BaseException:
        ivr.close()
        raise
    if closed:
        log.warning("%d call(s) this server (%s) left in progress closed as interrupted", closed,
                    server)
    _warn_file_limit(settings.max_calls)
    ivr.warn_without_sms()

    call_lines_to_stdout()
    try:
        run_server(_serve_calls(ivr, settings, metrics_at, metrics_chosen))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}; "
                          "is another server running? (--port / HAMTA_AGI_PORT)") from None
    log.info("FastAGI server %s stopped", server)
    return 0


async def _serve_calls(ivr: Ivr, settings: ServerSettings, metrics_at: tuple[str, int] | None,
                       metrics_chosen: bool) -> None:
    """The server, its metrics endpoint and the closer of unended calls, until signalled."""
    try:
        server = FastAgiServer(settings, ivr.handle)
        endpoint = None
        if metrics_at is not None:
            endpoint = MetricsServer(*metrics_at, ready=lambda: server.readiness(ivr.desk.ping))
            try:
                await endpoint.start()
            except OSError as exc:
                problem = (f"cannot listen on {metrics_at[0]}:{metrics_at[1]} for metrics: "
                           f"{exc.strerror}; is another server running? (--metrics / "
                           f"{METRICS_ENV}: another port, or off)")
                if metrics_chosen:  # a setting is a promise; the default is best effort
                    raise ConfigError(problem) from None
                log.warning("%s; serving calls without metrics", problem)
                endpoint = None
        # calls cut by a database failure: closed as interrupted once it is back, even when
        # nobody calls or probes (AsyncRegistry.close_unended)
        closer = asyncio.create_task(ivr.desk.keep_closing_unended(), name="unended-calls")
        try:
            await server.serve_until_signalled()
        finally:
            closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer
            if endpoint is not None:  # up while calls drain: /readyz says 503 meanwhile
                await endpoint.stop()
    finally:
        ivr.close()


def _check_port_shared(host: str, port: int) -> None:
    """The port can be shared (SO_REUSEPORT): not held by a server that did not ask to share it.
    ConfigError naming it otherwise, once, before any process starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; is another "
                              "server running? (--port / HAMTA_AGI_PORT)") from None


def serve_many(processes: int, db: str | None, workers: int | None, settings: ServerSettings,
               metrics_at: tuple[str, int] | None, metrics_chosen: bool) -> int:
    """`processes` forked servers on one port (SO_REUSEPORT), watched by this process: SIGTERM
    or SIGINT drains them all; one that dies is logged and started again."""
    base = f"{settings.host}:{settings.port}"
    _check_port_shared(settings.host, settings.port)
    # settings and registry checked once, here, so a mistake is one line (each process still
    # closes the calls its predecessor left when it starts)
    ivr = Ivr.open(db, workers=1, server=base)
    try:
        for index in range(1, processes + 1):
            check_registry(ivr, f"{base}/{index}")
        ivr.warn_without_sms()
    finally:
        ivr.close()

    def child(index: int) -> int:
        mine = replace(settings, reuse_port=True, name=f"{base}/{index}")
        metrics = None if metrics_at is None else (metrics_at[0], metrics_at[1] + index - 1)
        log.info("process %d of %d (pid %d): %s", index, processes, os.getpid(), mine.name)
        try:
            return serve_one(db, workers, mine, metrics, metrics_chosen)
        except ConfigError as exc:
            print(f"hamta-ivr: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2
        except BaseException:
            log.exception("process %d failed", index)
            return 1

    code = supervise(processes, child, f"FastAGI processes on {base} (SO_REUSEPORT)")
    log.info("FastAGI server stopped")
    return code
