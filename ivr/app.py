"""The composition root: the one place that builds registry + flows for every channel.

`hamta-ivr serve` (FastAGI), `hamta-ivr-agi` (classic AGI), the console caller (`hamta-ivr call`,
the transcript tests) and the bench all open an `Ivr` and hand it calls; none of them wires the
registry, its thread pools or the session flow on its own.
"""

from __future__ import annotations

import logging

from ivr.call.api import Call
from ivr.config import db_url
from ivr.flows.session import CallResult, handle_call
from ivr.registry.aio import AsyncRegistry
from ivr.registry.service import Registry
from ivr.sms.kannel import code_sender

log = logging.getLogger(__name__)


class Ivr:
    """Registry (with its hashing and database thread pools) and the call flows, ready to take
    calls from any channel. `close()` (or `async with`) when done."""

    def __init__(self, registry: Registry, *, workers: int | None = None,
                 desk: AsyncRegistry | None = None, server: str | None = None) -> None:
        """`workers`: hashing threads (ivr.registry.aio.default_workers()). `desk`: an
        AsyncRegistry of one's own (tests that inject faults, the bench's probe). `server`:
        this server's name in the call log (host:port), for closing its stale calls."""
        self.registry = registry
        self.desk = desk or AsyncRegistry(registry, workers=workers)
        self.server = server

    @classmethod
    def open(cls, db: str | None = None, *, workers: int | None = None,
             server: str | None = None) -> Ivr:
        """The registry named by `db`, else HAMTA_DB_URL, else the data directory's SQLite;
        SMS codes through Kannel when it is configured (kannel_url)."""
        return cls(Registry.open(db_url(db), sms=code_sender()), workers=workers, server=server)

    def warn_without_sms(self) -> None:
        """Say once, at start, what a missing SMS gateway costs callers (serve calls it once its
        settings and registry are known good)."""
        if not self.registry.sim_codes.available:
            log.warning("SMS is not configured (kannel_url): no SMS codes, so transfers, codes "
                        "and returns can be made only from a number's own line as the network "
                        "vouches for it (docs/security.md: Who can move a device)")

    async def handle(self, call: Call) -> CallResult:
        """Run one call from the welcome to the goodbye; what the call log records."""
        return await handle_call(call, self.desk, self.server)

    def close(self) -> None:
        self.desk.close()
        self.registry.close()

    async def __aenter__(self) -> Ivr:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
