"""The FastAGI server (`hamta-ivr serve`), which Asterisk reaches with
`AGI(agi://HOST:4573/hamta)`, and the event loop it runs on.

Each connection is one call: the AGI environment is read (bounded in time and size: a peer that
stalls or leaves mid-handshake costs nothing), the `hamta` route is checked, and an AgiCall
(ivr.call.agi_call) over a StreamTransport (ivr.call.agi_transport) is handed to `handle`.
The server is our own on asyncio streams and ivr.call.agi_protocol: no AGI library under it.
Traps handled here (see issue 4):
- Load shedding: above `max_calls` calls in progress a new caller hears `busy` at once, the server
  sets HAMTA_RESULT=busy and hangs up, no registry work done (`?overflow=yes` in the AGI URL: only
  HAMTA_RESULT=busy, so the dialplan can try another server). A peer that leaves a command
  unanswered longer than the idle limit (`command_timeout`, which ivr.call.idle.idle_limit derives
  from the built audio) is dropped as gone.
- The spool of secret files (ivr.call.agi_spool) is swept at start, on a timer while serving and
  at the end, when no call of ours is left to play one.
- SIGTERM drains running calls (within `drain_seconds`); SIGHUP is logged and ignored.
- Observability (ivr.metrics): calls in progress, outcomes and busy callers are counted; each
  call's end is one JSON line on the `ivr.calls` logger (call id, channel, caller present or
  withheld, path, outcome, seconds in all and waiting for the registry, server). The caller's
  number is never in it (the call log in the database has it); a run of 10+ digits in the
  channel name is masked, so an endpoint named by its number does not leak it either. /readyz
  asks `readiness()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import re
import signal
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ivr import config, metrics
from ivr.call import agi_protocol as agi
from ivr.call.agi_call import BUSY, RESULT_VARIABLE, AgiCall, AgiError
from ivr.call.agi_protocol import printable
from ivr.call.agi_spool import sweep_spool
from ivr.call.agi_transport import StreamTransport
from ivr.call.api import Call, CallerHungUp
from ivr.call.idle import COMMAND_TIMEOUT

log = logging.getLogger(__name__)
call_log = logging.getLogger("ivr.calls")  # one JSON line per call end

ROUTE = "hamta"
HANDSHAKE_TIMEOUT = 5.0  # seconds for Asterisk to send the AGI environment
HANDSHAKE_MAX_BYTES = 64 * 1024
MAX_CALLS = 500  # calls in progress per server: 2 cores carry 1,000 paced bench callers (~3,000
# real ones), and each call holds a socket and maybe a database connection (ulimit -n 1024)
DRAIN_SECONDS = 120.0  # on SIGTERM, how long running calls may go on
_LONG_DIGITS = re.compile(r"[0-9]{10,}")  # a phone number in a channel name (PJSIP/0912…-0001)
READY_TIMEOUT = 2.0  # seconds the registry gets to answer /readyz's trivial read

CallHandler = Callable[[Call], Awaitable[Any]]


def shown_channel(channel: str) -> str:
    """A channel name as the logs show it: a run of 10+ digits (an endpoint named by its
    number) masked."""
    return _LONG_DIGITS.sub("…", channel)


# --- the event loop ------------------------------------------------------------------------------
def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop `serve` runs on: uvloop when it is installed (a call is dozens of AGI
    round trips, and uvloop's socket and timer handling costs a fraction of asyncio's), else
    asyncio's own (None). `choice` "asyncio" chooses asyncio's anyway; None: the setting's."""
    if (config.current().event_loop if choice is None else choice) == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_server(main: Coroutine[Any, Any, Any], event_loop: str | None = None) -> None:
    """Run `main` (a coroutine) to its end on the event loop `event_loop` chooses (loop_factory).

    What start-up built (modules, SQLAlchemy's tables and caches, the catalogue) lives as long as
    the process: frozen out of the garbage collector, so that its full collections, which stop
    every call at once, scan only what calls make."""
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        runner.run(main)


