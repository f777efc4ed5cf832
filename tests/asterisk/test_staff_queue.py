"""A person behind `0` on the real Asterisk (issue 18): without a staff queue `0` is an invalid
choice; with one (staff_queue), a caller stopped for want of a kartabl password presses `0`, the
IVR ends with HAMTA_RESULT=queue, the dialplan's Queue() rings the staff softphones, and a SIPp
agent signed in as staff2 answers: its INVITE shows what happened before (the operation and how it
ended) and the caller's last four digits, never the whole number. With nobody signed in, the
caller hears "all experts are busy" in Persian.

The module turns the queue on for itself: Asterisk's configuration re-rendered with
HAMTA_STAFF_QUEUE (queues.conf) and reloaded, and a server of its own on the session port; the
session's server and configuration come back at the end.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.registry.demo import DEMO_EMPTY, DEMO_NO_PIN
from ivr.registry.service import Registry
from tests.asterisk.conftest import (
    CLI,
    AgiServer,
    Env,
    dial,
    free_port,
    is_subsequence,
    missing_sounds,
    softphone_media_ports,
)

pytestmark = pytest.mark.asterisk

SIPP = Path(__file__).resolve().parents[2] / "asterisk-conf" / "sipp"
QUEUE = "hamta-staff"
AGENT = "staff2"
SIGNED_IN_MS = 75_000  # long enough for the call below to reach the queue


def call_row(registry: Registry, call_id: str) -> tuple[list[str], str | None]:
    rows = [row for row in registry.call_log.calls() if row.call_id == call_id]
    assert rows, f"no call log entry for {call_id}"
    return list(rows[0].path), rows[0].outcome


def asterisk_up(env: Env, variables: dict[str, str]) -> None:
    """Re-render the running Asterisk's configuration from `variables`, and reload it."""
    done = subprocess.run([*CLI, "asterisk", "up"], env=variables, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(autouse=True)
def no_missing_sounds(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "e2e_env" in request.fixturenames:
        env: Env = request.getfixturevalue("e2e_env")
        missing = missing_sounds(env)
        assert not missing, "Asterisk could not find sound files:\n" + "\n".join(missing)


def test_without_a_staff_queue_0_is_an_invalid_choice(agi_server: AgiServer,
                                                       registry: Registry, e2e_env: Env) -> None:
    result = dial(agi_server.env, DEMO_EMPTY, "0 h")
    assert result.ok, (result.doc, result.stderr)
    assert is_subsequence(["welcome", "main_menu", "invalid_choice", "main_menu"],
                          result.prompts), result.prompts
    assert "staff_offer" not in result.prompts
    assert not any(p.startswith("(queue)") for p in result.prompts), result.prompts


@pytest.fixture(scope="module")
def queued(asterisk: Env, agi_server: AgiServer) -> Iterator[dict[str, str]]:
    """The staff queue on: queues.conf with the staff accounts, a server that offers `0`."""
    variables = {**asterisk.vars, "HAMTA_STAFF_QUEUE": QUEUE, "HAMTA_STAFF_WAIT": "30"}
    asterisk_up(asterisk, variables)
    agi_server.stop()
    server = AgiServer(asterisk, name="serve-queue", vars=variables)
    try:
        server.start()
        yield variables
    finally:
        server.stop()
        agi_server.start()
        asterisk_up(asterisk, asterisk.vars)


def start_agent(env: Env, messages: Path) -> subprocess.Popen[str]:
    """A SIPp softphone signed in as a staff account, answering the queue's call."""
    proc = subprocess.Popen(
        ["sipp", "-sf", str(SIPP / "staff-agent.xml"),
         "-oocsf", str(SIPP / "staff-agent-answer.xml"),
         "-key", "account", AGENT, "-au", AGENT, "-ap", env.sip_password(AGENT),
         "-d", str(SIGNED_IN_MS), "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
         "-mp", str(softphone_media_ports()), "-m", "1", "-nostdin", "-timeout", "150",
         "-timeout_error", "-trace_msg", "-message_file", str(messages),
         f"127.0.0.1:{env.sip_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=env.data)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # signed in: Asterisk's 200 to the REGISTER with auth
        text = messages.read_text(errors="replace") if messages.exists() else ""
        if "CSeq: 2 REGISTER" in text and "SIP/2.0 200 OK" in text:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    proc.kill()
    out, _ = proc.communicate()
    raise AssertionError(f"the SIPp agent did not sign in:\n{out}\n"
                         f"{messages.read_text(errors='replace') if messages.exists() else ''}")


def invite_of(messages: str) -> str:
    """The INVITE the agent received, as the message log holds it."""
    at = messages.index("INVITE sip:")
    return messages[at:messages.index("\n\n", at)]


def test_0_after_a_stop_reaches_an_agent_who_sees_what_happened(
        queued: dict[str, str], asterisk: Env, registry: Registry, e2e_env: Env) -> None:
    messages = asterisk.data / "agent-messages.log"
    agent = start_agent(asterisk, messages)
    try:
        # transfer, this number: no kartabl password, the stop; then `0`
        result = dial(asterisk, DEMO_NO_PIN, "3 1 0", timeout=150)
    finally:
        out, _ = agent.communicate(timeout=SIGNED_IN_MS / 1000 + 60)
    assert agent.returncode == 0, out
    assert result.ok, (result.doc, result.stderr)
    assert is_subsequence(["welcome", "main_menu", "staff_offer", "whose_devices", "no_password",
                           "staff_offer", "main_menu_again", "staff_connecting",
                           f"(queue) {QUEUE}"], result.prompts), result.prompts
    assert "staff_busy" not in result.prompts and not result.doc["unused_keys"]
    log = messages.read_text(errors="replace")
    invite = invite_of(log)
    # what the agent's phone shows: the operation and how it ended, the last four digits
    assert f'From: "transfer:no_password" <sip:xxxxxxx{DEMO_NO_PIN[-4:]}@' in invite, invite
    assert "X-Hamta-Context: transfer:no_password" in invite, invite
    assert DEMO_NO_PIN[1:] not in log  # never the whole number
    assert call_row(registry, result.call_id) == (["transfer:no_password", "staff"], "handoff")


def test_with_nobody_signed_in_the_caller_hears_all_experts_are_busy(
        queued: dict[str, str], asterisk: Env, registry: Registry, e2e_env: Env) -> None:
    result = dial(asterisk, DEMO_EMPTY, "0")
    assert result.ok, (result.doc, result.stderr)
    assert is_subsequence(["main_menu", "staff_offer", "staff_connecting", f"(queue) {QUEUE}",
                           "staff_busy"], result.prompts), result.prompts
    assert call_row(registry, result.call_id) == (["staff"], "handoff")
