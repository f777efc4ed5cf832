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

from ivr import config
from ivr.asterisk import dialplan
from ivr.config import AgiAddress, ConfigError, Settings, StaffQueue, data_dir
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
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def conf_source_dir() -> Path:
    """asterisk-conf/ of this checkout (HAMTA_ASTERISK_CONF overrides, e.g. for an install)."""
    explicit = config.current().asterisk_conf
    if explicit:
        return explicit
    return Path(__file__).resolve().parents[2] / "asterisk-conf"




def spool_path() -> Path:
    """Short-lived audio (secret digit strings) the FastAGI server writes for Asterisk to play:
    the `spool_dir` setting, else <data dir>/spool. Asterisk must be able to read it (same
    machine). Computed, not created (`doctor` looks without touching)."""
    return config.current().spool_dir


def spool_dir() -> Path:
    """spool_path(), created when missing (serve, asterisk up); ConfigError naming the setting
    when it cannot be."""
    settings = config.current()
    path = settings.spool_dir
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise ConfigError(f"cannot create the spool folder {path} ({exc.strerror}); set "
                          f"{settings.source('spool_dir')} to a folder this user can write "
                          "and Asterisk can read") from None
    return path


def _port(key: str, default: int) -> int:
    """A port setting (ami_port, sip_port, rtp_start), checked by the Settings."""
    port = getattr(config.current().checked(key), key)
    assert isinstance(port, int)
    return port


def read_secret(env: str, name: str, *, create: bool = True) -> str:
    """A deployment secret: the env variable, else <data dir>/secrets/<name> (made once)."""
    value = config.current().env_secret(env)
    if value:
        if not re.fullmatch(r"[A-Za-z0-9._~+=-]{8,128}", value):
            raise ConfigError(f"{env} must be 8-128 characters of letters, digits or ._~+=-")
        return value
    data_dir()  # made, with its checks
    folder = config.current().secrets_dir
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
    for name, msisdn in config.current().checked("sip_staff").sip_staff:
        env = "HAMTA_SIP_SECRET_" + name.upper().replace("-", "_")
        accounts.append(StaffAccount(name, read_secret(env, f"sip-{name}", create=create),
                                     msisdn))
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


def load(*, classic_agi: str | None = None, create_secrets: bool = True,
         settings: Settings | None = None) -> AsteriskConfig:
    """The deployment's settings (HAMTA_AMI_PORT, HAMTA_SIP_BIND, … or the config file)."""
    s = (settings or config.current()).checked(
        "rtp_start", "sip_staff", "agi_port", "ami_port", "sip_port", "agi_servers",
        "trusted_endpoints", "staff_queue")
    staff = staff_accounts(create=create_secrets)
    return AsteriskConfig(
        base=data_dir() / "asterisk",
        sounds=sounds_dir(),
        agi=s.agi,
        ami_port=s.ami_port,
        ami_secret=read_secret("HAMTA_AMI_SECRET", "ami", create=create_secrets),
        sip_bind=s.sip_bind,
        sip_port=s.sip_port,
        rtp_range=(s.rtp_start, s.rtp_start + 200),
        classic_agi=classic_agi or default_classic_agi(),
        staff=staff,
        agi_servers=s.agi_servers,
        trusted_endpoints=s.trusted_endpoints,
        staff_queue=s.staff_queue,
    )


def _hostport(address: AgiAddress) -> str:
    host = f"[{address.host}]" if ":" in address.host else address.host
    return f"{host}:{address.port}"


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
