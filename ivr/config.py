"""The settings room: every deployment setting, typed and checked once, and every path made here.

`Settings.load()` reads the config file (`/etc/hamta-ivr/config.toml`; HAMTA_CONFIG names another,
HAMTA_CONFIG= with nothing reads none), then the environment (HAMTA_<KEY>), then the command line's
flags, each later one winning; every value is parsed and range-checked there, once, and a bad one
is a ConfigError naming where it came from (`HAMTA_X`, `key in FILE` or `--flag`) and the fix.
`current()` is the process's Settings (the ones `serve` installed with `use()`, its flags on top;
else built from the environment and the file once, again only when they change); no other module
reads the environment or the config file (tests/test_settings_room.py).

The functions below the Settings do what a typed field cannot: `data_dir()` makes and checks the
folder, `db_url(--db)` and `agi_address(--host, --port)` put a command's flag on top, and
`load_pepper` reads the secret from its file (never a field).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")


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


def config_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """HAMTA_CONFIG, else /etc/hamta-ivr/config.toml; None when HAMTA_CONFIG is set empty."""
    raw = (os.environ if environ is None else environ).get(CONFIG_ENV)
    if raw is None:
        return DEFAULT_CONFIG_FILE
    return Path(raw).expanduser() if raw.strip() else None


def file_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The config file's settings as text (what the environment variable would hold), read once
    per version of the file. A file that is missing is no settings, unless HAMTA_CONFIG names it;
    one that cannot be parsed, has an unknown key or a value of the wrong type is a ConfigError
    naming the file, the key and the fix."""
    environ = os.environ if environ is None else environ
    path = config_file(environ)
    if path is None:
        return {}
    explicit = CONFIG_ENV in environ
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


@dataclass(frozen=True)
class AgiAddress:
    host: str
    port: int


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


def _staff_queue(raw: Mapping[str, str], source: Mapping[str, str]) -> StaffQueue | None:
    """`staff_queue`: the Asterisk queue behind `0` (None, `0` not offered, when unset), with
    `staff_hours` and `staff_wait`. A bad one is a ConfigError naming it."""
    name = raw.get("staff_queue", "").strip()
    if not name:
        return None
    if not _QUEUE_NAME.fullmatch(name) or name.lower() == "general":
        raise ConfigError(f"{source['staff_queue']}: {name!r} is not a queue name; use "
                          "letters, digits, _ and - (e.g. staff_queue = \"hamta-staff\"), or "
                          "leave it unset for no `0`")
    raw_wait = raw.get("staff_wait")
    try:
        wait = int(raw_wait) if raw_wait else STAFF_WAIT_DEFAULT
    except ValueError:
        wait = 0
    if not 10 <= wait <= 3600:
        raise ConfigError(f"{source['staff_wait']}: {raw_wait!r} is not 10-3600 seconds "
                          f"a caller waits for an expert; write e.g. staff_wait = "
                          f"{STAFF_WAIT_DEFAULT}")
    return StaffQueue(name, _staff_hours(raw.get("staff_hours", ""), source["staff_hours"]), wait)


