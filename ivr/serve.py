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

from ivr import config
from ivr.app import Ivr
from ivr.asterisk.config import spool_dir
from ivr.call.fastagi import FastAgiServer, ServerSettings, run_server
from ivr.call.idle import idle_limit
from ivr.config import ConfigError, Settings
from ivr.metrics import MetricsServer
from ivr.supervisor import supervise
from ivr.usage import UsageError

log = logging.getLogger(__name__)

MAX_CALLS_ENV = "HAMTA_MAX_CALLS"
IDLE_LIMIT_ENV = "HAMTA_IDLE_LIMIT"
METRICS_ENV = "HAMTA_METRICS"


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


def checked_settings(flags: ServeFlags) -> Settings:
    """Every setting, serve's flags on top, each checked once by the settings room (a bad one is
    one line naming it, exit 2); installed as the process's (ivr.config.current())."""
    settings = Settings.load(flags={
        "db_url": flags.db, "agi_host": flags.host, "agi_port": flags.port,
        "workers": flags.workers, "drain": flags.drain, "max_calls": flags.max_calls,
        "idle_limit": flags.idle_limit, "processes": flags.processes, "metrics": flags.metrics})
    config.use(settings)
    return settings


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
    until SIGTERM/SIGINT; the exit code. The Settings are the process's while it serves."""
    settings = checked_settings(flags)
    try:
        return _serve(flags, settings)
    finally:
        config.use(None)


def _serve(flags: ServeFlags, settings: Settings) -> int:
    if settings.processes > 1 and settings.agi.port == 0:
        raise UsageError("--processes needs a fixed --port: the processes share it")
    sounds = settings.sounds_dir
    server = ServerSettings(host=settings.agi.host, port=settings.agi.port, sounds=sounds,
                            spool=spool_dir(), drain_seconds=settings.drain,
                            max_calls=settings.max_calls,
                            command_timeout=settings.idle_limit or idle_limit(sounds))
    metrics_chosen = "metrics" in settings.raw  # set, not the default: a taken port stops serve
    workers, metrics_at, processes = settings.workers, settings.metrics, settings.processes
    if processes == 1:
        return serve_one(flags.db, workers, server, metrics_at, metrics_chosen)
    return serve_many(processes, flags.db, workers, server, metrics_at, metrics_chosen)


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
