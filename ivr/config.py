"""Deployment settings: where the data lives, which database, the pepper, the FastAGI address.

Every setting is read through `setting(key)`: the environment variable HAMTA_<KEY> (or a
command-line flag that overrides it), else the key in the config file (`/etc/hamta-ivr/config.toml`,
HAMTA_CONFIG names another one, HAMTA_CONFIG= with nothing reads none), else the default. A bad
setting or a bad file raises ConfigError naming the file or the setting, and the fix.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo


class ConfigError(Exception):
    """An operator-facing configuration problem; the message names the setting and the fix."""


# --- the config file ------------------------------------------------------------------------------
CONFIG_ENV = "HAMTA_CONFIG"
DEFAULT_CONFIG_FILE = Path("/etc/hamta-ivr/config.toml")

# key -> (type, example); the environment variable is HAMTA_<KEY>. Secrets (the pepper, the AMI and
# SIP passwords, Kannel's sendsms password) are not keys: they stay in files of their own
# (pepper_file, <data dir>/secrets, kannel_password_file).
FILE_KEYS: dict[str, tuple[type, str]] = {
    "db_url": (str, '"postgresql+psycopg://hamta@db.example/hamta"'),
    "pepper_file": (Path, '"/etc/hamta-ivr/pepper"'),
    "data_dir": (Path, '"/var/lib/hamta-ivr"'),
    "sounds_dir": (Path, '"/var/lib/hamta-ivr/sounds"'),
    "spool_dir": (Path, '"/var/lib/hamta-ivr/spool"'),
    "agi_host": (str, '"127.0.0.1"'),
    "agi_port": (int, "4573"),
    "max_calls": (int, "500"),
    "idle_limit": (float, "120"),
    "workers": (int, "2"),
    "drain": (float, "120"),
    "processes": (int, "1"),
    "agi_servers": (str, '"127.0.0.1:4573,127.0.0.1:4574"'),
    "metrics": (str, '"127.0.0.1:9573"'),
    "ami_port": (int, "5038"),
    "sip_bind": (str, '"127.0.0.1"'),
    "sip_port": (int, "5060"),
    "rtp_start": (int, "10000"),
    "sip_staff": (str, '"staff1:09121111111,staff2:09122222222"'),
    "trusted_endpoints": (str, '"mci-trunk,irancell-trunk"'),
    "kannel_url": (str, '"http://127.0.0.1:13013/cgi-bin/sendsms"'),
    "kannel_username": (str, '"hamta"'),
    "kannel_password_file": (Path, '"/etc/hamta-ivr/kannel-password"'),
    "sms_sender": (str, '"7777"'),
    "staff_queue": (str, '"hamta-staff"'),
    "staff_hours": (str, '"sat-wed 08:00-16:00, thu 08:00-12:00"'),
    "staff_wait": (int, "120"),
    "ussd_listen": (str, '"127.0.0.1:13140"'),
    "ussd_gateways": (str, '"10.20.0.5,10.20.0.6"'),
    "sms_inquiry_limit": (str, '"5/hour,20/day"'),
}
_KIND = {str: "a string", Path: "an absolute path (a string starting with /)",
         int: "a whole number", float: "a number"}
_loaded: dict[tuple[str, int, int], dict[str, str]] = {}
_warned: set[str] = set()


def env_name(key: str) -> str:
    """The environment variable that overrides a config file key."""
    return "HAMTA_" + key.upper()


def config_file() -> Path | None:
    """HAMTA_CONFIG, else /etc/hamta-ivr/config.toml; None when HAMTA_CONFIG is set empty."""
    raw = os.environ.get(CONFIG_ENV)
    if raw is None:
        return DEFAULT_CONFIG_FILE
    return Path(raw).expanduser() if raw.strip() else None


def file_settings() -> dict[str, str]:
    """The config file's settings as text (what the environment variable would hold), read once
    per version of the file. A file that is missing is no settings, unless HAMTA_CONFIG names it;
    one that cannot be parsed, has an unknown key or a value of the wrong type is a ConfigError
    naming the file, the key and the fix."""
    path = config_file()
    if path is None:
        return {}
    explicit = CONFIG_ENV in os.environ
    try:
        stat = path.stat()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{CONFIG_ENV} names {path}, which does not exist; create it "
                              f"(`./setup.sh install` writes one) or set {CONFIG_ENV}= "
                              "(empty) to read no config file") from None
        return {}
    except OSError as exc:
        return _unreadable(path, exc, explicit)
    cache_key = (str(path), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _loaded:
        try:
            values = read_config_file(path)
        except OSError as exc:
            return _unreadable(path, exc, explicit)
        _loaded.clear()
        _loaded[cache_key] = values
    return _loaded[cache_key]


def read_config_file(path: Path) -> dict[str, str]:
    """One config file's settings as text; ConfigError naming the file, the key and the fix when
    it is not valid (OSError when it cannot be read)."""
    with open(path, "rb") as fh:
        try:
            doc = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix that line: one `key = value` "
                              'per line, strings in double quotes (data_dir = "/var/lib/hamta-ivr")'
                              ) from None
    return {key: _checked(path, key, value) for key, value in doc.items()}


def _unreadable(path: Path, exc: OSError, explicit: bool) -> dict[str, str]:
    if explicit:
        raise ConfigError(f"cannot read the config file {path} ({exc.strerror}); run as root or "
                          f"as a member of its group (hamta), or set {CONFIG_ENV} to another "
                          "file") from None
    if str(path) not in _warned:  # a user outside the service's group: defaults, said once
        _warned.add(str(path))
        log.warning("cannot read %s (%s): using the environment and defaults only; set %s= to "
                    "silence this", path, exc.strerror, CONFIG_ENV)
    return {}


def _checked(path: Path, key: str, value: object) -> str:
    if key not in FILE_KEYS:
        if key == "pepper":
            raise ConfigError(f"{path}: key 'pepper' is not allowed: the pepper stays out of the "
                              "config file; put it in a file of its own (mode 600, owner hamta) "
                              "and name it: pepper_file = \"/etc/hamta-ivr/pepper\"")
        close = difflib.get_close_matches(key, FILE_KEYS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{path}: unknown key {key!r}; {hint}the keys are "
                          f"{', '.join(FILE_KEYS)}")
    kind, example = FILE_KEYS[key]
    ok = (isinstance(value, str) and value.strip() != "" if kind in (str, Path)
          else isinstance(value, int) and not isinstance(value, bool) if kind is int
          else isinstance(value, int | float) and not isinstance(value, bool))
    if ok and kind is Path and not Path(str(value)).is_absolute():
        ok = False
    if not ok:
        raise ConfigError(f"{path}: {key} = {_toml(value)} must be {_KIND[kind]}; write e.g. "
                          f"{key} = {example}")
    return str(value)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def setting(key: str) -> str | None:
    """HAMTA_<KEY> from the environment (unless empty), else the config file's `key`, else None.
    The one place every setting is read."""
    if key not in FILE_KEYS:
        raise KeyError(key)
    value = os.environ.get(env_name(key))
    if value:
        return value
    return file_settings().get(key)


def setting_source(key: str) -> str:
    """Where setting(key) came from, for messages: `HAMTA_X`, or `key in FILE`."""
    if os.environ.get(env_name(key)) or key not in file_settings():
        return env_name(key)
    return f"{key} in {config_file()}"


def data_dir_path() -> Path:
    """Where the data directory is (HAMTA_DATA_DIR, else the XDG default), without creating it."""
    explicit = setting("data_dir")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hamta-ivr"


def data_dir() -> Path:
    """HAMTA_DATA_DIR, else $XDG_DATA_HOME/hamta-ivr, else ~/.local/share/hamta-ivr; created when
    missing. It must be a folder this user can read and enter (ConfigError naming the setting)."""
    path = data_dir_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the data directory {path} ({exc.strerror}); "
            "set HAMTA_DATA_DIR to a writable folder"
        ) from exc
    if not path.is_dir():
        raise ConfigError(f"the data directory {path} is not a folder; "
                          "set HAMTA_DATA_DIR to a folder this user can write")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"the data directory {path} is not readable by this user; fix its "
                          "permissions (chmod 700, owned by this user) or set HAMTA_DATA_DIR "
                          "to a folder it can use")
    return path


def db_url(explicit: str | None = None) -> str:
    """--db, else HAMTA_DB_URL, else a SQLite file in the data directory."""
    url = explicit or setting("db_url")
    if url:
        if "://" not in url:
            where = "--db" if explicit else f"{setting_source('db_url')}/--db"
            raise ConfigError(
                f"{where} {url!r} is not a database URL; use e.g. "
                "sqlite:////var/lib/hamta/registry.db or postgresql+psycopg://user@host/db"
            )
        return url
    return f"sqlite:///{data_dir() / 'registry.db'}"


PEPPER_MIN_BYTES = 32
PEPPER_HOWTO = ("`python3 -c 'import secrets; print(secrets.token_hex(32))' > FILE` "
                "and chmod 600 it")
log = logging.getLogger(__name__)


def default_pepper_file() -> Path:
    """The pepper file used when neither HAMTA_PEPPER nor HAMTA_PEPPER_FILE is set."""
    return data_dir_path() / "pepper"


def pepper_source() -> str:
    """Where load_pepper takes the pepper from, for messages (never the pepper itself)."""
    if os.environ.get("HAMTA_PEPPER"):
        return "HAMTA_PEPPER"
    path_setting = setting("pepper_file")
    if path_setting:
        return f"{setting_source('pepper_file')}={path_setting}"
    return f"the pepper file {default_pepper_file()} (HAMTA_PEPPER/HAMTA_PEPPER_FILE unset)"


def load_pepper(*, create: bool = False) -> bytes:
    """The secret key mixed into every password and activation-code hash.

    It lives outside the database so that a stolen database alone cannot be brute-forced (a PIN
    has too few values for a salted hash to protect it). HAMTA_PEPPER (hex) or HAMTA_PEPPER_FILE
    (a file holding it), else the file `pepper` in the data directory. That file is created (mode
    600, with a warning in the log) only with `create`, which ivr.registry.service.Registry.open
    passes only for a new registry (no hash, no pepper fingerprint): for a registry that already
    holds hashes a new pepper would make every stored PIN and code wrong, so a missing file is a
    ConfigError naming it.
    """
    value = os.environ.get("HAMTA_PEPPER")
    source = "HAMTA_PEPPER"
    if not value:
        path_setting = setting("pepper_file")
        path = Path(path_setting).expanduser() if path_setting else default_pepper_file()
        source = (f"the pepper file {path} ({setting_source('pepper_file')})" if path_setting
                  else f"the pepper file {path} (default; HAMTA_PEPPER/HAMTA_PEPPER_FILE unset)")
        value = _read_pepper_file(path, source, explicit=bool(path_setting), create=create)
    try:
        pepper = bytes.fromhex(value)
    except ValueError as exc:
        raise ConfigError(f"{source} must hold hex digits (64 of them); make one with "
                          f"{PEPPER_HOWTO}") from exc
    if len(pepper) < PEPPER_MIN_BYTES:
        raise ConfigError(
            f"{source} holds {len(pepper)} bytes; it needs at least {PEPPER_MIN_BYTES} "
            f"(64 hex digits); make one with {PEPPER_HOWTO}"
        )
    if not any(pepper):
        raise ConfigError(f"{source} is all zeros, which is no secret; make one with "
                          f"{PEPPER_HOWTO}")
    return pepper


def _read_pepper_file(path: Path, source: str, *, explicit: bool, create: bool) -> str:
    try:
        missing = not path.exists()
    except OSError as exc:
        raise ConfigError(f"cannot reach {source}: {exc.strerror}; fix the permissions of its "
                          "folder (HAMTA_DATA_DIR) or set HAMTA_PEPPER_FILE") from exc
    if missing:
        if explicit:
            raise ConfigError(
                f"{setting_source('pepper_file')} points at {path}, which does not exist; "
                "restore the pepper "
                f"the registry was made with there, or for a new registry create it with "
                f"{PEPPER_HOWTO}"
            )
        if not create:
            raise ConfigError(
                f"no pepper: {path} does not exist (HAMTA_PEPPER/HAMTA_PEPPER_FILE unset) and "
                "this registry already holds PIN/code hashes made with one; restore the pepper "
                f"the registry was made with to {path} (or set HAMTA_PEPPER_FILE to it): a new "
                "pepper would make every stored PIN and code wrong"
            )
        _create_pepper_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}; it must be a file this user "
                          "can read (chmod 600, owned by this user)") from exc
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source} is not text: it must hold the pepper as 64 hex digits; "
                          f"make one with {PEPPER_HOWTO}") from exc


def _create_pepper_file(path: Path) -> None:
    """A new random pepper at `path`, mode 600. Written aside and linked into place, so another
    process never reads a half-written file; one that was first wins and its pepper is kept."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        data_dir()  # the folder, with its own checks
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(PEPPER_MIN_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.link(aside, path)
    except FileExistsError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot create the pepper file {path} ({exc.strerror}); make the "
                          "data directory writable (HAMTA_DATA_DIR) or set HAMTA_PEPPER_FILE"
                          ) from exc
    finally:
        aside.unlink(missing_ok=True)
    log.warning("created a new pepper in %s for this new registry: back it up apart from the "
                "database; without it no stored PIN or activation code can be verified", path)