def _staff_hours(raw: str, source: str) -> tuple[OpenHours, ...]:
    """`staff_hours`: "sat-wed 08:00-16:00, thu 08:00-12:00" (Tehran time); () when unset:
    always open."""
    raw = raw.strip()
    if not raw:
        return ()
    groups = []
    for item in raw.split(","):
        match = _HOURS.fullmatch(item.strip().lower())
        group = _open_hours(match) if match else None
        if group is None:
            raise ConfigError(
                f"{source}: {item.strip()!r} is not opening hours; write "
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


# --- the one typed Settings ----------------------------------------------------------------------
# the command line's flags that override a setting: key -> the flag, for messages
FLAGS = {"agi_host": "--host", "agi_port": "--port", "db_url": "--db", "sounds_dir": "--out",
         "workers": "--workers", "drain": "--drain", "max_calls": "--max-calls",
         "idle_limit": "--idle-limit", "processes": "--processes", "metrics": "--metrics"}
# The demo registry's seller and buyer: plain 7777 from a staff softphone reaches the IVR as that
# mobile number (not withheld); 7777*09xxxxxxxxx calls as any other.
DEFAULT_STAFF = "staff1:09121111111,staff2:09122222222"
DEFAULT_CACHE = Path("/var/cache/hamta-ivr")
MAX_CALLS_DEFAULT = 500  # calls in progress per server (ivr.call.fastagi.MAX_CALLS)
DRAIN_DEFAULT = 120.0  # seconds running calls may go on after SIGTERM (ivr.cli.serve)
DEFAULT_SMS_INQUIRY_LIMIT = "5/hour,20/day"
DEFAULT_METRICS = "127.0.0.1:9573"
DEFAULT_USSD_LISTEN = "127.0.0.1:13140"
PEPPER_ENV = "HAMTA_PEPPER"
KANNEL_PASSWORD_ENV = "HAMTA_KANNEL_PASSWORD"
AMI_SECRET_ENV = "HAMTA_AMI_SECRET"
SIP_SECRET_PREFIX = "HAMTA_SIP_SECRET_"
EVENT_LOOP_ENV = "HAMTA_EVENT_LOOP"  # "asyncio": the standard loop even when uvloop is installed
# what a process's settings depend on besides the config file: a change rebuilds current()
_OTHER_ENV = ("XDG_DATA_HOME", "XDG_CACHE_HOME", "HOME")
_STAFF_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Settings:
    """Every setting of one process with its real type, checked when built (`load`). The text of
    each key and where it came from stay too (`raw`, `sources`), for messages and for the
    modules that still parse their own; secrets are left out of the repr."""

    # key -> its text, for the keys that are set (flag > env > file); db_url may hold a password
    raw: Mapping[str, str] = field(repr=False)
    # key -> `--flag`, `HAMTA_X` (also when unset) or `key in FILE`
    sources: Mapping[str, str] = field(repr=False)
    config_file: Path | None
    home: Path
    xdg_data_home: Path | None
    xdg_cache_home: Path | None
    data_dir_setting: Path | None
    sounds_dir_setting: Path | None
    spool_dir_setting: Path | None
    pepper_file_setting: Path | None
    db_url_setting: str | None = field(repr=False)
    agi: AgiAddress
    agi_servers: tuple[AgiAddress, ...]  # tried in order by the dialplan; () = just `agi`
    ami_port: int
    sip_bind: str
    sip_port: int
    rtp_start: int
    sip_staff: tuple[tuple[str, str | None], ...]  # (SIP user, the mobile number it calls as)
    trusted_endpoints: tuple[str, ...]
    staff_queue: StaffQueue | None
    ussd_gateways: frozenset[str]
    sms_inquiry_limit: tuple[tuple[int, float], ...]  # (count, window seconds)
    workers: int | None  # hashing threads; None: one per CPU but one
    drain: float  # seconds running calls may go on after SIGTERM
    max_calls: int  # calls in progress per server
    idle_limit: float | None  # seconds of caller silence; None: derived from the built prompts
    processes: int  # FastAGI server processes
    metrics: tuple[str, int] | None  # /metrics, /healthz, /readyz; None: `off`
    ussd_listen: tuple[str, int]  # where `ussd serve` listens for Kannel's callbacks
    kannel_url: str | None
    kannel_username: str | None
    kannel_password_file: Path | None
    sms_sender: str | None
    # development and operator knobs, environment only
    asterisk_conf: Path | None  # HAMTA_ASTERISK_CONF: another asterisk-conf/ folder
    cache: Path  # HAMTA_CACHE: the development Asterisk's root and downloads
    asterisk_mode: str  # HAMTA_ASTERISK_MODE: auto, host or chroot
    asterisk_root: Path | None  # HAMTA_ASTERISK_ROOT: the chroot
    migrations_dir: Path | None  # HAMTA_MIGRATIONS_DIR: another db/migrations folder
    event_loop: str  # HAMTA_EVENT_LOOP: "asyncio", else uvloop when installed
    test_pg_url: str | None = field(default=None, repr=False)  # may hold a password
    pepper: str | None = field(default=None, repr=False)  # HAMTA_PEPPER (hex)
    kannel_password: str | None = field(default=None, repr=False)  # HAMTA_KANNEL_PASSWORD
    env_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # AMI/SIP secrets
    problems: Mapping[str, ConfigError] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None,
             flags: Mapping[str, object] | None = None, *, strict: bool = True) -> Settings:
        """The config file, then the environment, then `flags` (key -> value; None is "not
        given"), every value checked once: a ConfigError naming its source and the fix. Not
        `strict`, a bad value is kept in `problems` (its field holds the default) and raised by
        `checked(key)` when a command reads it: `doctor` reports each problem in its place."""
        env = os.environ if environ is None else environ
        unknown = set(flags or ()) - set(FILE_KEYS)
        if unknown:  # a programming mistake, not an operator's
            raise KeyError(f"no such setting: {', '.join(sorted(unknown))}")
        file = file_settings(env)
        path = config_file(env)
        raw: dict[str, str] = {}
        sources: dict[str, str] = {}
        for key in FILE_KEYS:
            flag = (flags or {}).get(key)
            if flag is not None and flag != "":
                raw[key], sources[key] = str(flag), FLAGS.get(key, f"--{key.replace('_', '-')}")
            elif env.get(env_name(key)):
                raw[key], sources[key] = env[env_name(key)], env_name(key)
            elif key in file:
                raw[key], sources[key] = file[key], f"{key} in {path}"
            else:
                sources[key] = env_name(key)
        problems: dict[str, ConfigError] = {}

        def check(key: str, parse: Callable[[], T], fallback: T) -> T:
            try:
                return parse()
            except ConfigError as exc:
                if strict:
                    raise
                problems[key] = exc
                return fallback

        no_staff: tuple[tuple[str, str | None], ...] = ()
        sip_staff = check("sip_staff", lambda: _sip_staff(raw.get("sip_staff") or DEFAULT_STAFF,
                                                          sources["sip_staff"]), no_staff)
        mode = check("asterisk_mode", lambda: _asterisk_mode(env.get("HAMTA_ASTERISK_MODE")),
                     "auto")
        return cls(
            raw=raw, sources=sources, config_file=path, problems=problems,
            home=Path(env["HOME"]) if env.get("HOME") else Path.home(),
            xdg_data_home=_env_path(env, "XDG_DATA_HOME"),
            xdg_cache_home=_env_path(env, "XDG_CACHE_HOME"),
            data_dir_setting=_path(raw.get("data_dir")),
            sounds_dir_setting=_path(raw.get("sounds_dir")),
            spool_dir_setting=_path(raw.get("spool_dir")),
            pepper_file_setting=_path(raw.get("pepper_file")),
            db_url_setting=check("db_url", lambda: _db_url(raw.get("db_url"), sources["db_url"]),
                                 None),
            agi=AgiAddress(raw.get("agi_host") or "127.0.0.1",
                           check("agi_port", lambda: _agi_port(raw.get("agi_port"),
                                                               sources["agi_port"]), 4573)),
            agi_servers=check("agi_servers", lambda: _agi_servers(raw.get("agi_servers", ""),
                                                                  sources["agi_servers"]), ()),
            ami_port=check("ami_port", lambda: _port(raw.get("ami_port"), 5038,
                                                     sources["ami_port"]), 5038),
            sip_bind=raw.get("sip_bind") or "127.0.0.1",
            sip_port=check("sip_port", lambda: _port(raw.get("sip_port"), 5060,
                                                     sources["sip_port"]), 5060),
            rtp_start=check("rtp_start", lambda: _port(raw.get("rtp_start"), 10000,
                                                       sources["rtp_start"]), 10000),
            sip_staff=sip_staff,
            trusted_endpoints=check("trusted_endpoints", lambda: _trusted_endpoints(
                raw.get("trusted_endpoints", ""), sources["trusted_endpoints"], sip_staff), ()),
            staff_queue=check("staff_queue", lambda: _staff_queue(raw, sources), None),
            ussd_gateways=check("ussd_gateways", lambda: _ussd_gateways(
                raw.get("ussd_gateways", ""), sources["ussd_gateways"]), frozenset()),
            sms_inquiry_limit=check("sms_inquiry_limit", lambda: _sms_limits(
                raw.get("sms_inquiry_limit") or DEFAULT_SMS_INQUIRY_LIMIT,
                sources["sms_inquiry_limit"]), ()),
            workers=check("workers", lambda: _number(raw, sources, "workers", int, 1, 64,
                                                     "hashing threads (or leave it out: one per "
                                                     "CPU but one)"), None),
            drain=_or(check("drain", lambda: _number(raw, sources, "drain", float, 0, 3600,
                                                     "seconds for running calls to end"), None),
                      DRAIN_DEFAULT),
            max_calls=_or(check("max_calls", lambda: _number(
                raw, sources, "max_calls", int, 1, 100_000,
                f"calls in progress (default {MAX_CALLS_DEFAULT})"), None), MAX_CALLS_DEFAULT),
            idle_limit=check("idle_limit", lambda: _number(
                raw, sources, "idle_limit", float, 1, 3600,
                "seconds (or leave it out: derived from the built prompts)"), None),
            processes=_or(check("processes", lambda: _number(
                raw, sources, "processes", int, 1, 64, "processes (e.g. one per core)"), None), 1),
            metrics=check("metrics", lambda: _metrics(raw.get("metrics"), sources["metrics"]),
                          None),
            ussd_listen=check("ussd_listen", lambda: _host_port(
                raw.get("ussd_listen") or DEFAULT_USSD_LISTEN, sources["ussd_listen"]),
                              ("127.0.0.1", 13140)),
            kannel_url=raw.get("kannel_url"), kannel_username=raw.get("kannel_username"),
            kannel_password_file=_path(raw.get("kannel_password_file")),
            sms_sender=raw.get("sms_sender"),
            asterisk_conf=_env_path(env, "HAMTA_ASTERISK_CONF"),
            cache=_env_path(env, "HAMTA_CACHE") or DEFAULT_CACHE,
            asterisk_mode=mode, asterisk_root=_env_path(env, "HAMTA_ASTERISK_ROOT"),
            migrations_dir=_env_path(env, "HAMTA_MIGRATIONS_DIR"),
            event_loop=env.get(EVENT_LOOP_ENV, "").strip().lower(),
            test_pg_url=env.get("HAMTA_TEST_PG_URL") or None,
            pepper=env.get(PEPPER_ENV) or None,
            kannel_password=env.get(KANNEL_PASSWORD_ENV) or None,
            env_secrets={k: v for k, v in env.items() if v and (
                k == AMI_SECRET_ENV or k.startswith(SIP_SECRET_PREFIX))},
        )

    # --- every path, computed here only -----------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """`data_dir`, else $XDG_DATA_HOME/hamta-ivr, else ~/.local/share/hamta-ivr (not
        created: `ivr.config.data_dir()` makes it and checks it)."""
        if self.data_dir_setting is not None:
            return self.data_dir_setting
        return (self.xdg_data_home or self.home / ".local" / "share") / "hamta-ivr"

    @property
    def sounds_dir(self) -> Path:
        """`sounds_dir`, else <data dir>/sounds: where `prompts build` writes and `serve`,
        `asterisk up` and `doctor` look."""
        if self.sounds_dir_setting is not None:
            return self.sounds_dir_setting.resolve()
        return self.data_dir / "sounds"

    @property
    def spool_dir(self) -> Path:
        """`spool_dir`, else <data dir>/spool: the secret digit strings Asterisk plays."""
        if self.spool_dir_setting is not None:
            return self.spool_dir_setting.resolve()
        return self.data_dir / "spool"

    @property
    def pepper_file(self) -> Path:
        """`pepper_file`, else <data dir>/pepper."""
        return self.pepper_file_setting or self.data_dir / "pepper"

    @property
    def db_url(self) -> str:
        """`db_url`, else a SQLite file in the data directory."""
        return self.db_url_setting or f"sqlite:///{self.data_dir / 'registry.db'}"

    @property
    def secrets_dir(self) -> Path:
        """<data dir>/secrets: the AMI and softphone passwords made once."""
        return self.data_dir / "secrets"

    @property
    def cache_root(self) -> Path:
        """$XDG_CACHE_HOME/hamta-ivr, else ~/.cache/hamta-ivr (the recogniser's model)."""
        return (self.xdg_cache_home or self.home / ".cache") / "hamta-ivr"

    @property
    def chroot(self) -> Path:
        """The development Asterisk's root file system (HAMTA_ASTERISK_ROOT)."""
        return self.asterisk_root or self.cache / "asterisk-root"

    def checked(self, *keys: str) -> Settings:
        """Self, once the values of `keys` are known good: else the first one's ConfigError
        (only Settings built not `strict` hold any)."""
        for key in keys:
            if key in self.problems:
                raise self.problems[key]
        return self

    def env_secret(self, name: str) -> str | None:
        """A deployment secret given in the environment (HAMTA_AMI_SECRET,
        HAMTA_SIP_SECRET_<NAME>), else None."""
        return self.env_secrets.get(name)

    def source(self, key: str) -> str:
        """Where `key` came from, for messages: `--flag`, `HAMTA_X` or `key in FILE`."""
        return self.sources[key]


def _path(raw: str | None) -> Path | None:
    return Path(raw).expanduser() if raw else None


def _env_path(environ: Mapping[str, str], name: str) -> Path | None:
    return Path(environ[name]) if environ.get(name) else None


N = TypeVar("N", int, float)


def _number(raw: Mapping[str, str], sources: Mapping[str, str], key: str, kind: type[N],
            low: float, high: float, what: str) -> N | None:
    """A number setting of `serve` in low-high, None when unset; the messages `hamta-ivr serve`
    gives."""
    text = raw.get(key)
    if not text:
        return None
    name = sources[key]
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{name} {text!r} is not a number") from None
    if not low <= value <= high:  # NaN fails too
        shown = f"{value:g}" if kind is float else str(value)
        raise ConfigError(f"{name} {shown}: give {low:g}-{high:g} {what}")
    return value


def parse_metrics_address(raw: str | None) -> tuple[str, int] | None:
    """`HOST:PORT`, `[v6]:PORT`, `PORT` or `off` (None); ValueError says what is wrong."""
    text = (raw if raw is not None else DEFAULT_METRICS).strip()
    if text.lower() in ("off", "no", "none", "0", "false"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{text!r} is not HOST:PORT, PORT or off") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port {number} is outside 0-65535")
    return host, number


def _metrics(raw: str | None, source: str) -> tuple[str, int] | None:
    try:
        return parse_metrics_address(raw or None)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}; give HOST:PORT (default {DEFAULT_METRICS}) or off"
                          ) from None


