"""AMI (Asterisk manager) on panoramisk: a bounded login, and `dial`, a real call without a phone.

panoramisk's Manager reconnects forever and `connect()` returns before the login is done, so
`ami_session` connects once, logs in itself and gives up after a timeout with a clear error.

`dial` originates `Local/<ext>@hamta-ivr-trusted` with a caller ID: a subscriber calling from
their own SIM, the caller ID vouched for by the network (`trusted=False`: `Local/<ext>@hamta-ivr`,
as a softphone or VoIP trunk calls, whose caller ID proves nothing). The IVR runs on the Local
channel's second half (`;2`); keys are played as DTMF into the first half (`;1`), which passes
them on. A key is sent only when the IVR is waiting for one (AGI `WAIT FOR DIGIT` started), so
prompts are heard in full and no key falls between two AGI commands (Asterisk drops DTMF
there). The prompts come from the AMI `AGIExecStart` events and the dialplan's `Playback`
(`Newexten`; its `Queue`, after `0`, as `(queue) <name>`); each command's result code from
`AGIExecEnd`. The AGI text in these events is read with ivr.call.agi_protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from ivr.asterisk import dialplan
from ivr.asterisk.config import AsteriskConfig
from ivr.call.agi_protocol import AgiCommand, parse_command
from ivr.call.api import ALL_KEYS

log = logging.getLogger(__name__)
_panoramisk_log = logging.getLogger(f"{__name__}.panoramisk")
_panoramisk_log.setLevel(logging.ERROR)  # "not able to reconnect" is our AmiError, said once
logging.getLogger("panoramisk").setLevel(logging.WARNING)

DTMF_MS = 150
PAUSE, HANG_UP = ".", "h"
ASK = "?"  # ask for the next keys when the IVR waits for one: a code sent by SMS during the call


class AmiError(Exception):
    """The AMI could not be reached or refused us; the message says which and why."""


class _OneShotManager(Manager):
    """A Manager that never reconnects: a closed or lost connection is final."""

    def __init__(self, **config: object) -> None:
        super().__init__(**config)
        self.stopped = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connect(self, *args: object, **kwargs: object) -> Any:
        if self.stopped:
            return None
        return super().connect(*args, **kwargs)

    def connection_lost(self, exc: object) -> None:
        self.stopped = True
        pinger: Any = getattr(self, "pinger", None)
        if pinger:
            pinger.cancel()
            self.pinger = None
        if not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        self.stopped = True
        super().close()


@contextlib.asynccontextmanager
async def ami_session(cfg: AsteriskConfig, *, timeout: float = 10.0) -> AsyncIterator[Manager]:
    """A logged-in AMI connection to 127.0.0.1:cfg.ami_port, closed on exit."""
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[None] = loop.create_future()

    def on_connect(_: Manager) -> None:
        if not connected.done():
            connected.set_result(None)

    manager = _OneShotManager(
        host="127.0.0.1", port=cfg.ami_port, loop=loop, on_connect=on_connect,
        ping_delay=3600, ping_interval=3600, reconnect_timeout=3600, log=_panoramisk_log,
    )
    try:
        try:
            task = manager.connect()
            await asyncio.wait_for(asyncio.shield(task), timeout)
            await asyncio.wait_for(connected, timeout)
        except OSError as exc:
            raise AmiError(f"no AMI at 127.0.0.1:{cfg.ami_port} ({exc.strerror or exc}); "
                           "is Asterisk running? (`hamta-ivr asterisk up`)") from None
        except TimeoutError:
            raise AmiError(f"AMI at 127.0.0.1:{cfg.ami_port} did not answer within "
                           f"{timeout:.0f}s") from None
        try:
            resp = await asyncio.wait_for(manager.send_action({
                "Action": "Login", "Username": cfg.ami_user, "Secret": cfg.ami_secret,
                "Events": "on"}), timeout)
        except TimeoutError:
            raise AmiError("AMI login got no answer") from None
        if not resp.success:
            raise AmiError(f"AMI login as {cfg.ami_user!r} refused ({resp.message}); the secret "
                           "must match the running Asterisk's (HAMTA_AMI_SECRET or "
                           "<data dir>/secrets/ami)")
        yield manager
    finally:
        manager.close()


async def ping(cfg: AsteriskConfig, timeout: float = 3.0) -> str:
    """The running Asterisk's version line via AMI (raises AmiError when it does not answer)."""
    async with ami_session(cfg, timeout=timeout) as manager:
        resp = await asyncio.wait_for(manager.send_action({"Action": "CoreSettings"}), timeout)
        return f"Asterisk {resp.get('AsteriskVersion', '?')}"


