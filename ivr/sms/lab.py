"""The SMS lab of the demo (`hamta-ivr sms lab`): the real worker through a real Kannel to its
test SMSC (ivr.testing.kannel), each SMS it is handed printed. When the deployment's kannel_url
points at this machine the lab's Kannel takes its port, kannel_username and password (the
password file created, mode 600, when missing), so serve's one-time SMS codes come here too,
printed marked: only a demo shows them."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ivr import config
from ivr.config import ConfigError, Settings, child_env
from ivr.prompts import catalogue
from ivr.registry.msisdn import national
from ivr.sms.delivery import open_outbox, stopped_by_signals
from ivr.sms.kannel import PASSWORD_ENV, Kannel, settings
from ivr.sms.texts import PERSIAN_DIGITS
from ivr.sms.worker import Worker
from ivr.testing.kannel import KannelLab, missing
from ivr.usage import UsageError

log = logging.getLogger("ivr.sms")


def run_lab(db_url: str, folder: Path) -> int:
    """The demo's SMS: the real worker through a real Kannel to its test SMSC, whose log is
    read back and printed (ivr.testing.kannel). When the deployment's kannel_url points at this
    machine the lab's Kannel takes its port, kannel_username and password, so serve's one-time
    SMS codes come here too (printed marked: only a demo shows them)."""
    why = missing()
    if why is not None:
        raise UsageError(f"the SMS lab needs Kannel: {why}")
    kannel_url = config.current().kannel_url  # the deployment's, before the lab's own replaces it
    deployment = deployment_sendsms()
    if deployment is not None:
        kannel_config = settings()  # every setting checked (sms_sender too) before Kannel starts
    stop = stopped_by_signals()  # Ctrl-C while the boxes start still stops them
    kannel: KannelLab | None = None
    try:
        if deployment is None:
            kannel = KannelLab(folder)
        else:
            kannel = KannelLab(folder, password=deployment.password, sendsms_port=deployment.port,
                               username=deployment.username,
                               password_file=deployment.password_file)
        kannel.start()
    except (OSError, RuntimeError) as exc:
        if kannel is not None:
            kannel.stop()  # a box that did start
        raise UsageError(f"the SMS lab could not start Kannel in {folder} ({exc}); name a "
                         "folder this user can write with --folder") from None
    if deployment is None:
        lab_env = child_env() | kannel.settings_env()  # the lab's Kannel for this process
        lab_env.pop(PASSWORD_ENV, None)  # the lab's own password file, not another Kannel's
        config.use(Settings.load(lab_env, strict=False))
        kannel_config = settings()
        codes = ("kannel_url is not set, so serve sends no SMS codes" if kannel_url is None
                 else f"kannel_url points at {urllib.parse.urlsplit(kannel_url).hostname}, "
                 "not this machine: serve's SMS codes go there")
        banner = (f"SMS lab: Kannel's test SMSC takes the receipts ({folder}) on free ports; "
                  f"each is printed here ({codes})")
    else:
        banner = (f"SMS lab: Kannel's sendsms on 127.0.0.1:{deployment.port} as "
                  f"{deployment.username} (the deployment's kannel_url and kannel_username); "
                  f"its test SMSC takes the receipts and serve's SMS codes ({folder}), each "
                  "printed here\nSMS lab: one-time SMS codes are printed too, marked SMS CODE, "
                  "only because this is a demo on Kannel's test SMSC: a real SMSC sends them to "
                  "the phone alone")
    try:
        with open_outbox(db_url) as registry:
            worker = Worker(registry.store, Kannel(kannel_config))
            sending = threading.Thread(target=worker.run, args=(stop, 0.5), name="sms-worker")
            sending.start()
            print(banner, flush=True)
            shown = 0
            codes_in = code_patterns()
            while not stop.wait(0.5):
                got = kannel.delivered()
                for sms in got[shown:]:
                    print(lab_line(national(sms.to), sms.text, codes_in), flush=True)
                shown = len(got)
            sending.join()
    finally:
        kannel.stop()
        if deployment is None:
            config.use(None)  # the lab's own Settings end with it
    return 0


@dataclass(frozen=True)
class LabSendsms:
    """The deployment's sendsms settings the lab's Kannel takes."""
    port: int
    username: str
    password: str
    password_file: Path | None  # None: the password is HAMTA_KANNEL_PASSWORD's


LOCAL_HOSTS = ("127.0.0.1", "localhost")
LAB_URL = "http://127.0.0.1:13013/cgi-bin/sendsms"


def deployment_sendsms() -> LabSendsms | None:
    """kannel_url, kannel_username and the sendsms password when kannel_url points at this
    machine (127.0.0.1 or localhost) and its port is free; None when it is unset or names another
    host. The password file is created (a random password, mode 600) when it does not exist."""
    settings = config.current()
    url = settings.kannel_url
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if (parts.hostname or "").lower() not in LOCAL_HOSTS:
        return None
    where = settings.source("kannel_url")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or port is None or parts.path != "/cgi-bin/sendsms":
        raise UsageError(f"{where} {url!r} names this machine, but the SMS lab's Kannel "
                         f"answers only http://127.0.0.1:PORT/cgi-bin/sendsms; set it to e.g. "
                         f"{LAB_URL}")
    username = settings.kannel_username
    if not username:
        raise ConfigError("kannel_username (HAMTA_KANNEL_USERNAME) is not set; set it to the "
                          "sendsms user the SMS lab's Kannel should take, e.g. hamta")
    if not kannel_conf_safe(username):
        raise ConfigError(f"{settings.source('kannel_username')} {username!r} holds a space, a "
                          "quote, a backslash or a control character; use letters and digits")
    port_free(port)  # before a password file is made
    password, password_file = lab_password()
    return LabSendsms(port, username, password, password_file)


def kannel_conf_safe(value: str) -> bool:
    """A value kannel.conf takes in quotes as it is."""
    return value.isprintable() and not any(c in value for c in ' "\\')


def lab_password() -> tuple[str, Path | None]:
    """HAMTA_KANNEL_PASSWORD, else kannel_password_file's password, the file created with a
    fresh random one (mode 600) when it does not exist; ConfigError naming the setting."""
    settings = config.current()
    password = settings.kannel_password
    if password:
        if not kannel_conf_safe(password):
            raise ConfigError(f"{PASSWORD_ENV} holds a space, a quote, a backslash or a control "
                              "character, which kannel.conf cannot take; use letters and digits")
        return password, None
    path = settings.kannel_password_file
    if path is None:
        raise ConfigError("kannel_password_file (HAMTA_KANNEL_PASSWORD_FILE) is not set; set it "
                          "to a file for the sendsms password, in a folder this user can write "
                          "(the SMS lab creates it, mode 600), e.g. /var/lib/hamta-ivr/"
                          "kannel-password")
    where = f"{settings.source('kannel_password_file')} {path}"
    fix = ("it must be a file the user running serve and the lab can read (chmod 600, owned "
           "by that user); or remove it and let the lab make a new one")
    try:
        created = _create_password_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot create {where} ({exc.strerror}); name a file in a folder "
                          "this user can write, or create it with a password (chmod 600, owned "
                          "by the user running serve and the lab)") from exc
    if created:
        log.info("SMS lab: wrote a new sendsms password to %s (mode 600)", path)
    try:
        password = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read {where} ({reason}); {fix}") from exc
    if not password:
        raise ConfigError(f"{where} is empty; write the sendsms password in it, or remove it "
                          "and let the lab make one")
    if not kannel_conf_safe(password):
        raise ConfigError(f"{where} holds a space, a quote, a backslash or a control character, "
                          "which kannel.conf cannot take; remove it and let the lab make one")
    return password, path


def _create_password_file(path: Path) -> bool:
    """A new random password at `path` (mode 600) unless a file is there; True when made.
    Written aside and linked into place: a reader never sees half a file."""
    if path.exists():
        return False
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(16) + "\n")
        os.link(aside, path)
    except FileExistsError:
        return False  # made meanwhile by another
    finally:
        aside.unlink(missing_ok=True)
    return True


def port_free(port: int) -> None:
    """The lab can listen on 127.0.0.1:port; else a UsageError naming kannel_url."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(
                f"the SMS lab cannot listen on 127.0.0.1:{port}, the port of "
                f"{config.current().source('kannel_url')} ({exc.strerror}): another Kannel or "
                "SMS lab holds it? stop that, or set kannel_url to a free port above 1023 and "
                "restart serve") from None