def _host_port(raw: str, source: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{source} {raw!r}: write it as HOST:PORT")
    return host, int(port)


def _or(value: N | None, default: N) -> N:
    return default if value is None else value


def _asterisk_mode(mode: str | None) -> str:
    if mode is None:
        return "auto"
    if mode not in ("auto", "host", "chroot"):
        raise ConfigError(f"HAMTA_ASTERISK_MODE={mode!r}: use auto, host or chroot")
    return mode


def _db_url(url: str | None, source: str) -> str | None:
    if url and "://" not in url:
        where = source if source.startswith("--") else f"{source}/--db"
        raise ConfigError(
            f"{where} {url!r} is not a database URL; use e.g. "
            "sqlite:////var/lib/hamta/registry.db or postgresql+psycopg://user@host/db"
        )
    return url or None


def _agi_port(raw: str | None, source: str) -> int:
    where = source if source.startswith("--") else f"{source}/--port"
    raw = raw or "4573"
    try:
        number = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{where} {raw!r} is not a port number; set it to "
                          "1-65535 (default 4573)") from exc
    if not 0 <= number <= 65535:
        raise ConfigError(f"{where} {number} is outside 0-65535; set it to "
                          "1-65535 (default 4573)")
    return number


def _port(raw: str | None, default: int, source: str) -> int:
    raw = raw or str(default)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{source}={raw!r} is not a port number (1-65535)") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{source}={port} is outside 1-65535")
    return port