# --- the FastAGI server -------------------------------------------------------------------------
async def read_environment(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """The AGI environment (`agi_x: value` lines up to a blank line), bounded; None if the peer
    went away or stalled."""
    env: OrderedDict[str, str] = OrderedDict()
    size = 0

    async def read() -> None:
        nonlocal size
        while True:
            line = await reader.readline()
            size += len(line)
            if not line or size > HANDSHAKE_MAX_BYTES:
                raise ConnectionError("peer closed or sent too much during the AGI handshake")
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text:
                return
            pair = agi.parse_environment_line(text)
            if pair is not None:
                env[pair[0]] = pair[1]

    try:
        await asyncio.wait_for(read(), HANDSHAKE_TIMEOUT)
    except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
        if size == 0 and isinstance(exc, ConnectionError):
            log.debug("a connection closed without a word (a port probe)")
        else:
            log.warning("AGI handshake failed: %s", str(exc) or "timed out")
        return None
    return env


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    sounds: Path = Path("sounds")
    spool: Path = Path("spool")
    drain_seconds: float = DRAIN_SECONDS
    max_calls: int = MAX_CALLS  # calls in progress; above it a new caller hears `busy`
    command_timeout: float = COMMAND_TIMEOUT  # the idle limit (ivr.call.idle.idle_limit)
    reuse_port: bool = False  # SO_REUSEPORT: several processes accept on one port
    name: str | None = None  # in the call log and the call-end line (default host:port)

    @property
    def secret_max_age(self) -> float:
        """A secret file older than one command's whole time limit belongs to no prompt."""
        return self.command_timeout

    @property
    def sweep_interval(self) -> float:
        return max(1.0, min(30.0, self.secret_max_age / 4))


class FastAgiServer:
    """Accepts FastAGI connections for the `hamta` route and hands each call to `handle`."""

    def __init__(self, settings: ServerSettings, handle: CallHandler) -> None:
        """`handle`: runs one call to its end (ivr.app.Ivr.handle); returns its outcome."""
        self.settings = settings
        self.handle = handle
        self.calls: set[asyncio.Task[Any]] = set()
        self.server: asyncio.Server | None = None
        self.outcomes: list[Any] = []  # recent outcomes (tests), bounded
        self.in_progress = 0  # calls being handled (not counting those turned away)
        self.turned_away = 0  # callers who heard `busy`, since the start
        self._turned_away_logged = (0.0, 0)  # (when, count) of the last warning
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Sweep the spool of secret files a crash left, then listen; the spool is swept on a
        timer while serving."""
        await asyncio.to_thread(sweep_spool, self.settings.spool, self.settings.secret_max_age)
        self.server = await asyncio.start_server(
            self._connection, self.settings.host, self.settings.port,
            reuse_port=self.settings.reuse_port or None)
        self._sweeper = asyncio.create_task(self._sweep_regularly(), name="spool-sweeper")
        sockets = ", ".join(str(s.getsockname()[:2]) for s in self.server.sockets)
        log.info("FastAGI server on %s, route agi://%s:%d/%s (at most %d calls, idle limit "
                 "%gs)", sockets, self.settings.host, self.port, ROUTE, self.settings.max_calls,
                 self.settings.command_timeout)

    async def _sweep_regularly(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await asyncio.to_thread(sweep_spool, self.settings.spool,
                                        self.settings.secret_max_age)
            except Exception:
                log.exception("sweeping the spool failed")

    @property
    def port(self) -> int:
        if self.server and self.server.sockets:
            return int(self.server.sockets[0].getsockname()[1])
        return self.settings.port

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.calls.add(task)
        try:
            env = await read_environment(reader)
            if env is None:
                return
            script = env.get("agi_network_script", "").split("?", 1)[0].strip("/")
            if script != ROUTE:
                log.error("no FastAGI route %r (Asterisk asked for agi://…/%s)", script,
                          printable(script))
                return
            await self._call(env, reader, writer)
        except asyncio.CancelledError:
            log.warning("call cut short: the server is stopping")
            raise
        except Exception:
            log.exception("FastAGI connection failed")
        finally:
            self.calls.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @property
    def name(self) -> str:
        """This server in the call log and the call-end line: host:port (host:port/N for process
        N of `serve --processes`)."""
        return self.settings.name or f"{self.settings.host}:{self.port}"

    async def readiness(self, ping: Callable[[], Awaitable[object]] | None = None,
                        timeout: float = READY_TIMEOUT) -> str | None:
        """None when a new call would be served: listening, under --max-calls, and `ping` (the
        registry's: a trivial read, and a write while writes fail, AsyncRegistry.ping) answers
        within `timeout`; else the reason, for /readyz."""
        if self.server is None or not self.server.is_serving():
            return "not accepting calls (starting or stopping)"
        if self.in_progress >= self.settings.max_calls:
            return f"at --max-calls ({self.in_progress} calls in progress)"
        if ping is not None:
            try:
                await asyncio.wait_for(ping(), timeout)
            except TimeoutError:
                return f"the registry did not answer within {timeout:g}s"
            except metrics.NotReady as exc:
                return str(exc)
            except Exception as exc:
                return f"the registry cannot be read ({type(exc).__name__})"
        return None

    async def _call(self, env: dict[str, str], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        """One call on the `hamta` route, to its end (or `busy` above max_calls)."""
        times = metrics.begin_call()
        transport = StreamTransport(reader, writer, self.settings.command_timeout)
        call = AgiCall.from_env(env, transport, sounds=self.settings.sounds,
                                spool=self.settings.spool, replied_at=times.started)
        try:
            if self.in_progress >= self.settings.max_calls:
                await self._turn_away(call, env)
                self._ended(call, times, BUSY, [])
                return
            self.in_progress += 1
            metrics.CALLS_IN_PROGRESS.inc()
            try:
                await self._run(call, times)
            finally:
                self.in_progress -= 1
                metrics.CALLS_IN_PROGRESS.dec()
        finally:
            transport.close()

    def _ended(self, call: AgiCall, times: metrics.CallTimes, outcome: str,
               path: list[str]) -> None:
        """Count the call's outcome and write its one JSON line (no number, no secret)."""
        metrics.call_ended(outcome)
        if not call_log.isEnabledFor(logging.INFO):
            return
        call_log.info(json.dumps({
            "event": "call_end",
            "call_id": call.call_id,
            "channel": shown_channel(call.asterisk_channel),
            "caller": "withheld" if call.caller_id is None else "present",
            "path": path,
            "outcome": outcome,
            "seconds": round(time.perf_counter() - times.started, 3),
            "registry_seconds": round(times.registry_seconds, 3),
            "commands": call.commands,
            "server": self.name,
        }, ensure_ascii=False))

    async def _turn_away(self, call: AgiCall, env: dict[str, str]) -> None:
        """Above max_calls: HAMTA_RESULT=busy, then (unless the dialplan sends the caller to
        another server: `?overflow=yes`) the `busy` prompt and a hang-up. No registry work."""
        self.turned_away += 1
        script = env.get("agi_network_script", "")
        query = parse_qs(script.partition("?")[2])
        overflow = query.get("overflow", [""])[0].lower() in ("yes", "1", "true")
        metrics.TURNED_AWAY.labels("yes" if overflow else "no").inc()
        now, (last, count) = time.monotonic(), self._turned_away_logged
        if now - last >= 10.0:
            log.warning("%d caller(s) turned away (busy): %d calls in progress, --max-calls %d",
                        self.turned_away - count, self.in_progress, self.settings.max_calls)
            self._turned_away_logged = (now, self.turned_away)
        try:
            await call._send(agi.set_variable(RESULT_VARIABLE, BUSY))
            if not overflow:
                await call.play(BUSY, barge_in=False)
                await call._send(agi.HANGUP)
        except (CallerHungUp, AgiError) as exc:
            log.debug("busy call %s ended: %s", call.call_id, type(exc).__name__)

    async def _run(self, call: AgiCall, times: metrics.CallTimes) -> None:
        log.info("call %s on %s from %s", call.call_id, shown_channel(call.asterisk_channel),
                 "withheld" if call.caller_id is None else "a caller ID")
        if call.language != "fa":
            log.warning("call %s has language %r; the prompts are built for fa", call.call_id,
                        call.language)
        ended, path = "error", []
        try:
            try:
                outcome = await self.handle(call)
            except (CallerHungUp, AgiError) as exc:
                log.warning("call %s ended: %s", call.call_id, type(exc).__name__)
                ended = "hung_up" if isinstance(exc, CallerHungUp) else "error"
                return
            ended, path = str(outcome), list(getattr(outcome, "path", []))
            # a normal end, whatever the caller did: no "service unavailable" after us
            with contextlib.suppress(AgiError):
                await call.finish()
            self.outcomes = [*self.outcomes[-99:], outcome]
            log.info("call %s ended: %s", call.call_id, outcome)
        except asyncio.CancelledError:
            ended = "interrupted"  # the server stopped before the call ended
            raise
        finally:
            self._ended(call, times, ended, path)

    async def stop(self) -> None:
        """Stop accepting calls; let running calls end, within the drain limit; cut the rest
        (Asterisk then plays service_unavailable to them rather than silence)."""
        if self.server is not None:
            self.server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        running = {t for t in self.calls if not t.done()}
        if running:
            log.info("waiting up to %.0fs for %d call(s) to end", self.settings.drain_seconds,
                     len(running))
            _, late = await asyncio.wait(running, timeout=self.settings.drain_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        # no call of ours is left to play a secret file: none may stay behind
        await asyncio.to_thread(sweep_spool, self.settings.spool, self.settings.secret_max_age,
                                mine=True)

    async def serve_until_signalled(self) -> None:
        """SIGTERM/SIGINT stop and drain; SIGHUP (a closed terminal, a reload by habit) is
        logged and ignored: a running server never drops its calls for it."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, log.warning,
                                "SIGHUP ignored: to reload, restart the server (it drains)")
        await self.start()
        try:
            await stop.wait()
            log.info("stopping: no new calls")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self.stop()
