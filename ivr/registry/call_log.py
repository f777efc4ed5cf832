"""The IVR call log: one row per call, written when it starts and when it ends (with the path of
operations and the outcome the flows returned). Values from outside (an AGI unique id, a channel
name) are cut to their columns' sizes, and a server closes the calls it left in progress when it
starts again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from ivr.registry.msisdn import try_normalize
from ivr.registry.store import Store, bounded
from ivr.registry.tables import calls
from ivr.registry.types import CallRecord

INTERRUPTED = "interrupted"  # the server died while the call was in progress


class CallLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def started(self, call_id: str, msisdn: str | None, channel: str, at: datetime,
                server: str | None = None) -> None:
        """`server`: which FastAGI server took the call (host:port), so that the server closes
        its own calls when it starts again after a crash (`close_stale`)."""
        number = try_normalize(msisdn)
        call_id, channel = bounded(call_id, 64) or "", bounded(channel, 128) or ""

        def work(conn: Connection) -> None:
            found = conn.execute(select(calls.c.id).where(calls.c.call_id == call_id)).first()
            if found is None:
                conn.execute(insert(calls).values(call_id=call_id, msisdn=number,
                                                  channel=channel, started=at, path=[],
                                                  server=server))
            else:
                conn.execute(update(calls).where(calls.c.id == found.id)
                             .values(msisdn=number, channel=channel, started=at, server=server))

        self.store.write(work)

    def close_stale(self, server: str, at: datetime) -> int:
        """Calls `server` left "in progress" (it crashed or was killed): ended now as
        `interrupted`. Run when the server starts; the number closed. Also proves the database
        takes writes before the first call arrives."""

        def work(conn: Connection) -> int:
            return int(conn.execute(
                update(calls).where(calls.c.server == server, calls.c.ended.is_(None))
                .values(ended=at, outcome=INTERRUPTED)).rowcount)

        return self.store.write(work)

    def ended(self, call_id: str, path: list[str], outcome: str, at: datetime) -> None:
        call_id = bounded(call_id, 64) or ""

        def work(conn: Connection) -> None:
            done = conn.execute(update(calls).where(calls.c.call_id == call_id)
                                .values(path=list(path), outcome=outcome, ended=at)).rowcount
            if done == 0:  # the start was never logged (e.g. the database was down then)
                conn.execute(insert(calls).values(call_id=call_id, msisdn=None, channel="",
                                                  started=at, ended=at, path=list(path),
                                                  outcome=outcome))

        self.store.write(work)

    def calls(self) -> list[CallRecord]:
        """Newest first."""
        query = select(calls).order_by(calls.c.started.desc(), calls.c.id.desc())
        with self.store.reading() as conn:
            rows = conn.execute(query).all()
        return [CallRecord(call_id=r.call_id, msisdn=r.msisdn, channel=r.channel,
                           started=r.started, ended=r.ended, path=list(r.path or []),
                           outcome=r.outcome, server=r.server) for r in rows]
