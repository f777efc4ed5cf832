"""`hamta-ivr serve`: the FastAGI server Asterisk's dialplan calls (`AGI(agi://…/hamta)`).

Before it listens it checks that it can work: the settings are sane (a bad one is a usage error
naming it, exit 2), the registry is reachable and takes writes (closing the calls a crash of this
server left "in progress" as `interrupted` proves it; a read-only database is named with the fix),
and the spool holds no secret file a crash left behind.

While it serves, a loopback HTTP endpoint (`--metrics`, HAMTA_METRICS, default 127.0.0.1:9573;
`off` disables it) shows the Prometheus metrics (`/metrics`) and the probes a load balancer or
systemd uses (`/healthz`, `/readyz`; see ivr.metrics). A port that is taken stops serve when it
was set, and only costs the endpoint (one warning) when it is the default. Each call's end is one
JSON line on standard output (the `ivr.calls` logger); the human log stays on standard error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
from datetime import UTC, datetime

log = logging.getLogger(__name__)

MAX_CALLS_ENV = "HAMTA_MAX_CALLS"
IDLE_LIMIT_ENV = "HAMTA_IDLE_LIMIT"
METRICS_ENV = "HAMTA_METRICS"
DRAIN_SECONDS = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser(
        "serve", help="run the FastAGI server (the IVR Asterisk calls)",
        description="Answers AGI(agi://HOST:PORT/hamta) for every call and runs the main flow "
        "against the registry. Loopback by default. SIGTERM/Ctrl-C: stop accepting calls, let "
        "running calls end (up to --drain seconds).",
    )
    serve.add_argument("--host", help="listen address (default HAMTA_AGI_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default HAMTA_AGI_PORT or 4573)")
    serve.add_argument("--workers", type=int,
                       help="threads that hash secrets (default: one per CPU but one, 1-8); quick "
                       "database work has its own 4")
    serve.add_argument("--drain", type=float,
                       help="seconds running calls get to end after SIGTERM (default HAMTA_DRAIN "
                       "or 120)")
    serve.add_argument("--max-calls", type=int, metavar="N",
                       help=f"calls in progress at most; a caller above it hears 'busy' and the "
                       f"dialplan gets HAMTA_RESULT=busy (default {MAX_CALLS_ENV} or 500)")
    serve.add_argument("--idle-limit", type=float, metavar="SECONDS",
                       help=f"seconds one AGI command may go unanswered before the call is "
                       f"dropped (default {IDLE_LIMIT_ENV}, else the longest built prompt plus "
                       "the digit timeouts and 15 s, 120 without built audio)")
    serve.add_argument("--metrics", metavar="HOST:PORT",
                       help=f"Prometheus /metrics and the /healthz, /readyz probes (default "
                       f"{METRICS_ENV} or 127.0.0.1:9573; `off`: none)")
    serve.set_defaults(func=run_serve)


def _usage(message: str) -> Exception:
    from ivr.cli import UsageError

    return UsageError(message)


def _number(value: object, name: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(str(value))
    except ValueError:
        raise _usage(f"{name} {value!r} is not a number") from None


def _setting(given: object, flag: str, key: str, kind: type[int] | type[float]
             ) -> tuple[int | float | None, str]:
    """A serve setting: the flag, else the environment or the config file (ivr.config.setting);
    (its value or None when unset, the name to quote in an error)."""
    from ivr.config import setting, setting_source

    if given is not None:
        return _number(given, flag, kind), flag
    raw, name = setting(key), setting_source(key)
    return (None if raw in (None, "") else _number(raw, name, kind)), name


def checked_settings(args: argparse.Namespace) -> tuple[int | None, float, int, float | None]:
    """(workers, drain, max_calls, idle limit or None to derive it); UsageError names the bad
    one."""
    from ivr.call.fastagi import MAX_CALLS

    workers, name = _setting(args.workers, "--workers", "workers", int)
    if workers is not None and not 1 <= workers <= 64:
        raise _usage(f"{name} {workers}: give 1-64 hashing threads (or leave it out: one per "
                     "CPU but one)")
    drain, name = _setting(args.drain, "--drain", "drain", float)
    drain = DRAIN_SECONDS if drain is None else drain
    if not 0 <= drain <= 3600:  # NaN fails too
        raise _usage(f"{name} {drain:g}: give 0-3600 seconds for running calls to end")
    max_calls, name = _setting(args.max_calls, "--max-calls", "max_calls", int)
    max_calls = MAX_CALLS if max_calls is None else max_calls
    if not 1 <= max_calls <= 100_000:
        raise _usage(f"{name} {max_calls}: give 1-100000 calls in progress (default "
                     f"{MAX_CALLS})")
    idle, name = _setting(args.idle_limit, "--idle-limit", "idle_limit", float)
    if idle is not None and not 1 <= idle <= 3600:
        raise _usage(f"{name} {idle:g}: give 1-3600 seconds (or leave it out: derived from the "
                     "built prompts)")
    return (None if workers is None else int(workers)), float(drain), int(max_calls), idle


def metrics_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """--metrics, else HAMTA_METRICS, else 127.0.0.1:9573; None for `off`. UsageError names the
    bad one."""
    from ivr.metrics import parse_address

    given = getattr(args, "metrics", None)
    raw, name = (given, "--metrics") if given is not None else (metrics_setting(), METRICS_ENV)
    try:
        return parse_address(raw or None)
    except ValueError as exc:
        raise _usage(f"{name}: {exc}; give HOST:PORT (default 127.0.0.1:9573) or off") from None


def metrics_setting() -> str | None:
    """HAMTA_METRICS, else the config file's `metrics` key."""
    from ivr.config import setting

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


