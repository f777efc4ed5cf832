"""A real Kannel for tests and measurements: bearerbox + smsbox (Debian `kannel`) and Kannel's own
test SMSC, `fakesmsc` (Debian `kannel-extras`), on free loopback ports in a folder of their own.
The demo (`hamta-ivr sms lab`) may fix the sendsms port, user and password to the deployment's
kannel_url, kannel_username and kannel_password_file, so that serve's SMS codes reach it too.

`fakesmsc` logs every message the SMSC is handed as `Got message N: <from to ucs-2 DATA>` (DATA:
the UCS-2 text, URL-encoded), or, for each part of a concatenated one, `<from to udh UDH data
DATA>`; `delivered()` reads that log back into texts, parts joined by their UDH reference.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
USERNAME = "hamta"
SENDER = "7777"
GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (ucs-2|text|udh (\S+) data) (\S*)>")

CONF = """\
group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = "{admin_password}"
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{folder}/bearerbox.log"
log-level = 1
access-log = "{folder}/access.log"
store-type = file
store-location = "{folder}/kannel.store"

group = smsc
smsc = fake
smsc-id = fake
host = 127.0.0.1
port = {smsc}
connect-allow-ip = 127.0.0.1
denied-smsc-id = ussd

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
log-file = "{folder}/smsbox.log"
log-level = 1
mo-recode = true

group = sendsms-user
username = "{username}"
password = "{password}"
max-messages = 2
concatenation = true

