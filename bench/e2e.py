"""End to end on the real Asterisk: what a caller waits between their last key and the next prompt.

A private development Asterisk (`hamta-ivr asterisk up` with this run's own data dir and ports, so
it never meets another engineer's instance) plays the built prompts and runs the IVR over FastAGI
against the bench registry. Calls are originated over AMI on Local channels, a few at once; keys are
played as DTMF (PlayDTMF on the Local channel's first half) the way a caller who knows the menu
presses them: during a prompt that accepts keys, or when the IVR waits for one. The caller hangs up
when the main menu comes back after the operation.

The figure: AMI `DTMFEnd` on the IVR's channel (the key has been received) to the next
`AGIExecStart` of a playback (the next prompt starts). Keys followed by `WAIT FOR DIGIT` (inside an
entry) have no prompt after them and are not counted. Event times are Asterisk's own
(`timestampevents = yes`, set on the private instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import scenario
from bench.caller import CallScript
from bench.load import latency_ms
from bench.servers import ServerProcess, free_port, tool
from ivr.call.agi_protocol import parse_command

BARGE_IN_DELAY = 0.3  # seconds into a prompt before the caller presses
KEY_GAP = 0.1  # seconds between the IVR asking and the key (Asterisk ignores a DTMF begin within
#              45 ms of the previous key's end: AST_MIN_DTMF_GAP)
DTMF_MS = 120
CALL_TIMEOUT = 120.0
EVENTS = ("Newchannel", "DTMFEnd", "AGIExecStart", "Hangup")


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """This process's environment for reading the private instance's settings."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveCall:
    """One originated call: presses keys when the IVR lets it, times key -> next prompt."""

    def __init__(self, manager: Any, script: CallScript) -> None:
        self.manager = manager
        self.script = script
        uid = f"bench-{uuid.uuid4().hex[:16]}"
        self.ours, self.ivr = uid, f"{uid}-ivr"
        self.channel = ""
        self.keys = deque(script.key_list())
        self.last_key_at: float | None = None
        self.delays: list[float] = []
        self.played: list[str] = []
        self.hung_up = asyncio.Event()
        self.error: str | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.we_hung_up = False
        self.pressing = False  # a key is on its way and its DTMFEnd has not come back yet
        self.started = time.monotonic()
        self.seconds = 0.0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _press(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        key = self.keys.popleft()
        # as_list=False: panoramisk 1.4 takes "DTMF successfully queued" for the start of a list
        resp = await self.manager.send_action({
            "Action": "PlayDTMF", "Channel": self.channel, "Digit": key,
            "Duration": str(DTMF_MS)}, as_list=False)
        if not getattr(resp, "success", True):
            self.error = f"PlayDTMF refused: {resp.message}"

    async def _hang_up(self) -> None:
        self.we_hung_up = True
        await self.manager.send_action({"Action": "Hangup", "Channel": self.channel},
                                       as_list=False)

    def on_event(self, event: Any, at: float) -> None:
        name, uid = event.get("Event"), event.get("Uniqueid")
        if name == "Newchannel" and uid == self.ours:
            self.channel = event.get("Channel", "")
        elif name == "DTMFEnd" and uid == self.ivr and event.get("Direction") == "Received":
            self.last_key_at = at
            self.pressing = False
        elif name == "AGIExecStart" and uid == self.ivr:
            command = parse_command(event.get("Command", ""))
            verb = command.verb
            if command.plays:
                if self.last_key_at is not None:
                    self.delays.append(at - self.last_key_at)
                    self.last_key_at = None
                file = command.arg(0)
                self.played.append(file)
                escape = command.escape
                if self.keys and escape and verb == "STREAM FILE" and not self.pressing:
                    self.pressing = True
                    self._spawn(self._press(BARGE_IN_DELAY))
                elif not self.keys and file == "hamta/main_menu" and len(self.played) > 2 \
                        and not self.we_hung_up:
                    self._spawn(self._hang_up())  # the operation is over: the caller leaves
            elif command.asks:
                self.last_key_at = None  # a key inside an entry: no prompt follows it
                if self.keys and not self.pressing:
                    self.pressing = True
                    self._spawn(self._press(KEY_GAP))
                elif not self.keys and not self.we_hung_up:
                    self._spawn(self._hang_up())
        elif name == "Hangup" and uid in (self.ivr, self.ours):
            self.hung_up.set()

    @property
    def ok(self) -> bool:
        return (self.error is None and self.we_hung_up and not self.keys
                and all(e in self.played for e in self.script.expect))


async def _drive(manager: Any, scripts: list[CallScript], concurrency: int,
                 echo: Callable[[str], None]) -> list[LiveCall]:
    live: dict[str, LiveCall] = {}

    def stamp(event: Any) -> float:
        raw = event.get("Timestamp")
        try:
            return float(raw)
        except (TypeError, ValueError):
            return time.time()

    def dispatch(_: Any, event: Any) -> None:
        call = live.get(event.get("Uniqueid", ""))
        if call is not None:
            call.on_event(event, stamp(event))

    for name in EVENTS:
        manager.register_event(name, dispatch)
    gate = asyncio.Semaphore(concurrency)
    done: list[LiveCall] = []

    async def one(script: CallScript) -> None:
        async with gate:
            call = LiveCall(manager, script)
            live[call.ours] = live[call.ivr] = call
            cid = script.caller_id or ""
            originate = asyncio.ensure_future(manager.send_action({
                "Action": "Originate", "Channel": "Local/7777@hamta-ivr/n",
                "Application": "Wait", "Data": str(int(CALL_TIMEOUT)),
                "CallerID": f'"{cid}" <{cid}>' if cid else "", "Async": "true",
                "ChannelId": call.ours, "OtherChannelId": call.ivr, "Timeout": "30000"}))
            try:
                await asyncio.wait_for(call.hung_up.wait(), CALL_TIMEOUT)
            except TimeoutError:
                call.error = f"no hang-up within {CALL_TIMEOUT:.0f}s"
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(call._hang_up(), 5)
            originate.cancel()
            call.seconds = time.monotonic() - call.started
            await asyncio.sleep(0.2)  # the last events of the call
            done.append(call)

    await asyncio.gather(*(one(s) for s in scripts))
    return done


async def _run_tool(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{' '.join(argv[1:3])} did not finish in {timeout:.0f}s"
    return proc.returncode or 0, out.decode(errors="replace").strip()


async def run(db: scenario.BenchDb, *, calls: int, concurrency: int, workdir: Path,
              echo: Callable[[str], None]) -> dict[str, Any]:
    """Place `calls` calls of the bench mix, `concurrency` at once; the report's e2e section."""
    from ivr.asterisk import ami, config, dev
    from ivr.config import ConfigError

    exe = tool("hamta-ivr")
    if exe is None:
        return {"status": "not run: the hamta-ivr command is not installed"}
    try:
        runtime = dev.Runtime.detect()
    except ConfigError as exc:
        return {"status": f"not run: {exc}"}
    if not runtime.ready:
        return {"status": "not run: the development Asterisk is not built yet (run `hamta-ivr "
                          "asterisk up` once; it bootstraps Asterisk 22 in a chroot)"}
    if runtime.root is not None and os.geteuid() != 0:
        return {"status": "not run: the chroot Asterisk needs root"}
    base = workdir / "e2e"
    sounds = base / "sounds"
    agi_port = free_port()
    env = db.env()
    env.update(
        HAMTA_DATA_DIR=str(base), HAMTA_AMI_PORT=str(free_port()),
        HAMTA_SIP_PORT=str(_free_udp_port()),
        HAMTA_RTP_START=str(random.randrange(30000, 39000, 2)),
        HAMTA_AGI_HOST="127.0.0.1", HAMTA_AGI_PORT=str(agi_port), HAMTA_SOUNDS_DIR=str(sounds),
        HAMTA_AMI_SECRET=secrets.token_urlsafe(18),
    )
    echo("     building the prompts for the private Asterisk")
    code, out = await _run_tool([exe, "prompts", "build", "--out", str(sounds), "-q"], env, 300)
    if code != 0:
        return {"status": f"not run: hamta-ivr prompts build failed: {out[-300:]}"}
    echo("     starting a private Asterisk (hamta-ivr asterisk up)")
    code, out = await _run_tool([exe, "asterisk", "up", "--timeout", "90"], env, 240)
    try:
        if code != 0:
            return {"status": f"not run: hamta-ivr asterisk up failed: {out[-400:]}"}
        with environ(env):
            cfg = config.load(create_secrets=False)
        await _timestamp_events(runtime, cfg)
        serve = ServerProcess("hamta-ivr serve (e2e)", [exe, "serve", "--port", str(agi_port)],
                              env, agi_port, workdir / "logs" / "serve-e2e.log")
        async with serve:
            version = await ami.ping(cfg)
            mix = scenario.mix(max(1, calls // scenario.SIGN_IN_EVERY + 1))
            scripts = [mix[i % len(mix)] for i in range(calls)]
            echo(f"     {calls} calls, {concurrency} at once, through {version}")
            async with ami.ami_session(cfg) as manager:
                done = await _drive(manager, scripts, concurrency, echo)
    finally:
        await _run_tool([exe, "asterisk", "down"], env, 60)
    delays = [d for c in done for d in c.delays]
    failed = [c for c in done if not c.ok]
    result: dict[str, Any] = {
        "status": "run", "asterisk": version, "calls": len(done), "concurrency": concurrency,
        "completed": len(done) - len(failed), "failed": len(failed),
        "key_to_prompt_ms": latency_ms(delays),
        "call_seconds_mean": round(sum(c.seconds for c in done) / max(1, len(done)), 1),
        "note": "keys pressed 0.3 s into a prompt that takes them, else 0.1 s after the IVR "
                "starts waiting; "
                "DTMFEnd -> AGIExecStart of the next playback, Asterisk's event timestamps",
    }
    if failed:
        c = failed[0]
        result["first_failure"] = (c.error or f"keys left {''.join(c.keys)!r}, hung up by us "
                                   f"{c.we_hung_up}, played {c.played[-4:]}")
    return result


async def _timestamp_events(runtime: Any, cfg: Any) -> None:
    """Event times from Asterisk itself: add `timestampevents = yes` to the private instance's
    rendered manager.conf and reload the manager."""
    conf = cfg.etc / "manager.conf"
    text = conf.read_text()
    if "timestampevents" not in text:
        conf.write_text(text.replace("[general]\n", "[general]\ntimestampevents = yes\n", 1))
    proc = await asyncio.create_subprocess_exec(
        *runtime.command("asterisk", "-C", str(cfg.conf_file), "-rx", "manager reload"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await asyncio.wait_for(proc.wait(), 30)
