"""Two FastAGI servers sharing one PostgreSQL registry behind the real Asterisk (issue 12).

The session's dialplan lists two servers (HAMTA_AGI_SERVERS: the session port, then a second
one) and fails over with Asterisk's own means: the first is called with ?overflow=yes, the next
is tried when the first hands a busy caller back or cannot be reached (AGISTATUS=FAILURE). Here
server A (the first, `--max-calls 1`) and server B (the second) run on a fresh PostgreSQL
database seeded with the demo cast. Two direct transfers of the seller's Samsung to different
buyers, placed together, land one on each server (A is full after the first): exactly one wins.
Then A is killed with SIGKILL while calls run, and every new call is served by B.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, make_url, text

from ivr.registry.demo import (
    DEMO_BUYER,
    DEMO_CODE,
    DEMO_EMPTY,
    DEMO_PHONE,
    DEMO_SELLER,
    DEMO_SELLER_PIN,
)
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from tests.asterisk.conftest import CLI, IN_CI, AgiServer, Env, dial
from tests.asterisk.test_e2e import _dial_streaming, _read_until

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres]

TRANSFER = f"3 1 {DEMO_SELLER_PIN}# 1 {DEMO_CODE} {{buyer}} 1 2 h"  # the first of 3 devices
INQUIRY = f"1 {DEMO_PHONE} h"


@pytest.fixture(scope="module")
def pg_url(asterisk: Env) -> Iterator[str]:
    """A fresh PostgreSQL database for this module, migrated and seeded with the demo cast
    (`hamta-ivr db upgrade`, `db seed-demo`, with the session's pepper); dropped after."""
    server = os.environ.get("HAMTA_TEST_PG_URL")
    if not server:
        message = "HAMTA_TEST_PG_URL is not set (bash db/pg-test-server.sh start)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    admin_url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"hamta_failover_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        env = {**asterisk.vars, "HAMTA_DB_URL": url}
        for step in (["db", "upgrade"], ["db", "seed-demo"]):
            done = subprocess.run([*CLI,
                                   *step], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def servers(asterisk: Env, agi_server: AgiServer, pg_url: str
            ) -> Iterator[tuple[AgiServer, AgiServer]]:
    """A on the session port (the dialplan's first), B on the second; the session's own server
    (SQLite) steps aside meanwhile."""
    agi_server.stop()
    env = {**asterisk.vars, "HAMTA_DB_URL": pg_url}
    first = AgiServer(asterisk, options=("--max-calls", "1", "--metrics", "off"),
                      name="serve-a", vars=env)
    second = AgiServer(asterisk, options=("--metrics", "off"), name="serve-b",
                       port=asterisk.agi_port2, vars=env)
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop(signal.SIGKILL)
        second.stop()
        agi_server.start()


def rows_for(url: str, call_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """{call id: (server, outcome)} from the shared registry's call log."""
    reg = Registry.open(url)
    try:
        return {row.call_id: (row.server, row.outcome) for row in reg.call_log.calls()
                if row.call_id in call_ids}
    finally:
        reg.close()


def test_two_servers_race_for_one_device_one_wins(servers: tuple[AgiServer, AgiServer],
                                                  asterisk: Env, pg_url: str) -> None:
    first, second = servers
    a, b = f"127.0.0.1:{first.listens}", f"127.0.0.1:{second.listens}"
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        one = pool.submit(dial, asterisk, DEMO_SELLER, TRANSFER.format(buyer=DEMO_BUYER))
        time.sleep(2.0)  # on A by now, which is full (--max-calls 1): the next goes to B
        two = pool.submit(dial, asterisk, DEMO_SELLER, TRANSFER.format(buyer=DEMO_EMPTY))
        results = [one.result(), two.result()]
    print(f"\nrace: {time.monotonic() - started:.1f}s", flush=True)
    rows = rows_for(pg_url, [r.call_id for r in results])
    assert {rows[r.call_id][0] for r in results} == {a, b}, rows  # one call on each server
    outcomes = [rows[r.call_id][1] or "" for r in results]
    winners = [r for r, outcome in zip(results, outcomes, strict=True)
               if outcome == "transfer:completed"]
    assert len(winners) == 1, (outcomes, [r.prompts for r in results])
    [loser] = [r for r in results if r is not winners[0]]
    loser_outcome = rows[loser.call_id][1] or ""
    # refused at its confirmation, or told so on the way (then it hangs up with its keys)
    assert loser_outcome == "transfer:refused:changed" or "changed_meanwhile" in loser.prompts, \
        (loser_outcome, loser.prompts)
    reg = Registry.open(pg_url)
    try:
        owner = reg.portal.device_info(DEMO_PHONE).owner  # type: ignore[union-attr]
    finally:
        reg.close()
    assert owner in (normalize(DEMO_BUYER), normalize(DEMO_EMPTY)), owner
    engine = create_engine(make_url(pg_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM transfers WHERE imei = :imei"),
                                {"imei": DEMO_PHONE}).scalar_one() == 1
    finally:
        engine.dispose()


def test_one_server_killed_the_other_serves_every_new_call(
        servers: tuple[AgiServer, AgiServer], asterisk: Env, pg_url: str) -> None:
    first, second = servers
    b = f"127.0.0.1:{second.listens}"
    started = time.monotonic()
    lines: list[str] = []
    on_a = _dial_streaming(asterisk, "09120000011", "h")  # A (empty), then on B:
    try:
        _read_until(on_a, "> welcome", lines)
        with ThreadPoolExecutor(max_workers=4) as pool:
            during = pool.submit(dial, asterisk, "09120000012", INQUIRY)
            time.sleep(1.0)
            first.stop(signal.SIGKILL)  # A gone mid-call, traffic going on
            after = [pool.submit(dial, asterisk, f"0912000002{i}", INQUIRY) for i in range(3)]
            served = [during.result(), *(f.result() for f in after)]
        out, _ = on_a.communicate(timeout=60)
    finally:
        on_a.kill()
    print(f"\nfailover: {time.monotonic() - started:.1f}s", flush=True)
    assert "> service_unavailable" in lines + out.splitlines()  # its server died under it
    for result in served:
        assert result.ok and "imei_registered" in " ".join(result.prompts), result.doc
        assert "service_unavailable" not in result.prompts, result.prompts
    rows = rows_for(pg_url, [r.call_id for r in served])
    assert {rows[r.call_id][0] for r in served} == {b}, rows
