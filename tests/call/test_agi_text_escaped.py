"""Text from the AGI peer (the unique id, the channel name, a reply's message) reaches the log and
`hamta-ivr calls` only escaped (issue 17): a hostile peer cannot forge a log line with a carriage
return or a newline, colour or move the terminal with an escape sequence, or reverse the text
with a bidi override. Old call-log rows may hold raw text: `calls` escapes what it prints."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from ivr.call.agi_call import AgiCall
from ivr.call.agi_protocol import printable
from ivr.registry import demo

# a carriage return and a vertical tab that start a forged line (a newline cannot come: the AGI
# environment is read line by line), an ANSI colour (ESC [), a C1 CSI, DEL, a NUL; in the
# channel a right-to-left override, an isolate and NEL
HOSTILE_ID = "1700000000.1\r2026-01-01 INFO ivr: admin logged in\x1b[31m\x9b2J\x7f\x00\x0b"
HOSTILE_CHANNEL = f"PJSIP/{demo.DEMO_SELLER}-0001\u202egnp.exe\u2066x\u2069\x85"
RAW = [chr(c) for c in (*range(0x20), *range(0x7f, 0xa0))] + [
    "\u061c", "\u200e", "\u200f", "\u2028", "\u2029", *map(chr, range(0x202a, 0x202f)),
    *map(chr, range(0x2066, 0x206a))]


def raw_in(text: str) -> list[str]:
    """The control and bidi characters in `text`, but the newlines that end log lines."""
    return sorted({c for c in text.replace("\n", "") if c in RAW})


def test_printable_escapes_controls_and_bidi_only() -> None:
    assert printable("a\r\nb\x1b[0m\x7f\x9b\u202e\u2066") == \
        "a\\r\\nb\\x1b[0m\\x7f\\x9b\\u202e\\u2066"
    # Persian text and its zero-width non-joiner stay as they are; escaping twice changes nothing
    assert printable("می‌خواهم PJSIP/trunk-0001") == "می‌خواهم PJSIP/trunk-0001"
    assert printable(printable(HOSTILE_ID)) == printable(HOSTILE_ID)
    assert raw_in(printable(HOSTILE_ID + HOSTILE_CHANNEL)) == []


def test_the_call_takes_the_peer_text_escaped() -> None:
    call = AgiCall.from_env({"agi_uniqueid": HOSTILE_ID, "agi_channel": HOSTILE_CHANNEL},
                            transport=None)  # type: ignore[arg-type]
    assert raw_in(call.call_id + call.asterisk_channel) == []
    assert call.call_id.startswith("1700000000.1\\r2026-01-01 INFO")
    assert "\\x1b[31m" in call.call_id and "\\u202egnp.exe" in call.asterisk_channel


async def test_the_log_lines_of_a_hostile_call(demo_server: Any,
                                               caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every log line of the call (the text log and the JSON call-end line) is one line with no
    control character, and the number in the channel name is masked in both."""
    from ivr.testing import fake_asterisk

    original = fake_asterisk.agi_environment

    def hostile(**kwargs: Any) -> dict[str, str]:
        return {**original(**kwargs), "agi_uniqueid": HOSTILE_ID,
                "agi_channel": HOSTILE_CHANNEL}

    monkeypatch.setattr(fake_asterisk, "agi_environment", hostile)
    caplog.set_level(logging.INFO)
    async with demo_server() as s:
        await s.asterisk.call(f"1 {demo.DEMO_PHONE}", caller_id=None)
        stored = s.registry.call_log.calls()[0].call_id
    messages = [r.getMessage() for r in caplog.records]
    assert any("admin logged in" in m for m in messages)  # the id is there, escaped
    for message in messages:
        assert raw_in(message) == [] and "\n" not in message, repr(message)
        assert demo.DEMO_SELLER not in message, message
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ivr.calls"]
    assert line["call_id"] == printable(HOSTILE_ID)
    assert raw_in(stored) == []


def test_calls_prints_old_raw_rows_escaped(sqlite_registry_factory: Any,
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A row written before the entry escaped anything still prints as one clean line, in the
    table and in --json (JSON escapes, so the data survives a round trip)."""
    from ivr.cli import call as cli

    registry = sqlite_registry_factory()
    registry.call_log.started(HOSTILE_ID, None, HOSTILE_CHANNEL, datetime.now(UTC))
    monkeypatch.setattr(cli, "open_registry", lambda args: registry)
    assert cli.list_calls(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert raw_in(out) == [] and len(out.splitlines()) == 1, repr(out)
    assert printable(HOSTILE_ID) in out and printable(HOSTILE_CHANNEL)[:30] in out
    assert cli.list_calls(argparse.Namespace(json=True)) == 0
    out = capsys.readouterr().out
    assert raw_in(out) == [], repr(out)
    assert json.loads(out)[0]["call_id"] == HOSTILE_ID[:64]