@dataclass(frozen=True)
class AgiAddress:
    host: str
    port: int


def agi_address(host: str | None = None, port: int | None = None) -> AgiAddress:
    """--host/--port, else HAMTA_AGI_HOST/HAMTA_AGI_PORT, else 127.0.0.1:4573 (loopback only)."""
    host = host or setting("agi_host") or "127.0.0.1"
    raw = port if port is not None else (setting("agi_port") or "4573")
    where = "--port" if port is not None else f"{setting_source('agi_port')}/--port"
    try:
        number = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{where} {raw!r} is not a port number; set it to "
                          "1-65535 (default 4573)") from exc
    if not 0 <= number <= 65535:
        raise ConfigError(f"{where} {number} is outside 0-65535; set it to "
                          "1-65535 (default 4573)")
    return AgiAddress(host, number)


# --- a person behind `0`: the staff queue (issue 18) ---------------------------------------------
DAYS = ("sat", "sun", "mon", "tue", "wed", "thu", "fri")  # the Iranian week, Saturday first
TEHRAN = ZoneInfo("Asia/Tehran")  # callers' clock: the staff's opening hours, «yesterday»
STAFF_WAIT_DEFAULT = 120  # seconds a caller waits in the queue before "all experts are busy"
_QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_HOURS = re.compile(r"(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
                    r"(?P<start>\d{1,2}):(?P<start_m>\d{2})\s*-\s*(?P<end>\d{1,2}):(?P<end_m>\d{2})")