def _agi_servers(raw: str, source: str) -> tuple[AgiAddress, ...]:
    """"host:port,host:port,…", the FastAGI servers the dialplan tries in order."""
    if not raw:
        return ()
    found = []
    for item in raw.split(","):
        item = item.strip()
        match = re.fullmatch(r"\[?(?P<host>[A-Za-z0-9.:_-]+?)\]?(?::(?P<port>[0-9]+))?", item)
        port = int(match["port"] or 4573) if match else 0
        if match is None or not 0 < port < 65536:
            raise ConfigError(f"{source}: {item!r} is not host:port "
                              "(e.g. \"127.0.0.1:4573,10.0.0.2:4573\")")
        found.append(AgiAddress(match["host"], port))
    return tuple(found)


def _sip_staff(raw: str, source: str) -> tuple[tuple[str, str | None], ...]:
    """"name[:09xxxxxxxxx],…": the staff softphone accounts."""
    found = []
    for item in raw.split(","):
        name, _, msisdn = item.strip().partition(":")
        if not name:
            continue
        if not _STAFF_NAME.fullmatch(name):
            raise ConfigError(f"{source}: {name!r} is not a SIP user name (a-z, 0-9, _-)")
        if msisdn and not re.fullmatch(r"09\d{9}", msisdn):
            raise ConfigError(f"{source}: {msisdn!r} is not a mobile number 09xxxxxxxxx")
        found.append((name, msisdn or None))
    return tuple(found)


