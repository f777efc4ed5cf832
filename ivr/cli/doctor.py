"""`hamta-ivr doctor`: prints the doctor's checks (ivr.doctor), each failure with its fix."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from ivr.doctor import TIMEOUT, Setup, as_json, render, run_checks, summary


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser(
        "doctor", help="check everything a call needs; print each failure with its fix",
        description="Checks the database and its migrations, the pepper, the built prompts, the "
        "spool Asterisk reads secret digits from, AMI and the dialplan route, the FastAGI port "
        "and the metrics endpoint. Exit 0 when all pass, 1 otherwise. Run it as serve's user "
        "with serve's environment.")
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")
    doctor.add_argument("--host", help="FastAGI address (default HAMTA_AGI_HOST or 127.0.0.1)")
    doctor.add_argument("--port", type=int, help="FastAGI port (default HAMTA_AGI_PORT or 4573)")
    doctor.add_argument("--metrics", metavar="HOST:PORT",
                        help="serve's metrics endpoint (default HAMTA_METRICS or "
                        "127.0.0.1:9573; off: not checked)")
    doctor.add_argument("--timeout", type=float, default=TIMEOUT,
                        help=f"seconds each network check waits (default {TIMEOUT:g})")
    doctor.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace, out: Callable[[str], object] = print) -> int:
    setup = Setup.from_environment(db=args.db, host=args.host, port=args.port,
                                   metrics=args.metrics, timeout=args.timeout)
    results = asyncio.run(run_checks(setup))
    if args.json:
        out(as_json(results))
    else:
        out(render(results))
        out(summary(results))
    sys.stdout.flush()
    return 0 if all(r.ok for r in results) else 1