# --- dial ---------------------------------------------------------------------------------------
def describe(command: str, spool: str) -> str | None:
    """What an AGI command makes the caller hear, as dial prints it (None: not a prompt)."""
    parsed = parse_command(command)
    verb, first = parsed.verb, parsed.arg(0)
    if verb in ("STREAM FILE", "CONTROL STREAM FILE") and parsed.args:
        if first.startswith("/") and (not spool or first.startswith(spool)):
            return "(secret)"  # a secret digit string, assembled into a temporary file
        return first.removeprefix("hamta/")
    if verb == "SAY DIGITS" and parsed.args:
        return f"(digits) {' '.join(first)}"
    if verb == "SAY NUMBER" and parsed.args:
        return f"(number) {first}"
    if verb == "EXEC" and first.upper() == "PLAYBACK" and len(parsed.args) > 1:
        return parsed.arg(1).removeprefix("hamta/")
    return None


@dataclass
class DialResult:
    """What happened on one `dial` call (printed as JSON with --json)."""

    caller: str | None
    extension: str
    call_id: str  # the IVR side's Asterisk uniqueid: the call log's call_id
    trusted: bool = True  # entered hamta-ivr-trusted (the network vouches for the caller ID)
    prompts: list[str] = field(default_factory=list)
    keys_sent: str = ""
    unused_keys: str = ""
    answered: bool = False
    unavailable: bool = False  # the dialplan played service_unavailable (the IVR did not run)
    ended: str = ""  # ivr_hung_up | we_hung_up | timeout | failed
    # every AGI command the IVR ran, from AMI AGIExecEnd: (command, ResultCode, Result); the
    # event says 200/510/511/520 or -1 and Success/Failure, not the `result=` value itself
    agi: list[tuple[str, int, str]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.answered and not self.unavailable and self.ended in ("ivr_hung_up",
                                                                          "we_hung_up")

    def summary(self) -> list[str]:
        """`dial`'s closing lines (without --json)."""
        lines = [f"[call ended: {self.ended}{' (IVR unavailable)' if self.unavailable else ''}, "
                 f"{self.seconds}s, call id {self.call_id}]"]
        if self.unused_keys:
            lines.append(f"[keys not used: {self.unused_keys}]")
        return lines


async def dial(
    cfg: AsteriskConfig, *, caller: str | None, keys: str, extension: str | None = None,
    timeout: float = 300.0, spool: str = "", echo: Callable[[str], None] | None = None,
    barge_in: bool | Callable[[AgiCommand], bool] = False, trusted: bool = True,
    more: Callable[[], Awaitable[str]] | None = None,
) -> DialResult:
    """Place one call into the IVR and drive it with `keys` (0-9 * #, `.` silence, `h` hang up,
    `?` ask `more()` for the keys to go on with, once the IVR waits for a key: the SMS code that
    reaches the caller's phone during the call).

    trusted: enter context hamta-ivr-trusted, as a subscriber's mobile call does (the network
    vouches for the caller ID); False: hamta-ivr, as a softphone's or VoIP trunk's call.

    barge_in: press each key (not `.`/`h`) as soon as a prompt that accepts it starts, cutting
    the prompt short as a hurried caller would; faster, but a prompt shorter than the AMI round
    trip could end before the key arrives. A predicate instead: press the next digit key as soon
    as a command it accepts starts (`lambda c: c.pauses`: in the silence between digit groups).
    """
    echo = echo or (lambda line: None)
    started = time.monotonic()
    uid = f"dial-{uuid.uuid4().hex[:16]}"
    ours, ivr = uid, f"{uid}-ivr"  # the Local channel's ;1 (we drive it) and ;2 (runs the IVR)
    extension = extension or dialplan.IVR_EXTENSION
    result = DialResult(caller=caller, extension=extension, call_id=ivr, trusted=trusted)
    context = dialplan.TRUSTED_CONTEXT if trusted else dialplan.IVR_CONTEXT
    pending = deque("".join(keys.split()))
    events: asyncio.Queue[Message] = asyncio.Queue()

    async def collect(_: Manager, event: Message) -> None:
        if event.get("Uniqueid") in (ours, ivr):
            events.put_nowait(event)

    async with ami_session(cfg) as manager:
        for name in ("Newchannel", "Newexten", "AGIExecStart", "AGIExecEnd", "Hangup",
                     "Newstate"):
            manager.register_event(name, collect)
        originate = manager.send_action({
            "Action": "Originate", "Channel": f"Local/{extension}@{context}/n",
            "Application": "Wait", "Data": str(int(timeout) + 5),
            "CallerID": f'"{caller}" <{caller}>' if caller else "",
            "Async": "true", "ChannelId": ours, "OtherChannelId": ivr, "Timeout": "30000",
        })
        our_channel = f"Local/{extension}@{context}"  # until Newchannel names it in full
        deadline = started + timeout

        async def send(key: str) -> None:
            nonlocal our_channel
            if key == PAUSE:
                echo("< (silence)")
                return
            if key == HANG_UP:
                echo("< (hangs up)")
                result.ended = "we_hung_up"
                await manager.send_action({"Action": "Hangup", "Channel": our_channel},
                                          as_list=False)
                return
            echo(f"< {key}")
            result.keys_sent += key
            resp = await manager.send_action({  # as_list: panoramisk misreads "…queued"
                "Action": "PlayDTMF", "Channel": our_channel, "Digit": key,
                "Duration": str(DTMF_MS)}, as_list=False)
            if not resp.success:
                log.warning("PlayDTMF %s refused: %s", key, resp.message)

        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, originate}, timeout=remaining,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    getter.cancel()
                    raise TimeoutError
                if originate in done and getter not in done:
                    getter.cancel()
                    failure = _originate_failure(originate.result())
                    if failure:
                        result.ended, result.error = "failed", failure
                        break
                    originate = asyncio.get_running_loop().create_future()  # seen: stop watching
                    continue
                event = getter.result()
                name, uniqueid = event.get("Event"), event.get("Uniqueid")
                if name == "Newchannel" and uniqueid == ours:
                    our_channel = event.get("Channel")
                elif name == "Newstate" and uniqueid == ivr and event.get("ChannelState") == "6":
                    result.answered = True
                elif name == "AGIExecStart" and uniqueid == ivr:
                    command = event.get("Command", "")
                    heard = describe(command, spool)
                    if heard:
                        result.prompts.append(heard)
                        echo(f"> {heard}")
                    parsed = parse_command(command)
                    waits = parsed.asks
                    if waits and pending and pending[0] == ASK:
                        pending.popleft()
                        given = await more() if more is not None else ""
                        pending.extendleft(reversed("".join(given.split())))
                    early = pending and (
                        barge_in(parsed) and pending[0] in ALL_KEYS if callable(barge_in)
                        else barge_in and pending[0] in _escape(command))
                    if pending and (waits or early):
                        await send(pending.popleft())
                elif name == "AGIExecEnd" and uniqueid == ivr:
                    try:
                        code = int(event.get("ResultCode", "0"))
                    except ValueError:
                        code = 0
                    result.agi.append((event.get("Command", ""), code,
                                       event.get("Result", "")))
                elif name == "Newexten" and uniqueid == ivr:
                    if event.get("Application", "").lower() == "queue":  # `0`: to a person
                        heard = f"(queue) {event.get('AppData', '').partition(',')[0]}"
                        result.prompts.append(heard)
                        echo(f"> {heard}")
                    if event.get("Application", "").lower() == "playback":
                        heard = event.get("AppData", "").removeprefix("hamta/")
                        result.prompts.append(heard)
                        echo(f"> {heard}")
                        if heard == "service_unavailable":
                            result.unavailable = True
                elif name == "Hangup":
                    result.ended = result.ended or "ivr_hung_up"
                    break
        except TimeoutError:
            result.ended, result.error = "timeout", f"the call did not end within {timeout:.0f}s"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(manager.send_action(
                    {"Action": "Hangup", "Channel": our_channel}, as_list=False), 5)
        result.unused_keys = "".join(pending)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _escape(command: str) -> str:
    """The keys that interrupt a STREAM FILE / SAY DIGITS command ("" for anything else)."""
    parsed = parse_command(command)
    return parsed.escape if parsed.verb in ("STREAM FILE", "SAY DIGITS") else ""


def _originate_failure(response: Message | list[Message]) -> str | None:
    messages = response if isinstance(response, list) else [response]
    for message in messages:
        if message.get("Response") in ("Error", "Failure"):
            return f"originate failed: {message.get('Message') or message.get('Reason') or '?'}"
    return None
