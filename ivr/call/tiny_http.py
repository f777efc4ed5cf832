"""A very small HTTP/1.1 server on asyncio for the gateways' callbacks: a USSD aggregator's POST
(ivr.call.ussd_http) and Kannel's sms-service GET (ivr.sms.inquiry). One request a connection,
parameters from the query string and a form body, a plain-text answer. The project has no web
framework among its dependencies, and these callbacks need none: each is one short exchange from
a gateway on a private network.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_HEAD = 8192
MAX_BODY = 8192
READ_TIMEOUT = 10.0
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]  # query string and form body (the body's win)
    peer: str  # the client's address


# (status, text body) or (status, text body, extra headers)
Reply = tuple[int, str] | tuple[int, str, dict[str, str]]
Handler = Callable[[Request], Awaitable[Reply]]


async def serve(handler: Handler, host: str, port: int) -> asyncio.Server:
    """Start serving `handler` (request -> (status, text body)) on host:port."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(read_request(reader, writer), READ_TIMEOUT)
            reply: Reply = (400, "bad request") if request is None else await handler(request)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        except Exception:
            log.exception("HTTP callback failed")
            reply = (500, "error")
        status, body = reply[0], reply[1]
        extra = "".join(f"{k}: {v}\r\n" for k, v in (reply[2] if len(reply) > 2 else {}).items())
        data = body.encode("utf-8")
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n{extra}"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
        try:
            writer.write(head.encode("ascii") + data)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(connection, host, port)


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                       ) -> Request | None:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, target, _ = parts
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if line)}
    length = int(headers.get("content-length", "0") or 0)
    if length < 0 or length > MAX_BODY:
        return None
    body = (await reader.readexactly(length)).decode("utf-8", "replace") if length else ""
    path, _, query = target.partition("?")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    if body and "form-urlencoded" in headers.get("content-type", "form-urlencoded"):
        params.update(urllib.parse.parse_qsl(body, keep_blank_values=True))
    peer = writer.get_extra_info("peername")
    return Request(method, path, params, str(peer[0]) if peer else "")
