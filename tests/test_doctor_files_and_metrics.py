"""Issue 17: the registry's SQLite files are made readable by their owner only, and `doctor`
warns (one line: the file and `chmod 600 …`) when a database file, the pepper file or the Kannel
password file can be read by its group or by everyone; and doctor checks the metrics endpoints
serve is configured with: every process's of `--processes`/HAMTA_PROCESSES."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ivr import doctor as d
from ivr.metrics import MetricsServer
from ivr.registry import demo
from ivr.registry.db import make_engine, upgrade
from tests.registry.support import TEST_PEPPER

SUFFIXES = ("", "-wal", "-shm", "-journal")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAMTA_CONFIG", "")
    for name in ("HAMTA_DB_URL", "HAMTA_SOUNDS_DIR", "HAMTA_SPOOL_DIR", "HAMTA_PEPPER_FILE",
                 "HAMTA_AMI_SECRET", "HAMTA_AMI_PORT", "HAMTA_AGI_HOST", "HAMTA_AGI_PORT",
                 "HAMTA_METRICS", "HAMTA_PROCESSES", "HAMTA_KANNEL_URL",
                 "HAMTA_KANNEL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAMTA_PEPPER", TEST_PEPPER.hex())


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask (root's and most users'): what made the files 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(db: Path) -> dict[str, int]:
    return {f"{db.name}{s}": stat.S_IMODE(os.stat(f"{db}{s}").st_mode) for s in SUFFIXES
            if os.path.exists(f"{db}{s}")}


# --- the database files are the owner's ---------------------------------------------------------
@pytest.mark.usefixtures("umask_022")
def test_db_upgrade_makes_files_only_their_owner_reads(tmp_path: Path) -> None:
    db = tmp_path / "data" / "registry.db"
    url = f"sqlite:///{db}"
    upgrade(url)  # what `hamta-ivr db upgrade` runs
    engine = make_engine(url)
    try:
        with engine.connect() as conn:  # open: the -wal and -shm files exist now
            conn.execute(text("SELECT count(*) FROM calls"))
            seen = modes(db)
    finally:
        engine.dispose()
    assert {"registry.db", "registry.db-wal", "registry.db-shm"} <= set(seen)
    assert {name: oct(mode) for name, mode in seen.items() if mode & 0o077} == {}


# --- doctor's warnings --------------------------------------------------------------------------
@pytest.fixture
def registry_url(sqlite_registry_factory: Any) -> str:
    registry = sqlite_registry_factory()
    demo.seed_demo(registry)
    return str(registry.store.engine.url)


def one_line(result: d.Result) -> str:
    [line] = d.render([result]).splitlines()
    return line


def test_database_files_others_can_read_are_warned_about(registry_url: str) -> None:
    db = Path(registry_url.removeprefix("sqlite:///"))
    for name in modes(db):
        os.chmod(db.parent / name, 0o600)
    assert d.check_database(registry_url).status == d.OK
    os.chmod(db, 0o644)
    result = d.check_database(registry_url)
    assert result.status == d.WARN and result.ok  # a warning: doctor still passes
    line = one_line(result)
    assert str(db) in line and f"chmod 600 {db}" in line and "0644" in line
    assert "the latest" in result.detail  # what the check found is still there


def test_a_pepper_file_others_can_read_is_warned_about(registry_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pepper = tmp_path / "pepper"
    pepper.write_text(TEST_PEPPER.hex() + "\n")
    monkeypatch.delenv("HAMTA_PEPPER")
    monkeypatch.setenv("HAMTA_PEPPER_FILE", str(pepper))
    for mode in (0o644, 0o640):
        pepper.chmod(mode)
        result = d.check_pepper(registry_url)
        assert result.status == d.WARN, (oct(mode), result)
        line = one_line(result)
        assert str(pepper) in line and f"chmod 600 {pepper}" in line, line
        assert TEST_PEPPER.hex() not in line
    pepper.chmod(0o600)
    assert d.check_pepper(registry_url).status == d.OK
    pepper.chmod(0o400)
    assert d.check_pepper(registry_url).status == d.OK


def test_a_kannel_password_file_others_can_read_is_warned_about(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kannel answers as smsbox does to the probe (a sendsms request with no recipient)."""
    import http.server
    import threading

    class Smsbox(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b"Missing receiver number")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Smsbox)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    password = tmp_path / "kannel-password"
    password.write_text("sendsms-secret\n")
    monkeypatch.setenv("HAMTA_KANNEL_URL",
                       f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/sendsms")
    monkeypatch.setenv("HAMTA_KANNEL_USERNAME", "hamta")
    monkeypatch.setenv("HAMTA_SMS_SENDER", "7777")
    monkeypatch.setenv("HAMTA_KANNEL_PASSWORD_FILE", str(password))
    try:
        password.chmod(0o600)
        assert d.check_kannel(None).status == d.OK
        password.chmod(0o644)
        result = d.check_kannel(None)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == d.WARN
    line = one_line(result)
    assert str(password) in line and f"chmod 600 {password}" in line
    assert "sendsms-secret" not in line


# --- the metrics serve is configured with -------------------------------------------------------
def two_free_ports() -> int:
    import socket

    for _ in range(50):
        with socket.socket() as one, socket.socket() as two:
            one.bind(("127.0.0.1", 0))
            port = int(one.getsockname()[1])
            try:
                two.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two free ports in a row")


async def test_doctor_checks_every_process_s_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --processes 2` (here HAMTA_PROCESSES, as the service's config file would set it)
    serves process 2's metrics on the metrics port + 1: doctor checks that one too."""
    async def ready() -> str | None:
        return None

    port = two_free_ports()
    monkeypatch.setenv("HAMTA_METRICS", f"127.0.0.1:{port}")
    monkeypatch.setenv("HAMTA_PROCESSES", "2")
    first = MetricsServer("127.0.0.1", port, ready)
    await first.start()
    try:
        [result] = [r for r in await d.run_checks(d.Setup.from_environment(timeout=1.0))
                    if r.name == "metrics"]
        assert result.status == d.FAIL and f"127.0.0.1:{port + 1}" in result.problem, result
        assert "process 2" in result.problem
        second = MetricsServer("127.0.0.1", port + 1, ready)
        await second.start()
        try:
            [result] = [r for r in await d.run_checks(d.Setup.from_environment(timeout=1.0))
                        if r.name == "metrics"]
        finally:
            await second.stop()
    finally:
        await first.stop()
    assert result.status == d.OK and str(port + 1) in result.detail, result
