"""`hamta-ivr serve`: the FastAGI server Asterisk's dialplan calls (`AGI(agi://…/hamta)`)."""

from __future__ import annotations

import argparse
import asyncio
import logging

log = logging.getLogger(__name__)


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
    serve.add_argument("--drain", type=float, default=120.0,
                       help="seconds running calls get to end after SIGTERM (default 120)")
    serve.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from ivr.app import Ivr
    from ivr.asterisk.config import sounds_dir, spool_dir
    from ivr.call.fastagi import FastAgiServer, ServerSettings
    from ivr.config import agi_address

    address = agi_address(args.host, args.port)
    settings = ServerSettings(host=address.host, port=address.port, sounds=sounds_dir(),
                              spool=spool_dir(), drain_seconds=args.drain)
    ivr = Ivr.open(args.db, workers=args.workers)

    async def run() -> None:
        try:
            await FastAgiServer(settings, ivr.handle).serve_until_signalled()
        finally:
            ivr.close()

    try:
        asyncio.run(run())
    except OSError as exc:
        from ivr.config import ConfigError

        raise ConfigError(f"cannot listen on {address.host}:{address.port}: {exc.strerror}; "
                          "is another server running? (--port / HAMTA_AGI_PORT)") from None
    log.info("FastAGI server stopped")
    return 0
