"""The settings room (issue 20): ivr/config.py is the one module that reads the environment or the
config file; `Settings.load` takes the file, then the environment, then the flags, and checks each
value once; every path is computed by the Settings, so the commands cannot drift apart again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import config
from ivr.asterisk import config as asterisk_config
from ivr.asterisk import dev
from ivr.config import FILE_KEYS, ConfigError, Settings, env_name
from ivr.prompts import layout
from tests.test_config_file import write

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "ivr", ROOT / "bench")  # the runtime and the bench beside it
ROOM = "ivr/config.py"
READS = re.compile(r"os\.environ|os\.getenv|environ\.get|\btomllib\b|/etc/hamta-ivr/config\.toml")
ALLOWLIST: set[str] = set()  # modules not converted yet: none (issue 20)
# Modules that write the environment (for a library or an in-process server), never read a setting
WRITERS = {
    "bench/e2e.py": "sets a private instance's HAMTA_* for the servers it runs in this process",
}
# TOML files that are not settings: tomllib allowed there, nothing else of the list above.
OTHER_TOML = {
    "ivr/prompts/catalogue.py": "the prompt catalogue (catalogue.toml), shipped with the code",
    "ivr/asterisk/dev.py": "pyproject.toml's package-dir, to hash the sources it installs",
}


def _reads() -> dict[str, list[str]]:
    """Module -> its lines that read the environment or the config file (`file:line: text`)."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for package in PACKAGES for p in package.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name == ROOM or name in WRITERS:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = READS.search(line)
            if match is None or (name in OTHER_TOML and match.group() == "tomllib"):
                continue
            found.setdefault(name, []).append(f"{name}:{number}: {line.strip()}")
    return found


def test_no_module_but_the_settings_room_reads_the_environment_or_the_config_file():
    strays = [line for name, lines in _reads().items() if name not in ALLOWLIST for line in lines]
    assert not strays, ("read through ivr.config (config.current(), config.child_env()) "
                        "instead:\n" + "\n".join(strays))


def test_the_allowlist_only_shrinks():
    """A module that no longer reads the environment leaves the list (so does a TOML reader
    that no longer reads TOML): the list says what is left to do, no more."""
    reads = _reads()
    stale = sorted(name for name in ALLOWLIST if name not in reads)
    assert not stale, f"remove from ALLOWLIST (they read through ivr.config now): {stale}"
    for name in OTHER_TOML:
        assert "tomllib" in (ROOT / name).read_text(), f"remove {name} from OTHER_TOML"
    for name in WRITERS:
        assert "os.environ" in (ROOT / name).read_text(), f"remove {name} from WRITERS"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in FILE_KEYS:
        monkeypatch.delenv(env_name(key), raising=False)
    for name in ("HAMTA_CONFIG", "HAMTA_PEPPER", "XDG_DATA_HOME", "HAMTA_KANNEL_PASSWORD",
                 "HAMTA_AMI_SECRET", "HAMTA_ASTERISK_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAMTA_CONFIG", "")
    yield monkeypatch
    config.use(None)


def test_sounds_dir_in_the_config_file_only_is_one_folder_for_every_command(tmp_path, clean_env):
    """The drift of issue 20, fixed by construction: `prompts build` (layout.sounds_dir(--out
    unset)), `doctor` (layout.sounds_dir()), `serve` (the same) and the Asterisk renderer
    (asterisk config load, and the environment of its classic AGI scripts) all take the folder
    from the one Settings."""
    data, sounds = tmp_path / "data", tmp_path / "snd"
    write(tmp_path, f'data_dir = "{data}"\nsounds_dir = "{sounds}"\n', clean_env)
    cfg = asterisk_config.load(classic_agi="x")
    places = {
        "prompts build": layout.sounds_dir(None),
        "doctor, serve": layout.sounds_dir(),
        "settings": config.current().sounds_dir,
        "asterisk render": cfg.sounds,
        "classic AGI's environment": Path(dev.asterisk_env(cfg)["HAMTA_SOUNDS_DIR"]),
    }
    assert set(places.values()) == {sounds}, places
    assert data / "sounds" not in places.values()


