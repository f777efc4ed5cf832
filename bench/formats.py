"""Prompt formats on the real Asterisk: what playing prompts to many calls costs Asterisk's CPU
when it reads the native files `prompts build` writes (.ulaw for G.711, .sln16 for G.722) and
when it has only the 8 kHz .wav (every frame translated: slin@8000 -> ulaw, or slin@8000 ->
g722 by codec_g722's direct 8 kHz mode, which codes the lower sub-band only: cheaper than the
full wideband encoder the .sln16 needs, and telephone-band audio).

A private development Asterisk (its own data dir and ports, like bench.e2e) and a FastAGI
player in this process that streams the catalogue's prompts one after another. SIPp calls as a
staff softphone offering one codec (asterisk-conf/sipp/listen.xml), `calls` at once; once all
are playing, Asterisk's user+system CPU (/proc/<pid>/stat) is read over `window` seconds. Each
codec runs twice per round: the prompts' own names (native files there) and copies of their
.wav alone under hamta/bench-wav/; rounds alternate which goes first, and the table shows the
median per case (other work on the machine moves single figures by 10-20 %). One channel's
WriteTranscode is shown beside each figure, so the table says what Asterisk did. A benchmark,
not a test: the figures depend on the machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.e2e import environ
from bench.procstat import cpu_seconds
from bench.servers import free_port
from ivr import config

CODECS = {"ulaw": ("0", "PCMU"), "g722": ("9", "G722")}  # SDP payload type, encoding
WAV_FOLDER = "hamta/bench-wav"  # copies of the prompts' .wav, without native files
ACCOUNT = "staff1"


@dataclass
class Phase:
    codec: str
    files: str  # "native" or "wav"
    calls: int
    playing: int = 0  # calls playing when the window opened
    cpu: float = 0.0  # Asterisk's CPU seconds over the window
    window: float = 0.0
    write_path: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def cpu_percent(self) -> float:
        """Of one core."""
        return 100 * self.cpu / self.window if self.window else 0.0

    @property
    def ms_per_call_second(self) -> float:
        return 1000 * self.cpu / (self.window * self.playing) if self.window and self.playing \
            else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"codec": self.codec, "files": self.files, "calls": self.calls,
                "playing": self.playing, "window_s": round(self.window, 2),
                "cpu_s": round(self.cpu, 3), "cpu_percent": round(self.cpu_percent, 1),
                "cpu_ms_per_call_second": round(self.ms_per_call_second, 3),
                "write_transcode": self.write_path, "errors": self.errors}


def _cli(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """hamta-ivr of this very checkout (the venv's script may belong to another one)."""
    return subprocess.run([sys.executable, "-m", "ivr", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_env(base: Path) -> dict[str, str]:
    keep = ("HAMTA_CACHE", "HAMTA_ASTERISK_ROOT", "HAMTA_ASTERISK_MODE")
    env = {k: v for k, v in config.child_env().items() if not k.startswith("HAMTA_") or k in keep}
    package_root = str(Path(__file__).resolve().parents[1])
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p),
        HAMTA_DATA_DIR=str(base), HAMTA_DB_URL=f"sqlite:///{base / 'registry.db'}",
        HAMTA_AMI_PORT=str(free_port()), HAMTA_SIP_PORT=str(_free_udp_port()),
        HAMTA_RTP_START=str(random.randrange(30000, 39000, 2)),
        HAMTA_AGI_HOST="127.0.0.1", HAMTA_AGI_PORT=str(free_port()),
        HAMTA_SOUNDS_DIR=str(base / "sounds"), HAMTA_AMI_SECRET=secrets.token_urlsafe(18),
    )
    return env


def wav_copies(sounds: Path, names: list[str]) -> list[str]:
    """Each prompt's .wav under WAV_FOLDER, alone: Asterisk can only transcode those."""
    folder = sounds / "fa" / WAV_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for name in names:
        stem = name.rsplit("/", 1)[-1]
        shutil.copyfile(sounds / "fa" / f"{name}.wav", folder / f"{stem}.wav")
        copies.append(f"{WAV_FOLDER}/{stem}")
    return copies


def _write_transcode(runtime: Any, cfg: Any, channel: str) -> str:
    from ivr.asterisk import dev

    said = dev._rx(runtime, cfg, f"core show channel {channel}") or ""
    for line in said.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("WriteTranscode", "WriteTranslationPath"):
            value = value.strip()
            return "none (frames sent as read)" if value == "No" else \
                value.removeprefix("Yes").strip()
    return "?"


async def run(*, calls: int = 50, window: float = 20.0, rounds: int = 3,
              codecs: tuple[str, ...] = ("ulaw", "g722"), workdir: Path | None = None,
              echo: Callable[[str], None] = print) -> dict[str, Any]:
    from ivr.asterisk import config, dev
    from ivr.call.api import Call, Sound
    from ivr.call.fastagi import FastAgiServer, ServerSettings
    from ivr.prompts.build import catalogue_items

    if shutil.which("sipp") is None:
        return {"status": "not run: sipp is not installed"}
    runtime = dev.Runtime.detect()
    if not runtime.ready:
        return {"status": "not run: the development Asterisk is not built (hamta-ivr asterisk up)"}
    owned = workdir is None
    base = Path(tempfile.mkdtemp(prefix="hamta-bench-formats-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    env = private_env(base)
    sounds = base / "sounds"
    echo("     building the prompts (hamta-ivr prompts build)")
    done = await asyncio.to_thread(_cli, env, "prompts", "build", "--no-registry", "-q")
    if done.returncode != 0:
        return {"status": f"not run: prompts build failed: {done.stderr[-300:]}"}
    native = [item.name for item in catalogue_items()
              if (sounds / "fa" / f"{item.name}.ulaw").is_file()]
    playlists = {"native": native, "wav": wav_copies(sounds, native)}
    echo("     starting a private Asterisk (hamta-ivr asterisk up)")
    done = await asyncio.to_thread(_cli, env, "asterisk", "up", "--timeout", "90", timeout=240)
    if done.returncode != 0:
        await asyncio.to_thread(_cli, env, "asterisk", "down", timeout=60)
        return {"status": f"not run: asterisk up failed: {done.stdout[-300:]}{done.stderr[-300:]}"}

    mode = {"files": "native"}
    stop = asyncio.Event()
    channels: list[str] = []

    async def player(call: Call) -> str:
        channels.append(getattr(call, "asterisk_channel", ""))
        playlist = playlists[mode["files"]]
        start = random.randrange(len(playlist))  # not all calls on the same file
        i = 0
        try:
            while not stop.is_set():
                await call.stream(Sound(playlist[(start + i) % len(playlist)], "(bench)"), "")
                i += 1
        finally:
            channels.remove(getattr(call, "asterisk_channel", ""))
        return "played"

    phases: list[Phase] = []
    quiet = [logging.getLogger(name) for name in ("ivr.call", "ivr.calls")]
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.WARNING)  # a line per call start and end would bury the figures
    try:
        with environ(env):
            cfg = config.load(create_secrets=False)
        pid = dev.running_pid(cfg)
        assert pid is not None, "asterisk up reported success but no pid"
        password = (base / "secrets" / f"sip-{ACCOUNT}").read_text().strip()
        server = FastAgiServer(ServerSettings(port=int(env["HAMTA_AGI_PORT"]), sounds=sounds,
                                              spool=base / "spool"), player)
        await server.start()
        try:
            for round_ in range(rounds):
                order = ("native", "wav") if round_ % 2 == 0 else ("wav", "native")
                for codec, files in ((c, f) for c in codecs for f in order):
                    phase = Phase(codec, files, calls)
                    phases.append(phase)
                    mode["files"] = files
                    stop.clear()
                    echo(f"     round {round_ + 1}/{rounds}, {codec}, {files} files: {calls} calls")
                    await _phase(phase, env, password, channels, stop, pid, window,
                                 lambda ch: _write_transcode(runtime, cfg, ch))
                    echo(f"       {phase.playing} playing, Asterisk {phase.cpu_percent:.1f} % of "
                         f"a core, write path {phase.write_path}")
        finally:
            await server.stop()
    finally:
        await asyncio.to_thread(_cli, env, "asterisk", "down", timeout=60)
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
        if owned:
            shutil.rmtree(base, ignore_errors=True)
    return {"status": "run", "calls": calls, "window_s": window, "rounds": rounds,
            "phases": [p.as_dict() for p in phases], "medians": medians(phases),
            "ratios": ratios(phases)}


async def _phase(phase: Phase, env: dict[str, str], password: str, channels: list[str],
                 stop: asyncio.Event, pid: int, window: float,
                 write_transcode: Callable[[str], str]) -> None:
    payload, encoding = CODECS[phase.codec]
    scenario = Path(__file__).resolve().parents[1] / "asterisk-conf" / "sipp" / "listen.xml"
    argv = ["sipp", "-sf", str(scenario), "-s", "7777", "-key", "pt", payload,
            "-key", "encoding", encoding, "-key", "account", ACCOUNT, "-au", ACCOUNT,
            "-ap", password, "-i", "127.0.0.1", "-p", str(_free_udp_port()),
            "-mp", str(_free_udp_port() // 2 * 2), "-m", str(phase.calls), "-l", str(phase.calls),
            "-r", "20", "-nostdin", "-timeout", str(int(window + 180)), "-timeout_error",
            f"127.0.0.1:{env['HAMTA_SIP_PORT']}"]
    sipp = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=env["HAMTA_DATA_DIR"])
    try:
        deadline = time.monotonic() + 60
        while len(channels) < phase.calls and time.monotonic() < deadline:
            if sipp.returncode is not None:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # all playing, ramp-up work done
        phase.playing = len(channels)
        if phase.playing < phase.calls:
            phase.errors.append(f"only {phase.playing} of {phase.calls} calls reached the player")
        if channels:
            phase.write_path = await asyncio.to_thread(write_transcode, channels[0])
        before, started = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(window)
        phase.cpu, phase.window = cpu_seconds(pid) - before, time.monotonic() - started
        if len(channels) < phase.playing:
            phase.errors.append(f"{phase.playing - len(channels)} calls ended in the window")
    finally:
        stop.set()
        try:
            out, _ = await asyncio.wait_for(sipp.communicate(), 120)
            if sipp.returncode != 0:
                phase.errors.append(f"sipp exit {sipp.returncode}: "
                                    f"{out.decode(errors='replace')[-300:]}")
        except TimeoutError:
            sipp.kill()
            await sipp.wait()
            phase.errors.append("sipp did not finish")


def medians(phases: list[Phase]) -> dict[str, dict[str, float]]:
    """Per "codec/files": the median CPU ms per call-second over the rounds, and its range."""
    out: dict[str, dict[str, float]] = {}
    for key in dict.fromkeys(f"{p.codec}/{p.files}" for p in phases):
        values = [p.ms_per_call_second for p in phases if f"{p.codec}/{p.files}" == key]
        out[key] = {"median": round(statistics.median(values), 3),
                    "low": round(min(values), 3), "high": round(max(values), 3),
                    "cpu_percent": round(statistics.median(
                        p.cpu_percent for p in phases if f"{p.codec}/{p.files}" == key), 1)}
    return out


def ratios(phases: list[Phase]) -> dict[str, float | None]:
    """Per codec: Asterisk's median CPU with the .wav alone over that with the native files."""
    middle = medians(phases)
    out: dict[str, float | None] = {}
    for codec in dict.fromkeys(p.codec for p in phases):
        native, wav = middle.get(f"{codec}/native"), middle.get(f"{codec}/wav")
        out[codec] = (round(wav["median"] / native["median"], 2)
                      if native and wav and native["median"] else None)
    return out


def render(report: dict[str, Any]) -> str:
    if report.get("status") != "run":
        return f"prompt formats: {report.get('status')}"
    paths: dict[str, str] = {}  # the first round's (every round's is the same)
    for p in report["phases"]:
        paths.setdefault(f"{p['codec']}/{p['files']}", p["write_transcode"])
    lines = [f"Asterisk CPU playing prompts to {report['calls']} concurrent SIP calls: "
             f"{report['rounds']} rounds of a {report['window_s']:.0f} s window per case, "
             "utime+stime of the asterisk process (/proc)",
             "",
             "| codec | files played | CPU ms per call-second, median (range) "
             "| % of one core | Asterisk's write path |",
             "|---|---|---:|---:|---|"]
    for key, m in report["medians"].items():
        codec, files = key.split("/")
        shown = ".ulaw (G.711) / .sln16 (G.722)" if files == "native" else ".wav only"
        lines.append(f"| {codec} | {shown} | {m['median']:.2f} ({m['low']:.2f}–{m['high']:.2f}) "
                     f"| {m['cpu_percent']:.1f} | {paths[key]} |")
    lines.append("")
    for codec, ratio in report["ratios"].items():
        shown = "n/a" if ratio is None else f"{ratio:.2f}×"
        lines.append(f"{codec}: .wav only costs {shown} the CPU of the native files")
    errors = [f"{p['codec']}/{p['files']}: {e}" for p in report["phases"] for e in p["errors"]]
    lines += [f"warning: {e}" for e in errors]
    return "\n".join(lines)
