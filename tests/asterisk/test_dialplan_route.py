"""The dialplan's route into the IVR is defined once (ivr/asterisk/dialplan.py): the rendered
extensions.conf and doctor's AMI check both read it, so changing it there changes both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr import doctor
from ivr.asterisk import config, dialplan
from ivr.config import AgiAddress

ROOT = Path(__file__).resolve().parents[2]
AGI = AgiAddress("127.0.0.1", 4573)


def _config(base: Path, ami_port: int = 5038) -> config.AsteriskConfig:
    return config.AsteriskConfig(base=base, sounds=base / "sounds", agi=AGI, ami_port=ami_port,
                                 ami_secret="s3cret", sip_bind="127.0.0.1", sip_port=5060,
                                 rtp_range=(10000, 10200), classic_agi="/bin/true")


def test_the_template_names_the_route_only_through_its_placeholders() -> None:
    template = (ROOT / "asterisk-conf" / "extensions.conf").read_text()
    code = [line for line in template.splitlines() if not line.lstrip().startswith(";")]
    assert not [line for line in code if "7777" in line or "7778" in line]
    assert "[@IVR_CONTEXT@]" in code and "[@TRUSTED_CONTEXT@]" in code


def test_changing_the_route_changes_the_render_and_the_doctor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialplan, "IVR_EXTENSION", "4242")
    monkeypatch.setattr(dialplan, "IVR_CONTEXT", "ivr-elsewhere")
    rendered = (config.render(_config(tmp_path), tmp_path / "etc") / "extensions.conf").read_text()
    assert "[ivr-elsewhere]\nexten => 4242,1," in rendered
    assert "Goto(ivr-elsewhere,4242,vouched)" in rendered
    assert "exten => _4242*09XXXXXXXXX,1,Set(CALLERID(all)=${EXTEN:5} <${EXTEN:5}>)" in rendered
    code = [line for line in rendered.splitlines() if not line.lstrip().startswith(";")]
    assert not [line for line in code if "7777" in line]  # the old route: comments only

    asked: list[str] = []

    async def ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        while True:
            action = {}
            while line := (await reader.readline()).decode().rstrip("\r\n"):
                key, _, value = line.partition(":")
                action[key.strip()] = value.strip()
            if not action:
                break
            asked.append(f"{action.get('Action')} {action.get('Extension')}@"
                         f"{action.get('Context')}")
            writer.write(f"Response: {'Success' if action['Action'] == 'Login' else 'Error'}\r\n"
                         f"ActionID: {action.get('ActionID', '')}\r\nMessage: no such context"
                         "\r\n\r\n".encode())
            await writer.drain()
        writer.close()

    async def check() -> doctor.Result:
        server = await asyncio.start_server(ami, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await doctor.check_ami(_config(tmp_path, port), AGI)
        finally:
            server.close()

    result = asyncio.run(check())
    assert "ShowDialPlan 4242@ivr-elsewhere" in asked
    assert result.status == doctor.FAIL and "4242@ivr-elsewhere is not loaded" in result.problem
