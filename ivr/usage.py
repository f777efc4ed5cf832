"""The one error for bad input on the command line (a flag, an argument): the library functions
that check what a command was given raise it, ivr.cli prints it as one line and exits 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input on the command line; the message says what and how to fix it."""