def _trusted_endpoints(raw: str, source: str, staff: tuple[tuple[str, str | None], ...]
                       ) -> tuple[str, ...]:
    """"name,name,…": the PJSIP endpoints (the mobile operators' trunks) whose caller ID the
    network vouches for. A staff softphone account may call as any number (7777*09…), so naming
    one is a ConfigError (Asterisk compares names ignoring case)."""
    found: list[str] = []
    for item in raw.split(","):
        name = item.strip()
        if not name:
            continue
        if not _ENDPOINT_NAME.fullmatch(name):
            raise ConfigError(f"{source}: {name!r} is not a PJSIP endpoint name (letters, "
                              "digits, _.-; comma-separated, e.g. \"mci-trunk,irancell-trunk\")")
        if any(user.lower() == name.lower() for user, _ in staff):
            raise ConfigError(f"{source}: {name!r} is a staff softphone account (sip_staff), "
                              "which may call as any number: it can never be trusted; name only "
                              "the mobile operators' trunks")
        if name not in found:
            found.append(name)
    return tuple(found)


def _ussd_gateways(raw: str, source: str) -> frozenset[str]:
    """The addresses whose USSD sessions' numbers are vouched for (comma-separated)."""
    found = frozenset(part.strip() for part in raw.split(",") if part.strip())
    for address in found:
        if not all(ch.isalnum() or ch in ".:" for ch in address):
            raise ConfigError(f"{source}: {address!r} is not an IP "
                              "address; list the addresses of the operator's USSD gateways, "
                              "e.g. \"10.20.0.5,10.20.0.6\"")
    return found