def test_the_paths_follow_the_data_dir(tmp_path, clean_env):
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    settings = Settings.load()
    base = tmp_path / "xdg" / "hamta-ivr"
    assert settings.data_dir == base
    assert (settings.sounds_dir, settings.spool_dir, settings.pepper_file,
            settings.secrets_dir) == (base / "sounds", base / "spool", base / "pepper",
                                      base / "secrets")
    assert settings.db_url == f"sqlite:///{base / 'registry.db'}"
    clean_env.setenv("HAMTA_CACHE", str(tmp_path / "cache"))
    assert Settings.load().chroot == tmp_path / "cache" / "asterisk-root"


def test_file_then_environment_then_flags(tmp_path, clean_env):
    write(tmp_path, 'agi_port = 4600\nagi_host = "0.0.0.0"\nmax_calls = 80\n'
          'staff_queue = "from-file"\n', clean_env)
    clean_env.setenv("HAMTA_AGI_PORT", "4700")
    clean_env.setenv("HAMTA_STAFF_QUEUE", "from-env")
    settings = Settings.load(flags={"agi_port": 4800, "agi_host": None})
    assert settings.agi == config.AgiAddress("0.0.0.0", 4800)
    assert settings.staff_queue is not None and settings.staff_queue.name == "from-env"
    assert settings.max_calls == 80 and settings.drain == 120.0 and settings.workers is None
    assert settings.sources["agi_port"] == "--port"
    assert settings.sources["staff_queue"] == "HAMTA_STAFF_QUEUE"
    assert settings.sources["max_calls"] == f"max_calls in {tmp_path / 'config.toml'}"
    assert settings.sources["workers"] == "HAMTA_WORKERS"  # unset: named by its variable


BAD = {  # variable, value -> what the one line says
    ("HAMTA_AGI_PORT", "abc"): "HAMTA_AGI_PORT/--port 'abc' is not a port number",
    ("HAMTA_AGI_PORT", "70000"): "HAMTA_AGI_PORT/--port 70000 is outside 0-65535",
    ("HAMTA_AMI_PORT", "0"): "HAMTA_AMI_PORT=0 is outside 1-65535",
    ("HAMTA_SIP_PORT", "x"): "HAMTA_SIP_PORT='x' is not a port number (1-65535)",
    ("HAMTA_DB_URL", "registry.db"): "HAMTA_DB_URL/--db 'registry.db' is not a database URL",
    ("HAMTA_AGI_SERVERS", "a:99999"): "HAMTA_AGI_SERVERS: 'a:99999' is not host:port",
    ("HAMTA_SIP_STAFF", "Ops"): "HAMTA_SIP_STAFF: 'Ops' is not a SIP user name",
    ("HAMTA_TRUSTED_ENDPOINTS", "staff1"): "HAMTA_TRUSTED_ENDPOINTS: 'staff1' is a staff",
    ("HAMTA_STAFF_QUEUE", "general"): "HAMTA_STAFF_QUEUE: 'general' is not a queue name",
    ("HAMTA_STAFF_WAIT", "5"): "HAMTA_STAFF_WAIT: '5' is not 10-3600 seconds",
    ("HAMTA_STAFF_HOURS", "sat 9-5"): "HAMTA_STAFF_HOURS: 'sat 9-5' is not opening hours",
    ("HAMTA_USSD_GATEWAYS", "a/b"): "HAMTA_USSD_GATEWAYS: 'a/b' is not an IP address",
    ("HAMTA_SMS_INQUIRY_LIMIT", "5/week"): "HAMTA_SMS_INQUIRY_LIMIT '5/week': write it",
    ("HAMTA_ASTERISK_MODE", "vm"): "HAMTA_ASTERISK_MODE='vm': use auto, host or chroot",
    ("HAMTA_WORKERS", "100"): "HAMTA_WORKERS 100: give 1-64 hashing threads",
    ("HAMTA_MAX_CALLS", "x"): "HAMTA_MAX_CALLS 'x' is not a number",
    ("HAMTA_MAX_CALLS", "1000000"): "HAMTA_MAX_CALLS 1000000: give 1-100000 calls in progress",
    ("HAMTA_DRAIN", "4000.5"): "HAMTA_DRAIN 4000.5: give 0-3600 seconds",
    ("HAMTA_IDLE_LIMIT", "nan"): "HAMTA_IDLE_LIMIT nan: give 1-3600 seconds",
    ("HAMTA_PROCESSES", "0"): "HAMTA_PROCESSES 0: give 1-64 processes",
    ("HAMTA_METRICS", "localhost:http"): "HAMTA_METRICS: 'localhost:http' is not HOST:PORT",
    ("HAMTA_USSD_LISTEN", "13140"): "HAMTA_USSD_LISTEN '13140': write it as HOST:PORT",
}


