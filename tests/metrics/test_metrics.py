"""The metrics move when calls are made (ivr.metrics), every call's end is one JSON line with no
number or secret in it, and the endpoint answers /metrics, /healthz and /readyz."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from ivr import metrics
from ivr.call import agi_protocol as agi
from ivr.call.agi_call import AgiCall
from ivr.call.api import Sound
from ivr.config import ConfigError, Settings
from ivr.doctor import http_get
from ivr.registry import demo
from ivr.registry.types import Origin, PasswordStatus
from ivr.testing.fake_asterisk import Pacing

NUMBERS = (demo.DEMO_SELLER, demo.DEMO_SELLER[1:], "+98" + demo.DEMO_SELLER[1:],
           demo.DEMO_BUYER, demo.DEMO_BUYER[1:])


def v(name: str, **labels: str) -> float:
    return metrics.value(name, labels)


def _count(name: str, **labels: str) -> float:
    return v(f"{name}_count", **labels)


def call_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "ivr.calls"]


async def test_a_call_moves_the_metrics(demo_server: Any) -> None:
    before = {
        "inquiry": v("hamta_calls_total", outcome="inquiry"),
        "plain": _count("hamta_step_seconds", kind="plain"),
        "started": _count("hamta_registry_seconds", question="call_started"),
        "inquire": _count("hamta_registry_seconds", question="inquire"),
    }
    async with demo_server() as s:
        result = await s.asterisk.call(f"1 {demo.DEMO_PHONE}", caller_id=demo.DEMO_BUYER)
        assert result.result == "done"
        assert v("hamta_calls_in_progress") == 0
    assert v("hamta_calls_total", outcome="inquiry") == before["inquiry"] + 1
    # every command after the first reply is a step; the first one counts from the handshake
    assert _count("hamta_step_seconds", kind="plain") - before["plain"] == len(result.commands)
    assert _count("hamta_registry_seconds", question="call_started") == before["started"] + 1
    assert _count("hamta_registry_seconds", question="inquire") == before["inquire"] + 1
    assert v("hamta_registry_queue", pool="database") == 0
    assert v("hamta_registry_queue", pool="hashing") == 0


async def test_calls_in_progress_while_a_call_runs(demo_server: Any) -> None:
    async with demo_server() as s:
        held = asyncio.create_task(s.asterisk.call("", caller_id=demo.DEMO_SELLER,
                                                   pacing=Pacing(silence=0.5)))
        for _ in range(200):
            if s.server.in_progress:
                break
            await asyncio.sleep(0.01)
        assert v("hamta_calls_in_progress") == 1
        await held
    assert v("hamta_calls_in_progress") == 0


async def test_a_sign_in_step_is_counted_apart_and_the_line_has_no_secret(
        demo_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.calls")
    hashing = _count("hamta_step_seconds", kind="hashing")
    sign_ins = _count("hamta_registry_seconds", question="sign_in")
    async with demo_server() as s:
        result = await s.asterisk.call(f"5 1 1 {demo.DEMO_SELLER_PIN}# h",
                                       caller_id=demo.DEMO_SELLER)
    assert _count("hamta_registry_seconds", question="sign_in") == sign_ins + 1
    assert _count("hamta_step_seconds", kind="hashing") == hashing + 1
    [line] = call_lines(caplog)
    assert line["call_id"] == result.env["agi_uniqueid"]
    assert line["event"] == "call_end" and line["caller"] == "present"
    assert line["channel"] == result.env["agi_channel"]
    assert line["path"] == ["my_devices:completed"] == [line["outcome"]]
    assert line["server"].startswith("127.0.0.1:") and line["commands"] > 5
    assert 0 < line["registry_seconds"] <= line["seconds"]
    raw = next(r.getMessage() for r in caplog.records if r.name == "ivr.calls")
    without_id = raw.replace(line["call_id"], "")
    for secret in (*NUMBERS, demo.DEMO_SELLER_PIN, demo.DEMO_PHONE):
        assert secret not in without_id, secret


async def test_a_withheld_caller_and_a_number_in_the_channel_name(
        demo_server: Any, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel named after its endpoint's number (PJSIP/09121111111-00000001) is masked."""
    from ivr.testing import fake_asterisk

    original = fake_asterisk.agi_environment

    def named(**kwargs: Any) -> dict[str, str]:
        return {**original(**kwargs), "agi_channel": f"PJSIP/{demo.DEMO_SELLER}-00000001"}

    monkeypatch.setattr(fake_asterisk, "agi_environment", named)
    caplog.set_level(logging.INFO, logger="ivr.calls")
    async with demo_server() as s:
        await s.asterisk.call(f"1 {demo.DEMO_PHONE}", caller_id=None)
    [line] = call_lines(caplog)
    assert line["caller"] == "withheld" and line["channel"] == "PJSIP/…-00000001"
    assert line["outcome"].startswith("inquiry:")


