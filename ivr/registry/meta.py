"""`registry_meta`: facts about the registry itself, kept beside its rows. Today one: the pepper's
fingerprint, which lets `Registry.open` refuse a pepper other than the one the stored hashes were
made with (every right PIN would be "wrong", and real users would lock themselves out).

The fingerprint is HMAC-SHA256(pepper, a fixed label), in hex: it says whether two peppers are the
same and nothing about the pepper (the pepper is 32 random bytes, so it cannot be guessed back).

    no fingerprint, no hash      a new registry: the pepper's fingerprint is recorded
    no fingerprint, hashes       a registry from before fingerprints: recorded on trust, warned
    a fingerprint                the pepper must match it, else ConfigError naming the setting
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, exists, insert, or_, select

from ivr.config import ConfigError, default_pepper_file
from ivr.registry.db import WRITE
from ivr.registry.tables import devices, registry_meta, subscribers

log = logging.getLogger(__name__)

PEPPER_FINGERPRINT = "pepper_fingerprint"
FINGERPRINT_LABEL = b"hamta-ivr registry pepper fingerprint v1"


def pepper_fingerprint(pepper: bytes) -> str:
    return hmac.new(pepper, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def get(conn: Connection, key: str) -> str | None:
    return conn.execute(select(registry_meta.c.value).where(registry_meta.c.key == key)).scalar()


def holds_hashes(conn: Connection) -> bool:
    """Whether any PIN or activation code has been hashed (with some pepper) into the registry."""
    return bool(conn.execute(select(or_(
        exists().where(subscribers.c.password_hash.is_not(None)),
        exists().where(devices.c.code_hash.is_not(None)),
    ))).scalar())


@dataclass(frozen=True)
class PepperState:
    fingerprint: str | None
    hashes: bool

    @property
    def new(self) -> bool:
        """No pepper was ever used on this registry: the only case where one may be created."""
        return self.fingerprint is None and not self.hashes


def pepper_state(engine: Engine) -> PepperState:
    with engine.connect() as conn:
        return PepperState(get(conn, PEPPER_FINGERPRINT), holds_hashes(conn))


def mismatch(source: str) -> ConfigError:
    return ConfigError(
        f"the pepper ({source}) is not the one this registry's PINs and activation codes were "
        "hashed with, so none of them would verify; restore the pepper the registry was made "
        f"with: set HAMTA_PEPPER or HAMTA_PEPPER_FILE to it, or put its file back at "
        f"{default_pepper_file()} (the default when both are unset)"
    )


def check_pepper(engine: Engine, pepper: bytes, state: PepperState, source: str) -> None:
    """Raise ConfigError unless `pepper` is the registry's; record its fingerprint when the
    registry has none yet (for a registry that already holds hashes: on trust, with a warning)."""
    mine = pepper_fingerprint(pepper)
    if state.fingerprint is not None:
        if not hmac.compare_digest(state.fingerprint, mine):
            raise mismatch(source)
        return
    with engine.execution_options(**WRITE).connect() as conn, conn.begin():
        stored = get(conn, PEPPER_FINGERPRINT)  # another process may have been first
        hashes = False
        if stored is None:
            hashes = holds_hashes(conn)
            if engine.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                conn.execute(pg_insert(registry_meta)
                             .values(key=PEPPER_FINGERPRINT, value=mine)
                             .on_conflict_do_nothing(index_elements=["key"]))
                stored = get(conn, PEPPER_FINGERPRINT)
            else:  # SQLite: BEGIN IMMEDIATE, nobody else is writing
                conn.execute(insert(registry_meta).values(key=PEPPER_FINGERPRINT, value=mine))
                stored = mine
    if stored is None or not hmac.compare_digest(stored, mine):
        raise mismatch(source)
    if hashes:
        log.warning(
            "this registry held PIN/code hashes but no pepper fingerprint (made before "
            "fingerprints): the fingerprint of the pepper from %s was recorded on trust; if right "
            "PINs are refused from now on, it is the wrong pepper: restore the one the registry "
            "was made with and delete the row %r of registry_meta", source, PEPPER_FINGERPRINT)


HEARTBEAT_PREFIX = "heartbeat:"


def heartbeat(conn: Connection) -> None:
    """A write that proves the registry takes writes (ivr.registry.aio's readiness probe, while
    writes fail): a row as long as the table allows, inserted then deleted in one committed
    transaction. It needs room as a call's row does, so a full database or disk refuses it
    (rewriting an existing row in place might still pass), and it leaves nothing behind."""
    key = f"{HEARTBEAT_PREFIX}{secrets.token_hex(8)}"
    conn.execute(insert(registry_meta).values(key=key, value="h" * 255))
    conn.execute(delete(registry_meta).where(registry_meta.c.key == key))
