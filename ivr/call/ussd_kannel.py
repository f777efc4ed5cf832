"""USSD through Kannel over SMPP, as operators wire it: the operator's USSD gateway is an SMSC
Kannel binds to (`hamta-ivr ussd kannel-conf --ussd-smsc HOST:PORT` renders the smsc group and
the `smpp-tlv` groups), and each deliver_sm reaches us through an sms-service get-url with its
meta-data (%D): `ussd_service_op` (1: a subscriber dialled the code, PSSR indication; 18: a
reply, USSR confirm) and `its_session_info` (the session number in its high byte). Kannel 1.4.5
passes each TLV as its raw octets, URL-encoded, and takes them back the same way (the smpp-tlv
groups declare them `octetstring`: declared `integer`, what we send back reads as 0).

We answer with the screen as the body and the meta-data Kannel puts on the submit_sm
(`X-Kannel-Meta-Data`): ussd_service_op 2 (USSR request: a reply is awaited) or 17 (PSSR
response: the session ends, and its_session_info's end bit is set), in UCS-2. The sessions are
ivr.call.ussd_http's, keyed by the SMSC's session number and the subscriber's number.
"""

from __future__ import annotations

import re
import urllib.parse

from ivr.call.http_callbacks import Reply, Request
from ivr.call.ussd_http import UssdGateway
from ivr.prompts import catalogue

PSSR_INDICATION, USSR_REQUEST, PSSR_RESPONSE, USSR_CONFIRM = 1, 2, 17, 18


def meta_data(raw: str) -> dict[str, int]:
    """Kannel's meta-data (`?smpp?ussd_service_op=%01&its_session_info=%03%00&`: each TLV's
    octets, URL-encoded) as TLV name -> its value, big-endian."""
    _, _, values = raw.removeprefix("?").partition("?")
    return {name: int.from_bytes(value.encode("latin-1"), "big") for name, value in
            urllib.parse.parse_qsl(values, keep_blank_values=True, encoding="latin-1")}


def meta_value(value: int, octets: int) -> str:
    """A TLV's value as Kannel's meta-data writes it: its octets, URL-encoded."""
    return urllib.parse.quote(value.to_bytes(octets, "big"), safe="")


def dialled_replies(code: str) -> list[str]:
    """`*7777*1#` -> ["1"]: replies typed in the dialled code after the service code."""
    parts = code.strip().strip("#").lstrip("*").split("*")
    return [part for part in parts[1:] if part]


class KannelUssd:
    """The get-url of Kannel's USSD sms-service."""

    def __init__(self, gateway: UssdGateway) -> None:
        self.gateway = gateway

    async def handle(self, request: Request) -> Reply:
        params = request.params
        number = params.get("from", "")
        meta = meta_data(params.get("meta", ""))
        if not number or "ussd_service_op" not in meta:
            return 400, ""
        op = meta["ussd_service_op"]
        info = meta.get("its_session_info", 0)
        number_in_session = info >> 8
        session_id = f"k{number_in_session}-{number}"
        text = params.get("text", "")
        if op == PSSR_INDICATION:  # a new dial: a session left open under that id is over
            old = self.gateway.sessions.pop(session_id, None)
            if old is not None:
                old.call.ended = True
                old.task.cancel()
            session = self.gateway.open(session_id, number, dialled_replies(text), request.peer)
            answer = await self.gateway.next_screen(session)
        elif session_id not in self.gateway.sessions:  # a reply to a session already ended
            answer = "END " + (catalogue.screen("ussd_session_over") or "")
        else:
            answer = await self.gateway.step(session_id, number, text, request.peer,
                                             cumulative=False)
        ends = answer.startswith("END")
        screen = answer[4:] or (catalogue.screen("goodbye") or "")
        op_out = PSSR_RESPONSE if ends else USSR_REQUEST
        reply_meta = (f"?smpp?ussd_service_op={meta_value(op_out, 1)}"
                      f"&its_session_info={meta_value((number_in_session << 8) | int(ends), 2)}")
        headers = {"X-Kannel-Meta-Data": reply_meta, "X-Kannel-Coding": "2"}
        if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", params.get("smsc", "")):
            headers["X-Kannel-SMSC"] = params["smsc"]  # back through the USSD gateway
        return 200, screen, headers
