"""`hamta-ivr service install|uninstall|status|unit`: `hamta-ivr serve` as a systemd service.

One template unit, `hamta-ivr@.service`, one instance per FastAGI port (`hamta-ivr@4573`; a
second server on the same box is `hamta-ivr@4574`, and the dialplan fails over between them). It
runs as the unprivileged user `hamta` (home and data dir /var/lib/hamta-ivr), reads
/etc/hamta-ivr/config.toml, logs to the journal, and is sandboxed (read-only system, no home,
private /tmp and devices, IPv4/IPv6/Unix sockets only, no capabilities).

Stop and restart drain: systemd sends SIGTERM to serve only (KillMode=mixed), serve stops taking
calls and lets running ones end for `drain` seconds, and TimeoutStopSec leaves it that long plus
30 s before SIGKILL. There is no ExecReload: serve reads its settings at start, so a changed
config file takes a restart, which drains (`systemctl restart hamta-ivr@4573`; with two
instances restart one at a time and Asterisk sends new calls to the other meanwhile). SIGHUP is
never sent to it (serve does not drain on SIGHUP).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.config import CONFIG_ENV, DEFAULT_CONFIG_FILE, ConfigError, read_config_file

SERVICE_USER = "hamta"
SERVICE_HOME = Path("/var/lib/hamta-ivr")
UNIT_NAME = "hamta-ivr@.service"
SMS_UNIT_NAME = "hamta-ivr-sms.service"  # the SMS worker (hamta-ivr sms deliver), when configured
UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_PORT = 4573
DEFAULT_DRAIN = 120.0  # serve --drain's default
STOP_SLACK = 30  # seconds TimeoutStopSec leaves beyond the drain
ASTERISK_USER = "asterisk"  # reads the spool (secret digit strings) through the group hamta

CONFIG_TEMPLATE = """\
# hamta-ivr settings: read by the service (hamta-ivr@PORT.service) and by every hamta-ivr command
# on this machine. An environment variable HAMTA_<KEY> overrides a key (HAMTA_CONFIG names
# another file; HAMTA_CONFIG= reads none). A wrong key or type stops the command with one line
# naming it. Secrets are not kept here: the pepper is a file of its own (pepper_file), the
# AMI and SIP passwords are in <data_dir>/secrets.
data_dir = "{data_dir}"   # the SQLite registry, the pepper (made for a new registry), sounds, spool
agi_host = "127.0.0.1"   # where serve listens (Asterisk: AGI(agi://HOST:PORT/hamta))
agi_port = {port}             # `hamta-ivr service install` enables hamta-ivr@{port}.service
# db_url = "postgresql+psycopg://hamta@db.example/hamta"   # default: SQLite in data_dir
# pepper_file = "/etc/hamta-ivr/pepper"   # default: data_dir/pepper; 600, owner hamta
# sounds_dir = "{data_dir}/sounds"
# spool_dir = "{data_dir}/spool"          # Asterisk reads it: its user is put in group hamta
# max_calls = 500
# idle_limit = 120
# workers = 2
# drain = 120       # seconds for running calls on stop; rerun `hamta-ivr service install` after
# processes = 1     # serve processes sharing agi_port (SO_REUSEPORT); e.g. one per core
# agi_servers = "127.0.0.1:4573,127.0.0.1:4574"   # servers the rendered dialplan tries
# trusted_endpoints = "mci-trunk"          # PJSIP trunks whose caller ID the network vouches for
# kannel_url = "http://127.0.0.1:13013/cgi-bin/sendsms"   # SMS receipts: Kannel's smsbox
# kannel_username = "hamta"                # its sendsms-user
# kannel_password_file = "/etc/hamta-ivr/kannel-password"   # 600, owner hamta
# sms_sender = "7777"                      # the `from` of every SMS
# ussd_listen = "127.0.0.1:13140"          # hamta-ivr ussd serve: USSD callbacks, SMS inquiries
# ussd_gateways = "10.20.0.5"              # the operator's USSD gateways: their numbers vouched
# sms_inquiry_limit = "5/hour,20/day"      # SMS IMEI inquiries a sender may make
"""

UNIT_TEMPLATE = """\
# hamta-ivr FastAGI server, one instance per port: hamta-ivr@4573.service.
# Written by `hamta-ivr service install`; rerun it rather than editing this file (or add a
# drop-in: systemctl edit hamta-ivr@.service).
[Unit]
Description=Hamta IVR FastAGI server (port %i)
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
Environment={config_env}={config}
Environment=XDG_DATA_HOME={xdg_data_home}
Environment=PYTHONUNBUFFERED=1
ExecStart={exec_start}
WorkingDirectory={data_dir}
SyslogIdentifier=hamta-ivr@%i
# stop = drain: SIGTERM to serve, which ends running calls within drain = {drain:g} s
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={timeout_stop}
Restart=on-failure
RestartSec=2
# exit 2 is a configuration error (one line in the journal names it): restarting cannot help
RestartPreventExitStatus=2
LimitNOFILE=65536
UMask=0077

NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ReadWritePaths={read_write}
ProtectHome={protect_home}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
"""


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "service", help="install hamta-ivr serve as a systemd service (root)",
        description="The FastAGI server as the systemd service hamta-ivr@PORT, running as the "
        "user hamta with /etc/hamta-ivr/config.toml; `install` lays everything down.")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install", help="user, config file, data dir, unit; enable and start it under systemd",
        description="Creates the user hamta, /etc/hamta-ivr/config.toml (if absent; 640 "
        "root:hamta), the data dir and spool, migrates the registry as hamta, writes "
        f"{UNIT_DIR / UNIT_NAME}, checks it with systemd-analyze verify, and where systemd runs "
        "enables and starts hamta-ivr@PORT. Idempotent: rerun it after changing drain.")
    _paths(install)
    install.add_argument("--no-start", action="store_true",
                         help="write everything but do not enable or start the service")
    install.set_defaults(func=run_install)
    uninstall = actions.add_parser(
        "uninstall", help="stop and disable every instance, remove the unit (keeps the user, "
        "the config file and the data)")
    _paths(uninstall)
    uninstall.set_defaults(func=run_uninstall)
    status = actions.add_parser("status", help="what is installed and what runs; exit 0 when "
                                "every enabled instance answers")
    _paths(status)
    status.set_defaults(func=run_status)
    unit = actions.add_parser("unit", help="print the unit install would write")
    _paths(unit)
    unit.set_defaults(func=run_unit)


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help=f"the config file (default {CONFIG_ENV} or {DEFAULT_CONFIG_FILE})")
    parser.add_argument("--unit-dir", type=Path, default=UNIT_DIR, metavar="DIR",
                        help=f"where the unit goes (default {UNIT_DIR})")
    parser.add_argument("--user", default=SERVICE_USER, help="the service's user (default hamta)")


@dataclass(frozen=True)
class Plan:
    """What the service is made of, from the config file alone (not this shell's HAMTA_*)."""

    config: Path
    unit_dir: Path
    user: str
    executable: Path
    data_dir: Path
    spool_dir: Path
    sounds_dir: Path
    port: int
    drain: float
    db_url: str | None
    pepper_file: Path | None
    sms: bool = False  # kannel_url is set: the SMS worker's unit is enabled too

    @property
    def unit_path(self) -> Path:
        return self.unit_dir / UNIT_NAME

    @property
    def sms_unit_path(self) -> Path:
        return self.unit_dir / SMS_UNIT_NAME

    @property
    def instance(self) -> str:
        return instance_name(self.port)

    def exec_start(self, port: str = "%i") -> list[str]:
        return [str(self.executable), "serve", "--port", port]


def instance_name(port: int | str) -> str:
    return UNIT_NAME.replace("@", f"@{port}")


def config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config).absolute()
    raw = os.environ.get(CONFIG_ENV)
    return Path(raw).absolute() if raw else DEFAULT_CONFIG_FILE


