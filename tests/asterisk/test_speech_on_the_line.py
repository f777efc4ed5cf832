"""What a caller waits on a real line: each operation's main path timed on the real Asterisk, from
the first word (the welcome starts) to the result (its `until` prompt starts: `prompts timing`
counts that prompt too, so the line figure is shorter by its length). A measurement, not a check:
it prints a table, and asserts only that each call reached its result.

Opt-in, one mode per run, on its own session's registry (the operations change it):

    HAMTA_SPEECH_LINE=keys      python -m pytest -m asterisk -s tests/asterisk/<this file>
    HAMTA_SPEECH_LINE=barge-in  python -m pytest -m asterisk -s tests/asterisk/<this file>

`keys`: each key sent when the IVR waits for it (every prompt heard in full, as `prompts timing`
assumes); `barge-in`: each key sent as soon as a prompt that takes it starts (a caller who knows
the menus). Calls are `hamta-ivr dial`'s: AMI Local channels, DTMF frames of 150 ms (AMI
PlayDTMF), the prompts played at real time by Asterisk: the line adds the keys' own time and the
AGI round trips to the audio.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from ivr.asterisk import ami, config, dev
from ivr.prompts import timing
from ivr.registry.service import Registry
from tests.asterisk.conftest import AgiServer

pytestmark = pytest.mark.asterisk

MODE = os.environ.get("HAMTA_SPEECH_LINE", "")
# an order in which no operation spoils the next one's registry
MEASURED = ("inquiry, registered device", "my devices",
            "transfer, one-device kartabl", "get a code", "change code",
            "withdraw a report", "start a return, the device from the week's list",
            "buyer's rights (6)")


@pytest.mark.skipif(MODE not in ("keys", "barge-in"),
                    reason="a measurement: HAMTA_SPEECH_LINE=keys or barge-in")
async def test_seconds_from_the_welcome_to_the_result(agi_server: AgiServer,
                                                      registry: Registry) -> None:
    registry.portal.add_subscriber(timing.ONE_DEVICE, password=timing.ONE_DEVICE_PIN)
    brand, model = timing.ONE_DEVICE_NAME
    registry.portal.add_device(timing.ONE_DEVICE_IMEI, owner=timing.ONE_DEVICE, brand=brand,
                               model=model, activation_code=timing.ONE_DEVICE_CODE)
    cfg = config.load(classic_agi=dev.Runtime.detect().classic_agi, create_secrets=False)
    operations = {op.name: op for op in timing.OPERATIONS}
    rows = []
    for name in MEASURED:
        op = operations[name]
        heard: list[tuple[float, str]] = []
        result = await asyncio.wait_for(ami.dial(
            cfg, caller=op.caller, keys=f"{op.keys} h", spool=str(config.spool_dir()),
            barge_in=MODE == "barge-in",
            echo=lambda line, heard=heard: heard.append((time.monotonic(), line))), 300)
        assert result.ok, (name, result)
        started = next(at for at, line in heard if line == "> welcome")
        reached = [at for at, line in heard if line == f"> {op.until}"]
        assert reached, (name, [line for _, line in heard])
        rows.append((name, reached[0] - started))
    print(f"\nseconds from the welcome to the result on the real Asterisk ({MODE}):")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} s |")