def check_registry(ivr: object, server: str) -> int:
    """Close this server's stale calls: the registry is reachable and takes writes. ConfigError
    naming HAMTA_DB_URL/--db and the fix otherwise."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from ivr.app import Ivr
    from ivr.config import ConfigError

    assert isinstance(ivr, Ivr)
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


def run_serve(args: argparse.Namespace) -> int:
    from ivr.app import Ivr
    from ivr.asterisk.config import sounds_dir, spool_dir
    from ivr.call.fastagi import FastAgiServer, ServerSettings, idle_limit
    from ivr.config import ConfigError, agi_address

    workers, drain, max_calls, idle = checked_settings(args)
    metrics_at = metrics_address(args)
    metrics_chosen = bool(getattr(args, "metrics", None) or metrics_setting())
    address = agi_address(args.host, args.port)
    sounds = sounds_dir()
    settings = ServerSettings(host=address.host, port=address.port, sounds=sounds,
                              spool=spool_dir(), drain_seconds=drain, max_calls=max_calls,
                              command_timeout=idle if idle is not None else idle_limit(sounds))
    server = f"{address.host}:{address.port}"
    ivr = Ivr.open(args.db, workers=workers, server=server)
    try:
        closed = check_registry(ivr, server)
    except BaseException:
        ivr.close()
        raise
    if closed:
        log.warning("%d call(s) this server (%s) left in progress closed as interrupted", closed,
                    server)
    _warn_file_limit(max_calls)

    call_lines_to_stdout()

    async def run() -> None:
        from ivr.metrics import MetricsServer

        try:
            server = FastAgiServer(settings, ivr.handle)
            endpoint = None
            if metrics_at is not None:
                endpoint = MetricsServer(*metrics_at,
                                         ready=lambda: server.readiness(ivr.desk.ping))
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
            try:
                await server.serve_until_signalled()
            finally:
                if endpoint is not None:  # up while calls drain: /readyz says 503 meanwhile
                    await endpoint.stop()
        finally:
            ivr.close()

    try:
        asyncio.run(run())
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address.host}:{address.port}: {exc.strerror}; "
                          "is another server running? (--port / HAMTA_AGI_PORT)") from None
    log.info("FastAGI server stopped")
    return 0