@dataclass(frozen=True)
class OpenHours:
    """Days (indices into DAYS, in week order) open from `start` to `end` (minutes after
    midnight, Tehran time)."""

    days: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class StaffQueue:
    """The Asterisk queue `0` hands a caller to, when it is open, and how long a caller waits."""

    name: str
    hours: tuple[OpenHours, ...] = ()  # () = always open
    wait: int = STAFF_WAIT_DEFAULT

    def open_at(self, moment: datetime) -> bool:
        if not self.hours:
            return True
        local = moment.astimezone(TEHRAN)
        day = (local.weekday() + 2) % 7  # Monday is 0 in Python, 2 in DAYS
        minute = local.hour * 60 + local.minute
        return any(day in group.days and group.start <= minute < group.end
                   for group in self.hours)


def staff_queue() -> StaffQueue | None:
    """HAMTA_STAFF_QUEUE / `staff_queue`: the Asterisk queue behind `0` (None, `0` not offered,
    when unset), with `staff_hours` and `staff_wait`. A bad one is a ConfigError naming it."""
    name = (setting("staff_queue") or "").strip()
    if not name:
        return None
    if not _QUEUE_NAME.fullmatch(name) or name.lower() == "general":
        raise ConfigError(f"{setting_source('staff_queue')}: {name!r} is not a queue name; use "
                          "letters, digits, _ and - (e.g. staff_queue = \"hamta-staff\"), or "
                          "leave it unset for no `0`")
    raw_wait = setting("staff_wait")
    try:
        wait = int(raw_wait) if raw_wait else STAFF_WAIT_DEFAULT
    except ValueError:
        wait = 0
    if not 10 <= wait <= 3600:
        raise ConfigError(f"{setting_source('staff_wait')}: {raw_wait!r} is not 10-3600 seconds "
                          f"a caller waits for an expert; write e.g. staff_wait = "
                          f"{STAFF_WAIT_DEFAULT}")
    return StaffQueue(name, staff_hours(), wait)


