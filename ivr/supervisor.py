"""A pre-fork supervisor: N forked processes each run `child(index)`, this one only watches.

SIGTERM/SIGINT to it stop every process (each drains); one that dies is logged and started again,
unless it failed (exit 1, 2) within its first seconds: then so would its next, and all stop.
`hamta-ivr serve --processes N` runs its FastAGI servers under it (ivr.serve.serve_many).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

EARLY_DEATH_SECONDS = 10.0  # a process failing (exit 1, 2) sooner after its start stops serve


def supervise(processes: int, child: Callable[[int], int], what: str) -> int:
    """Fork `processes` children running `child(index)` (1..N) until SIGTERM/SIGINT; restart one
    that dies. The exit code: 0, else 2 when a child failed its start with 2, else 1."""
    children: dict[int, int] = {}  # pid: index
    started: dict[int, float] = {}  # index: when
    state = {"stopping": False, "code": 0}

    def spawn(index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's clean-up
            code = 1
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                code = child(index)
            finally:
                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = index
        started[index] = time.monotonic()

    def stop_all(*_: object) -> None:
        if not state["stopping"]:
            log.info("stopping: %d process(es) drain their calls", len(children))
        state["stopping"] = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGHUP, lambda *_: log.warning(
        "SIGHUP ignored: to reload, restart the server (it drains)"))
    for index in range(1, processes + 1):
        spawn(index)
    log.info("%d %s, pids %s", processes, what, " ".join(map(str, children)))
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, 0)
        if not index:
            continue
        code = os.waitstatus_to_exitcode(status)
        if state["stopping"]:
            if code != 0:
                log.warning("process %d (pid %d) ended with %s", index, pid, _how(code))
                state["code"] = state["code"] or 1
            continue
        log.error("process %d (pid %d) died (%s)", index, pid, _how(code))
        lived = time.monotonic() - started[index]
        if code > 0 and lived < EARLY_DEATH_SECONDS:  # failed at its start: so would its next
            log.error("process %d failed within %gs of its start: stopping the others", index,
                      EARLY_DEATH_SECONDS)
            state["code"] = 2 if code == 2 else 1
            stop_all()
            continue
        if lived < 1.0:
            time.sleep(1.0)  # killed over and over (out of memory?): not a busy loop
        log.info("starting process %d again", index)
        spawn(index)
    return int(state["code"])


def _how(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
