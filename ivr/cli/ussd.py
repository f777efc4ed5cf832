"""`hamta-ivr ussd serve` (the USSD and SMS-inquiry callbacks, ivr.call.ussd_server), `ussd lab`
(the demo's, ivr.testing.ussd_lab) and `ussd kannel-conf` (the Kannel groups that send SMS
inquiries and SMPP USSD to it, ivr.sms.service_conf)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from ivr.app import Ivr
from ivr.call.ussd_http import trusted_gateways
from ivr.call.ussd_server import DEFAULT_LISTEN, host_port, listen_address, serve_callbacks
from ivr.config import data_dir
from ivr.registry.msisdn import InvalidMsisdn, normalize
from ivr.sms.inquiry import limits_setting
from ivr.sms.service_conf import smpp_password, sms_service, ussd_groups
from ivr.testing.kannel import missing
from ivr.testing.ussd_lab import at_terminal
from ivr.usage import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    ussd = sub.add_parser("ussd", help="USSD sessions (*7777#) and SMS inquiries over HTTP")
    ussd_sub = ussd.add_subparsers(dest="ussd_command", metavar="ACTION", required=True)
    serve = ussd_sub.add_parser(
        "serve", help="answer a USSD gateway (POST /ussd) and Kannel's SMS inquiries (GET /sms)",
        description="The same flows as a voice call, as USSD screens: an aggregator-style HTTP "
        "gateway POSTs sessionId, phoneNumber and text to /ussd and shows `CON …`/`END …`. "
        "Sessions from ussd_gateways are vouched for (their numbers come from the mobile "
        "network). Kannel's sms-service (`ussd kannel-conf`) GETs /sms for each SMS inquiry.")
    serve.add_argument("--listen", metavar="HOST:PORT",
                       help=f"address to listen on (default: ussd_listen, else {DEFAULT_LISTEN})")
    serve.set_defaults(func=run_serve)
    lab = ussd_sub.add_parser(
        "lab", help="for the demo: USSD and SMS inquiries on a local Kannel, from this terminal",
        description="Starts Kannel (bearerbox and two smsboxes) bound over SMPP to a test USSD "
        "gateway and fakesmsc, with the groups `ussd kannel-conf` renders, and the callbacks of "
        "`ussd serve`. Then: `dial` dials *7777#, a line is the subscriber's reply to the "
        "screen, `sms TEXT` sends TEXT to 7777 as an SMS; end of input stops everything.")
    lab.add_argument("--from", dest="caller", metavar="MSISDN", default="09122222222",
                     help="the subscriber's number (default the demo buyer, 09122222222)")
    lab.add_argument("--folder", metavar="DIR",
                     help="Kannel's config and logs (default <data dir>/ussd-lab)")
    lab.set_defaults(func=run_lab)
    conf = ussd_sub.add_parser(
        "kannel-conf", help="print the Kannel groups for SMS inquiries and USSD over SMPP",
        description="Without --ussd-smsc: the sms-service group that brings SMS inquiries to "
        "`ussd serve` (for kannel.conf). With it: also bearerbox's groups for the operator's "
        "USSD gateway as an SMPP smsc (smsc, smpp-tlv for ussd_service_op and "
        "its_session_info, smsbox-route) and, after a `# ---` line, the USSD smsbox's own file.")
    conf.add_argument("--listen", metavar="HOST:PORT", help="where `ussd serve` listens")
    conf.add_argument("--ussd-smsc", metavar="HOST:PORT", help="the operator's USSD gateway")
    conf.add_argument("--system-id", default="hamta", help="the SMPP system_id (default hamta)")
    conf.add_argument("--password-file", help="a file holding the SMPP password (8 characters "
                      "at most)")
    conf.add_argument("--bearerbox", metavar="HOST:PORT", default="127.0.0.1:13001",
                      help="bearerbox's smsbox-port, for the USSD smsbox (default "
                      "127.0.0.1:13001)")
    conf.set_defaults(func=run_conf)


def run_conf(args: argparse.Namespace) -> int:
    host, port = listen_address(args.listen)
    print(sms_service(host, port), end="")
    if not args.ussd_smsc:
        return 0
    smsc = host_port(args.ussd_smsc, "--ussd-smsc")
    bearerbox = host_port(args.bearerbox, "--bearerbox")
    if not args.password_file:
        raise UsageError("--ussd-smsc needs --password-file (the SMPP password, kept out of "
                         "the command line)")
    password = smpp_password(args.password_file)
    print(ussd_groups(host, port, smsc, args.system_id, password, bearerbox), end="")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    host, port = listen_address(args.listen)
    gateways, limits = trusted_gateways(), limits_setting()
    ivr = Ivr.open(args.db)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_callbacks(ivr, host, port, gateways, limits))
    finally:
        ivr.close()
    return 0


def run_lab(args: argparse.Namespace) -> int:
    """The demo: a subscriber at this terminal, the real Kannel between them and the flows."""
    why = missing()
    if why is not None:
        raise UsageError(f"the USSD lab needs Kannel: {why}")
    try:
        international = normalize(args.caller).removeprefix("+")
    except InvalidMsisdn as exc:
        raise UsageError(f"--from: {exc}") from None
    folder = Path(args.folder) if args.folder else data_dir() / "ussd-lab"
    limits = limits_setting()
    ivr = Ivr.open(args.db)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(at_terminal(ivr, folder, limits, args.caller, international))
    finally:
        ivr.close()
    return 0
