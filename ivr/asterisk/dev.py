"""The development Asterisk: `hamta-ivr asterisk up|down|status`.

The machine's Asterisk is used when installed (`asterisk` on PATH); otherwise (Debian 12 has no
package) a Debian sid root file system with Asterisk 22, built once by
`asterisk-conf/dev-asterisk.sh bootstrap` under /var/cache/hamta-ivr/asterisk-root, runs it in a
chroot. The chroot sees the data dir (rendered config, logs, the spool of secret digit strings)
and the sounds at the same absolute paths through bind mounts, so a path means the same thing to
Asterisk, to the FastAGI server and to the classic AGI script. AMI and FastAGI meet on 127.0.0.1
(a chroot shares the network).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ivr import config
from ivr.asterisk import ami
from ivr.asterisk.config import (
    AsteriskConfig,
    conf_source_dir,
    render,
    rendered_staff,
    spool_dir,
)
from ivr.config import CONFIG_ENV, ConfigError, data_dir

STAMPS = (".hamta-asterisk-ready", ".hamta-python-ready")  # written by dev-asterisk.sh
CHROOT_VENV = "/opt/hamta-ivr/venv"  # the package for classic AGI inside the chroot
INSTANCE_ENV = "HAMTA_ASTERISK_INSTANCE"  # marks Asterisk and its AGI children, for `down`
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def cache_dir() -> Path:
    """HAMTA_CACHE: the development Asterisk's root and downloads."""
    return config.current().cache


@dataclass(frozen=True)
class Runtime:
    """Where Asterisk runs: the host (root None) or a chroot."""

    root: Path | None

    @classmethod
    def detect(cls) -> Runtime:
        settings = config.current().checked("asterisk_mode")
        mode = settings.asterisk_mode  # auto, host or chroot
        if mode == "host" or (mode == "auto" and shutil.which("asterisk")
                              and settings.asterisk_root is None):
            if not shutil.which("asterisk"):
                raise ConfigError("HAMTA_ASTERISK_MODE=host but no `asterisk` on PATH")
            return cls(None)
        return cls(settings.chroot)

    @property
    def ready(self) -> bool:
        return self.root is None or all((self.root / s).exists() for s in STAMPS)

    def command(self, *argv: str) -> list[str]:
        return list(argv) if self.root is None else ["chroot", str(self.root), *argv]

    def inside(self, path: Path) -> Path:
        """The host path under which the chroot sees `path`."""
        return path if self.root is None else self.root / str(path).lstrip("/")

    @property
    def classic_agi(self) -> str:
        if self.root is None:
            from ivr.asterisk.config import default_classic_agi

            return default_classic_agi()
        return f"{CHROOT_VENV}/bin/hamta-ivr-agi"


def bootstrap(runtime: Runtime) -> None:
    """Build the chroot once (the script is idempotent and stamps a complete tree)."""
    if runtime.ready:
        return
    if os.geteuid() != 0:
        raise ConfigError("the development Asterisk needs root (debootstrap, chroot, mounts); "
                          "run `sudo asterisk-conf/dev-asterisk.sh bootstrap` once")
    script = conf_source_dir() / "dev-asterisk.sh"
    print(f"bootstrapping Asterisk into {runtime.root} (first time: about a minute)",
          file=sys.stderr, flush=True)
    env = config.child_env(HAMTA_ASTERISK_ROOT=str(runtime.root))
    done = subprocess.run(["sh", str(script), "bootstrap"], env=env)
    if done.returncode != 0:
        raise ConfigError(f"{script} bootstrap failed (exit {done.returncode}); see its output "
                          "above (network to deb.debian.org and PyPI? disk space?)")


# --- mounts ---------------------------------------------------------------------------------------
def _mounted() -> set[str]:
    points = set()
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            points.add(line.split()[4].replace("\\040", " "))
    return points


def shared_paths(cfg: AsteriskConfig) -> list[Path]:
    """Host folders the chroot must see at the same path (each only once, outermost first)."""
    paths: list[Path] = []
    for path in sorted({data_dir().resolve(), cfg.sounds.resolve(), spool_dir().resolve()},
                       key=lambda p: len(p.parts)):
        if not any(path == p or p in path.parents for p in paths):
            paths.append(path)
    return paths


