"""Rendering asterisk-conf/ for one deployment: absolute paths, ports and secrets filled in.

The repository holds templates with `@NAME@` placeholders (Asterisk's own `${…}` syntax stays
untouched). Secrets (the AMI password, softphone passwords) come from the environment or from files
generated once in `<data dir>/secrets/` (mode 600), so nothing secret is ever committed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.asterisk import dialplan
from ivr.config import (
    AgiAddress,
    ConfigError,
    StaffQueue,
    agi_address,
    data_dir,
    data_dir_path,
    setting,
    setting_source,
    staff_queue,
)
from ivr.prompts.layout import sounds_dir

CONF_FILES = [
    "asterisk.conf", "modules.conf", "logger.conf", "manager.conf", "manager_hamta.conf",
    "extensions.conf", "pjsip.conf", "pjsip_hamta.conf", "rtp.conf",
]
# Files Asterisk's core reads at start: present (and mostly empty) so the log holds no errors
QUIET_FILES = {
    "cdr.conf": "[general]\nenable = no\n", "cel.conf": "[general]\nenable = no\n",
    "features.conf": "", "acl.conf": "", "udptl.conf": "", "pjproject.conf": "",
    "stasis.conf": "", "ccss.conf": "",
}
AMI_USER = "hamta"
# The demo registry's seller and buyer: plain 7777 from a staff softphone reaches the IVR as that
# mobile number (not withheld); 7777*09xxxxxxxxx calls as any other.
DEFAULT_STAFF = "staff1:09121111111,staff2:09122222222"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_STAFF_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENDPOINT_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def conf_source_dir() -> Path:
    """asterisk-conf/ of this checkout (HAMTA_ASTERISK_CONF overrides, e.g. for an install)."""
    explicit = os.environ.get("HAMTA_ASTERISK_CONF")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[2] / "asterisk-conf"




def spool_path() -> Path:
    """Short-lived audio (secret digit strings) the FastAGI server writes for Asterisk to play:
    the `spool_dir` setting, else <data dir>/spool. Asterisk must be able to read it (same
    machine). Computed, not created (`doctor` looks without touching)."""
    explicit = setting("spool_dir")
    return Path(explicit).expanduser().resolve() if explicit else data_dir_path() / "spool"


def spool_dir() -> Path:
    """spool_path(), created when missing (serve, asterisk up); ConfigError naming the setting
    when it cannot be."""
    path = spool_path()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise ConfigError(f"cannot create the spool folder {path} ({exc.strerror}); set "
                          f"{setting_source('spool_dir')} to a folder this user can write and "
                          "Asterisk can read") from None
    return path


def _port(key: str, default: int) -> int:
    raw = setting(key) or str(default)
    name = setting_source(key)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number (1-65535)") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={port} is outside 1-65535")
    return port


def read_secret(env: str, name: str, *, create: bool = True) -> str:
    """A deployment secret: the env variable, else <data dir>/secrets/<name> (made once)."""
    value = os.environ.get(env)
    if value:
        if not re.fullmatch(r"[A-Za-z0-9._~+=-]{8,128}", value):
            raise ConfigError(f"{env} must be 8-128 characters of letters, digits or ._~+=-")
        return value
    folder = data_dir() / "secrets"
    path = folder / name
    if not path.exists():
        if not create:
            raise ConfigError(f"no {env} and no {path}; run `hamta-ivr asterisk up` first")
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(18) + "\n")
    return path.read_text().strip()


@dataclass(frozen=True)
class StaffAccount:
    """A softphone account for call-centre staff: SIP user, password, caller ID it presents."""

    name: str
    password: str
    msisdn: str | None = None


def staff_accounts(*, create: bool = True) -> list[StaffAccount]:
    """HAMTA_SIP_STAFF="name[:09xxxxxxxxx],…" (default staff1 as 09121111111, staff2 as
    09122222222); passwords from HAMTA_SIP_SECRET_<NAME> or <data dir>/secrets/sip-<name>."""
    accounts = []
    for item in (setting("sip_staff") or DEFAULT_STAFF).split(","):
        name, _, msisdn = item.strip().partition(":")
        if not name:
            continue
        if not _STAFF_NAME.fullmatch(name):
            raise ConfigError(f"{setting_source('sip_staff')}: {name!r} is not a SIP user name "
                              "(a-z, 0-9, _-)")
        if msisdn and not re.fullmatch(r"09\d{9}", msisdn):
            raise ConfigError(f"{setting_source('sip_staff')}: {msisdn!r} is not a mobile "
                              "number 09xxxxxxxxx")
        env = "HAMTA_SIP_SECRET_" + name.upper().replace("-", "_")
        accounts.append(StaffAccount(name, read_secret(env, f"sip-{name}", create=create),
                                     msisdn or None))
    return accounts


@dataclass(frozen=True)
class AsteriskConfig:
    """Everything that differs between deployments of the same asterisk-conf/ files."""

    base: Path  # <data dir>/asterisk: etc/, log/, run/, lib/, spool/, data/
    sounds: Path
    agi: AgiAddress
    ami_port: int
    ami_secret: str
    sip_bind: str
    sip_port: int
    rtp_range: tuple[int, int]
    classic_agi: str
    staff: list[StaffAccount] = field(default_factory=list)
    ami_user: str = AMI_USER
    agi_servers: tuple[AgiAddress, ...] = ()  # tried in order; () = just `agi`
    # PJSIP endpoints (mobile-operator trunks) whose caller ID the network vouches for
    trusted_endpoints: tuple[str, ...] = ()
    # the queue behind `0` (staff_queue), its members the staff accounts; None: no `0`
    staff_queue: StaffQueue | None = None

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def log(self) -> Path:
        return self.base / "log"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def conf_file(self) -> Path:
        return self.etc / "asterisk.conf"

    def values(self) -> dict[str, str]:
        return {
            "ETC_DIR": str(self.etc), "ASTDATA_DIR": str(self.base / "data"),
            "VARLIB_DIR": str(self.base / "lib"), "SPOOL_DIR": str(self.base / "spool"),
            "RUN_DIR": str(self.run), "LOG_DIR": str(self.log),
            "AGI_HOST": self.agi.host, "AGI_PORT": str(self.agi.port),
            "AGI_SERVERS": "&".join(_hostport(a) for a in self.agi_servers or (self.agi,)),
            "AMI_PORT": str(self.ami_port), "AMI_USER": self.ami_user,
            "AMI_SECRET": self.ami_secret, "SIP_BIND": self.sip_bind,
            "SIP_PORT": str(self.sip_port), "RTP_START": str(self.rtp_range[0]),
            "RTP_END": str(self.rtp_range[1]), "CLASSIC_AGI": self.classic_agi,
            "TRUSTED_ENDPOINTS": "&".join(self.trusted_endpoints),
            **dialplan.placeholders(),
        }


def load(*, classic_agi: str | None = None, create_secrets: bool = True) -> AsteriskConfig:
    """The deployment's settings (HAMTA_AMI_PORT, HAMTA_SIP_BIND, … or the config file)."""
    rtp_start = _port("rtp_start", 10000)
    staff = staff_accounts(create=create_secrets)
    return AsteriskConfig(
        base=data_dir() / "asterisk",
        sounds=sounds_dir(),
        agi=agi_address(),
        ami_port=_port("ami_port", 5038),
        ami_secret=read_secret("HAMTA_AMI_SECRET", "ami", create=create_secrets),
        sip_bind=setting("sip_bind") or "127.0.0.1",
        sip_port=_port("sip_port", 5060),
        rtp_range=(rtp_start, rtp_start + 200),
        classic_agi=classic_agi or default_classic_agi(),
        staff=staff,
        agi_servers=agi_servers(),
        trusted_endpoints=trusted_endpoints(staff),
        staff_queue=staff_queue(),
    )


