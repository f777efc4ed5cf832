"""The IVR call log: one row per call, written when it starts and when it ends (with the path of
operations and the outcome the flows returned). Values from outside (an AGI unique id, a channel
name) are cut to their columns' sizes, and a server closes the calls it left in progress when it
starts again."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    TextClause,
    bindparam,
    insert,
    select,
    text,
    update,
)

from ivr.registry.msisdn import try_normalize
from ivr.registry.store import Store, bounded
from ivr.registry.tables import calls
from ivr.registry.types import CallRecord

INTERRUPTED = "interrupted"  # the server died while the call was in progress


def _typed(sql: str, *columns: str) -> TextClause:
    """A statement written once, with the columns' types on its parameters (times in UTC,
    the path as JSON)."""
    return text(sql).bindparams(*(bindparam(c, type_=calls.c[c].type) for c in columns))


# The two statements of every call, as fixed text: building them from Core constructs for each
# call cost more CPU than running them. The start is one upsert on the unique call id (SQLite
# and PostgreSQL spell it alike), not a read and then a write.
_STARTED = _typed(
    "INSERT INTO calls (call_id, msisdn, channel, started, path, server) "
    "VALUES (:call_id, :msisdn, :channel, :started, :path, :server) "
    "ON CONFLICT (call_id) DO UPDATE SET msisdn = excluded.msisdn, "
    "channel = excluded.channel, started = excluded.started, server = excluded.server",
    "started", "path")
_ENDED = _typed("UPDATE calls SET path = :path, outcome = :outcome, ended = :ended "
                "WHERE call_id = :call_id", "path", "ended")


def _interrupt(conn: Connection, which: ColumnElement[bool], at: datetime) -> int:
    """The calls `which` picks that are still "in progress", ended at `at` as `interrupted`;
    how many."""
    return int(conn.execute(update(calls).where(which, calls.c.ended.is_(None))
                            .values(ended=at, outcome=INTERRUPTED)).rowcount)


class CallLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def started(self, call_id: str, msisdn: str | None, channel: str, at: datetime,
                server: str | None = None) -> None:
        """`server`: which FastAGI server took the call (host:port), so that the server closes
        its own calls when it starts again after a crash (`close_stale`)."""
        number = try_normalize(msisdn)
        call_id, channel = bounded(call_id, 64) or "", bounded(channel, 128) or ""

        self.store.write(lambda conn: conn.execute(_STARTED, {
            "call_id": call_id, "msisdn": number, "channel": channel, "started": at,
            "path": [], "server": server}))

    def close_stale(self, server: str, at: datetime) -> int:
        """Calls `server` left "in progress" (it crashed or was killed): ended now as
        `interrupted`. Run when the server starts; the number closed. Also proves the database
        takes writes before the first call arrives."""
        return self.store.write(lambda conn: _interrupt(conn, calls.c.server == server, at))

    def close_unended(self, ended: Mapping[str, datetime]) -> int:
        """Calls whose end could not be written (the database failed then; the server kept
        them: ivr.registry.aio), by call id: ended as `interrupted` at the time their end was
        tried, in one transaction; the number closed. One whose end got written meanwhile is
        left as it is."""

        def work(conn: Connection) -> int:
            return sum(_interrupt(conn, calls.c.call_id == (bounded(call_id, 64) or ""), at)
                       for call_id, at in ended.items())

        return self.store.write(work)

    def ended(self, call_id: str, path: list[str], outcome: str, at: datetime) -> None:
        """The call's path and outcome. When the database cannot take it, AsyncRegistry keeps
        the call id and closes the call later (`close_unended`)."""
        call_id = bounded(call_id, 64) or ""

        def work(conn: Connection) -> None:
            done = conn.execute(_ENDED, {"call_id": call_id, "path": list(path),
                                         "outcome": outcome, "ended": at}).rowcount
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
