"""Deployment settings: where the data lives, which database, the pepper, the FastAGI address.

Every setting comes from an environment variable (or a command-line flag that overrides it), so an
operator configures one place. A bad setting raises ConfigError naming the setting and the fix.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """An operator-facing configuration problem; the message names the setting and the fix."""


def data_dir_path() -> Path:
    """Where the data directory is (HAMTA_DATA_DIR, else the XDG default), without creating it."""
    explicit = os.environ.get("HAMTA_DATA_DIR")
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
    url = explicit or os.environ.get("HAMTA_DB_URL")
    if url:
        if "://" not in url:
            raise ConfigError(
                f"HAMTA_DB_URL/--db {url!r} is not a database URL; use e.g. "
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
    path_setting = os.environ.get("HAMTA_PEPPER_FILE")
    if path_setting:
        return f"HAMTA_PEPPER_FILE={path_setting}"
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
        path_setting = os.environ.get("HAMTA_PEPPER_FILE")
        path = Path(path_setting).expanduser() if path_setting else default_pepper_file()
        source = (f"the pepper file {path} (HAMTA_PEPPER_FILE)" if path_setting
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
                f"HAMTA_PEPPER_FILE points at {path}, which does not exist; restore the pepper "
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
    host = host or os.environ.get("HAMTA_AGI_HOST", "127.0.0.1")
    raw = port if port is not None else os.environ.get("HAMTA_AGI_PORT", "4573")
    try:
        number = int(raw)
    except ValueError as exc:
        raise ConfigError(f"HAMTA_AGI_PORT/--port {raw!r} is not a port number; set it to "
                          "1-65535 (default 4573)") from exc
    if not 0 <= number <= 65535:
        raise ConfigError(f"HAMTA_AGI_PORT/--port {number} is outside 0-65535; set it to "
                          "1-65535 (default 4573)")
    return AgiAddress(host, number)
