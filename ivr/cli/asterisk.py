"""`hamta-ivr asterisk up|down|status|render` (the development Asterisk) and `hamta-ivr dial`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ivr.asterisk import ami, config, dev
from ivr.asterisk.config import AsteriskConfig
from ivr.asterisk.dev import Runtime
from ivr.asterisk.dialplan import CLASSIC_EXTENSION, IVR_CONTEXT, IVR_EXTENSION, TRUSTED_CONTEXT
from ivr.cli.common import caller_keys
from ivr.usage import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "asterisk", help="the development Asterisk: up, down, status, render",
        description="Run a real Asterisk with asterisk-conf/ and the built prompts: the "
        "machine's Asterisk, else Asterisk 22 in a cached Debian sid chroot (built on first use).",
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="bootstrap if needed, render the config, start Asterisk "
                            "and wait until AMI answers (idempotent)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for AMI")
    up.set_defaults(func=run_up)
    actions.add_parser("down", help="stop Asterisk cleanly (idempotent)").set_defaults(
        func=run_down)
    status = actions.add_parser("status", help="what runs; exit 0 when Asterisk answers")
    status.add_argument("--show-secrets", action="store_true",
                        help="print the softphone passwords (default: where they are kept)")
    status.set_defaults(func=run_status)
    render = actions.add_parser(
        "render", help="write the config files with this deployment's paths, ports and secrets",
        description="For an operator adding the IVR to an existing PBX: writes every file of "
        "asterisk-conf/ rendered (secrets included, mode 600) into DIR; "
        "see asterisk-conf/README.md.")
    render.add_argument("--out", required=True, metavar="DIR")
    render.set_defaults(func=run_render)

    dial = sub.add_parser(
        "dial", help="place a real call into the IVR through Asterisk (AMI) and drive it with keys",
        description="Originates a Local channel into the IVR with the caller ID, sends each key "
        "as DTMF when the IVR waits for one, prints the prompts played (> …) and the keys sent "
        "(< …), and exits when the call ends: 0 when the IVR ran and the call ended, 1 otherwise. "
        "The call enters context hamta-ivr-trusted, as a subscriber's mobile call does (the "
        "network vouches for the caller ID); --untrusted enters hamta-ivr, as a softphone's or "
        "VoIP trunk's call does.",
    )
    dial.add_argument("--from", dest="caller", metavar="MSISDN",
                      help="calling number (omit for a withheld caller ID)")
    dial.add_argument("--untrusted", action="store_true",
                      help="enter context hamta-ivr (softphones, VoIP): the caller ID is not "
                      "vouched for (default: hamta-ivr-trusted, a call from that SIM)")
    dial.add_argument("--keys", default="",
                      help='keys in order, e.g. "3 1 1234# 1"; . lets one question time out, '
                      "h hangs up, ? asks this terminal for more keys when the IVR waits (a "
                      "code sent by SMS); after the last key the caller stays silent")
    dial.add_argument("--ext", default=IVR_EXTENSION,
                      help=f"extension in context {TRUSTED_CONTEXT} or {IVR_CONTEXT} "
                      f"({IVR_EXTENSION} FastAGI, {CLASSIC_EXTENSION} classic AGI)")
    dial.add_argument("--timeout", type=float, default=300.0,
                      help="seconds before the call is hung up and dial fails (default 300)")
    dial.add_argument("--barge-in", action="store_true",
                      help="press each key as soon as a prompt that accepts it starts (faster; "
                      "default: wait until the IVR waits for a key, hearing every prompt)")
    dial.add_argument("--json", action="store_true", help="print the result as JSON at the end")
    dial.set_defaults(func=run_dial)


def _setup() -> tuple[Runtime, AsteriskConfig]:
    runtime = dev.Runtime.detect()
    return runtime, config.load(classic_agi=runtime.classic_agi)


def run_up(args: argparse.Namespace) -> int:
    runtime, cfg = _setup()
    print(f"Asterisk: {dev.up(runtime, cfg, timeout=args.timeout, db=args.db)}")
    ok, lines = dev.status(runtime, cfg)
    print("\n".join(lines))
    return 0 if ok else 1


def run_down(args: argparse.Namespace) -> int:
    runtime, cfg = _setup()
    print(f"Asterisk: {dev.down(runtime, cfg)}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    runtime, cfg = _setup()
    ok, lines = dev.status(runtime, cfg, show_secrets=args.show_secrets)
    print("\n".join(lines))
    return 0 if ok else 1


def run_render(args: argparse.Namespace) -> int:
    cfg = config.load()
    out = config.render(cfg, Path(args.out))
    print(f"rendered {', '.join(config.CONF_FILES)}, pjsip_staff.conf and queues.conf into "
          f"{out}")
    return 0


def _more_keys() -> str:
    """`?` in --keys: the next keys, typed on this terminal (stdout stays for --json)."""
    print("keys> ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


def run_dial(args: argparse.Namespace) -> int:
    keys = caller_keys(args, ask=ami.ASK)
    if not args.ext.isdigit():
        raise UsageError(f"--ext must be digits ({IVR_EXTENSION} or {CLASSIC_EXTENSION})")
    cfg = config.load(create_secrets=False)

    def echo(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    try:
        result = asyncio.run(ami.dial(
            cfg, caller=args.caller, keys=keys, extension=args.ext, timeout=args.timeout,
            spool=str(config.spool_dir()), echo=echo, barge_in=args.barge_in,
            trusted=not args.untrusted, more=lambda: asyncio.to_thread(_more_keys)))
    except ami.AmiError as exc:
        print(f"hamta-ivr dial: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(dict(vars(result), ok=result.ok), sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        print("\n".join(result.summary()))
        if result.error:
            print(f"hamta-ivr dial: {result.error}", file=sys.stderr)
    return 0 if result.ok else 1
