"""Kannel's smsbox HTTP interface, `sendsms`: one GET per message, UCS-2 (`coding=2`) from UTF-8.

Kannel answers 202 ("0: Accepted for delivery", "3: Queued for later delivery") once bearerbox
has the message in its own store: from then on delivery to the SMSC is Kannel's job. Anything
else is sorted for the worker: a connection error, a timeout, 5xx, 408 or 429 are worth another
try; 401/403 (a wrong sendsms-user: the operator fixes kannel_username/kannel_password_file and
the messages are still waiting) too; any other 4xx refuses this message for good.

Settings (ivr.config): kannel_url (smsbox's sendsms URL), kannel_username, the password in
kannel_password_file or HAMTA_KANNEL_PASSWORD, sms_sender (`from`). SMS is off while kannel_url
is unset: receipts still queue in the outbox, nothing sends them.
"""

from __future__ import annotations

import dataclasses
import http.client
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import StrEnum

from ivr import config
from ivr.config import KANNEL_PASSWORD_ENV, ConfigError
from ivr.registry.sim_codes import SmsSender
from ivr.sms import texts

TIMEOUT = 10.0  # seconds for one sendsms request (the worker's lease is longer)
RETRY_STATUSES = frozenset({401, 403, 408, 429})
PASSWORD_ENV = KANNEL_PASSWORD_ENV


class Verdict(StrEnum):
    SENT = "sent"  # Kannel took it (202)
    RETRY = "retry"  # try again later
    REFUSED = "refused"  # this message will never be taken


@dataclass(frozen=True)
class Answer:
    verdict: Verdict
    detail: str  # Kannel's status and first line, or the error: for last_error (no text, no number)


@dataclass(frozen=True)
class KannelSettings:
    url: str
    username: str
    password: str
    sender: str
    timeout: float = TIMEOUT

    def __repr__(self) -> str:  # never the password
        return f"KannelSettings(url={self.url!r}, username={self.username!r}, sender=" \
               f"{self.sender!r})"


def configured() -> bool:
    """SMS is on: kannel_url is set."""
    return bool(config.current().kannel_url)


def settings() -> KannelSettings:
    """The Kannel settings, each checked; a ConfigError naming the setting and its fix."""
    s = config.current()
    url = s.kannel_url
    if not url:
        raise ConfigError("SMS is not configured: set kannel_url (HAMTA_KANNEL_URL) to Kannel's "
                          "sendsms URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{s.source('kannel_url')} {url!r} is not an http(s) URL; set it "
                          "to smsbox's sendsms URL, e.g. http://127.0.0.1:13013/cgi-bin/sendsms")
    username = s.kannel_username
    if not username:
        raise ConfigError("kannel_username (HAMTA_KANNEL_USERNAME) is not set; set it to the "
                          "username of a sendsms-user group in kannel.conf")
    sender = s.sms_sender
    if not sender:
        raise ConfigError("sms_sender (HAMTA_SMS_SENDER) is not set; set it to the number or "
                          "name SMS receipts come from, e.g. 7777")
    return KannelSettings(url=url, username=username, password=_password(s), sender=sender)


def _password(s: config.Settings) -> str:
    if s.kannel_password:
        return s.kannel_password
    path = s.kannel_password_file
    if path is None:
        raise ConfigError("no Kannel password: set kannel_password_file (HAMTA_KANNEL_PASSWORD_"
                          "FILE) to a file holding the sendsms-user's password (chmod 600, "
                          "owned by serve's user), or HAMTA_KANNEL_PASSWORD")
    try:
        password = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {s.source('kannel_password_file')} {path} "
                          f"({exc.strerror}); it must be a file this user can read (chmod 600, "
                          "owned by this user)") from exc
    if not password:
        raise ConfigError(f"{s.source('kannel_password_file')} {path} is empty; write the "
                          "sendsms-user's password in it")
    return password


class Kannel:
    """A sendsms client. Thread-safe (one request per call, nothing shared)."""

    def __init__(self, config: KannelSettings) -> None:
        self.config = config

    def query(self, to: str, text: str) -> str:
        return urllib.parse.urlencode({
            "username": self.config.username, "password": self.config.password,
            "from": self.config.sender, "to": to, "text": text,
            "coding": "2", "charset": "UTF-8",
        })

    def probe(self) -> Answer:
        """Is smsbox there and are the credentials right, without sending anything: a sendsms
        request with no recipient (Kannel checks the user first: 403 when wrong, then refuses
        the missing number with 400). SENT here means "ready"."""
        query = urllib.parse.urlencode({"username": self.config.username,
                                        "password": self.config.password})
        answer = self._get(f"{self.config.url}?{query}")
        if answer.verdict == Verdict.REFUSED and "receiver" in answer.detail:
            return Answer(Verdict.SENT, answer.detail)
        return answer if answer.verdict != Verdict.SENT else Answer(
            Verdict.REFUSED, f"{answer.detail} (not Kannel's sendsms?)")

    def send(self, to: str, text: str) -> Answer:
        return self._get(f"{self.config.url}?{self.query(to, text)}")

    def _get(self, url: str) -> Answer:
        try:
            with urllib.request.urlopen(url, timeout=self.config.timeout) as reply:
                status, body = reply.status, reply.read(200)
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read(200)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Answer(Verdict.RETRY, f"Kannel not reachable: {reason}")
        detail = f"HTTP {status}: {_first_line(body)}"
        if 200 <= status < 300:
            return Answer(Verdict.SENT, detail)
        if status >= 500 or status in RETRY_STATUSES:
            return Answer(Verdict.RETRY, detail)
        return Answer(Verdict.REFUSED, detail)


CODE_TIMEOUT = 5.0  # seconds: an SMS code is sent while the caller waits on the line


def code_sender() -> SmsSender | None:
    """How the registry sends one-time SMS codes (ivr.registry.sim_codes): at once, through
    sendsms, while the caller waits — not through the outbox, so the code is never stored. None
    when SMS is not configured (kannel_url unset); a half-configured Kannel is a ConfigError
    naming the setting, at start."""
    if not configured():
        return None
    client = Kannel(dataclasses.replace(settings(), timeout=CODE_TIMEOUT))

    def send(to: str, template: str, params: dict[str, str]) -> bool:
        return client.send(to, texts.render(template, params)).verdict is Verdict.SENT
    return send


def _first_line(body: bytes) -> str:
    lines = body.decode("utf-8", "replace").strip().splitlines()
    return lines[0][:120] if lines else ""
