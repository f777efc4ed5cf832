"""Every configuration mistake is one line on stderr naming the setting and the fix, exit code
non-zero, never a traceback. Each case runs `ivr.cli.main` in process with the CLI's stderr log
handler (any stray log line or uncaught exception fails it); a few also run as `python -m ivr …`,
as an operator would (a process start costs ~1-2 s, so not all of them)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.registry.hashing import TEST_ONLY_FAST
from ivr.registry.service import Registry
from tests.registry.support import TEST_PEPPER

ROOT = Path(__file__).resolve().parents[1]
OTHER_PEPPER = "a7" * 32
UNSET = None  # an environment variable the case removes


@dataclass(frozen=True)
class Case:
    env: dict[str, str | None]  # `{tmp}` is the test's folder, `{db}` a populated registry file
    argv: tuple[str, ...]
    setting: str  # what the one line must name


DB = "HAMTA_DB_URL/--db"
PEPPER_DB = {"HAMTA_DB_URL": "sqlite:///{db}"}
NO_PEPPER = {"HAMTA_PEPPER": UNSET, **PEPPER_DB}
READ_ONLY = {"HAMTA_DB_URL": "sqlite:///file:{db}?mode=ro&uri=true"}
PG_DOWN = {"HAMTA_DB_URL": "postgresql://u:p@127.0.0.1:1/x"}
SHOW = ("subscriber", "show", "09127777777")
CALL = ("call", "--keys", "1")

CASES = {
    # HAMTA_DB_URL / --db
    "unknown-database": Case({"HAMTA_DB_URL": "foo://bar"}, ("db", "upgrade"), DB),
    "unknown-database-flag": Case({}, ("--db", "foo://bar", *SHOW), DB),
    "mysql-no-driver": Case({"HAMTA_DB_URL": "mysql://u@h/d"}, SHOW, DB),
    "not-a-url": Case({"HAMTA_DB_URL": "registry.db"}, ("db", "upgrade"), DB),
    "sqlite-no-file": Case({"HAMTA_DB_URL": "sqlite://"}, ("db", "upgrade"), DB),
    "sqlite-memory": Case({"HAMTA_DB_URL": "sqlite:///:memory:"}, ("db", "seed-demo"), DB),
    "sqlite-uri-option-ignored": Case({"HAMTA_DB_URL": "sqlite:///{db}?mode=ro"},
                                      ("db", "seed-demo"), DB),
    "postgres-unreachable-upgrade": Case(PG_DOWN, ("db", "upgrade"), DB),
    "postgres-unreachable-show": Case(PG_DOWN, SHOW, DB),
    "postgres-unreachable-call": Case(PG_DOWN, CALL, DB),
    "sqlite-under-a-file": Case({"HAMTA_DB_URL": "sqlite:///{tmp}/a-file/x.db"},
                                ("db", "upgrade"), DB),
    "sqlite-is-a-folder": Case({"HAMTA_DB_URL": "sqlite:///{tmp}/folder.db"}, SHOW, DB),
    "sqlite-random-bytes-upgrade": Case({"HAMTA_DB_URL": "sqlite:///{tmp}/random.db"},
                                        ("db", "upgrade"), DB),
    "sqlite-random-bytes-call": Case({"HAMTA_DB_URL": "sqlite:///{tmp}/random.db"}, CALL, DB),
    "sqlite-missing-read-only": Case({"HAMTA_DB_URL": "sqlite:///file:{tmp}/none.db?mode=ro"
                                      "&uri=true"}, SHOW, DB),
    # a read-only database, written to
    "read-only-seed-demo": Case(READ_ONLY, ("db", "seed-demo"), DB),
    "read-only-subscriber-add": Case(READ_ONLY, ("subscriber", "add", "09120000009"), DB),
    "read-only-call": Case(READ_ONLY, CALL, DB),
    # HAMTA_PEPPER / HAMTA_PEPPER_FILE
    "pepper-file-binary": Case({**NO_PEPPER, "HAMTA_PEPPER_FILE": "{tmp}/binary-pepper"}, SHOW,
                               "HAMTA_PEPPER_FILE"),
    "pepper-file-missing": Case({**NO_PEPPER, "HAMTA_PEPPER_FILE": "{tmp}/nowhere"}, SHOW,
                                "HAMTA_PEPPER_FILE"),
    "pepper-file-is-a-folder": Case({**NO_PEPPER, "HAMTA_PEPPER_FILE": "{tmp}/folder.db"},
                                    SHOW, "HAMTA_PEPPER_FILE"),
    "pepper-default-missing": Case(NO_PEPPER, SHOW, "HAMTA_PEPPER_FILE"),
    "pepper-too-short": Case({**PEPPER_DB, "HAMTA_PEPPER": "abcd"}, ("db", "seed-demo"),
                             "HAMTA_PEPPER"),
    "pepper-not-hex": Case({**PEPPER_DB, "HAMTA_PEPPER": "zz" * 32}, CALL, "HAMTA_PEPPER"),
    "pepper-all-zero": Case({**PEPPER_DB, "HAMTA_PEPPER": "00" * 32}, SHOW, "HAMTA_PEPPER"),
    "pepper-of-another-registry": Case({**PEPPER_DB, "HAMTA_PEPPER": OTHER_PEPPER}, CALL,
                                       "HAMTA_PEPPER_FILE"),
    # HAMTA_DATA_DIR
    "data-dir-is-a-file": Case({"HAMTA_DATA_DIR": "{tmp}/a-file", "HAMTA_DB_URL": UNSET},
                               SHOW, "HAMTA_DATA_DIR"),
    # HAMTA_AGI_PORT
    "agi-port-not-a-number": Case({"HAMTA_AGI_PORT": "abc"}, ("serve",), "HAMTA_AGI_PORT"),
    "agi-port-too-big": Case({"HAMTA_AGI_PORT": "70000"}, ("serve",), "HAMTA_AGI_PORT"),
    # HAMTA_STAFF_QUEUE / HAMTA_STAFF_HOURS / HAMTA_STAFF_WAIT: `0` to a person
    "staff-queue-not-a-name": Case({"HAMTA_STAFF_QUEUE": "two words"}, ("serve",),
                                   "HAMTA_STAFF_QUEUE"),
    "staff-hours-not-hours": Case({"HAMTA_STAFF_QUEUE": "q", "HAMTA_STAFF_HOURS": "9-5"},
                                  ("serve",), "HAMTA_STAFF_HOURS"),
    "staff-hours-render": Case({"HAMTA_STAFF_QUEUE": "q", "HAMTA_STAFF_HOURS": "sat 16:00-08:00"},
                               ("asterisk", "render", "--out", "{tmp}/etc"), "HAMTA_STAFF_HOURS"),
    "staff-wait-too-short": Case({"HAMTA_STAFF_QUEUE": "q", "HAMTA_STAFF_WAIT": "5"},
                                 ("serve",), "HAMTA_STAFF_WAIT"),
    # `ussd serve`: USSD sessions and SMS inquiries
    "ussd-listen-not-host-port": Case({"HAMTA_USSD_LISTEN": "nowhere"}, ("ussd", "serve"),
                                      "HAMTA_USSD_LISTEN"),
    "ussd-gateways-not-addresses": Case({"HAMTA_USSD_GATEWAYS": "10.0.0.1,gw one"},
                                        ("ussd", "serve"), "HAMTA_USSD_GATEWAYS"),
    "sms-inquiry-limit-not-a-limit": Case({"HAMTA_SMS_INQUIRY_LIMIT": "lots"}, ("ussd", "serve"),
                                          "HAMTA_SMS_INQUIRY_LIMIT"),
    # HAMTA_MIGRATIONS_DIR
    "migrations-missing-upgrade": Case({**PEPPER_DB, "HAMTA_MIGRATIONS_DIR": "{tmp}/nowhere"},
                                       ("db", "upgrade"), "HAMTA_MIGRATIONS_DIR"),
    "migrations-missing-show": Case({**PEPPER_DB, "HAMTA_MIGRATIONS_DIR": "{tmp}/nowhere"},
                                    SHOW, "HAMTA_MIGRATIONS_DIR"),
}


@pytest.fixture
def place(tmp_path: Path, sqlite_template: Path) -> Path:
    """A populated registry (`registry.db`, TEST_PEPPER) and the wrong things a setting may
    name: a regular file, a folder, random bytes, a binary pepper file."""
    db = tmp_path / "registry.db"
    shutil.copyfile(sqlite_template, db)
    with Registry.open(f"sqlite:///{db}", pepper=TEST_PEPPER,
                       hash_params=TEST_ONLY_FAST) as registry:
        registry.portal.add_subscriber("09127777777", password="73916482")
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "folder.db").mkdir()
    (tmp_path / "random.db").write_bytes(os.urandom(4096))
    (tmp_path / "binary-pepper").write_bytes(b"\xff\xfe" + os.urandom(62))
    (tmp_path / "data").mkdir()
    return tmp_path


def environment(place: Path, overrides: dict[str, str | None]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAMTA_")}
    env.update(HAMTA_DATA_DIR=str(place / "data"), HAMTA_PEPPER=TEST_PEPPER.hex(),
               HAMTA_DB_URL=f"sqlite:///{place / 'registry.db'}")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.format(tmp=place, db=place / "registry.db")
    return env


def hamta_ivr(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr", *argv], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_one_line(code: int, stderr: str, setting: str) -> str:
    assert code != 0
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("hamta-ivr: error: "), stderr
    assert setting in lines[0], stderr
    return lines[0]


def in_process(env: dict[str, str], argv: tuple[str, ...], monkeypatch, capsys) -> tuple[int, str]:
    """`hamta-ivr ARGV` through ivr.cli.main, its log lines going to stderr as in the CLI."""
    from ivr.cli import main

    for key in [k for k in os.environ if k.startswith("HAMTA_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("HAMTA_"):
            monkeypatch.setenv(key, value)
    capsys.readouterr()
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)  # capsys's stderr
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        code = main(list(argv))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_configuration_mistake_is_one_line_naming_the_setting(case: Case, place: Path,
                                                                 monkeypatch, capsys):
    code, stderr = in_process(environment(place, case.env), case.argv, monkeypatch, capsys)
    assert_one_line(code, stderr, case.setting)


AS_A_PROCESS = ["unknown-database", "postgres-unreachable-call", "sqlite-random-bytes-call",
                "pepper-file-binary", "pepper-of-another-registry", "read-only-seed-demo",
                "migrations-missing-upgrade", "agi-port-not-a-number"]


@pytest.mark.parametrize("name", AS_A_PROCESS)
def test_as_a_process_too(name: str, place: Path):
    case = CASES[name]
    done = hamta_ivr(environment(place, case.env), *case.argv)
    assert_one_line(done.returncode, done.stderr, case.setting)


def test_the_read_only_cases_changed_nothing(place: Path):
    env = environment(place, READ_ONLY)
    assert hamta_ivr(env, "subscriber", "add", "09120000009").returncode != 0
    env = environment(place, {})
    done = hamta_ivr(env, "subscriber", "show", "09120000009")
    assert done.returncode == 1 and "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any file whatever its mode; "
                    "the read-only cases above use a SQLite mode=ro URI instead")
def test_a_read_only_sqlite_file_for_a_normal_user(place: Path):
    (place / "registry.db").chmod(0o444)
    place.chmod(0o555)
    try:
        done = hamta_ivr(environment(place, {}), "db", "seed-demo")
    finally:
        place.chmod(0o755)
    assert_one_line(done.returncode, done.stderr, DB)


def test_an_unreadable_data_directory(place: Path, monkeypatch, capsys):
    """chmod 000 as a normal user; as root (who reads any folder) the permission check is made
    to answer as it would for a normal user, in process."""
    data = place / "data"
    overrides = {"HAMTA_DB_URL": UNSET}
    if os.geteuid() != 0:
        data.chmod(0o000)
        try:
            done = hamta_ivr(environment(place, overrides), *SHOW)
        finally:
            data.chmod(0o700)
        assert_one_line(done.returncode, done.stderr, "HAMTA_DATA_DIR")
        return
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if Path(path) == data else real_access(path, mode, **kw)))
    code, stderr = in_process(environment(place, overrides), SHOW, monkeypatch, capsys)
    line = assert_one_line(code, stderr, "HAMTA_DATA_DIR")
    assert "not readable" in line


def test_verbose_shows_the_traceback_of_a_database_error(place: Path):
    """-v keeps the traceback for a developer; the last line is still the one-line answer."""
    done = hamta_ivr(environment(place, READ_ONLY), "-v", "subscriber", "add", "09120000009")
    assert done.returncode == 2 and "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("hamta-ivr: error: ")
