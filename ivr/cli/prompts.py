"""hamta-ivr prompts build | check: the Persian audio Asterisk plays (see prompts/build.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ivr.config import db_url


def register(sub: argparse._SubParsersAction) -> None:
    from ivr.prompts.engines import DEFAULT_ENGINE, ENGINES

    group = sub.add_parser(
        "prompts", help="build and check the Persian prompt audio",
        description="The audio Asterisk plays: <out>/fa/hamta/<key>.wav, number words in "
                    "<out>/fa/hamta/num/, SAY DIGITS in <out>/fa/digits/, device names in "
                    "<out>/fa/hamta/device/ (8 kHz mono 16-bit WAV).",
    )
    actions = group.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build", help="make (incrementally) every sound the IVR plays",
        description="Generate or convert every sound; only what changed since the last build "
                    "is rebuilt. Device names come from the registry (--db / HAMTA_DB_URL) "
                    "and --device.",
    )
    build.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                       help="speech engine for sounds without a recording (default: espeak, "
                            "offline; gtts needs internet)")
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
        "check", help="verify every sound exists, is 8 kHz mono WAV, not silent, current",
        description="Exit status 1 and one line per problem when anything is wrong.",
    )
    check.add_argument("--out", metavar="DIR",
                       help="sounds directory (default: HAMTA_SOUNDS_DIR, else <data dir>/sounds)")
    check.set_defaults(func=run_check)


def run_build(args: argparse.Namespace) -> int:
    from ivr.cli import UsageError
    from ivr.prompts.build import build, plan
    from ivr.prompts.devices import parse_device, registry_devices
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
    from ivr.prompts.check import check
    from ivr.prompts.layout import LANGUAGE, sounds_dir

    out = sounds_dir(args.out)
    report = check(out)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for problem in report.problems:
        print(problem)
    where = out / LANGUAGE
    if report.problems:
        print(f"prompts check: {len(report.problems)} problem(s) in {where}", file=sys.stderr)
        return 1
    print(f"prompts check: OK — {report.files} sounds in {where}; "
          f"{report.keys} prompt keys the flows use are all in the catalogue")
    return 0
