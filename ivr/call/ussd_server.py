"""The HTTP server of `hamta-ivr ussd serve`: an aggregator-style USSD gateway (POST /ussd),
Kannel's USSD over SMPP and Kannel's SMS inquiries, each on its own path
(ivr.sms.service_conf), all over the same flows as a voice call."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from ivr import config
from ivr.app import Ivr
from ivr.call import http_callbacks
from ivr.call.http_callbacks import Reply, Request
from ivr.call.ussd_http import UssdGateway
from ivr.call.ussd_kannel import KannelUssd
from ivr.sms.inquiry import SenderLimits, SmsInquiry
from ivr.sms.service_conf import KANNEL_USSD_PATH, SMS_PATH, USSD_PATH
from ivr.usage import UsageError

DEFAULT_LISTEN = "127.0.0.1:13140"


def listen_address(explicit: str | None) -> tuple[str, int]:
    """Where `ussd serve` listens: --listen, else `ussd_listen`, else DEFAULT_LISTEN."""
    if explicit:
        return host_port(explicit, "--listen")
    return config.current().checked("ussd_listen").ussd_listen  # checked by the settings room


def host_port(raw: str, option: str) -> tuple[str, int]:
    """HOST:PORT as (host, port); UsageError naming `option` otherwise."""
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} {raw!r}: write it as HOST:PORT")
    return host, int(port)


async def serve_callbacks(ivr: Ivr, host: str, port: int, gateways: Collection[str],
                          limits: tuple[tuple[int, float], ...]) -> None:
    """Answer the three callbacks on host:port until cancelled; `gateways`: the USSD gateways
    whose sessions are vouched for, `limits`: the SMS inquiry's per-sender limits."""
    ussd = UssdGateway(ivr, frozenset(gateways))
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

    server = await http_callbacks.serve(route, host, port)
    print(f"USSD on http://{host}:{port}{USSD_PATH} (HTTP gateways) and {KANNEL_USSD_PATH} "
          f"(Kannel, SMPP), SMS inquiries on {SMS_PATH}; vouched "
          f"gateways: {', '.join(sorted(gateways)) or 'none'}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
        await ussd.close()