def _sms_limits(raw: str, source: str) -> tuple[tuple[int, float], ...]:
    """"5/hour,20/day" as (count, window seconds) pairs."""
    found: list[tuple[int, float]] = []
    for part in raw.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(minute|hour|day)\s*", part)
        if match is None or int(match.group(1)) < 1:
            raise ConfigError(f"{source} {raw!r}: write it as counts per "
                              "minute, hour or day, e.g. \"5/hour,20/day\"")
        found.append((int(match.group(1)), float(_WINDOWS[match.group(2)])))
    return tuple(found)


# --- the process's Settings -------------------------------------------------------------------
_installed: Settings | None = None
_built: tuple[object, Settings] | None = None


def use(settings: Settings | None) -> None:
    """Install the process's Settings (the command line's, built with its flags; a test's);
    None goes back to building them from the environment."""
    global _installed
    _installed = settings


def current() -> Settings:
    """The process's Settings: the installed ones, else built from the environment and the
    config file once, and again only when those change (a test's monkeypatch, an edited file)."""
    global _built
    if _installed is not None:
        return _installed
    env = os.environ
    key = (tuple(sorted((k, v) for k, v in env.items()
                        if k.startswith("HAMTA_") or k in _OTHER_ENV)),
           str(config_file(env)), tuple(sorted(file_settings(env).items())))
    if _built is None or _built[0] != key:
        _built = (key, Settings.load(env, strict=False))
    return _built[1]


