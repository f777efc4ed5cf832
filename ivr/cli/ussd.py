"""`hamta-ivr ussd serve` (the USSD and SMS-inquiry callbacks) and `hamta-ivr ussd kannel-conf`
(the Kannel group that sends SMS inquiries to it)."""

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
    conf = ussd_sub.add_parser("kannel-conf", help="print Kannel's sms-service group for SMS "
                               "inquiries, pointing at `ussd serve`")
    conf.add_argument("--listen", metavar="HOST:PORT", help="where `ussd serve` listens")
    conf.set_defaults(func=run_conf)


def listen_address(explicit: str | None) -> tuple[str, int]:
    from ivr.config import setting

    raw = explicit or setting("ussd_listen") or DEFAULT_LISTEN
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen / ussd_listen {raw!r}: write it as HOST:PORT")
    return host, int(port)


def run_conf(args: argparse.Namespace) -> int:
    from ivr.sms.service_conf import sms_service

    host, port = listen_address(args.listen)
    print(sms_service(host, port), end="")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from ivr.app import Ivr
    from ivr.call import tiny_http
    from ivr.call.tiny_http import Reply, Request
    from ivr.call.ussd_http import UssdGateway, trusted_gateways
    from ivr.sms.inquiry import SenderLimits, SmsInquiry, limits_setting
    from ivr.sms.service_conf import SMS_PATH, USSD_PATH

    host, port = listen_address(args.listen)
    gateways, limits = trusted_gateways(), limits_setting()
    ivr = Ivr.open(args.db)

    async def run() -> None:
        ussd = UssdGateway(ivr, gateways)
        sms = SmsInquiry(ivr.desk, SenderLimits(limits))

        async def route(request: Request) -> Reply:
            if request.path == USSD_PATH:
                return await ussd.handle(request)
            if request.path == SMS_PATH:
                return await sms.handle(request)
            return 404, "not found"

        server = await tiny_http.serve(route, host, port)
        print(f"USSD on http://{host}:{port}{USSD_PATH}, SMS inquiries on {SMS_PATH}; vouched "
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
