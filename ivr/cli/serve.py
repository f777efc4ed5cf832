"""`hamta-ivr serve`: the FastAGI server Asterisk's dialplan calls (ivr.serve does the work)."""

from __future__ import annotations

import argparse

from ivr.serve import IDLE_LIMIT_ENV, MAX_CALLS_ENV, METRICS_ENV, ServeFlags, serve


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "serve", help="run the FastAGI server (the IVR Asterisk calls)",
        description="Answers AGI(agi://HOST:PORT/hamta) for every call and runs the main flow "
        "against the registry. Loopback by default. SIGTERM/Ctrl-C: stop accepting calls, let "
        "running calls end (up to --drain seconds).",
    )
    cmd.add_argument("--host", help="listen address (default HAMTA_AGI_HOST or 127.0.0.1)")
    cmd.add_argument("--port", type=int, help="port (default HAMTA_AGI_PORT or 4573)")
    cmd.add_argument("--workers", type=int,
                     help="threads that hash secrets (default: one per CPU but one, 1-8); quick "
                     "database work has its own 4")
    cmd.add_argument("--drain", type=float,
                     help="seconds running calls get to end after SIGTERM (default HAMTA_DRAIN "
                     "or 120)")
    cmd.add_argument("--max-calls", type=int, metavar="N",
                     help=f"calls in progress at most; a caller above it hears 'busy' and the "
                     f"dialplan gets HAMTA_RESULT=busy (default {MAX_CALLS_ENV} or 500)")
    cmd.add_argument("--idle-limit", type=float, metavar="SECONDS",
                     help=f"seconds one AGI command may go unanswered before the call is "
                     f"dropped (default {IDLE_LIMIT_ENV}, else the longest built prompt plus "
                     "the digit timeouts and 15 s, 120 without built audio)")
    cmd.add_argument("--metrics", metavar="HOST:PORT",
                     help=f"Prometheus /metrics and the /healthz, /readyz probes (default "
                     f"{METRICS_ENV} or 127.0.0.1:9573; `off`: none)")
    cmd.add_argument("--processes", type=int, metavar="N",
                     help="processes accepting on the same port (SO_REUSEPORT), e.g. one per "
                     "core; process i is HOST:PORT/i in the call log and serves metrics on the "
                     "metrics port + i - 1; a process that dies is restarted (default "
                     "HAMTA_PROCESSES or 1)")
    cmd.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    return serve(ServeFlags(db=args.db, host=args.host, port=args.port, workers=args.workers,
                            drain=args.drain, max_calls=args.max_calls,
                            idle_limit=args.idle_limit, metrics=args.metrics,
                            processes=args.processes))
