"""The floor: a bare asyncio FastAGI server with no flow and no database.

It sends each call the same commands the real server sent for that script (a trace recorded
from one calibration call), ignoring the replies. What it costs is what AGI I/O alone costs on
this machine, so `ours / floor` says what the flows and the registry add.

Run alone: `python -m bench.floor --traces FILE [--port 0]` prints `listening PORT`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from ivr.call import agi_protocol as agi

TRACE_HEADER = "agi_arg_1"  # which trace a call replays; Asterisk sends AGI(url,ARG) this way


def synthetic_trace(commands: int) -> list[str]:
    """`commands` steps shaped like a call: answer, prompts and questions, then hang up."""
    trace = ["ANSWER"]
    body = ['STREAM FILE hamta/main_menu "0123456789*#"', "WAIT FOR DIGIT 8000"]
    while len(trace) < commands - 1:
        trace.append(body[(len(trace) - 1) % 2])
    trace.append("HANGUP")
    return trace[:commands]


class FloorServer:
    """Replays traces; `traces` maps a name (TRACE_HEADER) to commands, the first is default."""

    def __init__(self, traces: dict[str, list[str]]) -> None:
        if not traces:
            raise ValueError("the floor needs at least one trace")
        self.traces = traces
        self.default = next(iter(traces.values()))
        self.calls = 0
        self.server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0, backlog: int = 1024) -> int:
        self.server = await asyncio.start_server(self.handle, host, port, backlog=backlog)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.calls += 1
        try:
            headers: dict[str, str] = {}
            async with asyncio.timeout(10):
                while True:
                    line = await reader.readline()
                    if not line or not line.strip():
                        break
                    pair = agi.parse_environment_line(line.decode(errors="replace"))
                    if pair is not None:
                        headers[pair[0]] = pair[1]
            if not line:
                return
            trace = self.traces.get(headers.get(TRACE_HEADER, ""), self.default)
            for command in trace:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                reply = await reader.readline()
                if reply.startswith(agi.HANGUP_LINE.encode()):  # AGISIGHUP=yes: the reply follows
                    reply = await reader.readline()
                if not reply:
                    return
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _serve(host: str, port: int, traces: dict[str, list[str]]) -> None:
    floor = FloorServer(traces)
    bound = await floor.start(host, port)
    print(f"listening {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await floor.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--traces", type=Path, help="JSON: {name: [command, …]}")
    parser.add_argument("--commands", type=int, default=40,
                        help="without --traces: one synthetic trace of this many commands")
    args = parser.parse_args(argv)
    if args.traces:
        traces = json.loads(args.traces.read_text())
    else:
        traces = {"synthetic": synthetic_trace(args.commands)}
    asyncio.run(_serve(args.host, args.port, traces))
    return 0


if __name__ == "__main__":
    sys.exit(main())
