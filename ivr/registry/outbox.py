"""SMS receipts written in the transaction of the change they tell of (a transactional outbox).

A registry module calls `queue(conn, …)` inside its `Store.write` work: the message commits or
rolls back with the change. The delivery worker (ivr.sms) reads due rows and hands each to Kannel
once. Templates are catalogue keys (`sms_…`, prompts/catalogue.toml); params are what the text
names (an IMEI, a reference, a number) — never a password or an activation code, which `queue`
refuses outright.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Connection, insert

from ivr.registry.store import bounded
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
    message_id = uuid.uuid4().hex
    conn.execute(insert(outbox).values(
        message_id=message_id, msisdn=msisdn, template=template, params=dict(params),
        state="pending", attempts=0, next_attempt_at=at, created_at=at, imei=imei,
        call_id=bounded(origin.call_id, 64) if origin else None,
    ))
    return message_id
