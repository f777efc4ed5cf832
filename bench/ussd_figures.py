"""USSD beside voice, per operation: screens, a simulated subscriber's seconds, server CPU.

`python -m bench.ussd_figures` (with HAMTA_DATA_DIR / HAMTA_PEPPER_FILE naming a migrated
registry holding the demo data: `hamta-ivr db upgrade && hamta-ivr db seed-demo`) copies that
registry for each run, runs each operation over USSD (ivr.call.ussd_console) and as a console
voice call with the same steps, and prints docs/performance.md's table. The subscriber is
simulated: 2 s of network round trip a screen, reading 15 characters a second, typing 0.4 s a
character and 0.5 s to send. CPU is the process's for the whole session (production argon2
costs), median of `--runs`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ivr.app import Ivr
from ivr.call.api import Call
from ivr.call.console import ConsoleCall, scripted_keys
from ivr.call.ussd_console import ConsoleUssdCall, scripted_replies
from ivr.config import data_dir
from ivr.registry import demo
from ivr.registry.service import Registry

ROUND_TRIP, READ_PER_CHAR, TYPE_PER_CHAR, SEND = 2.0, 1 / 15, 0.4, 0.5

S, P, B, C = demo.DEMO_SELLER, demo.DEMO_SELLER_PIN, demo.DEMO_BUYER, demo.DEMO_CODE
PHONE = demo.DEMO_PHONE
OPERATIONS = {  # name: (USSD replies, voice keys, caller)
    "IMEI inquiry": (f"1 {PHONE}", f"1 {PHONE}", B),
    "activation": (f"2 {PHONE} {C} 1", f"2 {PHONE} {C} 1 2", B),
    "direct transfer": (f"3 1 {P} 1 {C} {B} 1", f"3 1 {P}# 1 {C} {B} 1 2", S),
    "a code for an indirect sale": (f"4 1 {P} 2", f"4 1 {P}# 2 1 2", S),
    "my devices": (f"5 1 1 {P}", f"5 1 1 {P}#", S),
}


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def subscriber_seconds(transcript: list[str]) -> tuple[int, float]:
    """(screens, the simulated subscriber's seconds) of a USSD session's transcript."""
    shown = [line[6:] for line in transcript if line.startswith(("[CON]", "[END]"))]
    replies = [line.split("] ", 1)[1] for line in transcript if line.startswith("< [")]
    seconds = sum(ROUND_TRIP + len(s) * READ_PER_CHAR for s in shown) + sum(
        len(r) * TYPE_PER_CHAR + SEND for r in replies)
    return len(shown), seconds


async def one(template: Path, call: Call) -> tuple[str, float]:
    """Run `call` on a copy of the registry: (outcome, CPU ms)."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "registry.db"
        shutil.copy(template, db)
        ivr = Ivr(Registry.open(f"sqlite:///{db}"))
        try:
            started = time.process_time()
            result = await ivr.handle(call)
            return result.outcome, (time.process_time() - started) * 1000
        finally:
            ivr.close()


async def measure(template: Path, runs: int) -> list[str]:
    rows = ["| operation | USSD screens | subscriber's seconds (simulated) | CPU ms, USSD | "
            "CPU ms, voice (console) |", "|---|---|---|---|---|"]
    for name, (replies, keys, caller) in OPERATIONS.items():
        ussd_ms, voice_ms = [], []
        screens, seconds = 0, 0.0
        for _ in range(runs):
            session = ConsoleUssdCall(caller_id=caller, caller_trusted=True,
                                      replies=scripted_replies(replies), out=_Null())  # type: ignore[arg-type]
            outcome, ms = await one(template, session)
            ussd_ms.append(ms)
            screens, seconds = subscriber_seconds(session.transcript)
            voice = ConsoleCall(caller_id=caller, caller_trusted=True, keys=scripted_keys(keys),
                                out=_Null())  # type: ignore[arg-type]
            voice_outcome, ms = await one(template, voice)
            voice_ms.append(ms)
        rows.append(f"| {name} ({outcome}; voice {voice_outcome}) | {screens} | {seconds:.1f} s | "
                    f"{statistics.median(ussd_ms):.1f} | {statistics.median(voice_ms):.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    template = data_dir() / "registry.db"
    for row in asyncio.run(measure(template, args.runs)):
        print(row)


if __name__ == "__main__":
    main()
