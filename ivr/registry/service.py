"""The registry: one object holding its parts, each in the module named for its concern.

    registry.kartabl   sign-in: the door before the PIN, the PIN verified once, lockouts
    registry.devices   the IMEI inquiry, activation codes verified once, ownership moves
    registry.portal    what the web portal does: subscribers, passwords, devices, records
    registry.call_log  the IVR's call log

All mobile numbers given to the parts may be in any accepted form (09…, 9…, 989…, +989…); they are
normalised with ivr.registry.msisdn.normalize and stored as E.164 (+989…). Nothing stores or logs
a password or activation code in clear: only peppered argon2id hashes (ivr.registry.hashing), and
the audit log's `detail` never holds a secret. The parts are synchronous and thread-safe; the
call flows reach them through ivr.registry.aio, so hashing never blocks an event loop.
"""

from __future__ import annotations

from ivr.registry.call_log import CallLog
from ivr.registry.db import check_schema, make_engine
from ivr.registry.devices import Devices
from ivr.registry.hashing import OWASP_MINIMUM, HashParams, SecretHasher
from ivr.registry.kartabl import Kartabl
from ivr.registry.portal import Portal
from ivr.registry.store import Clock, Store


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.kartabl = Kartabl(store)
        self.devices = Devices(store)
        self.portal = Portal(store)
        self.call_log = CallLog(store)

    @classmethod
    def open(
        cls, url: str | None = None, *, pepper: bytes | None = None,
        hash_params: HashParams = OWASP_MINIMUM, clock: Clock | None = None,
        check: bool = True,
    ) -> Registry:
        """Connect (ivr.config.db_url/load_pepper when not given). Does not migrate: see
        ivr.registry.db.upgrade(url), which `hamta-ivr db upgrade` runs. With `check`, a database
        that is not at the latest migration raises SchemaNotReady naming the fix.
        `hash_params` below the OWASP minimum are for tests only."""
        from ivr.config import db_url, load_pepper

        engine = make_engine(db_url(url))
        try:
            if check:
                check_schema(engine)
            hasher = SecretHasher(pepper if pepper is not None else load_pepper(), hash_params)
        except BaseException:
            engine.dispose()
            raise
        return cls(Store(engine, hasher, clock))

    def close(self) -> None:
        """Release the connection pool."""
        self.store.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