def mount_shared(runtime: Runtime, cfg: AsteriskConfig) -> None:
    if runtime.root is None:
        return
    mounted = _mounted()
    for path in shared_paths(cfg):
        target = runtime.inside(path)
        if str(target) in mounted:
            continue
        path.mkdir(parents=True, exist_ok=True)
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "--bind", str(path), str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(f"cannot bind-mount {path} into the Asterisk root "
                              f"({done.stderr.strip()}); the chroot needs root")


def unmount_shared(runtime: Runtime, cfg: AsteriskConfig) -> None:
    if runtime.root is None:
        return
    root = str(runtime.root).rstrip("/") + "/"
    for path in shared_paths(cfg):
        target = str(runtime.inside(path))
        if target.startswith(root) and target in _mounted():
            done = subprocess.run(["umount", target], capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", target], check=False)
        _remove_empty_dirs(Path(target), runtime.root)


def _remove_empty_dirs(path: Path, root: Path) -> None:
    """The mount point and its empty parents, never a top-level folder of the root (/tmp…)."""
    while path.parent != root and root in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


# --- classic AGI inside the chroot ------------------------------------------------------------
def _source_dirs(repo: Path) -> list[str]:
    """The folders setuptools builds the package from (pyproject's package-dir)."""
    with open(repo / "pyproject.toml", "rb") as fh:
        mapping = tomllib.load(fh)["tool"]["setuptools"].get("package-dir", {"ivr": "ivr"})
    return sorted(set(mapping.values()))


def _source_digest(repo: Path) -> str:
    digest = hashlib.sha256()
    for folder in _source_dirs(repo):
        for path in sorted((repo / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(repo)).encode())
                digest.update(path.read_bytes())
    digest.update((repo / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def install_classic_agi(runtime: Runtime) -> str | None:
    """Put this checkout into the chroot's venv (for AGI(hamta-ivr-agi)); None when ready, else
    why it is not available. Reinstalled only when the source changed."""
    if runtime.root is None:
        return None
    venv = runtime.inside(Path(CHROOT_VENV))
    if not (venv / "bin" / "python").exists():
        return "no Python venv in the chroot (rerun asterisk-conf/dev-asterisk.sh bootstrap)"
    repo = conf_source_dir().parent
    stamp = venv / ".hamta-source"
    digest = _source_digest(repo)
    if stamp.exists() and stamp.read_text() == digest:
        return None
    src = runtime.inside(Path("/opt/hamta-ivr/src"))
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in _source_dirs(repo):
        shutil.copytree(repo / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, src / name)
    done = subprocess.run(runtime.command(
        f"{CHROOT_VENV}/bin/pip", "install", "-q", "--disable-pip-version-check",
        "--no-build-isolation", "--force-reinstall", "--no-deps", "/opt/hamta-ivr/src"),
        capture_output=True, text=True)
    if done.returncode != 0:
        return f"pip install in the chroot failed: {done.stderr.strip()[-500:]}"
    stamp.write_text(digest)
    return None


# --- process --------------------------------------------------------------------------------------
def pid_file(cfg: AsteriskConfig) -> Path:
    return cfg.run / "hamta-asterisk.pid"


def running_pid(cfg: AsteriskConfig) -> int | None:
    try:
        pid = int(pid_file(cfg).read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a recycled pid is not our Asterisk
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return None
    except OSError:
        return None
    return pid


def asterisk_env(cfg: AsteriskConfig, db: str | None = None) -> dict[str, str]:
    """Asterisk's environment: what classic AGI scripts it starts need, and the instance mark."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", INSTANCE_ENV: str(cfg.base)}
    env.update(config.child_env(hamta_only=True))
    env["HAMTA_DATA_DIR"] = str(data_dir())
    env["HAMTA_DB_URL"] = config.db_url(db)
    env["HAMTA_SOUNDS_DIR"] = str(cfg.sounds)
    env["HAMTA_SPOOL_DIR"] = str(spool_dir())
    pepper_file = config.current().raw.get("pepper_file")
    if pepper_file:
        env["HAMTA_PEPPER_FILE"] = pepper_file
    env[CONFIG_ENV] = ""  # the settings above are resolved: scripts read no config file
    return env


DIST_DATA_DIRS = ("/usr/share/asterisk", "/var/lib/asterisk")  # Debian's, a source build's


def add_host_name(runtime: Runtime) -> None:
    """The machine's host name in the Asterisk root's /etc/hosts, so Asterisk does not ask DNS
    for it on every INVITE (the root is cached; the host name may change between runs)."""
    import socket

    if runtime.root is None:
        return
    name = socket.gethostname()
    hosts = runtime.inside(Path("/etc/hosts"))
    try:
        text = hosts.read_text()
    except OSError:
        return
    names = {word for line in text.splitlines() for word in line.split("#")[0].split()[1:]}
    if name and name not in names:
        hosts.write_text(text.rstrip("\n") + f"\n127.0.1.1\t{name}\t# added by hamta-ivr\n")


def prepare_dirs(runtime: Runtime, cfg: AsteriskConfig) -> None:
    """Our astdatadir: sounds -> the built prompts; the rest (documentation, which the config
    framework needs to start, keys, static-http, …) -> the distribution's data dir."""
    for sub in ("etc", "log", "run", "lib", "spool", "data"):
        (cfg.base / sub).mkdir(parents=True, exist_ok=True, mode=0o750)
    cfg.sounds.mkdir(parents=True, exist_ok=True)
    links = {"sounds": cfg.sounds}
    for dist in DIST_DATA_DIRS:
        seen = runtime.inside(Path(dist))
        if (seen / "documentation").is_dir():
            links.update({entry.name: Path(dist) / entry.name for entry in seen.iterdir()
                          if entry.name != "sounds"})
            break
    for name, target in links.items():
        link = cfg.base / "data" / name
        if link.is_symlink() and Path(os.readlink(link)) != target:
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(target)


def up(
    runtime: Runtime, cfg: AsteriskConfig, *, timeout: float = START_TIMEOUT, db: str | None = None
) -> str:
    """Start Asterisk (or reload a running one); returns what was done. Idempotent."""
    if runtime.root is not None and os.geteuid() != 0:
        raise ConfigError("the development Asterisk in a chroot needs root (chroot, bind "
                          "mounts); run as root, or install asterisk (HAMTA_ASTERISK_MODE=host)")
    bootstrap(runtime)
    add_host_name(runtime)
    prepare_dirs(runtime, cfg)
    render(cfg)
    mount_shared(runtime, cfg)
    problem = install_classic_agi(runtime)
    if problem:
        print(f"warning: classic AGI (7778) unavailable: {problem}", file=sys.stderr)
    pid = running_pid(cfg)
    if pid:
        _rx(runtime, cfg, "core reload")
        return f"already running (pid {pid}); configuration re-rendered and reloaded"
    for stale in ("asterisk.ctl", "asterisk.pid"):
        with contextlib.suppress(FileNotFoundError):
            (cfg.run / stale).unlink()
    console = open(cfg.log / "console.log", "ab")  # noqa: SIM115 - handed to the child
    with console:
        proc = subprocess.Popen(
            runtime.command("asterisk", "-C", str(cfg.conf_file), "-f", "-n"),
            stdin=subprocess.DEVNULL, stdout=console, stderr=console, env=asterisk_env(cfg, db),
            start_new_session=True,
        )
    pid_file(cfg).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"Asterisk exited with status {proc.returncode} while starting; "
                              f"see {cfg.log / 'console.log'}:\n{_tail(cfg.log / 'console.log')}")
        try:
            version = asyncio.run(ami.ping(cfg, timeout=2))
        except ami.AmiError as exc:
            last = str(exc)
            time.sleep(0.3)
            continue
        if _fully_booted(runtime, cfg):
            return f"started {version} (pid {proc.pid})"
        time.sleep(0.3)
    down(runtime, cfg)
    raise ConfigError(f"Asterisk did not answer on AMI within {timeout:.0f}s ({last}); "
                      f"see {cfg.log / 'console.log'}")


def _fully_booted(runtime: Runtime, cfg: AsteriskConfig) -> bool:
    out = _rx(runtime, cfg, "core waitfullybooted", timeout=10)
    return out is not None


def _rx(runtime: Runtime, cfg: AsteriskConfig, command: str, timeout: float = 15) -> str | None:
    try:
        done = subprocess.run(runtime.command("asterisk", "-C", str(cfg.conf_file), "-rx",
                                              command),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout if done.returncode == 0 else None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _instance_pids(cfg: AsteriskConfig) -> list[int]:
    """Processes started by this Asterisk instance (itself, AGI scripts), by environment mark."""
    mark = f"{INSTANCE_ENV}={cfg.base}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def down(runtime: Runtime, cfg: AsteriskConfig) -> str:
    """Stop Asterisk cleanly (core stop now, then signals), kill leftovers, unmount. Idempotent."""
    pid = running_pid(cfg)
    said = "not running"
    if pid:
        _rx(runtime, cfg, "core stop now", timeout=10)
        if not _wait_gone(pid, STOP_TIMEOUT):
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, 5):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        said = f"stopped (pid {pid})"
    for other in _instance_pids(cfg):
        with contextlib.suppress(ProcessLookupError):
            os.kill(other, signal.SIGKILL)
    pid_file(cfg).unlink(missing_ok=True)
    unmount_shared(runtime, cfg)
    return said


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # our own child (started by this process) lingers as a zombie until reaped
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def status(
    runtime: Runtime, cfg: AsteriskConfig, *, show_secrets: bool = False
) -> tuple[bool, list[str]]:
    """(running and answering AMI, lines describing what runs). SIP passwords are named by where
    they are kept, printed only with `show_secrets`."""
    pid = running_pid(cfg)
    where = "host" if runtime.root is None else f"chroot {runtime.root}"
    if not pid:
        lines = [f"Asterisk: not running ({where}; data {cfg.base})"]
        if runtime.root is not None and not runtime.ready:
            lines.append("  not bootstrapped yet: `hamta-ivr asterisk up` builds it")
        return False, lines
    try:
        version = asyncio.run(ami.ping(cfg, timeout=3))
    except ami.AmiError as exc:
        return False, [f"Asterisk: pid {pid} runs but AMI does not answer: {exc}"]
    lines = [
        f"Asterisk: {version} running (pid {pid}, {where})",
        f"  config and logs: {cfg.etc}, {cfg.log}",
        f"  AMI: 127.0.0.1:{cfg.ami_port} user {cfg.ami_user} "
        "(secret: HAMTA_AMI_SECRET or <data dir>/secrets/ami)",
        f"  IVR: extension 7777 (FastAGI agi://{cfg.agi.host}:{cfg.agi.port}/hamta: "
        f"{'listening' if _listening(cfg.agi.host, cfg.agi.port) else 'NOT listening'}), "
        "7778 (classic AGI)",
        f"  sounds: {cfg.sounds}",
        f"  SIP (softphones): udp {cfg.sip_bind}:{cfg.sip_port}; dial 7777, or 7777*09xxxxxxxxx "
        "to call as that number",
    ]
    running = rendered_staff(cfg.etc)  # what this Asterisk was started with
    for acc in cfg.staff if running is None else running:
        lines.append(f"    account {acc.name} ({acc.msisdn or 'caller ID withheld'}): "
                     f"sip:{acc.name}@{cfg.sip_bind}:{cfg.sip_port}, password "
                     f"{acc.password if show_secrets else secret_where(acc.name)}")
    if not show_secrets and (cfg.staff if running is None else running):
        lines.append("    (`hamta-ivr asterisk status --show-secrets` prints the passwords)")
    return True, lines


def secret_where(name: str) -> str:
    """Where a staff account's password is kept (never the password)."""
    env = "HAMTA_SIP_SECRET_" + name.upper().replace("-", "_")
    if config.current().env_secret(env):
        return f"in ${env}"
    data_dir()  # made, with its checks, as before
    return f"in {config.current().secrets_dir / ('sip-' + name)}"


def _listening(host: str, port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False
