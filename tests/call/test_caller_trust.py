"""Issue 17: a caller ID counts only where the network vouches for it. The dialplan says so with
the AGI argument `caller=network` (asterisk-conf/extensions.conf); nothing else a call carries can
make it vouched. The fake Asterisk calls as a subscriber's own SIM by default, the console caller
with --from too; --untrusted (and a withheld caller ID) never is."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ivr.call.agi_call import TRUST_ARGUMENT, AgiCall, caller_vouched
from ivr.call.api import Call
from ivr.call.console import ConsoleCall
from ivr.call.fastagi import FastAgiServer, ServerSettings
from ivr.testing.fake_asterisk import FakeAsterisk, agi_environment


@pytest.mark.parametrize("env, vouched", [
    ({"agi_arg_1": "caller=network"}, True),
    ({"agi_arg_1": "trace-7", "agi_arg_2": "caller=network"}, True),  # the bench's trace name
    ({"agi_arg_3": " caller=network "}, True),
    ({}, False),
    ({"agi_arg_1": "caller=none"}, False),
    ({"agi_arg_1": "caller="}, False),  # an unset HAMTA_CALLER_TRUST
    ({"agi_arg_1": "caller=networks"}, False),
    ({"agi_arg_1": "CALLER=NETWORK"}, False),
    ({"agi_arg_1": "caller=none,caller=network"}, False),
    # not an AGI argument: what a caller or a URL can carry proves nothing
    ({"agi_callerid": "caller=network", "agi_calleridname": "caller=network"}, False),
    ({"agi_network_script": "hamta?caller=network",
      "agi_request": "agi://127.0.0.1/hamta?caller=network"}, False),
    ({"agi_dnid": "caller=network", "agi_rdnis": "caller=network"}, False),
])
def test_only_the_dialplan_argument_vouches(env: dict[str, str], vouched: bool) -> None:
    assert TRUST_ARGUMENT == "caller=network"
    assert caller_vouched(env) is vouched
    base = agi_environment(caller_id="09121111111", trusted=False)
    call = AgiCall.from_env({**base, **env}, transport=None)  # type: ignore[arg-type]
    assert call.caller_trusted is vouched


def test_the_fake_asterisk_environment_says_what_the_dialplan_says() -> None:
    own_sim = agi_environment(caller_id="09121111111")
    assert own_sim["agi_arg_1"] == "caller=network" and list(own_sim)[-1] == "agi_arg_1"
    softphone = agi_environment(caller_id="09121111111", trusted=False)
    assert softphone["agi_arg_1"] == "caller=none"
    assert agi_environment(caller_id=None)["agi_arg_1"] == "caller=none"
    assert agi_environment(caller_id=None, trusted=True)["agi_arg_1"] == "caller=network"
    # the bench's trace name stays agi_arg_1 (bench.floor); the trust argument follows it
    traced = agi_environment(caller_id="09121111111", extra={"agi_arg_1": "inquiry"})
    assert traced["agi_arg_1"] == "inquiry" and traced["agi_arg_2"] == "caller=network"


async def test_calls_through_the_fake_asterisk_arrive_vouched_or_not(tmp_path: Path) -> None:
    seen: list[tuple[str | None, bool]] = []

    async def flow(call: Call) -> str:
        seen.append((call.caller_id, call.caller_trusted))
        return "recorded"

    server = FastAgiServer(ServerSettings(port=0, sounds=tmp_path, spool=tmp_path), flow)
    await server.start()
    try:
        asterisk = FakeAsterisk("127.0.0.1", server.port)
        await asterisk.call(caller_id="09121111111")
        await asterisk.call(caller_id="09121111111", trusted=False)
        await asterisk.call(caller_id=None)
    finally:
        await server.stop()
    assert seen == [("09121111111", True), ("09121111111", False), (None, False)]


class _RecordingIvr:
    calls: ClassVar[list[Call]] = []

    @classmethod
    def open(cls, db: str | None = None, **_: Any) -> _RecordingIvr:
        return cls()

    async def __aenter__(self) -> _RecordingIvr:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def handle(self, call: Call) -> str:
        self.calls.append(call)
        return "recorded"


@pytest.mark.parametrize("argv, caller, vouched", [
    (["--from", "09121111111"], "09121111111", True),
    (["--from", "09121111111", "--untrusted"], "09121111111", False),
    ([], None, False),
    (["--untrusted"], None, False),
])
def test_the_console_caller_from_a_sim_or_untrusted(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str], caller: str | None, vouched: bool) -> None:
    from ivr.cli import call as call_cmd
    from ivr.cli import main

    _RecordingIvr.calls = []
    monkeypatch.setattr(call_cmd, "Ivr", _RecordingIvr)
    assert main(["call", "--keys", "", *argv]) == 0
    [call] = _RecordingIvr.calls
    assert isinstance(call, ConsoleCall)
    assert (call.caller_id, call.caller_trusted) == (caller, vouched)
    assert "[call ended: recorded]" in capsys.readouterr().out


def test_a_withheld_console_call_is_never_vouched() -> None:
    assert not ConsoleCall(caller_id=None, caller_trusted=True).caller_trusted
    assert ConsoleCall(caller_id="09121111111", caller_trusted=True).caller_trusted
    assert not ConsoleCall(caller_id="09121111111").caller_trusted


def test_dial_enters_the_trusted_context_unless_untrusted(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """`hamta-ivr dial` originates Local/<ext>@hamta-ivr-trusted (a subscriber's mobile call);
    --untrusted: Local/<ext>@hamta-ivr (a softphone's or VoIP trunk's call)."""
    from ivr.asterisk import ami, config
    from ivr.cli import main

    sent: list[dict[str, str]] = []

    class FakeManager:
        def register_event(self, name: str, handler: Any) -> None:
            self.handler = handler

        def send_action(self, action: dict[str, str], **_: Any) -> asyncio.Future[Any]:
            sent.append(action)
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(ami.Message({"Response": "Error", "Message": "test"}))
            return done

    class Session:
        async def __aenter__(self) -> FakeManager:
            return FakeManager()

        async def __aexit__(self, *_: object) -> None:
            return None

    monkeypatch.setattr(ami, "ami_session", lambda cfg, **_: Session())
    monkeypatch.setattr(config, "load", lambda **_: object())
    monkeypatch.setattr(config, "spool_dir", lambda: Path("/nonexistent"))
    assert main(["dial", "--from", "09121111111", "--json"]) == 1
    assert main(["dial", "--from", "09121111111", "--untrusted", "--ext", "7778", "--json"]) == 1
    assert [a["Channel"] for a in sent] == ["Local/7777@hamta-ivr-trusted/n",
                                            "Local/7778@hamta-ivr/n"]
    assert '"trusted": true' in capsys.readouterr().out


@pytest.mark.parametrize(("raw", "language"), [
    ("fa", "fa"), ("en_US", "en_US"), (None, "fa"), ("", "fa"), ("../../etc", "fa"),
    ("fa/../../x", "fa"), ("/tmp", "fa"), ("fa\r\n", "fa")])
def test_the_channel_language_never_becomes_a_path(raw, language):
    from ivr.call.agi_call import spoken_language

    assert spoken_language(raw) == language
