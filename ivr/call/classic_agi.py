"""`hamta-ivr-agi`: the IVR as a classic AGI script (`AGI(hamta-ivr-agi)`), on pyst2.

For a PBX that runs AGI scripts rather than a FastAGI server: Asterisk starts this program per
call with the AGI environment on stdin. The call runs through the same AgiCall and flows as
FastAGI. Each run first sweeps the spool: secret files of a script that is gone (kill -9, a
crash) and any older than the longest prompt (with IDLE_SLACK) are deleted. pyst2 writes every
command and result line to stderr, which Asterisk logs — with the keys a caller pressed — so its
stderr goes through a filter that masks every digit. The settings (HAMTA_DB_URL,
HAMTA_SOUNDS_DIR, …) come from Asterisk's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from pathlib import Path
from typing import TextIO

from asterisk.agi import (
    AGI,
    AGIAppError,
    AGIHangup,
    AGIInvalidCommand,
    AGIUnknownError,
    AGIUsageError,
)

from ivr.call.agi_call import AgiCall, AgiError
from ivr.call.agi_protocol import AgiReply
from ivr.call.agi_spool import sweep_spool
from ivr.call.idle import COMMAND_TIMEOUT, IDLE_SLACK, longest_command

log = logging.getLogger("hamta-ivr-agi")


class MaskedStream:
    """A text stream that replaces every digit with `*` (keys, codes, numbers) before writing."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(re.sub(r"\d", "*", text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()


class PystTransport:
    """Commands through pyst2 (stdin/stdout), in a thread: flows stay on the event loop."""

    def __init__(self, agi: AGI) -> None:
        self.agi = agi

    def _exchange(self, line: str) -> AgiReply:
        try:
            result = self.agi.execute(line)
        except AGIHangup:  # SIGHUP/SIGPIPE/`hangup` in the result
            return AgiReply(0, data="hangup")
        except AGIAppError:  # result=-1
            return AgiReply(200, "-1")
        except AGIUnknownError as exc:  # 511 on a dead channel; 0 when stdin closed
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            return AgiReply(code, message="unknown reply")
        except (AGIInvalidCommand, AGIUsageError) as exc:
            return AgiReply(510, message=str(exc).strip().splitlines()[0] if str(exc) else "")
        except OSError:
            return AgiReply(0, message="stdout closed")
        value, data = result.get("result", ("", ""))
        return AgiReply(200, value, data)

    async def command(self, line: str) -> AgiReply:
        return await asyncio.to_thread(self._exchange, line)


def sweep_leftovers(sounds: Path, spool: Path) -> int:
    """Secret files nobody plays any more: a dead script's, or older than the longest prompt."""
    longest = longest_command(sounds)
    return sweep_spool(spool, COMMAND_TIMEOUT if longest is None else longest + IDLE_SLACK)


async def run_call(agi: AGI) -> object:
    from ivr.app import Ivr
    from ivr.asterisk.config import spool_dir
    from ivr.prompts.layout import sounds_dir

    sounds, spool = sounds_dir(), spool_dir()
    await asyncio.to_thread(sweep_leftovers, sounds, spool)
    ivr = await asyncio.to_thread(Ivr.open, None, workers=2)
    call = AgiCall.from_env(agi.env, PystTransport(agi), channel_name="agi",
                            sounds=sounds, spool=spool)
    async with ivr:
        outcome = await ivr.handle(call)
    with contextlib.suppress(AgiError):  # the caller already gone
        await call.finish()
    return outcome


def main() -> int:
    """Entry point of `hamta-ivr-agi` (Asterisk's AGI())."""
    masked = MaskedStream(sys.stderr)
    logging.basicConfig(level=logging.WARNING, stream=masked,
                        format="hamta-ivr-agi: %(levelname)s %(name)s: %(message)s")
    agi = AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=masked)
    try:
        outcome = asyncio.run(run_call(agi))
    except Exception:
        # no HAMTA_RESULT=done: the dialplan tells the caller the service is unavailable
        log.exception("the call failed")
        return 1
    log.info("call ended: %s", outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