def executable() -> Path:
    """The hamta-ivr script of this installation (the venv the unit will run)."""
    here = Path(sys.prefix) / "bin" / "hamta-ivr"
    if here.exists():
        return here
    found = shutil.which("hamta-ivr")
    if not found:
        raise ConfigError("cannot find the hamta-ivr script of this installation; run "
                          "`hamta-ivr service install` from the venv hamta-ivr is installed in")
    return Path(found).absolute()


def make_plan(config: Path, unit_dir: Path = UNIT_DIR, user: str = SERVICE_USER,
              exe: Path | None = None) -> Plan:
    values = read_config_file(config) if config.exists() else {}
    data = Path(values.get("data_dir", str(SERVICE_HOME)))
    port = int(values.get("agi_port", DEFAULT_PORT))
    if not 0 < port < 65536:
        raise ConfigError(f"{config}: agi_port = {port} is outside 1-65535; write e.g. "
                          f"agi_port = {DEFAULT_PORT}")
    drain = float(values.get("drain", DEFAULT_DRAIN))
    if not 0 <= drain <= 3600:
        raise ConfigError(f"{config}: drain = {drain:g} is outside 0-3600 seconds; write e.g. "
                          "drain = 120")
    pepper = values.get("pepper_file")
    return Plan(config=config, unit_dir=unit_dir, user=user, executable=exe or executable(),
                data_dir=data, spool_dir=Path(values.get("spool_dir", str(data / "spool"))),
                sounds_dir=Path(values.get("sounds_dir", str(data / "sounds"))), port=port,
                drain=drain, db_url=values.get("db_url"),
                pepper_file=Path(pepper) if pepper else None, sms=bool(values.get("kannel_url")))


def _sqlite_folder(url: str | None) -> Path | None:
    if url and url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?")[0]
        return Path(path).parent if path.startswith("/") else None
    return None


def read_write_paths(plan: Plan) -> list[Path]:
    """The folders serve writes: the data dir, the spool, a SQLite registry's folder."""
    paths: list[Path] = []
    for path in (plan.data_dir, plan.spool_dir, _sqlite_folder(plan.db_url)):
        if path is not None and not any(path == p or p in path.parents for p in paths):
            paths.append(path)
    return paths


def render_unit(plan: Plan) -> str:
    homes = (Path("/home"), Path("/root"), Path("/run/user"))
    in_home = any(h in plan.executable.resolve().parents for h in homes)
    return UNIT_TEMPLATE.format(
        user=plan.user, config_env=CONFIG_ENV, config=plan.config,
        xdg_data_home=SERVICE_HOME.parent,  # the default data dir: /var/lib/hamta-ivr
        exec_start=shlex.join(plan.exec_start()), data_dir=plan.data_dir, drain=plan.drain,
        timeout_stop=int(plan.drain) + STOP_SLACK,
        read_write=" ".join(f"-{p}" if p != plan.data_dir else str(p)
                            for p in read_write_paths(plan)),
        # a venv or checkout under a home folder must stay readable
        protect_home="read-only" if in_home else "yes",
    )


def render_sms_unit(plan: Plan) -> str:
    """The SMS worker's unit: the FastAGI server's user, settings and sandbox, its own command.
    One worker is enough (several may run: they never send one message twice); stopping it waits
    for the message in hand (a send times out within 10 s)."""
    own = {"Description": "Hamta IVR SMS receipts through Kannel (hamta-ivr sms deliver)",
           "ExecStart": shlex.join([str(plan.executable), "sms", "deliver"]),
           "SyslogIdentifier": "hamta-ivr-sms", "TimeoutStopSec": "30"}
    lines = []
    for line in render_unit(plan).splitlines():
        key = line.partition("=")[0]
        if line.startswith("# stop = drain"):
            continue
        if line.startswith("# hamta-ivr FastAGI server"):
            line = "# hamta-ivr SMS worker: sends the registry's receipts through Kannel."
        if line.startswith("#"):
            line = line.replace(UNIT_NAME, SMS_UNIT_NAME)
        lines.append(f"{key}={own[key]}" if key in own else line)
    return "\n".join(lines) + "\n"


