"""hamta-ivr prompts build | check: the Persian audio Asterisk plays (see ivr/prompts/build.py).

The composition layer of ivr.prompts: the prompt code knows nothing of the flows or the registry;
this module hands it the prompt keys the flows play (ivr.flows.keys.USED_KEYS) and the device
names the registry holds.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

from ivr.config import PEPPER_MIN_BYTES, db_url

log = logging.getLogger(__name__)


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


def read_device_names(url: str) -> list[tuple[str, str]]:
    """Every (brand, model) in the registry at `url`: the one call into the registry's API here.

    Names only, nothing is hashed: a placeholder pepper spares creating or reading the real one.
    """
    from ivr.registry.service import Registry

    with Registry.open(url, pepper=bytes(PEPPER_MIN_BYTES)) as registry:
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
    where = out / LANGUAGE
    if report.problems:
        print(f"prompts check: {len(report.problems)} problem(s) in {where}", file=sys.stderr)
        return 1
    print(f"prompts check: OK — {report.files} sounds in {where}; "
          f"{report.keys} prompt keys the flows use are all in the catalogue")
    return 0
