"""SMS receipts written in the transaction of the change they tell of (a transactional outbox).

A registry module calls `queue(conn, …)` — or one of the helpers below, one per kind of change —
inside its `Store.write` work: the message commits or rolls back with the change. The delivery
worker (ivr.sms.worker) claims due rows (`claim`), hands each to Kannel once and `mark`s what
happened; the operator lists them (`messages`) and re-sends a dead one (`resend`). Every SQL
statement on the outbox table is here: whoever reaches the outbox comes through this module.
Templates are catalogue keys
(`sms_…`, prompts/catalogue.toml); params are what the text names (an IMEI, a reference, a
number, a duration) — never a password or an activation code, which `queue` refuses outright.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from ivr.registry.msisdn import national
from ivr.registry.store import Store, bounded
from ivr.registry.tables import outbox
from ivr.registry.types import Origin

SECRET_PARAMS = frozenset({"code", "pin", "password", "activation_code"})


def queue(conn: Connection, msisdn: str, template: str, *, at: datetime,
          imei: str | None = None, origin: Origin | None = None, **params: str) -> str:
    """Write one message to `msisdn` (E.164) in the open transaction; its message id."""
    secret = SECRET_PARAMS & params.keys()
    if secret:
        raise ValueError(f"an SMS never carries a secret: {sorted(secret)}")
    if not template.startswith("sms_"):
        raise ValueError(f"SMS templates are catalogue keys named sms_…, not {template!r}")
    if template.startswith("sms_sim_code_"):  # ivr.registry.sim_codes sends these at once
        raise ValueError("an SMS code is never queued in the outbox: it would be stored")
    message_id = uuid.uuid4().hex
    conn.execute(insert(outbox).values(
        message_id=message_id, msisdn=msisdn, template=template, params=dict(params),
        state="pending", attempts=0, next_attempt_at=at, created_at=at, imei=imei,
        call_id=bounded(origin.call_id, 64) if origin else None,
    ))
    return message_id


def moved(conn: Connection, *, direct: bool, imei: str, previous: str | None, buyer: str,
          reference: str, at: datetime, origin: Origin) -> None:
    """Receipts of an ownership move: the previous owner (if any) and the new one."""
    kind = "transfer" if direct else "activation"
    if previous is not None:
        queue(conn, previous, f"sms_{kind}_{'seller' if direct else 'previous'}", at=at,
              imei=imei, origin=origin, number=national(buyer), reference=reference)
    buyer_params = {"number": national(previous)} if direct and previous else {}
    queue(conn, buyer, f"sms_{kind}_buyer", at=at, imei=imei, origin=origin,
          reference=reference, **buyer_params)


def code_replaced(conn: Connection, owner: str, imei: str, *, generated: bool, at: datetime,
                  origin: Origin) -> None:
    """A new activation code (never the code itself) told to the device's owner."""
    template = "sms_code_generated" if generated else "sms_code_changed"
    queue(conn, owner, template, at=at, imei=imei, origin=origin)


def locked(conn: Connection, msisdn: str | None, template: str, *, until: datetime,
           at: datetime, origin: Origin, imei: str | None = None) -> None:
    """A lock engaged (the caller only calls this when the lock level rises, so a guesser
    cannot flood the owner): told to the number, or the device's owner; nobody when none."""
    if msisdn is not None:
        queue(conn, msisdn, template, at=at, imei=imei, origin=origin,
              duration=locked_for(until - at))


def locked_for(span: timedelta) -> str:
    """How long a lock lasts as the SMS says it: «15 دقیقه», «24 ساعت» (digits made Persian
    when the text is rendered)."""
    minutes = max(1, round(span.total_seconds() / 60))
    if minutes % 60:
        return f"{minutes} دقیقه"
    return f"{minutes // 60} ساعت"


@dataclass(frozen=True)
class Message:
    """An outbox row as an operator sees it (`hamta-ivr sms list`): the number masked by the
    caller, no text."""

    message_id: str
    msisdn: str
    template: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    imei: str | None


def messages(store: Store, *, state: str | None = None, limit: int = 50) -> list[Message]:
    """The newest `limit` messages, in any state or one."""
    query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(outbox.c.state == state)
    with store.reading() as conn:
        return [Message(r.message_id, r.msisdn, r.template, r.state, r.attempts, r.created_at,
                        r.next_attempt_at, r.sent_at, r.last_error, r.imei)
                for r in conn.execute(query)]