# --- install --------------------------------------------------------------------------------------
def say(line: str) -> None:
    print(f"hamta-ivr service: {line}", flush=True)


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def _need_root() -> None:
    if os.geteuid() != 0:
        raise ConfigError("installing a service needs root (a user, /etc, systemd): run "
                          "`sudo hamta-ivr service install`")


def ensure_user(user: str) -> bool:
    """The service's system user and group (home SERVICE_HOME, no shell); True when made now."""
    try:
        pwd.getpwnam(user)
        return False
    except KeyError:
        pass
    done = _run(["useradd", "--system", "--user-group", "--home-dir", str(SERVICE_HOME),
                 "--no-create-home", "--shell", "/usr/sbin/nologin",
                 "--comment", "Hamta IVR FastAGI server", user])
    if done.returncode != 0:
        raise ConfigError(f"cannot create the user {user}: {done.stderr.strip()}")
    return True


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def write_config(plan: Plan) -> bool:
    """The config file when absent (640 root:<user>, its folder 750); True when written."""
    _, gid = _ids(plan.user)
    folder = plan.config.parent
    made_folder = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    if made_folder:
        os.chown(folder, 0, gid)
        folder.chmod(0o750)
    if plan.config.exists():
        return False
    text = CONFIG_TEMPLATE.format(data_dir=plan.data_dir, port=plan.port)
    fd = os.open(plan.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chown(plan.config, 0, gid)
    os.chmod(plan.config, 0o640)
    return True


def make_dirs(plan: Plan) -> list[str]:
    """Data dir (750), spool (2750: files keep the group Asterisk reads through), sounds (755),
    owned by the user; what a registry or pepper left by another user, or readable by others,
    needs (owner the user, mode 600). Returns notes."""
    uid, gid = _ids(plan.user)
    notes = []
    for path, mode in ((plan.data_dir, 0o750), (plan.spool_dir, 0o2750),
                       (plan.sounds_dir, 0o755)):
        path.mkdir(parents=True, exist_ok=True)
        st = path.stat()
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid)
        path.chmod(mode)
    for name in ("registry.db", "registry.db-wal", "registry.db-shm", "pepper"):
        path = plan.data_dir / name
        if path.exists() and path.stat().st_uid != uid:
            os.chown(path, uid, gid)
            notes.append(f"{path} now belongs to {plan.user} (the service writes it)")
        if path.exists() and path.stat().st_mode & 0o077:  # group hamta holds Asterisk's user
            path.chmod(0o600)
            notes.append(f"{path} is now 600 (only {plan.user} reads it)")
    try:
        members = grp.getgrgid(gid).gr_mem
        pwd.getpwnam(ASTERISK_USER)
    except KeyError:
        pass
    else:
        if ASTERISK_USER not in members:
            _run(["usermod", "--append", "--groups", grp.getgrgid(gid).gr_name, ASTERISK_USER])
            notes.append(f"user {ASTERISK_USER} added to group {grp.getgrgid(gid).gr_name} to "
                         f"read the spool {plan.spool_dir}: restart Asterisk once")
    return notes


def as_user(plan: Plan, argv: list[str]) -> list[str]:
    """argv run as the service's user with only the service's environment (as systemd does)."""
    return ["setpriv", f"--reuid={plan.user}", f"--regid={plan.user}", "--init-groups",
            "env", "-i", f"{CONFIG_ENV}={plan.config}", f"XDG_DATA_HOME={SERVICE_HOME.parent}",
            "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", *argv]


def pepper_notes(plan: Plan) -> list[str]:
    """A pepper outside the data dir is the operator's (the service cannot write /etc): check
    the user can read it; never make one (a new pepper only for a new registry, by serve)."""
    path = plan.pepper_file
    if path is None:
        return []
    if not path.exists():
        return [f"the pepper file {path} (pepper_file in {plan.config}) does not exist: restore "
                "the registry's pepper there, or for a new registry create it with `python3 -c "
                f"'import secrets; print(secrets.token_hex(32))' > {path}`, then chown "
                f"{plan.user} and chmod 600 it (its group may hold Asterisk's user)"]
    if _run(as_user(plan, ["test", "-r", str(path)])).returncode != 0:
        return [f"the user {plan.user} cannot read the pepper file {path}: chown {plan.user} "
                "and chmod 600 it (and let it enter the folder)"]
    return []


