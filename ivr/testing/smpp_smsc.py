"""A test SMSC speaking SMPP 3.4 as an operator's USSD gateway does, for Kannel to bind to.

Kannel's smpp smsc binds as a transceiver; this server accepts it, answers enquire_link, and acts
the subscriber's side of USSD: `dial()` sends the deliver_sm a gateway sends when a subscriber
dials `*7777#` (ussd_service_op 1, PSSR indication), `reply()` one with the subscriber's answer
(18, USSR confirm); each submit_sm Kannel sends back (our screen: 2, USSR request, a reply is
awaited; 17, PSSR response, the session ends) is answered and queued for `screen()`.
its_session_info carries the session number in its high byte and, in the low byte's bit 0, the
end of the session (SMPP 3.4, 5.3.2.43).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass

BIND_TRANSCEIVER, SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x09, 0x04, 0x05, 0x06, 0x15
GENERIC_NACK = 0x80000000
RESP = 0x80000000
USSD_SERVICE_OP, ITS_SESSION_INFO = 0x0501, 0x1383
PSSR_INDICATION, USSR_REQUEST, PSSR_RESPONSE, USSR_CONFIRM = 1, 2, 17, 18


@dataclass(frozen=True)
class Screen:
    """A submit_sm Kannel sent: to whom, the text, ussd_service_op and the session."""

    to: str
    text: str
    op: int | None
    session: int | None
    ends: bool

    @property
    def continues(self) -> bool:
        return self.op == USSR_REQUEST and not self.ends


def _cstr(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode("latin-1"), end + 1


def parse_sm(body: bytes) -> tuple[str, str, bytes, int, dict[int, bytes]]:
    """(source, destination, short_message, data_coding, TLVs) of a submit_sm / deliver_sm."""
    _, at = _cstr(body, 0)  # service_type
    at += 2
    source, at = _cstr(body, at)
    at += 2
    dest, at = _cstr(body, at)
    at += 3  # esm_class, protocol_id, priority_flag
    _, at = _cstr(body, at)  # schedule_delivery_time
    _, at = _cstr(body, at)  # validity_period
    at += 2  # registered_delivery, replace_if_present_flag
    coding = body[at]
    at += 2  # data_coding, sm_default_msg_id
    length = body[at]
    message = body[at + 1:at + 1 + length]
    at += 1 + length
    tlvs: dict[int, bytes] = {}
    while at + 4 <= len(body):
        tag, size = struct.unpack(">HH", body[at:at + 4])
        tlvs[tag] = body[at + 4:at + 4 + size]
        at += 4 + size
    if 0x0424 in tlvs and not message:  # message_payload
        message = tlvs[0x0424]
    return source, dest, message, coding, tlvs


def decode(message: bytes, coding: int) -> str:
    return message.decode("utf-16-be") if coding == 8 else message.decode("latin-1")


class UssdSmsc:
    """One bound ESME (Kannel) at a time, on 127.0.0.1:`port`."""

    def __init__(self, port: int, system_id: str = "hamta", password: str = "ussdtest",
                 short_code: str = "7777") -> None:
        self.port, self.system_id, self.password = port, system_id, password
        self.short_code = short_code
        self.screens: asyncio.Queue[Screen] = asyncio.Queue()
        self.bound = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._seq = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._server is not None:
            self._server.close()

    # --- the subscriber's side --------------------------------------------------------------------
    async def dial(self, msisdn: str, code: str, session: int) -> None:
        """The subscriber dials `code` (`*7777#`): a new session."""
        await self._deliver(msisdn, code, PSSR_INDICATION, session)

    async def reply(self, msisdn: str, text: str, session: int) -> None:
        await self._deliver(msisdn, text, USSR_CONFIRM, session)

    async def screen(self, timeout: float = 20) -> Screen:
        return await asyncio.wait_for(self.screens.get(), timeout)

    async def _deliver(self, msisdn: str, text: str, op: int, session: int) -> None:
        await asyncio.wait_for(self.bound.wait(), 30)
        body = (b"USSD\0" + b"\x01\x01" + msisdn.encode() + b"\0" + b"\x00\x00"
                + self.short_code.encode() + b"\0" + b"\x00\x00\x00" + b"\0\0" + b"\x00\x00"
                + b"\x00\x00" + bytes([len(text.encode("latin-1"))]) + text.encode("latin-1")
                + struct.pack(">HHB", USSD_SERVICE_OP, 1, op)
                + struct.pack(">HHH", ITS_SESSION_INFO, 2, session << 8))
        self._send(DELIVER_SM, 0, self._next_seq(), body)

    # --- SMPP -------------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, command: int, status: int, seq: int, body: bytes = b"") -> None:
        assert self._writer is not None, "Kannel has not bound"
        self._writer.write(struct.pack(">IIII", 16 + len(body), command, status, seq) + body)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                length, command, _, seq = struct.unpack(">IIII", await reader.readexactly(16))
                body = await reader.readexactly(length - 16)
                self._handle(command, seq, body)
        self.bound.clear()

    def _handle(self, command: int, seq: int, body: bytes) -> None:
        if command == BIND_TRANSCEIVER:
            system_id, at = _cstr(body, 0)
            password, _ = _cstr(body, at)
            ok = (system_id, password) == (self.system_id, self.password)
            self._send(BIND_TRANSCEIVER | RESP, 0 if ok else 0x0E, seq, b"testsmsc\0")
            if ok:
                self.bound.set()
        elif command == ENQUIRE_LINK:
            self._send(ENQUIRE_LINK | RESP, 0, seq)
        elif command == SUBMIT_SM:
            self._send(SUBMIT_SM | RESP, 0, seq, f"m{seq}\0".encode())
            _, dest, message, coding, tlvs = parse_sm(body)
            op = tlvs.get(USSD_SERVICE_OP)
            info = tlvs.get(ITS_SESSION_INFO)
            self.screens.put_nowait(Screen(
                dest, decode(message, coding), op[0] if op else None,
                info[0] if info and len(info) == 2 else None,
                bool(info[1] & 1) if info and len(info) == 2 else False))
        elif command == UNBIND:
            self._send(UNBIND | RESP, 0, seq)
        elif command & RESP:
            pass  # deliver_sm_resp
        else:
            self._send(GENERIC_NACK, 0x03, seq)
