"""The Kannel groups that bring SMS inquiries to `hamta-ivr ussd serve`, rendered the way
`hamta-ivr asterisk render` renders the dialplan (`hamta-ivr ussd kannel-conf` prints them).

An `sms-service` whose get-url is our /sms callback: smsbox passes the sender (%p) and the text
(%a, recoded to UTF-8 by the smsbox group's `mo-recode`) and sends our answer back as the reply
SMS, in UCS-2 (we answer with `X-Kannel-Coding: 2`); an empty answer sends nothing
(`omit-empty`), which is how a sender past the limits is left unanswered.
"""

from __future__ import annotations

SMS_PATH = "/sms"
USSD_PATH = "/ussd"

SMS_SERVICE = """\
group = sms-service
keyword = default
catch-all = true
get-url = "http://{host}:{port}{path}?from=%p&to=%P&text=%a"
accept-x-kannel-headers = true
max-messages = 2
concatenation = true
omit-empty = true
"""


def sms_service(host: str, port: int) -> str:
    """The sms-service group answering every SMS to the short code through our callback."""
    return SMS_SERVICE.format(host=host, port=port, path=SMS_PATH)
