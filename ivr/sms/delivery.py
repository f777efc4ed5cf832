"""Delivering the outbox's SMS receipts (`hamta-ivr sms deliver`, the service hamta-ivr-sms):
the registry opened for its outbox only, the worker (ivr.sms.worker) run until SIGTERM or
Ctrl-C, or once."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from ivr.config import PEPPER_MIN_BYTES
from ivr.registry.service import Registry
from ivr.sms.kannel import Kannel, settings
from ivr.sms.worker import Worker

log = logging.getLogger("ivr.sms")


def open_outbox(url: str) -> Registry:
    """The registry, for its outbox only: nothing here verifies a secret, so a dummy pepper,
    never checked against the registry's nor recorded (as `prompts build` reads names)."""
    return Registry.open(url, pepper=bytes(PEPPER_MIN_BYTES), check_pepper=False)


def stopped_by_signals() -> threading.Event:
    """An event set by SIGTERM or Ctrl-C: the worker stops after the message in hand."""
    stop = threading.Event()

    def stopping(signum: int, _frame: FrameType | None) -> None:
        log.info("SMS worker: %s, stopping after the message in hand",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    return stop


def deliver(url: str, *, once: bool, interval: float) -> str | None:
    """Send what is due through Kannel: once (the tally, to print), or every `interval` seconds
    until SIGTERM or Ctrl-C (None)."""
    config = settings()
    with open_outbox(url) as registry:
        worker = Worker(registry.store, Kannel(config))
        if once:
            tally = worker.drain()
            return f"sent {tally.sent}, to retry {tally.retried}, dead {tally.dead}"
        stop = stopped_by_signals()
        log.info("SMS worker: delivering through %s as %s, looking every %g s", config.url,
                 config.username, interval)
        worker.run(stop, interval)
    return None
