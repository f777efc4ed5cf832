"""The registry's device names, for `hamta-ivr prompts build` to build ahead (the prompt code
is handed them: it never reads the registry)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ivr.config import PEPPER_MIN_BYTES
from ivr.prompts.devices import distinct_names
from ivr.prompts.layout import PromptsError
from ivr.registry.service import Registry

log = logging.getLogger(__name__)


def read_device_names(url: str) -> list[tuple[str, str]]:
    """Every (brand, model) in the registry at `url`: the one call into the registry's API here.

    Names only, nothing is hashed: a placeholder pepper spares creating or reading the real one.
    """
    # names only: a dummy pepper, never checked against the registry's nor recorded
    with Registry.open(url, pepper=bytes(PEPPER_MIN_BYTES), check_pepper=False) as registry:
        return list(registry.portal.device_names())


def registry_devices(url: str, *, must_connect: bool = False) -> list[tuple[str, str]]:
    """The registry's device names to build ahead, each once.

    A registry that is not there yet (no database file, no tables) gives an empty list and a log
    line, unless `must_connect` (the operator named the database): then a PromptsError.
    """
    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.is_file():  # never let SQLite create an empty database here
                raise FileNotFoundError(f"no database file at {path}")
        pairs = read_device_names(url)
    except Exception as exc:  # any driver or schema error means "no names from there"
        message = f"could not read device names from the registry {_safe(url)}: {exc}"
        if must_connect:
            raise PromptsError(message + "; check --db / HAMTA_DB_URL") from exc
        log.info("%s; no device names built from it", message)
        return []
    return distinct_names(pairs)


def _safe(url: str) -> str:
    """A database URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
