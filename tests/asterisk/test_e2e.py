"""End-to-end calls on a real Asterisk: every main-menu option through `hamta-ivr dial` (AMI,
Local channels, DTMF), a SIP softphone (SIPp, RFC 4733 DTMF) completing a direct transfer, one
call through classic AGI, hang-ups, and what the caller hears when the FastAGI server is down,
dies mid-call or is asked to stop.

The prompts play in full (the real Persian audio; the welcome and main menu take 14 s), so
the calls of the first part run at the same time (`batch`); each test then checks its call: the
prompts played in order, the registry afterwards, the call log. Every test fails if Asterisk
logged a missing sound file.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ivr.registry.demo import (
    DEMO_EMPTY,
    DEMO_EMPTY_PIN,
    DEMO_PHONE,
    DEMO_SELLER,
    DEMO_UNREGISTERED,
)
from ivr.registry.msisdn import normalize
from ivr.registry.service import Registry
from ivr.registry.types import CallRecord
from tests.asterisk.conftest import (
    CLI,
    AgiServer,
    Dialed,
    Env,
    dial,
    free_port,
    is_subsequence,
    missing_sounds,
    softphone_media_ports,
)

pytestmark = pytest.mark.asterisk

SIPP_SCENARIO = Path(__file__).resolve().parents[2] / "asterisk-conf" / "sipp" / \
    "direct-transfer.xml"


def keys_for(cast: dict, name: str) -> str:
    pin = cast["pin"]
    imei, _, _, _, code = cast["devices"].get(name, (None,) * 5)
    return {
        # (each of these kartabls holds one device: said, then `1` goes on with it)
        "inquiry": f"1 {DEMO_PHONE} h",
        "activate": f"2 {imei} {code} 1 2 h",  # `2`: the reference number was heard, go on
        "transfer": f"3 1 {pin}# 1 {code} {cast['b3']} 1 2 h",
        "code": f"4 1 {pin}# 1 2 h",  # the device has no code yet: nothing to confirm
        "my_devices": f"5 1 1 {pin}# h",
        "change": f"5 2 1 {pin}# 1 13243546 13243546 h",
        "hangup": f"3 1 {pin}# 1 {code} 0918 h",
        "classic": f"1 {DEMO_UNREGISTERED} h",
        "barge_in": f"5 1 1 {DEMO_EMPTY_PIN}# h",
    }[name]


CALLERS = {"inquiry": "b1", "activate": "b2", "transfer": "s3", "code": "s4", "my_devices": "s5",
           "change": "s6", "hangup": "s7", "classic": "b8", "barge_in": "empty"}


def run_sipp(env: Env) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sipp", "-sf", str(SIPP_SCENARIO), "-s", f"7777*{DEMO_SELLER}",
         "-key", "account", "staff1", "-au", "staff1", "-ap", env.sip_password("staff1"),
         "-i", "127.0.0.1", "-p", str(free_port(socket.SOCK_DGRAM)),
         "-mp", str(softphone_media_ports()),
         "-m", "1", "-nostdin", "-timeout", "150", "-timeout_error",
         f"127.0.0.1:{env.sip_port}"],
        capture_output=True, text=True, timeout=200, cwd=env.data,
    )


@pytest.fixture(scope="session")
def batch(agi_server: AgiServer, cast: dict, registry: Registry) -> dict:
    """All independent calls at once: nine `dial`s and one SIPp softphone call."""
    env = agi_server.env
    before = {name: registry.portal.device_info(dev[0]) for name, dev in cast["devices"].items()}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = {
            name: pool.submit(dial, env, cast.get(CALLERS[name], DEMO_EMPTY),
                              keys_for(cast, name), ext="7778" if name == "classic" else "7777",
                              barge_in=name == "barge_in")
            for name in CALLERS
        }
        futures["sipp"] = pool.submit(run_sipp, env)
        results = {name: f.result() for name, f in futures.items()}
    results["seconds"] = round(time.monotonic() - started, 1)
    results["before"] = before
    return results


@pytest.fixture(autouse=True)
def no_missing_sounds(request: pytest.FixtureRequest):
    yield
    if "e2e_env" in request.fixturenames:
        env: Env = request.getfixturevalue("e2e_env")
        missing = missing_sounds(env)
        assert not missing, "Asterisk could not find sound files:\n" + "\n".join(missing)


def call_log(registry: Registry, call_id: str) -> CallRecord:
    rows = [row for row in registry.call_log.calls() if row.call_id == call_id]
    assert rows, f"no call log entry for {call_id}"
    return rows[0]


def said(digits: str, *groups: int) -> list[str]:
    """How `dial` reports a digit string read in groups (a SAY DIGITS per group)."""
    parts, at = [], 0
    for size in groups:
        parts.append(f"(digits) {' '.join(digits[at:at + size])}")
        at += size
    assert at == len(digits), (digits, groups)
    return parts


def reference_read(result: Dialed) -> None:
    """The reference number: ten digits in groups of 3, 3 and 4, then is_end."""
    start = result.prompts.index("reference_is")
    read = result.prompts[start + 1:start + 5]
    assert [len(part.split()) - 1 for part in read[:3]] == [3, 3, 4], result.prompts
    assert all(part.startswith("(digits) ") for part in read[:3]), result.prompts
    assert read[3] == "is_end", result.prompts


def check(result: Dialed, expected: list[str]) -> None:
    assert result.ok, (result.doc, result.stderr)
    assert not result.doc["unused_keys"], result.doc
    assert is_subsequence(["welcome", "main_menu", *expected], result.prompts), result.prompts
    assert "service_unavailable" not in result.prompts


# --- every main-menu option through `hamta-ivr dial` ------------------------------------------
def test_inquiry(batch: dict, registry: Registry, e2e_env: Env) -> None:
    result = batch["inquiry"]
    check(result, ["enter_imei", "imei_registered", "device/samsung-galaxy-a54",
                   "main_menu_again"])
    assert call_log(registry, result.call_id).outcome == "inquiry:registered"
    # the registry agrees, as the admin CLI shows it
    shown = e2e_env.run("device", "show", DEMO_PHONE, "--json").stdout
    assert '"status": "registered"' in shown


def test_activate(batch: dict, registry: Registry, cast: dict) -> None:
    result = batch["activate"]
    imei = cast["devices"]["activate"][0]
    check(result, ["enter_imei", "enter_activation_code", "activate_confirm",
                   *said(imei, 5, 5, 5), "activate_confirm_to", *said(cast["b2"], 4, 3, 4),
                   "activate_confirm_end", "confirm_or_cancel", "activated",
                   "change_code_advice", "reference_is", "is_end", "code_repeat_or_finish",
                   "main_menu_again"])
    reference_read(result)
    assert registry.portal.device_info(imei).owner == normalize(cast["b2"])
    assert call_log(registry, result.call_id).outcome == "activate:completed"


def test_transfer(batch: dict, registry: Registry, cast: dict) -> None:
    result = batch["transfer"]
    imei = cast["devices"]["transfer"][0]
    check(result, ["whose_devices", "enter_password", "device_number",
                   "device/xiaomi-redmi-note-12", "choose_one_device", "enter_activation_code",
                   "enter_buyer_number", "transfer_confirm", *said(imei, 5, 5, 5),
                   "transfer_confirm_to", *said(cast["b3"], 4, 3, 4), "transfer_confirm_end",
                   "confirm_or_cancel", "transferred", "reference_is", "is_end",
                   "code_repeat_or_finish", "main_menu_again"])
    assert "choose_device" not in result.prompts  # one device: `1` goes on, no list question
    reference_read(result)
    info = registry.portal.device_info(imei)
    assert info.owner == normalize(cast["b3"])
    assert info.version == batch["before"]["transfer"].version + 1
    assert [t for t in registry.portal.transfers(imei=imei)], "no transfer recorded"
    assert call_log(registry, result.call_id).outcome == "transfer:completed"


def test_activation_code(batch: dict, registry: Registry, cast: dict, e2e_env: Env) -> None:
    result = batch["code"]
    imei = cast["devices"]["code"][0]
    check(result, ["enter_password", "device_number", "device/nokia-c32", "choose_one_device",
                   "code_generated",
                   "code_is", "(secret)", "is_end", "code_repeat_or_finish", "main_menu_again"])
    # one device, without a code: no list question, no 'the current code stops working'
    assert "choose_device" not in result.prompts, result.prompts
    assert "code_replace_confirm" not in result.prompts, result.prompts
    assert registry.portal.device_info(imei).has_activation_code is True
    assert call_log(registry, result.call_id).outcome == "activation_code:completed"
    # the code was said from a temporary file, deleted after; never in an AGI command
    assert not list((e2e_env.data / "spool").glob("secret-*"))
    said = result.prompts.index("code_is")
    assert result.prompts[said + 1] == "(secret)", result.prompts


def test_my_devices(batch: dict, registry: Registry) -> None:
    result = batch["my_devices"]
    check(result, ["menu_more", "whose_devices", "enter_password", "device_count", "num/2",
                   "device_count_end", "device_number", "num/1", "device/samsung-galaxy-a54",
                   "device_number", "num/2", "device/apple-iphone-13", "list_end",
                   "main_menu_again"])
    assert call_log(registry, result.call_id).outcome == "my_devices:completed"


def test_change_code(batch: dict, registry: Registry, cast: dict) -> None:
    result = batch["change"]
    imei, owner, *_ = cast["devices"]["change"]
    check(result, ["menu_more", "enter_password", "device_number", "device/honor-x5",
                   "choose_one_device", "enter_new_code", "repeat_new_code", "code_changed",
                   "main_menu_again"])
    assert "choose_device" not in result.prompts, result.prompts
    assert call_log(registry, result.call_id).outcome == "change_code:completed"
    signed = registry.kartabl.sign_in(owner, cast["pin"])
    assert registry.devices.check_code(imei, "13243546", owner=signed.owner).ok


# --- hang-ups, classic AGI, a SIP softphone ------------------------------------------------------
def test_caller_hangs_up_mid_transfer(batch: dict, registry: Registry, cast: dict) -> None:
    result = batch["hangup"]
    assert result.ok and result.doc["ended"] == "we_hung_up", result.doc
    assert result.prompts[-1] == "enter_buyer_number", result.prompts
    imei = cast["devices"]["hangup"][0]
    assert registry.portal.device_info(imei) == batch["before"]["hangup"], "the registry changed"
    assert not registry.portal.transfers(imei=imei)
    assert call_log(registry, result.call_id).outcome == "hung_up"


def test_classic_agi(batch: dict, registry: Registry, e2e_env: Env) -> None:
    result = batch["classic"]
    check(result, ["enter_imei", "imei_unregistered", "main_menu_again"])
    row = call_log(registry, result.call_id)
    assert row.channel == "agi" and row.outcome == "inquiry:unregistered"
    # pyst2 echoes every command and result line to stderr (Asterisk's console log): masked
    console = (e2e_env.log / "console.log").read_text(errors="replace")
    assert "RESULT_LINE: *** result=" in console
    assert "RESULT_LINE: 200" not in console and DEMO_UNREGISTERED not in console


def test_a_sip_softphone_posing_as_the_seller_moves_nothing(batch: dict,
                                                            registry: Registry) -> None:
    """Issue 17 on the wire: the seller's number and PIN from a staff softphone (7777*0912…,
    never vouched for) reach the device, and the IVR then wants the seller's SIM."""
    done = batch["sipp"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    info = registry.portal.device_info(DEMO_PHONE)
    assert info.owner == normalize(DEMO_SELLER)
    sip_calls = [r for r in registry.call_log.calls() if r.channel == "fastagi"
                 and r.msisdn == normalize(DEMO_SELLER)]
    assert any(r.outcome == "transfer:refused:needs_sim" for r in sip_calls), sip_calls


def test_barge_in_cuts_prompts_short(batch: dict, registry: Registry) -> None:
    """Keys pressed while a prompt plays answer the question: the main menu is never heard."""
    result = batch["barge_in"]
    assert result.ok, result.doc
    assert result.prompts[:5] == ["welcome", "menu_more", "whose_devices", "enter_password",
                                  "no_devices"], result.prompts
    assert call_log(registry, result.call_id).outcome == "my_devices:no_devices"


def test_calls_ran_together(batch: dict) -> None:
    """The FastAGI server took ten calls at once (each is minutes of real prompts)."""
    assert batch["seconds"] < 400, batch["seconds"]


# --- the FastAGI server away --------------------------------------------------------------------
def test_fastagi_down_caller_hears_unavailable(batch: dict, agi_server: AgiServer,
                                               e2e_env: Env) -> None:
    agi_server.stop()
    try:
        result = dial(e2e_env, "09120000001", "1", timeout=60)
        assert result.returncode == 1 and result.doc["unavailable"], result.doc
        assert result.prompts == ["service_unavailable"], result.prompts
    finally:
        agi_server.start()


def _dial_streaming(env: Env, caller: str, keys: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "dial", "--from", caller, "--keys", keys, "--timeout", "200"],
                            env=env.vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _read_until(proc: subprocess.Popen[str], wanted: str, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.strip() == wanted:
            return
    raise AssertionError(f"the call ended before {wanted!r}: {lines}")


def test_server_dies_mid_call_caller_hears_unavailable(batch: dict, agi_server: AgiServer,
                                                       e2e_env: Env) -> None:
    proc = _dial_streaming(e2e_env, "09120000002", "")
    lines: list[str] = []
    try:
        _read_until(proc, "> main_menu", lines)
        agi_server.stop(signal.SIGKILL)  # Asterisk reports AGISTATUS=SUCCESS for this
        out, _ = proc.communicate(timeout=60)
        lines += out.splitlines()
        assert "> service_unavailable" in lines, lines
        assert proc.returncode == 1
    finally:
        proc.kill()
        agi_server.start()


def test_sigterm_lets_the_running_call_end(batch: dict, agi_server: AgiServer, e2e_env: Env,
                                           registry: Registry) -> None:
    proc = _dial_streaming(e2e_env, "09120000003", f"1 {DEMO_UNREGISTERED} h")
    lines: list[str] = []
    stopped: dict[str, int | None] = {}
    try:
        _read_until(proc, "> welcome", lines)
        stopper = threading.Thread(target=lambda: stopped.update(rc=agi_server.stop()))
        stopper.start()
        out, _ = proc.communicate(timeout=150)
        lines += out.splitlines()
        stopper.join(100)
        assert proc.returncode == 0, lines
        assert "> imei_unregistered" in lines and "> service_unavailable" not in lines, lines
        assert stopped.get("rc") == 0, agi_server.log_text[-2000:]
        # it is gone now: a new call hears the unavailable prompt
        assert dial(e2e_env, "09120000004", "", timeout=60).doc["unavailable"]
    finally:
        proc.kill()
        agi_server.start()


def test_server_at_max_calls_turns_the_next_caller_away(batch: dict, agi_server: AgiServer,
                                                        e2e_env: Env,
                                                        registry: Registry) -> None:
    """`serve --max-calls 1` with a call in progress: the next caller hears `busy` at once (not
    'service unavailable') and leaves no call log row; the call in progress goes on."""
    agi_server.stop()
    limited = AgiServer(e2e_env, options=("--max-calls", "1"), name="serve-max-calls-1")
    held: subprocess.Popen[str] | None = None
    lines: list[str] = []
    try:
        limited.start()
        held = _dial_streaming(e2e_env, "09120000005", "h")  # hangs up at the main menu
        _read_until(held, "> welcome", lines)
        busy = dial(e2e_env, "09120000006", "", timeout=60)
        out, _ = held.communicate(timeout=120)
        lines += out.splitlines()
    finally:
        if held is not None:
            held.kill()
        limited.stop()
        agi_server.start()
    assert busy.ok and not busy.doc["unavailable"], busy.doc
    assert busy.prompts == ["busy"], busy.prompts
    assert busy.doc["seconds"] < 20, busy.doc
    assert held.returncode == 0 and "> main_menu" in lines and "> busy" not in lines, lines
    calls = registry.call_log.calls()
    assert busy.call_id not in {row.call_id for row in calls}
    assert any(row.msisdn == normalize("09120000005") for row in calls)
    assert "turned away (busy)" in limited.log_text


def test_asterisk_status_says_what_runs(asterisk: Env) -> None:
    done = asterisk.run("asterisk", "status")
    assert "running" in done.stdout and "staff1" in done.stdout
    again = asterisk.run("asterisk", "up")  # idempotent
    assert "already running" in again.stdout
