"""The registry the benchmark calls into and the callers' scripts.

Scripts must keep working when repeated by thousands of callers at once:
- `inquiry`: key 1, a registered demo IMEI, hear "registered"; no secret, read-only.
- `my_devices`: keys 5 1, `1` (my number), the kartabl password, hear the list. A sign-in counts the
  attempt before verifying it (so parallel guesses cannot beat the lockout): more than three
  sign-ins in flight on one number lock it, as a brute-force attempt would. Every such caller
  therefore gets a bench subscriber of its own (at most two workers share one), created here
  through the Registry's admin API, with its own PIN hashed at production cost.
After the operation the caller stays silent at the main menu; the IVR says goodbye and hangs up
after three silences (answered at once without pacing).
"""

from __future__ import annotations

import math
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.caller import CallScript
from ivr import config
from ivr.registry.demo import DEMO_PHONE, demo_imei, seed_demo

BENCH_PIN = "2468"
TRANSFER_CODE = "13572468"  # the activation code of the transfer sellers' devices
TRANSFER_BUYER = "09359999999"
SIGN_IN_EVERY = 4  # one caller in four signs in (argon2), the rest ask about an IMEI
WORKERS_PER_SUBSCRIBER = 2
DEVICES_PER_SUBSCRIBER = 2


def bench_msisdn(i: int) -> str:
    return f"0919{i:07d}"


def bench_imei(i: int, k: int) -> str:
    return demo_imei(500_000 + i * DEVICES_PER_SUBSCRIBER + k)


def subscribers_needed(max_workers: int) -> int:
    """Bench subscribers for `max_workers` concurrent callers of the mix."""
    signing_in = math.ceil(max_workers / SIGN_IN_EVERY)
    return max(1, math.ceil(signing_in / WORKERS_PER_SUBSCRIBER))


def inquiry_script() -> CallScript:
    return CallScript("inquiry", "09121111111", f"1 {DEMO_PHONE}",
                      expect=("hamta/imei_registered",))


def my_devices_script(i: int) -> CallScript:
    return CallScript("my_devices", bench_msisdn(i), f"5 1 1 {BENCH_PIN}#",
                      expect=("hamta/list_end",), hash_after=(7,))


def transfer_msisdn(i: int) -> str:
    return f"0918{i:07d}"


def transfer_script(i: int) -> CallScript:
    """A direct transfer of seller i's first device (two in the kartabl: the choice is asked);
    each seller sells once, so a run needs a seller per call (prepare_transfers)."""
    return CallScript("transfer", transfer_msisdn(i),
                      f"3 1 {BENCH_PIN}# 1 {TRANSFER_CODE} {TRANSFER_BUYER} 1",
                      expect=("hamta/transferred",), hash_after=(6, 15))


def prepare_transfers(db: BenchDb, count: int, first: int = 0, threads: int = 1) -> None:
    """Sellers first … first+count-1, each with a PIN and two devices with TRANSFER_CODE
    (production cost; `threads` at a time: argon2 runs outside the GIL)."""
    from ivr.registry.service import Registry

    registry = Registry.open(db.url, pepper=bytes.fromhex(db.pepper_hex))

    def add(i: int) -> None:
        registry.portal.add_subscriber(transfer_msisdn(i), password=BENCH_PIN)
        for k in range(DEVICES_PER_SUBSCRIBER):
            registry.portal.add_device(demo_imei(900_000 + i * DEVICES_PER_SUBSCRIBER + k),
                                       owner=transfer_msisdn(i), brand="Samsung",
                                       model="Galaxy A54", activation_code=TRANSFER_CODE)

    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(add, range(first, first + count)))
    finally:
        registry.close()


def mix(subscribers: int) -> list[CallScript]:
    """Scripts for worker w = mix[w % len]: three inquiries, then a sign-in of its own number."""
    scripts: list[CallScript] = []
    for i in range(subscribers):
        scripts += [inquiry_script()] * (SIGN_IN_EVERY - 1) + [my_devices_script(i)]
    return scripts


def script_kinds(subscribers: int = 1) -> list[CallScript]:
    """One script of each kind (calibrating the floor's traces)."""
    return [inquiry_script(), my_devices_script(0)]


@dataclass
class BenchDb:
    """One registry database for the run, and what a server process needs to open it."""

    name: str  # "sqlite" / "postgresql"
    url: str
    pepper_hex: str
    data_dir: Path
    subscribers: int = 0
    drop: list[str] = field(default_factory=list)  # PostgreSQL database to drop at the end

    def env(self) -> dict[str, str]:
        """The environment of a server process (hamta-ivr serve, hamta-ivr-agi)."""
        env = config.child_env()
        env.update(HAMTA_DATA_DIR=str(self.data_dir), HAMTA_DB_URL=self.url,
                   HAMTA_PEPPER=self.pepper_hex)
        env.pop("HAMTA_PEPPER_FILE", None)
        return env


def prepare(db: BenchDb, subscribers: int, threads: int = 2) -> None:
    """Migrate, seed the demo cast and `subscribers` bench subscribers (PINs at production cost,
    hashed `threads` at a time: argon2 runs outside the GIL)."""
    from ivr.registry.db import upgrade
    from ivr.registry.errors import AlreadyExists
    from ivr.registry.service import Registry

    upgrade(db.url)
    registry = Registry.open(db.url, pepper=bytes.fromhex(db.pepper_hex))
    try:
        seed_demo(registry)

        def add(i: int) -> None:
            try:
                registry.portal.add_subscriber(bench_msisdn(i), password=BENCH_PIN)
            except AlreadyExists:
                return
            for k in range(DEVICES_PER_SUBSCRIBER):
                registry.portal.add_device(bench_imei(i, k), owner=bench_msisdn(i),
                                           brand="Samsung", model="Galaxy A54")

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(add, range(db.subscribers, subscribers)))
        db.subscribers = max(db.subscribers, subscribers)
    finally:
        registry.close()


def sqlite_db(folder: Path) -> BenchDb:
    folder.mkdir(parents=True, exist_ok=True)
    return BenchDb("sqlite", f"sqlite:///{folder / 'registry.db'}", secrets.token_hex(32),
                   folder)


def postgres_db(server_url: str, folder: Path) -> BenchDb:
    """A database of this run's own on the given server (dropped by `drop_postgres`)."""
    from sqlalchemy import create_engine, make_url, text

    base = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"hamta_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    folder.mkdir(parents=True, exist_ok=True)
    return BenchDb("postgresql", url, secrets.token_hex(32), folder,
                   drop=[base.render_as_string(hide_password=False), name])


def drop_postgres(db: BenchDb) -> None:
    if not db.drop:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(db.drop[0], isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db.drop[1]}" WITH (FORCE)'))
    finally:
        admin.dispose()
