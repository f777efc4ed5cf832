"""The SIM as a second factor: a one-time code sent by SMS to a kartabl's number and keyed on the
same call.

A PIN can be guessed or known to others (shop staff often set phones up), and a caller ID can be
forged on a VoIP trunk. So whatever moves a device or a secret — a transfer, a new or changed
activation code, a return (asking and confirming), withdrawing a lost/stolen report — needs the
number's SIM as well: the call comes from the number's own line *and the network vouches for it*
(Origin.own_line), or the caller keys the code this module sends to the number. A sign-in needs
the SIM first when the registry's failed-sign-in budget is spent (ivr.registry.kartabl).

The code: SIM_CODE_LEN digits from the OS CSPRNG, argon2-hashed with the pepper (bound to the
number), single use, SIM_CODE_LIFE of life, SIM_CODE_TRIES wrong entries spend it, good only on
the call that asked for it; a number gets at most SIM_CODES_PER_DAY codes in any 24 hours,
whoever asks (the most SMS codes a stranger can cause one number in a day). Its hash is dropped
as soon as it is used, spent or expired. The code itself is never stored, logged, queued in the
outbox or sent to Asterisk: it exists in clear only on its way to the SMS gateway (`SmsSender`),
sent at once — a code that arrives after the call is worth nothing, so it is not retried.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, func, insert, select, update

from ivr.registry import lockout
from ivr.registry.msisdn import try_normalize
from ivr.registry.store import GATEWAY_IVR, Store, bounded
from ivr.registry.tables import sim_codes
from ivr.registry.types import ADMIN, Origin, Owner, SimAnswer, SimCode, SimProof

log = logging.getLogger(__name__)

# what a code is for: its SMS (`sms_sim_code_<purpose>` in prompts/catalogue.toml) says so
PURPOSES = ("sign_in", "transfer", "activation_code", "change_code", "return_start",
            "return_confirm", "withdraw")
LIVE, USED, VOID, UNSENT = "live", "used", "void", "unsent"

# (E.164 number, SMS template, its params) -> did the gateway take it
SmsSender = Callable[[str, str, dict[str, str]], bool]


def new_sim_code() -> str:
    return f"{secrets.randbelow(10**lockout.SIM_CODE_LEN):0{lockout.SIM_CODE_LEN}d}"


class SimCodes:
    def __init__(self, store: Store, sender: SmsSender | None = None,
                 draw: Callable[[], str] = new_sim_code) -> None:
        """`sender`: how codes reach the SMS gateway (ivr.sms.kannel); None when SMS is not
        configured — then only a number's own vouched line can do what needs the SIM. `draw`:
        where codes come from (the CSPRNG; a fixed code only for measuring the prompts)."""
        self.store = store
        self.sender = sender
        self.draw = draw

    @property
    def available(self) -> bool:
        return self.sender is not None

    def send(self, msisdn: str, purpose: str, origin: Origin = ADMIN,
             gateway: str = GATEWAY_IVR) -> SimAnswer:
        """Send a new code to `msisdn` for `purpose`, good on the asking call (an earlier live
        code of that call and number stops working). SENT, or NO_SMS / CAPPED / UNSENT."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown SMS code purpose {purpose!r}")
        number = try_normalize(msisdn)
        if number is None:
            return SimAnswer(SimCode.UNSENT)
        if self.sender is None:
            return SimAnswer(SimCode.NO_SMS)
        store = self.store
        code = self.draw()
        code_hash = store.hasher.hash("sim", number, code)  # no transaction open while hashing

        def reserve(conn: Connection) -> SimAnswer | int:
            now = store.now()
            store.subscriber(conn, number, lock=True)  # PostgreSQL: one count per number at once
            sent = conn.execute(select(func.count()).select_from(sim_codes).where(
                sim_codes.c.msisdn == number,
                sim_codes.c.created_at > now - lockout.THROTTLE_WINDOW)).scalar_one()
            if sent >= lockout.SIM_CODES_PER_DAY:
                store.audit(conn, "sim_code_capped", msisdn=number, gateway=gateway, at=now,
                            origin=origin, detail=purpose)
                return SimAnswer(SimCode.CAPPED)
            conn.execute(update(sim_codes).where(and_(
                sim_codes.c.msisdn == number, self._of_call(origin),
                sim_codes.c.state == LIVE)).values(state=VOID, code_hash=None))
            row_id: int = conn.execute(insert(sim_codes).values(
                msisdn=number, call_id=bounded(origin.call_id, 64), caller=origin.caller,
                purpose=purpose, code_hash=code_hash, failed=0, state=LIVE, created_at=now,
                expires_at=now + lockout.SIM_CODE_LIFE).returning(sim_codes.c.id)).scalar_one()
            store.audit(conn, "sim_code_sent", msisdn=number, gateway=gateway, at=now,
                        origin=origin, detail=purpose)
            return row_id

        reserved = store.write(reserve)
        if isinstance(reserved, SimAnswer):
            return reserved
        try:
            taken = self.sender(number, f"sms_sim_code_{purpose}", {"code": code})
        except Exception:  # the gateway's failure is the caller's "not sent", never a crash
            log.warning("the SMS gateway failed to take an SMS code", exc_info=True)
            taken = False
        if taken:
            return SimAnswer(SimCode.SENT)
        store.write(lambda conn: conn.execute(update(sim_codes).where(
            sim_codes.c.id == reserved).values(state=UNSENT, code_hash=None)))
        return SimAnswer(SimCode.UNSENT)

    def check(self, msisdn: str, code: str, origin: Origin = ADMIN, gateway: str = GATEWAY_IVR,
              owner: Owner | None = None) -> SimAnswer:
        """The code keyed on this call for `msisdn`: OK with the SimProof (and `owner`, signed in
        to that number, now holding the SIM: Owner.sim), WRONG (attempts left), or VOID (none
        live, expired, or this was its last try). Counted before it is verified, like every
        secret (ivr.registry.lockout)."""
        number = try_normalize(msisdn)
        if number is None:
            return SimAnswer(SimCode.VOID)
        store = self.store

        def reserve(conn: Connection) -> SimAnswer | tuple[int, str, int]:
            now = store.now()
            row = conn.execute(select(sim_codes).where(and_(
                sim_codes.c.msisdn == number, self._of_call(origin), sim_codes.c.state == LIVE))
                .order_by(sim_codes.c.id.desc()).limit(1).with_for_update()).first()
            if row is None:
                return SimAnswer(SimCode.VOID)
            if now >= row.expires_at or row.failed >= lockout.SIM_CODE_TRIES:
                self._spend(conn, row.id, now, number, origin, gateway, "expired")
                return SimAnswer(SimCode.VOID)
            conn.execute(update(sim_codes).where(sim_codes.c.id == row.id)
                         .values(failed=row.failed + 1))
            return row.id, str(row.code_hash), row.failed + 1

        reserved = store.write(reserve)
        if isinstance(reserved, SimAnswer):
            return reserved
        row_id, seen, counted = reserved
        right = (len(code) == lockout.SIM_CODE_LEN and code.isdigit()
                 and store.hasher.verify(seen, "sim", number, code))

        def finish(conn: Connection) -> SimAnswer:
            now = store.now()
            row = conn.execute(select(sim_codes).where(sim_codes.c.id == row_id)
                               .with_for_update()).one()
            if row.state != LIVE:  # a newer code replaced it meanwhile
                return SimAnswer(SimCode.VOID)
            if right:
                conn.execute(update(sim_codes).where(sim_codes.c.id == row_id)
                             .values(state=USED, used_at=now, code_hash=None))
                store.audit(conn, "sim_code_ok", msisdn=number, gateway=gateway, at=now,
                            origin=origin, detail=row.purpose)
                proven = (dataclasses.replace(owner, sim=True)
                          if owner is not None and owner.msisdn == number else None)
                return SimAnswer(SimCode.OK, proof=SimProof(number, origin.call_id),
                                 owner=proven)
            if counted >= lockout.SIM_CODE_TRIES:
                self._spend(conn, row_id, now, number, origin, gateway, "tries ran out")
                return SimAnswer(SimCode.VOID)
            store.audit(conn, "sim_code_failed", msisdn=number, gateway=gateway, at=now,
                        origin=origin, detail=f"{row.purpose}: wrong {counted} of "
                                              f"{lockout.SIM_CODE_TRIES}")
            return SimAnswer(SimCode.WRONG, attempts_left=lockout.SIM_CODE_TRIES - counted)

        return store.write(finish)

    @staticmethod
    def _of_call(origin: Origin) -> ColumnElement[bool]:
        call_id = bounded(origin.call_id, 64)
        return sim_codes.c.call_id.is_(None) if call_id is None else \
            sim_codes.c.call_id == call_id

    def _spend(self, conn: Connection, row_id: int, now: datetime, number: str,
               origin: Origin, gateway: str, why: str) -> None:
        conn.execute(update(sim_codes).where(sim_codes.c.id == row_id)
                     .values(state=VOID, code_hash=None))
        self.store.audit(conn, "sim_code_void", msisdn=number, gateway=gateway, at=now,
                         origin=origin, detail=why)