def staff_hours() -> tuple[OpenHours, ...]:
    """HAMTA_STAFF_HOURS / `staff_hours`: "sat-wed 08:00-16:00, thu 08:00-12:00" (Tehran time);
    () when unset: always open."""
    raw = (setting("staff_hours") or "").strip()
    if not raw:
        return ()
    groups = []
    for item in raw.split(","):
        match = _HOURS.fullmatch(item.strip().lower())
        group = _open_hours(match) if match else None
        if group is None:
            raise ConfigError(
                f"{setting_source('staff_hours')}: {item.strip()!r} is not opening hours; write "
                f'e.g. staff_hours = "{FILE_KEYS["staff_hours"][1].strip(chr(34))}" (days '
                f"{' '.join(DAYS)}, a range or one day, then HH:MM-HH:MM Tehran time, the end "
                "after the start), or leave it unset: always open")
        groups.append(group)
    return tuple(groups)


def _open_hours(match: re.Match[str]) -> OpenHours | None:
    first, last = match["first"], match["last"] or match["first"]
    if first not in DAYS or last not in DAYS:
        return None
    a, b = DAYS.index(first), DAYS.index(last)
    days = tuple(range(a, b + 1)) if a <= b else (*range(a, 7), *range(0, b + 1))
    hours = [int(match[k]) for k in ("start", "start_m", "end", "end_m")]
    if hours[0] > 23 or hours[2] > 24 or hours[1] > 59 or hours[3] > 59:
        return None
    start, end = hours[0] * 60 + hours[1], hours[2] * 60 + hours[3]
    return OpenHours(days, start, end) if start < end <= 24 * 60 else None
