"""What the systemd service is made of (deploy/hamta-ivr@.service, deploy/install.sh): the plan a
config file makes (folders, port, drain: `make_plan`, read by the settings room from that file
alone, never this shell's HAMTA_*), the drop-in it needs beside the static units, and what is
installed and running (`status`). `hamta-ivr service` prints these; the script writes them."""

from __future__ import annotations

import pwd
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ivr.config import CONFIG_ENV, DEFAULT_CONFIG_FILE, ConfigError, Settings

# the static units' defaults (deploy/hamta-ivr@.service): a drop-in says what differs
PREFIX = Path("/opt/hamta-ivr")
SERVICE_HOME = Path("/var/lib/hamta-ivr")
UNIT_NAME = "hamta-ivr@.service"
SMS_UNIT_NAME = "hamta-ivr-sms.service"  # the SMS worker (hamta-ivr sms deliver), when configured
UNIT_DIR = Path("/etc/systemd/system")
DEFAULT_PORT = 4573
DEFAULT_DRAIN = 120.0  # serve --drain's default
STOP_SLACK = 30  # seconds TimeoutStopSec leaves beyond the drain
DROPIN = "config.conf"  # <unit>.d/config.conf, written by deploy/install.sh


@dataclass(frozen=True)
class Plan:
    """What the service is made of, from the config file alone (not this shell's HAMTA_*)."""

    config: Path
    data_dir: Path
    spool_dir: Path
    sounds_dir: Path
    port: int
    drain: float
    db_url: str | None
    pepper_file: Path | None
    sms: bool = False  # kannel_url is set: the SMS worker's unit is enabled too

    @property
    def instance(self) -> str:
        return instance_name(self.port)


def instance_name(port: int | str) -> str:
    return UNIT_NAME.replace("@", f"@{port}")


def make_plan(config: Path) -> Plan:
    """The service's settings as it will read them: this config file alone (none when it does
    not exist), never this shell's HAMTA_*; each checked by the settings room."""
    settings = Settings.load({CONFIG_ENV: str(config) if config.exists() else ""})
    data = settings.data_dir_setting or SERVICE_HOME
    return Plan(config=config, data_dir=data,
                spool_dir=settings.spool_dir_setting or data / "spool",
                sounds_dir=settings.sounds_dir_setting or data / "sounds",
                port=settings.agi.port, drain=settings.drain, db_url=settings.db_url_setting,
                pepper_file=settings.pepper_file_setting, sms=bool(settings.kannel_url))


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


def render_dropin(plan: Plan, prefix: Path = PREFIX, sms: bool = False) -> str:
    """The lines of a unit that this config file and prefix change; "" when none."""
    lines = []
    if plan.config != DEFAULT_CONFIG_FILE:
        lines.append(f"Environment={CONFIG_ENV}={plan.config}")
    if prefix != PREFIX:
        command = ["sms", "deliver"] if sms else ["serve", "--port", "%i"]
        exe = str(prefix / "venv" / "bin" / "hamta-ivr")
        lines += ["ExecStart=", f"ExecStart={shlex.join([exe, *command])}"]
    if plan.data_dir != SERVICE_HOME:
        lines.append(f"WorkingDirectory={plan.data_dir}")
    paths = read_write_paths(plan)
    if paths != [SERVICE_HOME]:
        lines += ["ReadWritePaths=", "ReadWritePaths=" + " ".join(
            str(p) if p == plan.data_dir else f"-{p}" for p in paths)]
    if not sms and plan.drain != DEFAULT_DRAIN:
        lines.append(f"TimeoutStopSec={int(plan.drain) + STOP_SLACK}")
    if not lines:
        return ""
    return (f"# Written by deploy/install.sh from {plan.config}: what it changes in the unit.\n"
            "# Rerun the script after changing data_dir, spool_dir, db_url or drain.\n"
            "[Service]\n" + "\n".join(lines) + "\n")


# --- what is installed and running ----------------------------------------------------------------
def systemd_running() -> bool:
    """systemd is PID 1 (sd_booted: /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir()


def pid1() -> str:
    try:
        return Path("/proc/1/comm").read_text().strip()
    except OSError:
        return "unknown"


def _instances(unit_dir: Path) -> list[str]:
    """Instances enabled in multi-user.target.wants (whatever systemd's state)."""
    wants = unit_dir / "multi-user.target.wants"
    prefix = UNIT_NAME.split("@")[0] + "@"
    return sorted(p.name for p in wants.glob(f"{prefix}*.service")) if wants.is_dir() else []


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def status(config: Path, unit_dir: Path) -> tuple[bool, list[str]]:
    """Whether the service is installed and every enabled instance answers, and the lines that
    say so (`hamta-ivr service status` prints them)."""
    lines: list[str] = []
    unit = unit_dir / UNIT_NAME
    ok = unit.exists()
    lines.append(f"unit: {unit} {'installed' if ok else 'NOT installed: sudo ./setup.sh install'}")
    lines.append(f"config: {config} {'present' if config.exists() else 'absent (defaults)'}")
    try:
        plan = make_plan(config)
    except (ConfigError, OSError) as exc:
        return False, [*lines, f"config: {exc}"]
    lines.append(f"user: hamta {'exists' if _user_exists('hamta') else 'MISSING'}; data dir "
                 f"{plan.data_dir}; spool {plan.spool_dir}")
    dropin = unit_dir / f"{UNIT_NAME}.d" / DROPIN
    written = dropin.read_text() if dropin.exists() else ""
    if ok and written != render_dropin(plan, _installed_prefix(written)):
        lines.append(f"unit: {dropin} does not match {config}: rerun `sudo ./setup.sh install`")
        ok = False
    instances = _instances(unit_dir) or ([plan.instance] if ok else [])
    if not systemd_running():
        lines.append(f"systemd: not running here (PID 1 is {pid1()})")
    for name in instances:
        port = int(name.split("@")[1].split(".")[0])
        state = (subprocess.run(["systemctl", "is-active", name], capture_output=True,
                                text=True, check=False).stdout.strip()
                 if systemd_running() else "-")
        answering = _listening(port)
        ok = ok and answering
        said = "answering" if answering else "NOT answering"
        lines.append(f"{name}: {state}, port {port} {said}")
    return ok, lines


def _installed_prefix(dropin: str) -> Path:
    """The prefix a written drop-in's ExecStart names (the default when it names none)."""
    for line in dropin.splitlines():
        if line.startswith("ExecStart=/"):
            return Path(shlex.split(line.removeprefix("ExecStart="))[0]).parents[2]
    return PREFIX


def wait_listening(port: int, timeout: float) -> bool:
    """Used by tests: the port answers within timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return True
        time.sleep(0.1)
    return False