def code_patterns() -> list[tuple[str, re.Pattern[str]]]:
    """What each one-time SMS code's text (`sms_sim_code_<purpose>`) looks like once sent:
    (purpose, pattern whose group 1 is the code)."""
    found = []
    for key, entry in catalogue.messages().items():
        if not key.startswith("sms_sim_code_") or "{code}" not in entry["text"]:
            continue
        pattern = "".join(
            "([0-9۰-۹]+)" if piece == "{code}" else ".*?" if piece.startswith("{")
            else re.escape(piece.translate(PERSIAN_DIGITS))
            for piece in re.split(r"(\{\w+\})", entry["text"]))
        found.append((key.removeprefix("sms_sim_code_").replace("_", " "),
                      re.compile(pattern, re.DOTALL)))
    return found


def lab_line(number: str, text: str, codes: list[tuple[str, re.Pattern[str]]]) -> str:
    """How the lab prints one SMS: a one-time code stands out, in Latin digits to key."""
    for purpose, pattern in codes:
        match = pattern.fullmatch(text)
        if match:
            code = match.group(1).translate(LATIN_DIGITS)
            return (f"SMS CODE to {number}: {code}  ({purpose}; key it on the call that asked; "
                    "shown only because this demo's SMSC is Kannel's test one)")
    return f"SMS to {number}: {text}"


LATIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789")
