"""Issue 17 on the real Asterisk: a caller ID counts only where the network vouches for it.

The session's dialplan sends its calls to a FastAGI server of this test (the session's `hamta-ivr
serve` steps aside meanwhile) that records, per call, the caller ID and `caller_trusted` as
AgiCall.from_env made them from what Asterisk sent. A call entering hamta-ivr-trusted (`hamta-ivr
dial`, a subscriber's own SIM) arrives vouched for; one entering hamta-ivr (`dial --untrusted`, a
softphone or VoIP trunk) does not, nor does a staff softphone calling as any number
(`7777*09…`, context hamta-staff, over SIP). A PJSIP endpoint named in the rendered
`trusted_endpoints` list is vouched for in hamta-ivr too: staff2 stands in for an operator's trunk
here (the setting itself refuses staff accounts), written into the rendered dialplan and
reloaded, then put back.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import pytest

from ivr.asterisk import config, dev
from ivr.call.api import Call
from ivr.call.fastagi import FastAgiServer, ServerSettings
from tests.asterisk.conftest import Env, dial, free_port, softphone_media_ports

pytestmark = pytest.mark.asterisk

SIPP_SCENARIO = Path(__file__).resolve().parents[2] / "asterisk-conf" / "sipp" / \
    "direct-transfer.xml"
SUBSCRIBER, SOFTPHONE, STAFF_AS = "09170009001", "09170009002", "09170009003"



def answer_and_wait_scenario(folder: Path) -> Path:
    """direct-transfer.xml without its keys: INVITE (with digest auth), ACK, then wait for the
    IVR's BYE and answer it."""
    text = SIPP_SCENARIO.read_text()
    cut = re.sub(r"\s*<!-- RFC 4733 events.*?(?=<recv request=\"BYE\"/>)", "\n\n  ", text,
                 flags=re.S)
    assert cut != text and "play_dtmf" not in cut and '<recv request="BYE"/>' in cut
    path = folder / "answer-and-wait.xml"
    path.write_text(cut)
    return path


def softphone_call(env: Env, scenario: Path, account: str, service: str,
                   timeout: int = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sipp", "-sf", str(scenario), "-s", service,
         "-key", "account", account, "-au", account, "-ap", env.sip_password(account),
         "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
         "-mp", str(softphone_media_ports()), "-m", "1", "-nostdin", "-timeout", str(timeout),
         "-timeout_error", f"127.0.0.1:{env.sip_port}"],
        capture_output=True, text=True, timeout=timeout + 30, cwd=env.data,
    )


def reload_dialplan(runtime: dev.Runtime, cfg: config.AsteriskConfig) -> None:
    said = dev._rx(runtime, cfg, "dialplan reload")
    assert said is not None, "asterisk -rx 'dialplan reload' failed"


async def test_only_a_vouched_entry_makes_the_caller_id_count(quiet_port: Env,
                                                              tmp_path: Path) -> None:
    env = quiet_port
    seen: dict[str, tuple[str | None, bool, str]] = {}  # call id -> caller, trusted, channel

    async def record(call: Call) -> str:
        seen[call.call_id] = (call.caller_id, call.caller_trusted,
                              getattr(call, "asterisk_channel", ""))
        return "recorded"

    def sip(account: str, service: str) -> tuple[str | None, bool, str]:
        before = set(seen)
        done = softphone_call(env, scenario, account, service)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        [new] = set(seen) - before
        return seen[new]

    scenario = answer_and_wait_scenario(tmp_path)
    server = FastAgiServer(ServerSettings(port=env.agi_port, sounds=tmp_path, spool=tmp_path),
                           record)
    await server.start()
    runtime = dev.Runtime.detect()
    cfg = config.load(classic_agi=runtime.classic_agi, create_secrets=False)
    rendered = cfg.etc / "extensions.conf"
    original = rendered.read_text()
    try:
        # hamta-ivr dial: hamta-ivr-trusted by default (the subscriber's own SIM), --untrusted
        # enters hamta-ivr (a softphone or VoIP trunk)
        own_sim = await asyncio.to_thread(dial, env, SUBSCRIBER, "", timeout=60)
        voip = await asyncio.to_thread(dial, env, SOFTPHONE, "", timeout=60, untrusted=True)
        for done in (own_sim, voip):
            assert done.ok, (done.doc, done.stderr)
        assert own_sim.doc["trusted"] is True and voip.doc["trusted"] is False
        assert seen[own_sim.call_id][:2] == (SUBSCRIBER, True)
        assert seen[voip.call_id][:2] == (SOFTPHONE, False)
        assert seen[own_sim.call_id][2].startswith("Local/7777@hamta-ivr-trusted-")

        # a staff softphone calling as any number (hamta-staff, 7777*09…): never vouched for
        caller, trusted, channel = await asyncio.to_thread(sip, "staff1", f"7777*{STAFF_AS}")
        assert (caller, trusted) == (STAFF_AS, False) and channel.startswith("PJSIP/staff1-")

        # trusted_endpoints: an endpoint on the list counts as vouched in hamta-ivr (names are
        # compared ignoring case); any other PJSIP endpoint does not
        empty = "Set(HAMTA_TRUSTED_ENDPOINTS=)"
        assert original.count(empty) == 2
        listed = "Set(HAMTA_TRUSTED_ENDPOINTS=mci-trunk&STAFF2)"
        rendered.write_text(original.replace(empty, listed))
        await asyncio.to_thread(reload_dialplan, runtime, cfg)
        caller, trusted, channel = await asyncio.to_thread(sip, "staff2", "7777")
        assert (caller, trusted) == ("09122222222", True) and channel.startswith("PJSIP/staff2-")
        caller, trusted, _ = await asyncio.to_thread(sip, "staff1", f"7777*{STAFF_AS}")
        assert (caller, trusted) == (STAFF_AS, False)
    finally:
        rendered.write_text(original)
        await asyncio.to_thread(reload_dialplan, runtime, cfg)
        await server.stop()
