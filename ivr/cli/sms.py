"""`hamta-ivr sms deliver|list|resend`: the SMS receipts of the outbox (ivr.registry.outbox) and
the worker that hands them to Kannel (ivr.sms.worker)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from ivr.registry.service import Registry

STATES = ("pending", "sent", "dead")
log = logging.getLogger("ivr.sms")


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
        "receipts the calls write are printed here, nothing leaves the machine",
        description="Starts bearerbox, smsbox and Kannel's test SMSC (fakesmsc, Debian "
        "kannel-extras) on free loopback ports, delivers the outbox through them and prints "
        "each SMS the SMSC is handed (number and text: demo data). Ctrl-C stops it all.")
    lab.add_argument("--folder", metavar="DIR",
                     help="Kannel's config, store and logs (default <data dir>/kannel-lab)")
    lab.set_defaults(func=run_lab)


def open_outbox(args: argparse.Namespace) -> Registry:
    """The registry, for its outbox only: nothing here verifies a secret, so a dummy pepper,
    never checked against the registry's nor recorded (as `prompts build` reads names)."""
    from ivr.config import PEPPER_MIN_BYTES, db_url

    return Registry.open(db_url(getattr(args, "db", None)), pepper=bytes(PEPPER_MIN_BYTES),
                         check_pepper=False)


def run_deliver(args: argparse.Namespace) -> int:
    from ivr.cli import UsageError
    from ivr.sms.kannel import Kannel, settings
    from ivr.sms.worker import Worker

    if not 0.05 <= args.interval <= 3600:
        raise UsageError("--interval must be between 0.05 and 3600 seconds")
    config = settings()
    with open_outbox(args) as registry:
        worker = Worker(registry.store, Kannel(config))
        if args.once:
            tally = worker.drain()
            print(f"sent {tally.sent}, to retry {tally.retried}, dead {tally.dead}")
            return 0
        stop = stopped_by_signals()
        log.info("SMS worker: delivering through %s as %s, looking every %g s", config.url,
                 config.username, args.interval)
        worker.run(stop, args.interval)
    return 0


def stopped_by_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C: the worker stops after the message in hand."""
    stop = threading.Event()

    def stopping(signum: int, _frame: FrameType | None) -> None:
        log.info("SMS worker: %s, stopping after the message in hand",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    return stop


def run_lab(args: argparse.Namespace) -> int:
    """The demo's SMS: the real worker through a real Kannel to its test SMSC, whose log is
    read back and printed (ivr.testing.kannel)."""
    from ivr.cli import UsageError
    from ivr.config import data_dir
    from ivr.registry.msisdn import national
    from ivr.sms.kannel import Kannel, settings
    from ivr.sms.worker import Worker
    from ivr.testing.kannel import KannelLab, missing

    why = missing()
    if why is not None:
        raise UsageError(f"the SMS lab needs Kannel: {why}")
    folder = Path(args.folder) if args.folder else data_dir() / "kannel-lab"
    kannel: KannelLab | None = None
    try:
        kannel = KannelLab(folder)
        kannel.start()
    except (OSError, RuntimeError) as exc:
        if kannel is not None:
            kannel.stop()  # a box that did start
        raise UsageError(f"the SMS lab could not start Kannel in {folder} ({exc}); name a "
                         "folder this user can write with --folder") from None
    stop = stopped_by_signals()
    try:
        with open_outbox(args) as registry:
            os.environ.update(kannel.settings_env())
            worker = Worker(registry.store, Kannel(settings()))
            sending = threading.Thread(target=worker.run, args=(stop, 0.5), name="sms-worker")
            sending.start()
            print(f"SMS lab: Kannel's test SMSC takes the receipts ({folder}); each is printed "
                  "here", flush=True)
            shown = 0
            while not stop.wait(0.5):
                got = kannel.delivered()
                for sms in got[shown:]:
                    print(f"SMS to {national(sms.to)}: {sms.text}", flush=True)
                shown = len(got)
            sending.join()
    finally:
        kannel.stop()
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ivr.cli.common import plain
    from ivr.registry.outbox import messages
    from ivr.sms.worker import masked

    with open_outbox(args) as registry:
        found = messages(registry.store, state=args.state, limit=max(1, args.limit))
    rows = [plain(m) | {"msisdn": masked(m.msisdn)} for m in found]
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return 0
    if not rows:
        print("no messages" + (f" {args.state}" if args.state else ""))
    for row in rows:
        when = row["sent_at"] if row["state"] == "sent" else (
            f"next try {row['next_attempt_at']}" if row["state"] == "pending" else "-")
        error = f"  last error: {row['last_error']}" if row["last_error"] else ""
        print(f"{row['message_id']}  {row['state']:7}  tries {row['attempts']}  "
              f"{row['msisdn']}  {row['template']}  {row['created_at']}  {when}{error}")
    return 0


def run_resend(args: argparse.Namespace) -> int:
    from ivr.cli import UsageError
    from ivr.registry.outbox import resend

    with open_outbox(args) as registry:
        why = resend(registry.store, args.message_id)
    if why is not None:
        raise UsageError(f"cannot re-send {args.message_id}: {why} (hamta-ivr sms list --state "
                         "dead lists the ones that can)")
    print(f"{args.message_id} waits to be sent again (hamta-ivr sms deliver sends it)")
    return 0
