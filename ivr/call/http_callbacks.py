"""The gateways' HTTP callbacks on aiohttp: a USSD aggregator's POST (ivr.call.ussd_http), Kannel's
sms-service and USSD GETs (ivr.sms.inquiry, ivr.call.ussd_kannel). Handlers see one small Request
(method, path, parameters, peer) and answer (status, text): the web framework stays here, the
gateways' logic in their own modules. Bodies are capped (MAX_BODY): a callback carries a line of
text, never more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

MAX_BODY = 8192


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]  # query string and form body (the body's win)
    peer: str  # the client's address


# (status, text body) or (status, text body, extra headers)
Reply = tuple[int, str] | tuple[int, str, dict[str, str]]
Handler = Callable[[Request], Awaitable[Reply]]


@dataclass
class CallbackServer:
    """A running callback server: the port it listens on (0 asked: the one chosen)."""

    runner: web.AppRunner
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(handler: Handler, host: str, port: int) -> CallbackServer:
    """Serve `handler` on host:port, every path and method (the handler routes)."""

    async def endpoint(request: web.Request) -> web.Response:
        params = dict(request.query)
        if request.can_read_body:
            form = await request.post()  # form-urlencoded (or multipart) bodies; else empty
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
        reply = await handler(Request(request.method, request.path, params,
                                      request.remote or ""))
        return web.Response(status=reply[0], text=reply[1],
                            headers=reply[2] if len(reply) > 2 else None)

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/{path:.*}", endpoint)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    chosen = port or runner.addresses[0][1]
    return CallbackServer(runner, chosen)
