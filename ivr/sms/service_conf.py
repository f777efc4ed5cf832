"""The Kannel groups that bring SMS inquiries to `hamta-ivr ussd serve`, rendered the way
`hamta-ivr asterisk render` renders the dialplan (`hamta-ivr ussd kannel-conf` prints them).

An `sms-service` whose get-url is our /sms callback: smsbox passes the sender (%p) and the text
(%a, recoded to UTF-8 by the smsbox group's `mo-recode`) and sends our answer back as the reply
SMS, in UCS-2 (we answer with `X-Kannel-Coding: 2`); an empty answer sends nothing
(`omit-empty`), which is how a sender past the limits is left unanswered.
"""

from __future__ import annotations

from pathlib import Path

from ivr.usage import UsageError

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


def sms_service(host: str, port: int, accepted_smsc: str | None = None) -> str:
    """The sms-service group answering every SMS to the short code through our callback
    (`accepted_smsc`: only the messages of that smsc-id, when USSD comes through Kannel too)."""
    group = SMS_SERVICE.format(host=host, port=port, path=SMS_PATH)
    return group + (f"accepted-smsc = {accepted_smsc}\n" if accepted_smsc else "")


# --- USSD over SMPP (ivr.call.ussd_kannel) -------------------------------------------------------
# An smsbox splits a reply longer than its `sms-length` (140 octets: 70 UCS-2 characters), while a
# USSD screen holds 160 octets: USSD gets an smsbox of its own (`smsbox-id`), with `sms-length =
# 160`, and bearerbox routes the USSD SMSC's messages to it (`smsbox-route`).
KANNEL_USSD_PATH = "/ussd-kannel"
USSD_SMSC_ID = "ussd"
USSD_SMSBOX_ID = "ussdbox"

USSD_BEARERBOX = """\
group = smsc
smsc = smpp
smsc-id = {smsc_id}
allowed-smsc-id = {smsc_id}
host = {smsc_host}
port = {smsc_port}
transceiver-mode = true
smsc-username = "{username}"
smsc-password = "{password}"
system-type = "USSD"
service-type = "USSD"
max-sms-octets = 160
enquire-link-interval = 30
reconnect-delay = 2

group = smpp-tlv
name = ussd_service_op
tag = 0x0501
type = octetstring
length = 1
smsc-id = {smsc_id}

group = smpp-tlv
name = its_session_info
tag = 0x1383
type = octetstring
length = 2
smsc-id = {smsc_id}

group = smsbox-route
smsbox-id = {smsbox_id}
smsc-id = {smsc_id}
"""

USSD_SMSBOX = """\
# smsbox wants a core group in its file, though it opens nothing of it
group = core
admin-port = 13000

group = smsbox
smsbox-id = {smsbox_id}
bearerbox-host = {bearerbox_host}
bearerbox-port = {bearerbox_port}
sms-length = 160
mo-recode = true
log-file = "{log_file}"
log-level = 1

group = sms-service
keyword = default
catch-all = true
get-url = "http://{host}:{port}{path}?from=%p&text=%a&meta=%D&smsc=%i"
forced-smsc = {smsc_id}
accept-x-kannel-headers = true
max-messages = 1
concatenation = false
omit-empty = true
"""


def ussd_bearerbox(smsc_host: str, smsc_port: int, username: str, password: str,
                   smsc_id: str = USSD_SMSC_ID) -> str:
    """bearerbox's part: the operator's USSD gateway as an SMPP smsc (a transceiver,
    `service-type` USSD, one 160-octet screen never split, only messages routed to it), the
    `smpp-tlv` groups that carry ussd_service_op and its_session_info as meta-data, and the
    route of its messages to the USSD smsbox."""
    return USSD_BEARERBOX.format(smsc_id=smsc_id, smsc_host=smsc_host, smsc_port=smsc_port,
                                 username=username, password=password,
                                 smsbox_id=USSD_SMSBOX_ID)


def ussd_smsbox(host: str, port: int, bearerbox_host: str, bearerbox_port: int,
                log_file: str) -> str:
    """The USSD smsbox's own configuration file: its sms-service brings each USSD message to
    `ussd serve` (host:port) with its meta-data."""
    return USSD_SMSBOX.format(host=host, port=port, path=KANNEL_USSD_PATH,
                              smsbox_id=USSD_SMSBOX_ID, smsc_id=USSD_SMSC_ID,
                              bearerbox_host=bearerbox_host, bearerbox_port=bearerbox_port,
                              log_file=log_file)


def smpp_password(path: str) -> str:
    """The SMPP password kept in `path` (`ussd kannel-conf --password-file`); UsageError naming
    the option when it cannot be read or is no SMPP password."""
    try:
        password = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"--password-file: {exc}") from None
    if not 0 < len(password) <= 8 or '"' in password:
        raise UsageError("--password-file: an SMPP password is 1 to 8 characters, no quotes")
    return password


def ussd_groups(host: str, port: int, smsc: tuple[str, int], system_id: str, password: str,
                bearerbox: tuple[str, int]) -> str:
    """`ussd kannel-conf --ussd-smsc`'s part after the sms-service: bearerbox's groups for the
    operator's USSD gateway, then (after a `# ---` line) the USSD smsbox's own file."""
    return ("# the SMS SMSC groups above need `denied-smsc-id = ussd`: USSD screens never go "
            "out as SMS\n\n" + ussd_bearerbox(*smsc, system_id, password)
            + "# --- the USSD smsbox's own file (smsbox /etc/kannel/ussd-smsbox.conf)\n"
            + ussd_smsbox(host, port, *bearerbox, "/var/log/kannel/ussd-smsbox.log"))