def _with_flags(**flags: object) -> Settings:
    """current(), or (nothing installed and a flag given) the environment's with the flags on
    top: a flag hides a bad value below it, as it always did."""
    given = {k: v for k, v in flags.items() if v is not None and v != ""}
    if _installed is not None or not given:
        return current()
    return Settings.load(os.environ, given, strict=False)


def child_env(*, hamta_only: bool = False, **overrides: str) -> dict[str, str]:
    """The environment of a child process: this one's (with `hamta_only` just its HAMTA_*
    variables), with `overrides` on top. Made here because copying os.environ is reading it."""
    env = {k: v for k, v in os.environ.items() if not hamta_only or k.startswith("HAMTA_")}
    env.update(overrides)
    return env


def set_library_env(name: str, value: str) -> None:
    """Set a variable a library reads from the environment (e.g. HF_HUB_OFFLINE for
    faster-whisper's hub client): a write for that library, never a setting of ours."""
    os.environ[name] = value


# --- what a field cannot do: folders made, a command's flags on top, secrets read -------------
def data_dir_path() -> Path:
    """Where the data directory is (HAMTA_DATA_DIR, else the XDG default), without creating it."""
    return current().data_dir


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
    """--db, else HAMTA_DB_URL, else a SQLite file in the data directory (created)."""
    settings = _with_flags(db_url=explicit)
    if not explicit:
        settings.checked("db_url")
    if explicit:
        _db_url(explicit, "--db")
        return explicit
    if settings.db_url_setting:
        return settings.db_url_setting
    data_dir()
    return settings.db_url


def agi_address(host: str | None = None, port: int | None = None) -> AgiAddress:
    """--host/--port, else HAMTA_AGI_HOST/HAMTA_AGI_PORT, else 127.0.0.1:4573 (loopback only)."""
    agi = _with_flags(agi_host=host, agi_port=port).checked("agi_port").agi
    return AgiAddress(host or agi.host,
                      agi.port if port is None else _agi_port(str(port), "--port"))


def staff_queue() -> StaffQueue | None:
    """HAMTA_STAFF_QUEUE / `staff_queue`: the Asterisk queue behind `0` (None, `0` not offered,
    when unset), with `staff_hours` and `staff_wait`."""
    return current().checked("staff_queue").staff_queue


def staff_hours() -> tuple[OpenHours, ...]:
    """HAMTA_STAFF_HOURS / `staff_hours` (Tehran time); () when unset: always open."""
    settings = current()
    return _staff_hours(settings.raw.get("staff_hours", ""), settings.sources["staff_hours"])


PEPPER_MIN_BYTES = 32
PEPPER_HOWTO = ("`python3 -c 'import secrets; print(secrets.token_hex(32))' > FILE` "
                "and chmod 600 it")
log = logging.getLogger(__name__)


def default_pepper_file() -> Path:
    """The pepper file used when neither HAMTA_PEPPER nor HAMTA_PEPPER_FILE is set."""
    return current().data_dir / "pepper"


def pepper_source() -> str:
    """Where load_pepper takes the pepper from, for messages (never the pepper itself)."""
    settings = current()
    if settings.pepper:
        return "HAMTA_PEPPER"
    path_setting = settings.raw.get("pepper_file")
    if path_setting:
        return f"{settings.sources['pepper_file']}={path_setting}"
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
    settings = current()
    value = settings.pepper
    source = "HAMTA_PEPPER"
    if not value:
        path_setting = settings.pepper_file_setting
        path = settings.pepper_file
        source = (f"the pepper file {path} ({settings.sources['pepper_file']})" if path_setting
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
                f"{current().source('pepper_file')} points at {path}, which does not exist; "
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