@pytest.mark.parametrize("variable, value", sorted(BAD))
def test_each_bad_value_is_one_line_naming_its_source(variable, value, clean_env):
    clean_env.setenv(variable, value)
    if variable in ("HAMTA_STAFF_WAIT", "HAMTA_STAFF_HOURS"):
        clean_env.setenv("HAMTA_STAFF_QUEUE", "hamta-staff")
    with pytest.raises(ConfigError) as caught:
        Settings.load()
    assert str(caught.value).startswith(BAD[variable, value]) and "\n" not in str(caught.value)


def test_a_bad_value_in_the_file_or_a_flag_names_that(tmp_path, clean_env):
    path = write(tmp_path, "ami_port = 70000\n", clean_env)
    with pytest.raises(ConfigError, match=f"^ami_port in {re.escape(str(path))}=70000 is outside"):
        Settings.load()
    with pytest.raises(ConfigError, match=r"^--port 'x' is not a port number"):
        Settings.load(flags={"agi_port": "x", "ami_port": 5038})


def test_a_flag_hides_a_bad_value_below_it(clean_env):
    clean_env.setenv("HAMTA_AGI_PORT", "abc")
    assert Settings.load(flags={"agi_port": 4800}).agi.port == 4800
    assert config.agi_address(port=4800).port == 4800


def test_not_strict_a_bad_value_waits_for_the_command_that_reads_it(clean_env):
    """current() is built not strict: `doctor` and a command that does not need staff hours
    still run; the one that reads them gets the one line."""
    clean_env.setenv("HAMTA_STAFF_QUEUE", "hamta-staff")
    clean_env.setenv("HAMTA_STAFF_WAIT", "5")
    settings = config.current()
    assert settings.agi.port == 4573
    with pytest.raises(ConfigError, match="HAMTA_STAFF_WAIT"):
        settings.checked("agi_port", "staff_queue")
    with pytest.raises(ConfigError, match="HAMTA_STAFF_WAIT"):
        config.staff_queue()


def test_current_is_built_once_and_use_installs_one(tmp_path, clean_env):
    assert config.current() is config.current()
    clean_env.setenv("HAMTA_AGI_PORT", "4601")  # a changed environment is read again
    assert config.current().agi.port == 4601
    installed = Settings.load(flags={"agi_port": 4999, "data_dir": str(tmp_path)})
    config.use(installed)
    assert config.current() is installed
    assert config.agi_address().port == 4999 and config.data_dir_path() == tmp_path
    assert config.current().source("agi_port") == "--port"
    config.use(None)
    assert config.current().agi.port == 4601


def test_secrets_stay_out_of_the_repr(clean_env):
    clean_env.setenv("HAMTA_PEPPER", "ab" * 32)
    clean_env.setenv("HAMTA_KANNEL_PASSWORD", "kannel-secret")
    clean_env.setenv("HAMTA_AMI_SECRET", "ami-secret-1")
    clean_env.setenv("HAMTA_TEST_PG_URL", "postgresql://u:pg-secret@h/d")
    clean_env.setenv("HAMTA_DB_URL", "postgresql+psycopg://u:db-secret@h/d")
    settings = Settings.load()
    assert settings.pepper == "ab" * 32 and settings.env_secret("HAMTA_AMI_SECRET")
    shown = repr(settings)
    for secret in ("ab" * 32, "kannel-secret", "ami-secret-1", "pg-secret", "db-secret"):
        assert secret not in shown


def test_a_child_process_environment_is_made_by_the_room(clean_env):
    clean_env.setenv("HAMTA_SOMETHING", "1")
    env = config.child_env(HAMTA_ASTERISK_ROOT="/x")
    assert env["HAMTA_SOMETHING"] == "1" and env["HAMTA_ASTERISK_ROOT"] == "/x"
    assert "PATH" in env
    only = config.child_env(hamta_only=True)
    assert "PATH" not in only and only["HAMTA_SOMETHING"] == "1"
