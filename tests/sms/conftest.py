"""A real Kannel (bearerbox, smsbox and its test SMSC fakesmsc: ivr.testing.kannel) per test, on
free loopback ports. Outside CI a machine without Debian's kannel and kannel-extras skips the
tests marked `kannel` with the reason; with CI=true it fails them (setup.sh installs both)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ivr.testing.kannel import KannelLab, missing


def cannot_run(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Kannel tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def kannel(tmp_path) -> Iterator[KannelLab]:
    why = missing()
    if why:
        cannot_run(why)
    lab = KannelLab(tmp_path / "kannel")
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()