def _hostport(address: AgiAddress) -> str:
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


def agi_servers() -> tuple[AgiAddress, ...]:
    """HAMTA_AGI_SERVERS / `agi_servers`: "host:port,host:port,…", the FastAGI servers the
    dialplan tries in order; () when unset (the one HAMTA_AGI_HOST:HAMTA_AGI_PORT)."""
    raw = setting("agi_servers")
    if not raw:
        return ()
    found = []
    for item in raw.split(","):
        item = item.strip()
        match = re.fullmatch(r"\[?(?P<host>[A-Za-z0-9.:_-]+?)\]?(?::(?P<port>[0-9]+))?", item)
        port = int(match["port"] or 4573) if match else 0
        if match is None or not 0 < port < 65536:
            raise ConfigError(f"{setting_source('agi_servers')}: {item!r} is not host:port "
                              "(e.g. \"127.0.0.1:4573,10.0.0.2:4573\")")
        found.append(AgiAddress(match["host"], port))
    return tuple(found)


def trusted_endpoints(staff: Sequence[StaffAccount] = ()) -> tuple[str, ...]:
    """HAMTA_TRUSTED_ENDPOINTS / `trusted_endpoints`: "name,name,…", the PJSIP endpoints (the
    mobile operators' trunks) whose caller ID the network vouches for: a call from one counts as
    vouched in context hamta-ivr too. () when unset. A staff softphone account may call as any
    number (7777*09…), so naming one is a ConfigError (Asterisk compares names ignoring case)."""
    raw = setting("trusted_endpoints")
    if not raw:
        return ()
    source = setting_source("trusted_endpoints")
    found: list[str] = []
    for item in raw.split(","):
        name = item.strip()
        if not name:
            continue
        if not _ENDPOINT_NAME.fullmatch(name):
            raise ConfigError(f"{source}: {name!r} is not a PJSIP endpoint name (letters, "
                              "digits, _.-; comma-separated, e.g. \"mci-trunk,irancell-trunk\")")
        if any(acc.name.lower() == name.lower() for acc in staff):
            raise ConfigError(f"{source}: {name!r} is a staff softphone account (sip_staff), "
                              "which may call as any number: it can never be trusted; name only "
                              "the mobile operators' trunks")
        if name not in found:
            found.append(name)
    return tuple(found)


