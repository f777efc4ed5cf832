"""Portal administration: what the Hamta web portal does, for the admin CLI, the demo data and the
tests — subscribers and their kartabl passwords, devices and their status, and the records an
operator reads (a subscriber, a device, transfers, the audit log)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ivr.registry import lockout, validate
from ivr.registry.errors import AlreadyExists, NotFound
from ivr.registry.msisdn import normalize
from ivr.registry.store import GATEWAY_ADMIN, Store, new_subscriber
from ivr.registry.tables import audit_log, devices, subscribers, transfers
from ivr.registry.types import AuditRecord, DeviceRecord, SubscriberRecord, TransferRecord


def _shown(counters: lockout.Counters, now: datetime) -> lockout.Counters:
    """A ladder as an operator should read it: a lock that ran out shows no lock and no count."""
    locked = lockout.live_lock(counters.locked_until, now)
    expired = counters.locked_until is not None and locked is None
    return lockout.Counters(0 if expired else counters.failed, counters.level, locked)


class Portal:
    def __init__(self, store: Store) -> None:
        self.store = store

    # --- subscribers ------------------------------------------------------------------------------
    def add_subscriber(
        self, msisdn: str, *, password: str | None = None, national_id: str | None = None
    ) -> None:
        """Raises InvalidInput (bad number/PIN/national ID) or AlreadyExists."""
        store, number = self.store, normalize(msisdn)
        nid = validate.national_id(national_id) if national_id is not None else None
        pin_hash = None
        if password is not None:
            pin_hash = store.hasher.hash("pin", number, validate.pin(password))
        now = store.now()

        def work(conn: Connection) -> None:
            if store.subscriber(conn, number, lock=True) is not None:
                raise AlreadyExists(f"{number} is already a subscriber")
            values = new_subscriber(number, now)
            values.update(national_id=nid, password_hash=pin_hash,
                          password_changed_at=now if pin_hash else None)
            conn.execute(insert(subscribers).values(**values))
            store.audit(conn, "subscriber_added", msisdn=number, gateway=GATEWAY_ADMIN, at=now,
                        detail="with a kartabl password" if pin_hash else "no kartabl password")

        try:
            store.write(work)
        except IntegrityError as exc:  # added by someone else at the same moment
            raise AlreadyExists(f"{number} is already a subscriber") from exc

    def set_password(self, msisdn: str, pin: str, *, allow_common_pin: bool = False) -> None:
        """Set (or replace) the kartabl password; also lifts a lock (the portal proved who it
        is). A PIN that is too easy to guess (validate.weak_pin_reason: the 100 most common,
        one digit repeated, a run, the number's last digits) is refused before anything is
        read or written. allow_common_pin=True skips that check: for the demo data and tests
        only, never for a real subscriber. Raises InvalidInput or NotFound."""
        store, number = self.store, normalize(msisdn)
        chosen = validate.pin(pin) if allow_common_pin else validate.chosen_pin(pin, number)
        pin_hash = store.hasher.hash("pin", number, chosen)
        now = store.now()

        def work(conn: Connection) -> None:
            row = store.subscriber(conn, number, lock=True)
            if row is None:
                raise NotFound(f"{number} is not a subscriber; add it with "
                               "`hamta-ivr subscriber add`")
            conn.execute(update(subscribers).where(subscribers.c.id == row.id).values(
                password_hash=pin_hash, password_changed_at=now,
                **lockout.cleared(lockout.OWN_LINE, lockout.OTHER_LINES),
            ))
            store.audit(conn, "password_set", msisdn=number, gateway=GATEWAY_ADMIN, at=now)

        store.write(work)

    def subscriber_info(self, msisdn: str) -> SubscriberRecord | None:
        store, number = self.store, normalize(msisdn)
        with store.reading() as conn:
            row = store.subscriber(conn, number)
            if row is None:
                return None
            count = conn.execute(
                select(func.count()).select_from(devices).where(devices.c.owner_id == row.id)
            ).scalar_one()
        own = _shown(lockout.OWN_LINE.read(row), store.now())
        others = _shown(lockout.OTHER_LINES.read(row), store.now())
        return SubscriberRecord(
            msisdn=row.msisdn, national_id=row.national_id,
            has_password=row.password_hash is not None,
            password_changed_at=row.password_changed_at,
            failed_attempts=own.failed, locked_until=own.locked_until,
            lock_level=row.lock_level, others_failed_attempts=others.failed,
            others_locked_until=others.locked_until, devices=int(count),
            created_at=row.created_at,
        )

    # --- devices ----------------------------------------------------------------------------------
    def add_device(
        self, imei: str, *, owner: str | None, brand: str, model: str,
        status: str = "registered", activation_code: str | None = None,
    ) -> None:
        """Register a device (the owner's kartabl entry is created if the number is new).
        Raises InvalidInput or AlreadyExists."""
        store, number = self.store, validate.imei(imei)
        owner_number = normalize(owner) if owner is not None else None
        validate.status(status)
        brand, model = validate.device_name(brand, "brand"), validate.device_name(model, "model")
        code_hash = None
        if activation_code is not None:
            code_hash = store.hasher.hash("code", number, validate.code(activation_code))
        now = store.now()

        def work(conn: Connection) -> None:
            if store.device(conn, number) is not None:
                raise AlreadyExists(f"a device with IMEI {number} is already registered")
            owner_id = None
            if owner_number is not None:
                owner_id = store.ensure_subscriber(conn, owner_number, now, GATEWAY_ADMIN)
            conn.execute(insert(devices).values(
                imei=number, brand=brand, model=model, status=status, status_changed_at=now,
                owner_id=owner_id, owner_since=now if owner_id else None, code_hash=code_hash,
                code_changed_at=now if code_hash else None, code_failed_attempts=0,
                code_lock_level=0, code_locked_until=None, version=1, created_at=now,
            ))
            store.audit(conn, "device_added", msisdn=owner_number, imei=number,
                        gateway=GATEWAY_ADMIN, at=now,
                        detail=f"{status}, {'with' if code_hash else 'no'} activation code")

        try:
            store.write(work)
        except IntegrityError as exc:
            raise AlreadyExists(f"a device with IMEI {number} is already registered") from exc

    def set_device_status(self, imei: str, status: str) -> None:
        """Change a device's registry status (e.g. block a stolen phone). Bumps its version."""
        store = self.store
        number, status = validate.imei(imei), validate.status(status)
        now = store.now()

        def work(conn: Connection) -> None:
            row = store.device(conn, number, lock=True)
            if row is None:
                raise NotFound(f"no device with IMEI {number}")
            conn.execute(update(devices).where(devices.c.id == row.id).values(
                status=status, status_changed_at=now, version=devices.c.version + 1))
            store.audit(conn, "status_changed", msisdn=row.owner, imei=number,
                        gateway=GATEWAY_ADMIN, at=now, detail=f"{row.status} -> {status}")

        store.write(work)

    def device_info(self, imei: str) -> DeviceRecord | None:
        store, number = self.store, validate.imei(imei)
        with store.reading() as conn:
            row = store.device(conn, number)
        if row is None:
            return None
        owner = _shown(lockout.OWNER.read(row), store.now())
        buyers = _shown(lockout.BUYERS.read(row), store.now())
        return DeviceRecord(
            imei=row.imei, brand=row.brand, model=row.model, status=row.status, owner=row.owner,
            owner_since=row.owner_since, has_activation_code=row.code_hash is not None,
            code_changed_at=row.code_changed_at, code_failed_attempts=owner.failed,
            code_locked_until=owner.locked_until, buyer_failed_attempts=buyers.failed,
            buyer_locked_until=buyers.locked_until, status_changed_at=row.status_changed_at,
            version=row.version, created_at=row.created_at, reported=row.reported,
        )

    def device_names(self) -> list[tuple[str, str]]:
        """Every (brand, model) in the registry, for building the names' audio."""
        with self.store.reading() as conn:
            rows = conn.execute(select(devices.c.brand, devices.c.model).distinct()
                                .order_by(devices.c.brand, devices.c.model)).all()
        return [(row.brand, row.model) for row in rows]

    # --- records ----------------------------------------------------------------------------------
    def transfers(self, *, imei: str | None = None, msisdn: str | None = None
                  ) -> list[TransferRecord]:
        """Oldest first; `msisdn` matches either side of a transfer."""
        query = select(transfers).order_by(transfers.c.at, transfers.c.id)
        if imei is not None:
            query = query.where(transfers.c.imei == validate.imei(imei))
        if msisdn is not None:
            number = normalize(msisdn)
            query = query.where(or_(transfers.c.from_msisdn == number,
                                    transfers.c.to_msisdn == number))
        with self.store.reading() as conn:
            rows = conn.execute(query).all()
        return [TransferRecord(reference=r.reference, imei=r.imei, from_msisdn=r.from_msisdn,
                               to_msisdn=r.to_msisdn, kind=r.kind, gateway=r.gateway, at=r.at)
                for r in rows]

    def audit(self, *, msisdn: str | None = None, imei: str | None = None,
              limit: int | None = None) -> list[AuditRecord]:
        """Oldest first (the last `limit` events when given)."""
        query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        if msisdn is not None:
            query = query.where(audit_log.c.msisdn == normalize(msisdn))
        if imei is not None:
            query = query.where(audit_log.c.imei == validate.imei(imei))
        if limit is not None:
            query = query.limit(limit)
        with self.store.reading() as conn:
            rows = conn.execute(query).all()
        return [AuditRecord(at=r.at, event=r.event, msisdn=r.msisdn, imei=r.imei,
                            gateway=r.gateway, detail=r.detail, caller=r.caller,
                            call_id=r.call_id) for r in reversed(rows)]
