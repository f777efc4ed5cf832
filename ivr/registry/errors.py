"""Errors the registry raises for administrative input (the call flows get Refusals instead).

The CLI turns InvalidInput into exit code 2 and NotFound/AlreadyExists into exit code 1; each
message names what is wrong and how to fix it, so an operator can act on it directly.
"""

from __future__ import annotations

from ivr.config import ConfigError


class RegistryError(Exception):
    """Base of every error the registry raises on purpose."""


class InvalidInput(RegistryError, ValueError):
    """A malformed number, IMEI, PIN, code, status or national ID."""


class NotFound(RegistryError):
    """The subscriber or device does not exist."""


class AlreadyExists(RegistryError):
    """The subscriber or device is already in the registry."""


class SchemaNotReady(ConfigError, RegistryError):
    """The database has not been migrated (a ConfigError: the CLI prints it as one line)."""
