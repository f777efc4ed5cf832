"""FastAGI in rooms (issue 20): the AGI call, its transport, the secret spool and the idle limit
are modules of their own, so classic AGI uses them without the FastAGI server, and the server
needs no AGI library (panoramisk stays for AMI only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ivr.call

CALL = Path(ivr.call.__file__).parent


def test_classic_agi_and_the_server_load_only_their_rooms() -> None:
    probe = ("import sys, ivr.call.classic_agi; a = 'ivr.call.fastagi' in sys.modules; "
             "import ivr.call.fastagi; print(a, 'panoramisk' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "False"]


def test_no_call_module_uses_panoramisk() -> None:
    imports = ("import panoramisk", "from panoramisk")
    assert not [p.name for p in CALL.glob("*.py") if any(i in p.read_text() for i in imports)]
