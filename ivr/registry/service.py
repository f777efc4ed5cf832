"""The registry: one object holding its parts, each in the module named for its concern.

    registry.kartabl   sign-in: the door before the PIN, the PIN verified once, lockouts
    registry.devices   the IMEI inquiry, activation codes verified once, ownership moves
    registry.reports   lost or stolen: the owner's report and its withdrawal
    registry.returns   the 7-day mutual return of a transfer
    registry.sim_codes one-time SMS codes: the SIM as a second factor
    registry.portal    what the web portal does: subscribers, passwords, devices, records
    registry.call_log  the IVR's call log

All mobile numbers given to the parts may be in any accepted form (09…, 9…, 989…, +989…); they are
normalised with ivr.registry.msisdn.normalize and stored as E.164 (+989…). Nothing stores or logs
a password or activation code in clear: only peppered argon2id hashes (ivr.registry.hashing), and
the audit log's `detail` never holds a secret. The parts are synchronous and thread-safe; the
call flows reach them through ivr.registry.aio, so hashing never blocks an event loop.

`Registry.open` refuses a pepper other than the one the registry's hashes were made with (its
fingerprint is kept in `registry_meta`, see ivr.registry.meta), and turns every failure to reach
or read the database into a one-line ConfigError naming HAMTA_DB_URL/--db.
"""

from __future__ import annotations

from ivr.registry import meta
from ivr.registry.call_log import CallLog
from ivr.registry.db import check_schema, database_errors, make_engine
from ivr.registry.devices import Devices
from ivr.registry.hashing import OWASP_MINIMUM, HashParams, SecretHasher
from ivr.registry.kartabl import Kartabl
from ivr.registry.portal import Portal
from ivr.registry.reports import Reports
from ivr.registry.returns import Returns
from ivr.registry.sim_codes import SimCodes, SmsSender
from ivr.registry.store import Clock, Store


class Registry:
    def __init__(self, store: Store, sms: SmsSender | None = None) -> None:
        """`sms`: how SMS codes reach the gateway (ivr.sms.kannel.code_sender); None when SMS
        is not configured, and then only a number's own vouched line can do what needs the
        SIM (ivr.registry.sim_codes)."""
        self.store = store
        self.kartabl = Kartabl(store)
        self.devices = Devices(store)
        self.reports = Reports(store)
        self.returns = Returns(store, self.devices)
        self.portal = Portal(store)
        self.call_log = CallLog(store)
        self.sim_codes = SimCodes(store, sms)

    @classmethod
    def open(
        cls, url: str | None = None, *, pepper: bytes | None = None,
        hash_params: HashParams = OWASP_MINIMUM, clock: Clock | None = None,
        check: bool = True, check_pepper: bool = True, sms: SmsSender | None = None,
    ) -> Registry:
        """Connect (ivr.config.db_url/load_pepper when not given). Does not migrate: see
        ivr.registry.db.upgrade(url), which `hamta-ivr db upgrade` runs. With `check`, a database
        that is not at the latest migration raises SchemaNotReady naming the fix, and the pepper
        is checked against the registry's fingerprint of it (ivr.registry.meta; recorded for a
        new registry): another pepper is a ConfigError naming HAMTA_PEPPER/HAMTA_PEPPER_FILE.
        The pepper file is created only for a new registry (no hash, no fingerprint).
        `check_pepper=False` is for reading names only (ivr.registry.device_names:
        a dummy pepper).
        A database that cannot be reached or read is a ConfigError naming HAMTA_DB_URL/--db.
        `hash_params` below the OWASP minimum are for tests only."""
        from ivr.config import db_url, load_pepper, pepper_source

        engine = make_engine(db_url(url))
        try:
            with database_errors(engine.url):
                state = None
                if check:
                    check_schema(engine)
                    state = meta.pepper_state(engine)
                if pepper is None:
                    pepper = load_pepper(create=state is not None and state.new)
                    source = pepper_source()
                else:
                    source = "the pepper given to Registry.open"
                hasher = SecretHasher(pepper, hash_params)
                if state is not None and check_pepper:
                    meta.check_pepper(engine, pepper, state, source)
        except BaseException:
            engine.dispose()
            raise
        return cls(Store(engine, hasher, clock), sms)

    def close(self) -> None:
        """Release the connection pool."""
        self.store.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
