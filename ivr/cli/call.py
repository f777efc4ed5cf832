"""`hamta-ivr call` (the console caller) and `hamta-ivr calls` (the call log)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

from ivr.app import Ivr
from ivr.call.agi_protocol import printable
from ivr.call.api import Call
from ivr.call.console import ConsoleCall, scripted_keys
from ivr.call.ussd_console import ConsoleUssdCall, scripted_replies
from ivr.cli.common import caller_keys, open_registry, plain, print_rows
from ivr.flows.session import CallResult


def register(sub: argparse._SubParsersAction) -> None:
    call = sub.add_parser(
        "call", help="place a call in-process (console caller)",
        description="Run a call against the registry in this terminal. Without --keys it is "
        "interactive; with --keys the keys are typed ahead and silence follows them.",
    )
    call.add_argument("--from", dest="caller", metavar="MSISDN",
                      help="calling number: a call from that SIM, its caller ID vouched for by "
                      "the mobile network (omit for a withheld caller ID, never vouched for)")
    call.add_argument("--untrusted", action="store_true",
                      help="the caller ID is not vouched for, as from a softphone or a VoIP "
                      "trunk: it proves nothing about who calls")
    call.add_argument("--keys", help='keys typed ahead, e.g. "3 1 1234# 1" (. pauses, h hangs up)')
    call.add_argument("--ussd", action="store_true",
                      help="a USSD session (*7777#) instead of a voice call: the same flows, "
                      "shown as screens; replies are whole (an IMEI, a PIN, a menu digit)")
    call.add_argument("--replies", help='with --ussd: the replies in order, e.g. "1 '
                      '359881234567890" (. no reply, h ends the session); without it, '
                      "interactive")
    call.set_defaults(func=run_call)

    calls = sub.add_parser("calls", help="list the call log, newest first")
    calls.add_argument("--json", action="store_true", help="print JSON")
    calls.set_defaults(func=list_calls)


def run_call(args: argparse.Namespace) -> int:
    """A voice call, or with --ussd/--replies one USSD session, in the terminal."""
    trusted = bool(args.caller) and not args.untrusted
    make: Callable[[], Call]
    if args.ussd or args.replies is not None:
        if args.keys is not None:
            raise SystemExit("--keys is for a voice call; a USSD session takes --replies")
        caller_keys(args)  # checks --from
        replies, what = scripted_replies(args.replies or ""), "session"
        make = lambda: ConsoleUssdCall(caller_id=args.caller, replies=replies,  # noqa: E731
                                       interactive=args.replies is None, caller_trusted=trusted)
    else:
        keys, what = scripted_keys(caller_keys(args)), "call"
        make = lambda: ConsoleCall(caller_id=args.caller, keys=keys,  # noqa: E731
                                   interactive=args.keys is None, caller_trusted=trusted)
    ivr = Ivr.open(args.db)

    async def run() -> CallResult:
        async with ivr:
            return await ivr.handle(make())

    print(f"[{what} ended: {asyncio.run(run())}]")
    return 0


def list_calls(args: argparse.Namespace) -> int:
    """The call log. Its ids and channel names came from the AGI peer, and rows older than the
    escaping at the entry (AgiCall.from_env) may hold raw control or bidi characters: the table
    shows them escaped (agi_protocol.printable), --json as JSON escapes (ASCII only)."""
    with open_registry(args) as registry:
        rows = [plain(r) for r in registry.call_log.calls()]
    return print_rows(rows, args.json, lambda row: printable(
        f"{row['started']}  {row['call_id']}  {row['msisdn'] or 'withheld'}  {row['channel']}  "
        f"{' > '.join(row['path']) or '-'}  => {row['outcome'] or 'in progress'}"),
        ascii_only=True)