def resend(store: Store, message_id: str) -> str | None:
    """A dead message back to pending, due now, with its tries counted afresh; None when it
    was dead and now waits, else why not (unknown, or its state)."""

    def work(conn: Connection) -> str | None:
        row = conn.execute(select(outbox.c.state).where(outbox.c.message_id == message_id)
                           .with_for_update()).first()
        if row is None:
            return "no such message"
        if row.state != "dead":
            return f"it is {row.state}, not dead"
        conn.execute(update(outbox).where(outbox.c.message_id == message_id).values(
            state="pending", attempts=0, next_attempt_at=store.now(), claimed_until=None,
            claimed_by=None))
        return None

    return store.write(work)


# --- delivery: claim due rows, then mark each (ivr.sms.worker) ----------------------------------
@dataclass(frozen=True)
class Claimed:
    """A due row leased to one worker's batch: what sending it needs."""

    id: int
    message_id: str
    msisdn: str
    template: str
    params: dict[str, str]
    attempts: int
    created_at: datetime
    imei: str | None

    def values(self) -> dict[str, str]:
        """What the template may name: the params and the row's IMEI."""
        return self.params | ({"imei": self.imei} if self.imei else {})


def claim(store: Store, *, batch: int, lease: timedelta) -> tuple[str, list[Claimed]]:
    """Lease up to `batch` due rows (pending, next_attempt_at reached, no live lease) to a new
    token for `lease`; (token, rows). On PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite the
    write lock: several workers never claim one row at once."""
    token = uuid.uuid4().hex

    def work(conn: Connection) -> list[Claimed]:
        now = store.now()
        due = (select(outbox.c.id, outbox.c.message_id, outbox.c.msisdn, outbox.c.template,
                      outbox.c.params, outbox.c.attempts, outbox.c.created_at, outbox.c.imei)
               .where(outbox.c.state == "pending", outbox.c.next_attempt_at <= now,
                      or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now))
               .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(batch))
        if store.postgres:
            due = due.with_for_update(skip_locked=True)
        rows = [Claimed(r.id, r.message_id, r.msisdn, r.template, dict(r.params or {}),
                        r.attempts, r.created_at, r.imei) for r in conn.execute(due)]
        if rows:
            conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                         .values(claimed_until=now + lease, claimed_by=token))
        return rows

    return token, store.write(work)


def mark(store: Store, row: Claimed, token: str, *, sent: bool = False, dead: str | None = None,
         retry: str | None = None, wait: timedelta = timedelta()) -> bool:
    """What became of a claimed row, one more try counted and its lease released: `sent`,
    `dead` (why), or `retry` (why) after `wait`. Guarded by the token (`WHERE claimed_by = :token
    AND state = 'pending'`): False when the lease ran out and the row is no longer this
    batch's."""

    def work(conn: Connection) -> bool:
        now = store.now()
        values: dict[str, Any] = {"attempts": outbox.c.attempts + 1, "claimed_until": None,
                                  "claimed_by": None}
        if sent:
            values |= {"state": "sent", "sent_at": now, "last_error": None}
        elif dead is not None:
            values |= {"state": "dead", "last_error": dead[:500]}
        else:
            values |= {"next_attempt_at": now + wait, "last_error": (retry or "")[:500]}
        done = conn.execute(update(outbox).where(and_(
            outbox.c.id == row.id, outbox.c.claimed_by == token,
            outbox.c.state == "pending")).values(**values)).rowcount
        return bool(done == 1)

    return store.write(work)


LATE = timedelta(minutes=10)


def backlog(url: str) -> tuple[int, int]:
    """(dead receipts, pending ones due for over LATE), for `hamta-ivr doctor`."""
    from datetime import UTC

    from sqlalchemy import func

    from ivr.registry.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            dead = conn.execute(select(func.count()).select_from(outbox)
                                .where(outbox.c.state == "dead")).scalar_one()
            late = conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.state == "pending",
                outbox.c.next_attempt_at < datetime.now(UTC) - LATE)).scalar_one()
    finally:
        engine.dispose()
    return int(dead), int(late)
