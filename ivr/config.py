"""Deployment settings: where the data lives, which database, the pepper, the FastAGI address.

Every setting comes from an environment variable (or a command-line flag that overrides it), so an
operator configures one place. A bad setting raises ConfigError naming the setting and the fix.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """An operator-facing configuration problem; the message names the setting and the fix."""


def data_dir() -> Path:
    """HAMTA_DATA_DIR, else $XDG_DATA_HOME/hamta-ivr, else ~/.local/share/hamta-ivr."""
    explicit = os.environ.get("HAMTA_DATA_DIR")
    if explicit:
        path = Path(explicit).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / "hamta-ivr"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the data directory {path} ({exc.strerror}); "
            "set HAMTA_DATA_DIR to a writable folder"
        ) from exc
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


def load_pepper() -> bytes:
    """The secret key mixed into every password and activation-code hash.

    It lives outside the database so that a stolen database alone cannot be brute-forced (a PIN
    has too few values for a salted hash to protect it). HAMTA_PEPPER (hex) or HAMTA_PEPPER_FILE
    (a file holding it); for a development machine a file in the data directory is created once.
    """
    value = os.environ.get("HAMTA_PEPPER")
    source = "HAMTA_PEPPER"
    if not value:
        path_setting = os.environ.get("HAMTA_PEPPER_FILE")
        path = Path(path_setting) if path_setting else data_dir() / "pepper"
        source = f"the pepper file {path} (HAMTA_PEPPER_FILE)"
        if not path.exists():
            if path_setting:
                raise ConfigError(
                    f"HAMTA_PEPPER_FILE points at {path}, which does not exist; create it with "
                    "`python3 -c 'import secrets; print(secrets.token_hex(32))' > FILE` "
                    "and chmod 600 it"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(PEPPER_MIN_BYTES) + "\n")
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {source}: {exc.strerror}; fix its permissions") from exc
    try:
        pepper = bytes.fromhex(value)
    except ValueError as exc:
        raise ConfigError(f"{source} must hold hex digits (e.g. secrets.token_hex(32))") from exc
    if len(pepper) < PEPPER_MIN_BYTES:
        raise ConfigError(
            f"{source} holds {len(pepper)} bytes; it needs at least {PEPPER_MIN_BYTES} "
            "(64 hex digits)"
        )
    return pepper


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
        raise ConfigError(f"HAMTA_AGI_PORT/--port {raw!r} is not a port number (1-65535)") from exc
    if not 0 <= number <= 65535:
        raise ConfigError(f"HAMTA_AGI_PORT/--port {number} is outside 0-65535")
    return AgiAddress(host, number)