async def test_busy_callers_are_counted(demo_server: Any,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.calls")
    busy = v("hamta_calls_total", outcome="busy")
    plain = v("hamta_calls_turned_away_total", overflow="no")
    overflow = v("hamta_calls_turned_away_total", overflow="yes")
    async with demo_server(max_calls=1) as s:
        held = asyncio.create_task(s.asterisk.call("", caller_id=demo.DEMO_SELLER,
                                                   pacing=Pacing(silence=1.0)))
        for _ in range(300):
            if s.server.in_progress:
                break
            await asyncio.sleep(0.01)
        assert (await s.server.readiness()) == "at --max-calls (1 calls in progress)"
        await s.asterisk.call("1", caller_id=demo.DEMO_BUYER)
        await s.asterisk.call("1", caller_id=demo.DEMO_BUYER, script="hamta?overflow=yes")
        await held
    assert v("hamta_calls_total", outcome="busy") == busy + 2
    assert v("hamta_calls_turned_away_total", overflow="no") == plain + 1
    assert v("hamta_calls_turned_away_total", overflow="yes") == overflow + 1
    outcomes = sorted(line["outcome"] for line in call_lines(caplog))
    assert outcomes.count("busy") == 2 and len(outcomes) == 3


def test_wrong_pins_and_a_lockout_are_counted(sqlite_registry_factory: Any) -> None:
    registry = sqlite_registry_factory()
    demo.seed_demo(registry)
    failures, locks = v("hamta_sign_in_failures_total"), v("hamta_lockouts_total", secret="pin")
    origin = Origin(caller=demo.DEMO_BUYER, call_id="c1")
    answers = [registry.kartabl.sign_in(demo.DEMO_SELLER, "9999", origin).status
               for _ in range(4)]
    assert answers == [PasswordStatus.WRONG, PasswordStatus.WRONG, PasswordStatus.LOCKED,
                       PasswordStatus.LOCKED]
    assert v("hamta_sign_in_failures_total") == failures + 3  # the 4th was refused unverified
    assert v("hamta_lockouts_total", secret="pin") == locks + 1
    assert registry.kartabl.alarm.failed == 3


class _MissingFile:
    """STREAM FILE answers -1 (a missing file); the channel is still there."""

    async def command(self, line: str) -> agi.AgiReply:
        if line.startswith("STREAM FILE"):
            return agi.parse_reply("200 result=-1 endpos=0")
        return agi.parse_reply("200 result=6")


async def test_a_prompt_asterisk_cannot_play_is_counted() -> None:
    missing = v("hamta_prompts_missing_total")
    call = AgiCall(call_id="m1", caller_id=None, transport=_MissingFile())
    assert await call.stream(Sound("hamta/nothing", "nothing"), "") is None
    assert v("hamta_prompts_missing_total") == missing + 1


async def test_the_endpoint_answers() -> None:
    reason: list[str | None] = [None]

    async def ready() -> str | None:
        return reason[0]

    server = metrics.MetricsServer("127.0.0.1", 0, ready)
    await server.start()
    try:
        status, body = await http_get("127.0.0.1", server.port, "/metrics")
        assert status == 200 and "hamta_calls_in_progress" in body
        assert "# TYPE hamta_step_seconds histogram" in body
        assert await http_get("127.0.0.1", server.port, "/healthz") == (200, "ok")
        assert await http_get("127.0.0.1", server.port, "/readyz") == (200, "ready")
        reason[0] = "the registry did not answer within 2s"
        assert await http_get("127.0.0.1", server.port, "/readyz") == (
            503, "not ready: the registry did not answer within 2s")
        assert (await http_get("127.0.0.1", server.port, "/nothing"))[0] == 404
    finally:
        await server.stop()


async def test_readiness_asks_the_registry(demo_server: Any) -> None:
    async def slow() -> None:
        await asyncio.sleep(5)

    async def broken() -> None:
        raise OSError("gone")

    async with demo_server() as s:
        from ivr.registry.aio import AsyncRegistry

        desk = AsyncRegistry(s.registry)
        try:
            assert await s.server.readiness(desk.ping) is None
        finally:
            desk.close()
        assert await s.server.readiness(slow, timeout=0.05) == \
            "the registry did not answer within 0.05s"
        assert await s.server.readiness(broken) == "the registry cannot be read (OSError)"
    assert await s.server.readiness() == "not accepting calls (starting or stopping)"


@pytest.mark.parametrize(("given", "env", "expected"), [
    (None, None, ("127.0.0.1", 9573)),
    ("off", None, None),
    (None, "0.0.0.0:9100", ("0.0.0.0", 9100)),
    ("9200", "off", ("127.0.0.1", 9200)),
    ("[::1]:9300", None, ("::1", 9300)),
])
def test_the_metrics_address(monkeypatch: pytest.MonkeyPatch, given: str | None,
                             env: str | None, expected: tuple[str, int] | None) -> None:
    monkeypatch.setenv("HAMTA_CONFIG", "")
    if env is None:
        monkeypatch.delenv("HAMTA_METRICS", raising=False)
    else:
        monkeypatch.setenv("HAMTA_METRICS", env)
    assert Settings.load(flags={"metrics": given}).metrics == expected


def test_a_bad_metrics_address_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAMTA_CONFIG", "")
    monkeypatch.setenv("HAMTA_METRICS", "localhost:http")
    with pytest.raises(ConfigError, match=r"HAMTA_METRICS.*HOST:PORT"):
        Settings.load()