def write_unit(plan: Plan) -> None:
    plan.unit_dir.mkdir(parents=True, exist_ok=True)
    for path, text in ((plan.unit_path, render_unit(plan)),
                       (plan.sms_unit_path, render_sms_unit(plan))):
        aside = path.with_name(f".{path.name}.tmp")
        aside.write_text(text)
        aside.chmod(0o644)
        aside.replace(path)


def verify_unit(unit: Path) -> str | None:
    """`systemd-analyze verify` on an instance of the template (or on the SMS worker's unit);
    None when clean (or the tool is missing: said on stdout), else its complaints."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        say("systemd-analyze is not installed (Debian package systemd): unit not verified")
        return None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / (unit.name if "@" not in unit.name
                                else instance_name(DEFAULT_PORT))
        instance.write_text(unit.read_text())
        done = _run([tool, "verify", str(instance)])
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if done.returncode != 0 or complaints:
        return "\n".join(complaints) or f"exit {done.returncode}"
    return None


def systemd_running() -> bool:
    """systemd is PID 1 (sd_booted: /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir()


def pid1() -> str:
    try:
        return Path("/proc/1/comm").read_text().strip()
    except OSError:
        return "unknown"


def run_install(args: argparse.Namespace) -> int:
    _need_root()
    config = config_path(args)
    if ensure_user(args.user):
        say(f"created the system user {args.user} (home {SERVICE_HOME}, no login)")
    plan = make_plan(config, args.unit_dir, args.user)
    if write_config(plan):
        say(f"wrote {plan.config} (640 root:{plan.user}): edit it, then restart the service")
    else:
        say(f"kept {plan.config} (checked: valid)")
        plan = make_plan(config, args.unit_dir, args.user)
    for note in make_dirs(plan):
        say(note)
    checked = _run(as_user(plan, [str(plan.executable), "--help"]))
    if checked.returncode != 0:
        raise ConfigError(f"the user {plan.user} cannot run {plan.executable} "
                          f"({(checked.stderr.strip().splitlines() or ['?'])[-1]}): install "
                          "hamta-ivr where it can read it (e.g. a venv under /opt)")
    upgraded = _run(as_user(plan, [str(plan.executable), "db", "upgrade"]))
    if upgraded.returncode == 0:
        say("registry migrated (as the user hamta)" if plan.user == SERVICE_USER
            else f"registry migrated (as the user {plan.user})")
    else:
        say("could not migrate the registry yet ("
            f"{(upgraded.stderr.strip().splitlines() or ['?'])[-1]}); once the database is up: "
            f"sudo -u {plan.user} HAMTA_CONFIG={plan.config} {plan.executable} db upgrade")
    for note in pepper_notes(plan):
        say(note)
    write_unit(plan)
    command = shlex.join(plan.exec_start(str(plan.port)))
    say(f"wrote {plan.unit_path} (instance {plan.instance}: {command} as {plan.user}, stop "
        f"drains {plan.drain:g} s)")
    for path in (plan.unit_path, plan.sms_unit_path):
        problem = verify_unit(path)
        if problem:
            raise ConfigError(f"systemd-analyze verify rejects {path}: {problem}")
    say(f"wrote {plan.sms_unit_path} (the SMS worker: {plan.executable} sms deliver); " + (
        "enabled with the server (kannel_url is set)" if plan.sms else
        f"not enabled: set kannel_url in {plan.config} (README, \"Text messages\"), then "
        f"systemctl enable --now {SMS_UNIT_NAME}"))
    if shutil.which("systemd-analyze"):
        say("systemd-analyze verify: clean")
    if args.no_start:
        say(f"not started (--no-start): systemctl enable --now {plan.instance}")
    elif systemd_running() and plan.unit_dir == UNIT_DIR:
        sms = [SMS_UNIT_NAME] if plan.sms else []
        for argv in (["systemctl", "daemon-reload"],
                     ["systemctl", "enable", "--now", plan.instance, *sms]):
            done = _run(argv)
            if done.returncode != 0:
                raise ConfigError(f"`{shlex.join(argv)}` failed: {done.stderr.strip()}; see "
                                  f"journalctl -u {plan.instance}")
        say(f"enabled and started {plan.instance}; logs: journalctl -u {plan.instance}")
    elif systemd_running():
        say(f"unit written to {plan.unit_dir}, not systemd's {UNIT_DIR}: not enabled")
    else:
        by_hand = shlex.join(as_user(plan, plan.exec_start(str(plan.port))))
        say(f"systemd is not running here (PID 1 is {pid1()}): unit installed, not started; "
            f"run the same command by hand: {by_hand}")
    return 0


def _instances(unit_dir: Path) -> list[str]:
    """Instances enabled in multi-user.target.wants (whatever systemd's state)."""
    wants = unit_dir / "multi-user.target.wants"
    prefix = UNIT_NAME.split("@")[0] + "@"
    return sorted(p.name for p in wants.glob(f"{prefix}*.service")) if wants.is_dir() else []


def run_uninstall(args: argparse.Namespace) -> int:
    _need_root()
    unit = args.unit_dir / UNIT_NAME
    if systemd_running() and args.unit_dir == UNIT_DIR:
        for name in _instances(args.unit_dir):
            _run(["systemctl", "disable", "--now", name])  # stop drains the running calls
            say(f"stopped and disabled {name}")
        _run(["systemctl", "disable", "--now", SMS_UNIT_NAME])
    sms_unit = args.unit_dir / SMS_UNIT_NAME
    if sms_unit.exists():
        sms_unit.unlink()
        say(f"removed {sms_unit}")
    if unit.exists():
        unit.unlink()
        say(f"removed {unit}")
        if systemd_running() and args.unit_dir == UNIT_DIR:
            _run(["systemctl", "daemon-reload"])
    else:
        say(f"{unit} is not installed")
    say(f"kept the user {args.user}, {config_path(args)} and the data (remove them by hand)")
    return 0


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def run_status(args: argparse.Namespace) -> int:
    config = config_path(args)
    unit = args.unit_dir / UNIT_NAME
    ok = unit.exists()
    print(f"unit: {unit} {'installed' if ok else 'NOT installed: sudo hamta-ivr service install'}")
    print(f"config: {config} {'present' if config.exists() else 'absent (defaults)'}")
    try:
        plan = make_plan(config, args.unit_dir, args.user)
    except (ConfigError, OSError) as exc:
        print(f"config: {exc}")
        return 1
    print(f"user: {args.user} {'exists' if _user_exists(args.user) else 'MISSING'}; data dir "
          f"{plan.data_dir}; spool {plan.spool_dir}")
    if ok and f"TimeoutStopSec={int(plan.drain) + STOP_SLACK}" not in unit.read_text():
        print(f"unit: TimeoutStopSec does not match drain = {plan.drain:g}: rerun "
              "`sudo hamta-ivr service install`")
        ok = False
    instances = _instances(args.unit_dir) or ([plan.instance] if ok else [])
    if not systemd_running():
        print(f"systemd: not running here (PID 1 is {pid1()})")
    for name in instances:
        port = int(name.split("@")[1].split(".")[0])
        state = (_run(["systemctl", "is-active", name]).stdout.strip()
                 if systemd_running() else "-")
        answering = _listening(port)
        ok = ok and answering
        print(f"{name}: {state}, port {port} {'answering' if answering else 'NOT answering'}")
    return 0 if ok else 1


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def run_unit(args: argparse.Namespace) -> int:
    print(render_unit(make_plan(config_path(args), args.unit_dir, args.user)), end="")
    return 0


def wait_listening(port: int, timeout: float) -> bool:
    """Used by tests and setup.sh: the port answers within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return True
        time.sleep(0.1)
    return False