{sms_service}"""
NO_SERVICE = """\
group = sms-service
keyword = default
text = "no service"
"""


def missing() -> str | None:
    """Why a real Kannel cannot run here, or None."""
    for path, package in ((BEARERBOX, "kannel"), (SMSBOX, "kannel"),
                          (FAKESMSC, "kannel-extras")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (Debian package {package}; ./setup.sh deps installs it)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Delivered:
    sender: str
    to: str
    text: str


@dataclass
class KannelLab:
    folder: Path
    password: str = "test-sendsms-password"
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    runs: int = 0
    sendsms_port: int | None = None  # fixed (the deployment's kannel_url), else a free one
    username: str = USERNAME
    password_file: Path | None = None  # the deployment's, holding `password`; else one written here
    admin_password: str = field(default_factory=lambda: secrets.token_hex(12))
    sms_service: str = NO_SERVICE  # what answers an SMS sent to us (ivr.sms.service_conf)
    # a second smsbox's configuration (USSD's: ivr.sms.service_conf.ussd_smsbox), made with the
    # bearerbox port and this folder: a function of (bearerbox's smsbox port, folder)
    extra_smsbox: Callable[[int, Path], str] | None = None
    mo_sent: int = 0

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in ("admin", "smsbox", "smsc", "sendsms")}
        if self.sendsms_port is not None:
            self.ports["sendsms"] = self.sendsms_port
        self.conf = self.folder / "kannel.conf"
        self.conf.write_text(CONF.format(folder=self.folder, username=self.username,
                                         password=self.password,
                                         admin_password=self.admin_password,
                                         sms_service=self.sms_service, **self.ports))
        self.conf.chmod(0o600)  # it holds the sendsms password
        if self.password_file is None:
            self.password_file = self.folder / "sendsms-password"
            self.password_file.write_text(self.password + "\n")
            self.password_file.chmod(0o600)  # as doctor wants a password file: its owner's only

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms']}/cgi-bin/sendsms"

    def settings_env(self) -> dict[str, str]:
        """The hamta-ivr settings that point at this Kannel."""
        return {"HAMTA_KANNEL_URL": self.url, "HAMTA_KANNEL_USERNAME": self.username,
                "HAMTA_KANNEL_PASSWORD_FILE": str(self.password_file),
                "HAMTA_SMS_SENDER": SENDER}

    # --- start and stop ---------------------------------------------------------------------------
    def start(self, timeout: float = 30) -> None:
        """bearerbox, then fakesmsc connected to it, then smsbox; back when a message can go."""
        self.runs += 1
        self._spawn("bearerbox", [BEARERBOX, str(self.conf)])
        self._wait_port(self.ports["smsc"], timeout, "bearerbox")
        self._spawn("fakesmsc", [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["smsc"]),
                                 "-m", "0", "0 0 text none"])
        self._spawn("smsbox", [SMSBOX, str(self.conf)])
        self._wait_port(self.ports["sendsms"], timeout, "smsbox")
        if self.extra_smsbox is not None:
            extra = self.folder / "smsbox-extra.conf"
            extra.write_text(self.extra_smsbox(self.ports["smsbox"], self.folder))
            self._spawn("smsbox-extra", [SMSBOX, str(extra)])
        deadline = time.monotonic() + timeout
        while not ("(online" in (status := self.status()) and "smsbox:" in status):
            for name, proc in self.procs.items():  # e.g. smsbox on a port another one holds
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self._tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kannel's fake SMSC or smsbox did not connect:\n{status}")
            time.sleep(0.1)

    def stop(self) -> None:
        """smsbox, bearerbox and fakesmsc stopped (SIGTERM, then SIGKILL after 10 s)."""
        for name in ("smsbox-extra", "smsbox", "bearerbox", "fakesmsc"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.folder / f"{name}-{self.runs}.out", "wb")  # noqa: SIM115 - the child's
        with out:
            self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                                cwd=self.folder)

    def _wait_port(self, port: int, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self._tail(name)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not listen on {port}: {self._tail(name)}")

    def _tail(self, name: str) -> str:
        path = self.folder / f"{name}-{self.runs}.out"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def status(self) -> str:
        url = (f"http://127.0.0.1:{self.ports['admin']}/status.txt?"
               f"password={urllib.parse.quote(self.admin_password)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return str(reply.read().decode("utf-8", "replace"))
        except OSError as exc:
            return f"not answering: {exc}"

    # --- a subscriber's SMS to us ---------------------------------------------------------------
    def send_mo(self, sender: str, to: str, text: str) -> None:
        """One SMS from `sender` to `to` through the test SMSC: fakesmsc is restarted to send
        it (it sends its messages in random order, so one a run), as UCS-2 when not ASCII; the
        reply smsbox sends back is in `delivered()` like any other message."""
        self.mo_sent += 1
        old = self.procs.pop("fakesmsc", None)
        if old is not None and old.poll() is None:
            old.send_signal(signal.SIGTERM)
            old.wait(10)
        if text.isascii():
            spec = f"{sender} {to} text {text}"
        else:
            spec = f"{sender} {to} ucs2 {urllib.parse.quote(text.encode('utf-16-be'))}"
        out = open(self.folder / f"fakesmsc-{self.runs}-mo{self.mo_sent}.out", "wb")  # noqa: SIM115
        with out:
            self.procs["fakesmsc"] = subprocess.Popen(
                [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["smsc"]), "-m", "1", spec],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.folder)

    # --- what the SMSC got ------------------------------------------------------------------------
    def delivered(self) -> list[Delivered]:
        """Every message fakesmsc was handed, in order, over every run."""
        found: list[Delivered] = []
        parts: dict[tuple[str, str, int], dict[int, bytes]] = {}
        logs = [self.folder / f"fakesmsc-{run}{mo}.out" for run in range(1, self.runs + 1)
                for mo in ["", *(f"-mo{n}" for n in range(1, self.mo_sent + 1))]]
        for path in logs:
            if not path.exists():
                continue
            for match in GOT.finditer(path.read_text(errors="replace")):
                sender, to, kind, udh, data = match.groups()
                payload = urllib.parse.unquote_to_bytes(data.replace("+", "%20"))
                if udh is None:
                    text = payload.decode("utf-16-be" if kind == "ucs-2" else "latin-1")
                    found.append(Delivered(sender, to, text))
                    continue
                header = urllib.parse.unquote_to_bytes(udh)  # 05 00 03 ref total seq
                ref, total, seq = header[3], header[4], header[5]
                got = parts.setdefault((sender, to, ref), {})
                got[seq] = payload
                if len(got) == total:
                    whole = b"".join(got[i] for i in sorted(got))
                    found.append(Delivered(sender, to, whole.decode("utf-16-be")))
                    del parts[(sender, to, ref)]
        return found

    def wait_delivered(self, count: int, timeout: float = 30) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.delivered()

    def __enter__(self) -> KannelLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

