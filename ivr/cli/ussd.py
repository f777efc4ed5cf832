"""`hamta-ivr ussd serve` (the USSD and SMS-inquiry callbacks) and `hamta-ivr ussd kannel-conf`
(the Kannel groups that send SMS inquiries and SMPP USSD to it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from ivr.cli import UsageError

log = logging.getLogger(__name__)
DEFAULT_LISTEN = "127.0.0.1:13140"


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


def listen_address(explicit: str | None) -> tuple[str, int]:
    from ivr.config import setting, setting_source

    if explicit:
        return _host_port(explicit, "--listen")
    return _host_port(setting("ussd_listen") or DEFAULT_LISTEN, setting_source("ussd_listen"))


def _host_port(raw: str, option: str) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} {raw!r}: write it as HOST:PORT")
    return host, int(port)


def run_conf(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ivr.sms.service_conf import sms_service, ussd_bearerbox, ussd_smsbox

    host, port = listen_address(args.listen)
    print(sms_service(host, port), end="")
    if not args.ussd_smsc:
        return 0
    smsc_host, smsc_port = _host_port(args.ussd_smsc, "--ussd-smsc")
    box_host, box_port = _host_port(args.bearerbox, "--bearerbox")
    if not args.password_file:
        raise UsageError("--ussd-smsc needs --password-file (the SMPP password, kept out of "
                         "the command line)")
    try:
        password = Path(args.password_file).read_text().strip()
    except OSError as exc:
        raise UsageError(f"--password-file: {exc}") from None
    if not 0 < len(password) <= 8 or '"' in password:
        raise UsageError("--password-file: an SMPP password is 1 to 8 characters, no quotes")
    print("# the SMS SMSC groups above need `denied-smsc-id = ussd`: USSD screens never go "
          "out as SMS\n")
    print(ussd_bearerbox(smsc_host, smsc_port, args.system_id, password), end="")
    print("# --- the USSD smsbox's own file (smsbox /etc/kannel/ussd-smsbox.conf)")
    print(ussd_smsbox(host, port, box_host, box_port, "/var/log/kannel/ussd-smsbox.log"),
          end="")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ivr.app import Ivr
    from ivr.call import tiny_http
    from ivr.call.tiny_http import Reply, Request
    from ivr.call.ussd_http import UssdGateway, trusted_gateways
    from ivr.call.ussd_kannel import KannelUssd
    from ivr.sms.inquiry import SenderLimits, SmsInquiry, limits_setting
    from ivr.sms.service_conf import KANNEL_USSD_PATH, SMS_PATH, USSD_PATH

    host, port = listen_address(args.listen)
    gateways, limits = trusted_gateways(), limits_setting()
    ivr = Ivr.open(args.db)

    async def run() -> None:
        ussd = UssdGateway(ivr, gateways)
        sms = SmsInquiry(ivr.desk, SenderLimits(limits))
        kannel_ussd = KannelUssd(ussd)

        async def route(request: Request) -> Reply:
            if request.path == USSD_PATH:
                return await ussd.handle(request)
            if request.path == KANNEL_USSD_PATH:
                return await kannel_ussd.handle(request)
            if request.path == SMS_PATH:
                return await sms.handle(request)
            return 404, "not found"

        server = await tiny_http.serve(route, host, port)
        print(f"USSD on http://{host}:{port}{USSD_PATH} (HTTP gateways) and {KANNEL_USSD_PATH} "
              f"(Kannel, SMPP), SMS inquiries on {SMS_PATH}; vouched "
              f"gateways: {', '.join(sorted(gateways)) or 'none'}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            await ussd.close()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        ivr.close()
    return 0
