"""`hamta-ivr sms deliver|list|resend|lab`: the SMS receipts of the outbox (ivr.registry.outbox),
the worker that hands them to Kannel (ivr.sms.worker) and the demo's lab (ivr.sms.lab)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ivr.cli.common import plain, print_rows
from ivr.config import data_dir, db_url
from ivr.registry.outbox import messages, resend
from ivr.sms import lab
from ivr.sms.delivery import deliver, open_outbox
from ivr.sms.worker import masked
from ivr.usage import UsageError

STATES = ("pending", "sent", "dead")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "sms", help="deliver, list and re-send the SMS receipts (Kannel)",
        description="Receipts of ownership moves, codes and lockouts are written in the change's "
        "own transaction; `deliver` sends them through Kannel's sendsms (kannel_url, "
        "kannel_username, kannel_password_file, sms_sender).")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    deliver = actions.add_parser(
        "deliver", help="run the delivery worker (the service hamta-ivr-sms runs this)",
        description="Claim due messages, send each through Kannel, retry with back-off, and "
        "mark the ones that cannot be sent dead. Stops on SIGTERM or Ctrl-C after the message "
        "in hand.")
    deliver.add_argument("--once", action="store_true",
                         help="send what is due now, then exit (for scripts and cron)")
    deliver.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                         help="how often to look for due messages (default 1)")
    deliver.set_defaults(func=run_deliver)
    listing = actions.add_parser("list", help="the newest messages: state, tries, masked "
                                 "number, template, last error (never the text)")
    listing.add_argument("--state", choices=STATES, help="only messages in this state")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=run_list)
    resend = actions.add_parser("resend", help="a dead message back to pending, due now")
    resend.add_argument("message_id", metavar="MESSAGE_ID")
    resend.set_defaults(func=run_resend)
    lab = actions.add_parser(
        "lab", help="for the demo: a local Kannel with its test SMSC and the worker; the "
        "receipts the calls write and serve's SMS codes are printed here, nothing leaves the "
        "machine",
        description="Starts bearerbox, smsbox and Kannel's test SMSC (fakesmsc, Debian "
        "kannel-extras) on loopback ports, delivers the outbox through them and prints each "
        "SMS the SMSC is handed (number and text: demo data). When kannel_url names this "
        "machine (127.0.0.1 or localhost) smsbox takes its port, kannel_username and the "
        "password of kannel_password_file (created, mode 600, when missing), so the one-time "
        "codes serve sends are printed too, marked SMS CODE; otherwise free ports. Ctrl-C "
        "stops it all.")
    lab.add_argument("--folder", metavar="DIR",
                     help="Kannel's config, store and logs (default <data dir>/kannel-lab)")
    lab.set_defaults(func=run_lab)


def run_deliver(args: argparse.Namespace) -> int:
    if not 0.05 <= args.interval <= 3600:
        raise UsageError("--interval must be between 0.05 and 3600 seconds")
    tally = deliver(db_url(args.db), once=args.once, interval=args.interval)
    if tally is not None:
        print(tally)
    return 0


def run_lab(args: argparse.Namespace) -> int:
    return lab.run_lab(db_url(args.db),
                       Path(args.folder) if args.folder else data_dir() / "kannel-lab")


def run_list(args: argparse.Namespace) -> int:
    with open_outbox(db_url(args.db)) as registry:
        found = messages(registry.store, state=args.state, limit=max(1, args.limit))
    rows = [plain(m) | {"msisdn": masked(m.msisdn)} for m in found]
    return print_rows(rows, args.json, _message_line,
                      "no messages" + (f" {args.state}" if args.state else ""))


def _message_line(row: dict[str, Any]) -> str:
    when = row["sent_at"] if row["state"] == "sent" else (
        f"next try {row['next_attempt_at']}" if row["state"] == "pending" else "-")
    error = f"  last error: {row['last_error']}" if row["last_error"] else ""
    return (f"{row['message_id']}  {row['state']:7}  tries {row['attempts']}  "
            f"{row['msisdn']}  {row['template']}  {row['created_at']}  {when}{error}")


def run_resend(args: argparse.Namespace) -> int:
    with open_outbox(db_url(args.db)) as registry:
        why = resend(registry.store, args.message_id)
    if why is not None:
        raise UsageError(f"cannot re-send {args.message_id}: {why} (hamta-ivr sms list --state "
                         "dead lists the ones that can)")
    print(f"{args.message_id} waits to be sent again (hamta-ivr sms deliver sends it)")
    return 0