def default_classic_agi() -> str:
    """The hamta-ivr-agi script next to this Python (an operator's PBX install)."""
    found = shutil.which("hamta-ivr-agi")
    return found or str(Path(sys.prefix) / "bin" / "hamta-ivr-agi")


def render_text(text: str, values: dict[str, str], *, source: str) -> str:
    def fill(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise ConfigError(f"{source}: unknown placeholder @{match.group(1)}@") from None

    return _PLACEHOLDER.sub(fill, text)


def staff_conf(accounts: list[StaffAccount]) -> str:
    """pjsip_staff.conf: one endpoint, auth and aor per staff account (holds passwords)."""
    lines = ["; rendered by hamta-ivr from HAMTA_SIP_STAFF; holds secrets: do not commit", ""]
    for acc in accounts:
        lines += [f"[{acc.name}](hamta-staff-endpoint)", f"auth = {acc.name}-auth",
                  f"aors = {acc.name}"]
        if acc.msisdn:
            lines.append(f'callerid = "{acc.name}" <{acc.msisdn}>')
        lines += ["", f"[{acc.name}-auth](hamta-staff-auth)", f"username = {acc.name}",
                  f"password = {acc.password}", "", f"[{acc.name}](hamta-staff-aor)", ""]
    return "\n".join(lines)


QUEUE_RING_SECONDS = 20  # each round of ringing the agents' phones, then a short pause


def queues_conf(queue: StaffQueue | None, accounts: Sequence[StaffAccount]) -> str:
    """queues.conf: the staff queue behind `0` (staff_queue), the staff softphone accounts its
    members, all rung at once; a caller waits while nobody answers, up to staff_wait (the
    dialplan's Queue() timeout). No account signed in: the caller does not wait (JOINEMPTY), the
    dialplan says all experts are busy. No queue: only [general] (app_queue is loaded anyway)."""
    lines = ["; rendered by hamta-ivr from staff_queue and sip_staff (the queue behind `0`)",
             "[general]", "persistentmembers = no", ""]
    if queue is None:
        return "\n".join(lines)
    lines += [
        f"[{queue.name}]", "strategy = ringall", f"timeout = {QUEUE_RING_SECONDS}", "retry = 2",
        "wrapuptime = 0", "ringinuse = no", "autofill = yes",
        "joinempty = unavailable,invalid", "leavewhenempty = unavailable,invalid",
        # no announcements: the IVR said what there is to say, in Persian
        "announce-frequency = 0", "periodic-announce-frequency = 0", "announce-position = no",
        "announce-holdtime = no", "reportholdtime = no",
    ]
    lines += [f"member => PJSIP/{acc.name},0,{acc.name}" for acc in accounts]
    return "\n".join([*lines, ""])


def rendered_staff(etc: Path) -> list[StaffAccount] | None:
    """The staff accounts of the pjsip_staff.conf rendered into `etc` (what an Asterisk started
    from that folder knows), or None when there is none: `asterisk status` shows these, not the
    accounts the current environment would render."""
    try:
        text = (etc / "pjsip_staff.conf").read_text()
    except OSError:
        return None
    names = re.findall(r"^\[([a-z][a-z0-9_-]*)\]\(hamta-staff-endpoint\)", text, re.M)
    accounts = []
    for name in names:
        endpoint = re.search(rf"^\[{re.escape(name)}\]\(hamta-staff-endpoint\)\n(.*?)(?:\n\n|\Z)",
                             text, re.M | re.S)
        caller = re.search(r'^callerid = ".*" <(09\d{9})>', endpoint.group(1) if endpoint else "",
                           re.M)
        auth = re.search(rf"^\[{re.escape(name)}-auth\]\(hamta-staff-auth\)\n(.*?)(?:\n\n|\Z)",
                         text, re.M | re.S)
        password = re.search(r"^password = (.*)$", auth.group(1) if auth else "", re.M)
        accounts.append(StaffAccount(name, password.group(1).strip() if password else "",
                                     caller.group(1) if caller else None))
    return accounts


def render(cfg: AsteriskConfig, out: Path | None = None) -> Path:
    """Write every conf file into `out` (default cfg.etc) with mode 600; returns the folder."""
    out = out or cfg.etc
    out.mkdir(parents=True, exist_ok=True)
    src = conf_source_dir()
    values = cfg.values()
    for name in CONF_FILES:
        path = src / name
        if not path.exists():
            raise ConfigError(f"{path} is missing; HAMTA_ASTERISK_CONF must name asterisk-conf/")
        _write_private(out / name, render_text(path.read_text(), values, source=str(path)))
    _write_private(out / "pjsip_staff.conf", staff_conf(cfg.staff))
    _write_private(out / "queues.conf", queues_conf(cfg.staff_queue, cfg.staff))
    for name, text in QUIET_FILES.items():
        _write_private(out / name, "; defaults (rendered by hamta-ivr)\n" + text)
    return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
