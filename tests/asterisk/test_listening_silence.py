"""While the IVR waits for a key the line still carries audio, on the real Asterisk (issue 18).

Asterisk sends no RTP during AGI `WAIT FOR DIGIT` (its transmit_silence covers Wait() and
recordings, not AGI), and a silent question lasts 8 s (30 s for an SMS code): a session border
controller or carrier that times out inactive media could drop the caller there. The IVR fills
each wait with a 0 Hz tone (agi.LISTENING_SILENCE). A softphone (SIPp) whose SDP points its
audio at this test's own UDP socket calls and presses nothing: welcome, menu, three silent
waits, goodbye; the test times every RTP packet Asterisk sends it."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.asterisk.conftest import AgiServer
from tests.asterisk.test_caller_trust import answer_and_wait_scenario, softphone_call

pytestmark = pytest.mark.asterisk

CALLER = "09170009201"


def test_a_silent_question_keeps_audio_flowing(agi_server: AgiServer, tmp_path: Path) -> None:
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind(("127.0.0.1", 0))
    media.settimeout(0.5)
    port = media.getsockname()[1]
    scenario = tmp_path / "listen-here.xml"
    scenario.write_text(answer_and_wait_scenario(tmp_path).read_text()
                        .replace("[media_port]", str(port)))
    arrived: list[float] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                media.recv(2048)
            except TimeoutError:
                continue
            arrived.append(time.monotonic())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        call = softphone_call(agi_server.env, scenario, "staff1", f"7777*{CALLER}", timeout=150)
    finally:
        done.set()
        listener.join(5)
        media.close()
    assert call.returncode == 0, call.stdout[-3000:] + call.stderr[-3000:]
    seconds = arrived[-1] - arrived[0]
    # welcome + menu + 3 waits of 8 s: a minute of audio, one packet every 20 ms
    assert seconds > 45 and len(arrived) > seconds * 40, (seconds, len(arrived))
    gaps = [b - a for a, b in itertools.pairwise(arrived)]
    assert max(gaps) < 1.0, f"the line fell silent for {max(gaps):.1f} s"
