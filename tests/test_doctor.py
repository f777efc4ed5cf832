"""`hamta-ivr doctor`: each check fails on purpose and prints its fix; a healthy set-up passes.

AMI is a small fake on loopback (the banner, Login, ShowDialPlan as Asterisk 22 answers them);
the check against the real Asterisk is left to `hamta-ivr doctor` on a demo set-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr import doctor as d
from ivr.asterisk.config import AsteriskConfig
from ivr.cli import doctor as doctor_cmd
from ivr.cli import main
from ivr.config import AgiAddress, ConfigError
from ivr.metrics import MetricsServer
from ivr.prompts import catalogue
from ivr.registry import demo
from tests.call.conftest import demo_server as demo_server  # a fixture, used by name
from tests.prompts.conftest import write_natives, write_wav
from tests.registry.support import TEST_PEPPER

SECRET = "fake-ami-secret-123"
AGI = AgiAddress("127.0.0.1", 4573)


# --- a fake AMI ------------------------------------------------------------------------------
def _message(**fields: str) -> bytes:
    return "".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n"


class FakeAmi:
    """Speaks enough AMI for doctor: the banner, Login, ShowDialPlan, Logoff."""

    def __init__(self, *, route: bool = True, agi_port: int = 4573,
                 reporting: bool = True) -> None:
        self.route, self.agi_port, self.reporting = route, agi_port, reporting
        self.actions: list[dict[str, str]] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        try:
            while True:
                action: dict[str, str] = {}
                while (line := (await reader.readline()).decode().rstrip("\r\n")):
                    key, _, value = line.partition(":")
                    action[key.strip()] = value.strip()
                if not action:
                    return
                self.actions.append(action)
                writer.write(self.answer(action))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def answer(self, action: dict[str, str]) -> bytes:
        aid = action.get("ActionID", "")
        name = action.get("Action", "").lower()
        if name == "login":
            if action.get("Secret") == SECRET:
                return _message(Response="Success", ActionID=aid,
                                Message="Authentication accepted")
            return _message(Response="Error", ActionID=aid, Message="Authentication failed")
        if name == "showdialplan":
            if not self.reporting:
                return _message(Response="Error", ActionID=aid, Message="Permission denied")
            if not self.route:
                return _message(Response="Error", ActionID=aid,
                                Message="Did not find context hamta-ivr")
            steps = [("1", "NoOp", "Hamta IVR"), ("2", "Set", "CHANNEL(language)=fa"),
                     ("3", "AGI", f"agi://127.0.0.1:{self.agi_port}/hamta")]
            out = _message(Response="Success", ActionID=aid, EventList="start",
                           Message="DialPlan list will follow")
            for priority, app, data in steps:
                out += _message(Event="ListDialplan", ActionID=aid, Context="hamta-ivr",
                                Extension="7777", Priority=priority, Application=app,
                                AppData=data, Registrar="pbx_config")
            return out + _message(Event="ShowDialPlanComplete", ActionID=aid,
                                  EventList="Complete", ListItems=str(len(steps)),
                                  ListExtensions="1", ListPriorities=str(len(steps)),
                                  ListContexts="1")
        return _message(Response="Goodbye", ActionID=aid, Message="Thanks for all the fish.")


@contextlib.asynccontextmanager
async def fake_ami(**kwargs: Any) -> AsyncIterator[AsteriskConfig]:
    server = await asyncio.start_server(FakeAmi(**kwargs), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield ami_config(port)
    finally:
        server.close()


def ami_config(port: int, secret: str = SECRET) -> AsteriskConfig:
    return AsteriskConfig(base=Path("/nonexistent"), sounds=Path("/nonexistent"), agi=AGI,
                          ami_port=port, ami_secret=secret, sip_bind="", sip_port=0,
                          rtp_range=(0, 0), classic_agi="")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- database and pepper ----------------------------------------------------------------------
@pytest.fixture
def registry_url(sqlite_registry_factory: Any) -> str:
    registry = sqlite_registry_factory()
    demo.seed_demo(registry)  # PINs and codes hashed: the pepper matters
    return str(registry.store.engine.url)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HAMTA_CONFIG", "")  # no config file: only what the test sets
    for name in ("HAMTA_DB_URL", "HAMTA_SOUNDS_DIR", "HAMTA_SPOOL_DIR", "HAMTA_PEPPER_FILE",
                 "HAMTA_AMI_SECRET", "HAMTA_AMI_PORT", "HAMTA_AGI_HOST", "HAMTA_AGI_PORT",
                 "HAMTA_METRICS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAMTA_PEPPER", TEST_PEPPER.hex())


def test_database_ok(registry_url: str) -> None:
    result = d.check_database(registry_url)
    assert result.status == d.OK and "the latest" in result.detail


def test_database_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing.db"
    result = d.check_database(f"sqlite:///{path}")
    assert result.status == d.FAIL and str(path) in result.problem
    assert "hamta-ivr db upgrade" in result.fix and not path.exists()


def test_database_unreachable() -> None:
    result = d.check_database(f"postgresql://hamta:pw@127.0.0.1:{free_port()}/registry")
    assert result.status == d.FAIL and "pw@" not in result.problem
    assert "HAMTA_DB_URL/--db" in result.fix and "start the database" in result.fix


def test_database_not_a_url() -> None:
    result = d.check_database("mysql://x/y")
    assert result.status == d.FAIL and "HAMTA_DB_URL/--db" in result.fix


def test_database_unmigrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    result = d.check_database(f"sqlite:///{path}")
    assert result.status == d.FAIL and "no tables yet" in result.problem
    assert result.fix.startswith("run `hamta-ivr db upgrade`")


def test_pepper_ok_and_wrong(registry_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert d.check_pepper(registry_url).status == d.OK
    monkeypatch.setenv("HAMTA_PEPPER", "ab" * 32)
    result = d.check_pepper(registry_url)
    assert result.status == d.FAIL and "is not the one" in result.problem
    assert "restore the pepper" in result.fix and "ab" * 32 not in result.problem + result.fix


def test_pepper_of_a_new_registry_creates_nothing(sqlite_template: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.delenv("HAMTA_PEPPER")
    shutil.copy(sqlite_template, tmp_path / "new.db")
    result = d.check_pepper(f"sqlite:///{tmp_path / 'new.db'}")
    assert result.status == d.OK and "new registry" in result.detail
    assert not (tmp_path / "data" / "pepper").exists()


# --- prompts ----------------------------------------------------------------------------------
def built_sounds(out: Path) -> None:
    """A tone for every sound the flows need, and a manifest of their texts (no tools)."""
    from ivr.prompts.build import plan, save_manifest
    from ivr.prompts.layout import sound_path

    seconds = {"prompt": 1.5, "number": 0.5, "digit": 0.4, "device": 1.2}
    manifest = {}
    for item in plan(catalogue.entries()):
        write_wav(sound_path(out, item.name), seconds[item.kind])
        manifest[item.name] = {"kind": item.kind, "text": item.text, "hash": "x",
                               **write_natives(out, item.name)}
    save_manifest(out, manifest)


def test_prompts_ok_then_one_missing(tmp_path: Path) -> None:
    from ivr.prompts.layout import sound_path

    sounds = tmp_path / "sounds"
    built_sounds(sounds)
    assert d.check_prompts(sounds).status == d.OK
    for ext in ("ulaw", "alaw", "sln16"):  # only the .wav: plays, transcoded
        sound_path(sounds, "digits/7", ext).unlink()
    result = d.check_prompts(sounds)
    assert result.status == d.WARN and "1 sound(s) have only their .wav" in result.problem
    sound_path(sounds, "digits/7").unlink()
    result = d.check_prompts(sounds)
    assert result.status == d.FAIL and "1 problem(s)" in result.problem
    assert "digits/7" in result.problem and "is missing" in result.problem
    assert result.fix.startswith("run `hamta-ivr prompts build`")


# --- the spool --------------------------------------------------------------------------------
NOBODY = d.Identity("the user 'nobody'", 65534, frozenset({65534}))
SERVE = d.Identity("serve", 0, frozenset({0}))


@pytest.fixture
def open_parent(tmp_path: Path) -> Path:
    """A folder every user may enter (pytest's own are 0700)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="hamta-doctor-"))
    folder.chmod(0o755)
    yield folder
    import shutil

    shutil.rmtree(folder)


def test_spool_readable_by_asterisks_group(open_parent: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the spool another group")
    spool = open_parent / "spool"
    spool.mkdir(mode=0o750)
    os.chown(spool, 0, 65534)
    spool.chmod(0o2750)
    result = d.check_spool(spool, NOBODY, SERVE)
    assert result.status == d.OK and "reads" in result.detail


def test_spool_unreadable_by_asterisk(open_parent: Path) -> None:
    spool = open_parent / "spool"
    spool.mkdir(mode=0o700)
    result = d.check_spool(spool, NOBODY, d.Identity("serve", os.geteuid(),
                                                     frozenset({os.getegid()})))
    assert result.status == d.FAIL and "cannot enter the spool" in result.problem
    assert "chgrp" in result.fix and "chmod 2750" in result.fix


def test_spool_behind_a_closed_parent(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    tmp_path.chmod(0o700)
    result = d.check_spool(spool, NOBODY, SERVE)
    assert result.status == d.FAIL and "cannot enter its parent" in result.problem
    assert "chmod o+x" in result.fix


def test_spool_group_asterisk_lacks(open_parent: Path) -> None:
    spool = open_parent / "spool"
    spool.mkdir()
    spool.chmod(0o751)  # enterable by all, but files (0640) go to a group nobody is not in
    me = d.Identity("serve", os.geteuid(), frozenset({os.getegid(), spool.stat().st_gid}))
    result = d.check_spool(spool, NOBODY, me)
    assert result.status == d.FAIL and "not in the spool's group" in result.problem
    assert "chgrp" in result.fix


def test_spool_missing(tmp_path: Path) -> None:
    result = d.check_spool(tmp_path / "none", NOBODY)
    assert result.status == d.FAIL and "does not exist" in result.problem
    assert "install -d" in result.fix


def test_spool_without_an_asterisk_here(tmp_path: Path) -> None:
    result = d.check_spool(tmp_path, None)
    assert result.status == d.OK and "not checked" in result.detail


# --- AMI, FastAGI, metrics --------------------------------------------------------------------
async def test_ami_with_the_route() -> None:
    async with fake_ami() as cfg:
        result = await d.check_ami(cfg, AGI)
    assert result.status == d.OK and "7777@hamta-ivr loaded" in result.detail


async def test_ami_without_the_route() -> None:
    async with fake_ami(route=False) as cfg:
        result = await d.check_ami(cfg, AGI)
    assert result.status == d.FAIL and "7777@hamta-ivr is not loaded" in result.problem
    assert "#include" in result.fix and "dialplan reload" in result.fix


async def test_ami_route_to_another_port() -> None:
    async with fake_ami(agi_port=4999) as cfg:
        result = await d.check_ami(cfg, AGI)
    assert result.status == d.FAIL and "agi://127.0.0.1:4999" in result.problem
    assert "HAMTA_AGI_PORT" in result.fix


async def test_ami_wrong_secret() -> None:
    async with fake_ami() as cfg:
        result = await d.check_ami(ami_config(cfg.ami_port, "wrong-secret-000"), AGI)
    assert result.status == d.FAIL and "refused" in result.problem
    assert "HAMTA_AMI_SECRET" in result.fix and SECRET not in result.problem + result.fix


async def test_ami_without_permission() -> None:
    async with fake_ami(reporting=False) as cfg:
        result = await d.check_ami(cfg, AGI)
    assert result.status == d.FAIL and "reporting" in result.fix


async def test_ami_nothing_listening() -> None:
    result = await d.check_ami(ami_config(free_port()), AGI)
    assert result.status == d.FAIL and "no AMI" in result.problem
    assert "start Asterisk" in result.fix


async def test_ami_no_secret() -> None:
    result = await d.check_ami(ConfigError("no HAMTA_AMI_SECRET and no /x/secrets/ami"), AGI)
    assert result.status == d.FAIL and "HAMTA_AMI_SECRET" in result.fix


async def test_fastagi_port(demo_server: Any) -> None:
    result = await d.check_fastagi(AgiAddress("127.0.0.1", free_port()))
    assert result.status == d.FAIL and "connection refused" in result.problem
    assert "hamta-ivr serve" in result.fix
    async with demo_server() as s:
        result = await d.check_fastagi(AgiAddress("0.0.0.0", s.server.port))
        assert s.server.in_progress == 0
    assert result.status == d.OK


async def test_metrics_endpoint(demo_server: Any) -> None:
    result = await d.check_metrics(("127.0.0.1", free_port()))
    assert result.status == d.FAIL and "hamta-ivr serve" in result.fix
    assert (await d.check_metrics(None)).status == d.SKIP
    async with demo_server(max_calls=1) as s:
        endpoint = MetricsServer("127.0.0.1", 0, s.server.readiness)
        await endpoint.start()
        try:
            assert (await d.check_metrics(("127.0.0.1", endpoint.port))).status == d.OK
            s.server.in_progress = 1  # as if a call held the only line
            result = await d.check_metrics(("127.0.0.1", endpoint.port))
            s.server.in_progress = 0
        finally:
            await endpoint.stop()
    assert result.status == d.FAIL and "503: not ready: at --max-calls" in result.problem


# --- the command ------------------------------------------------------------------------------
def test_the_command_fails_and_names_the_fixes(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    code = main(["--db", f"sqlite:///{tmp_path / 'none.db'}", "doctor", "--port",
                 str(free_port()), "--metrics", f"127.0.0.1:{free_port()}", "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  database" in out and "fix: run `hamta-ivr db upgrade`" in out
    assert "skip  pepper" in out and "FAIL  fastagi" in out and "FAIL  ami" in out
    assert out.rstrip().endswith("check(s) failed")


async def test_the_command_passes_on_a_healthy_setup(
        demo_server: Any, registry_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything in place (AMI faked): exit 0, and --json says so check by check."""
    built_sounds(tmp_path / "sounds")
    monkeypatch.setenv("HAMTA_SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("HAMTA_SPOOL_DIR", str(tmp_path / "spool"))
    (tmp_path / "spool").mkdir()
    monkeypatch.setattr(d, "asterisk_identity", lambda: None)
    printed: list[str] = []
    async with demo_server() as s, fake_ami(agi_port=s.server.port) as cfg:
        endpoint = MetricsServer("127.0.0.1", 0, s.server.readiness)
        await endpoint.start()
        monkeypatch.setenv("HAMTA_AMI_PORT", str(cfg.ami_port))
        monkeypatch.setenv("HAMTA_AMI_SECRET", SECRET)
        args = argparse.Namespace(db=registry_url, json=True, host=None, port=s.server.port,
                                  metrics=f"127.0.0.1:{endpoint.port}", timeout=2.0)
        try:
            results = await d.run_checks(d.Setup.from_environment(
                db=args.db, host=args.host, port=args.port, metrics=args.metrics,
                timeout=args.timeout))
        finally:
            await endpoint.stop()
    assert [(r.name, r.status) for r in results] == [
        ("database", "ok"), ("pepper", "ok"), ("prompts", "ok"), ("spool", "ok"),
        ("ami", "ok"), ("fastagi", "ok"), ("metrics", "ok"),
        ("kannel", "skip")], d.render(results)  # SMS not configured here: tests/sms/
    # the printed form of the same results
    monkeypatch.setattr(doctor_cmd.asyncio, "run", lambda coro: (coro.close(), results)[1])
    assert doctor_cmd.run_doctor(args, out=printed.append) == 0
    report = json.loads(printed[0])
    assert report["ok"] is True and len(report["checks"]) == 8
