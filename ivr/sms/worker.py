"""The SMS delivery worker: claim due outbox rows, hand each to Kannel, mark what happened.

Every state change is one short write transaction, none open while Kannel is asked; the SQL is
the outbox's own (ivr.registry.outbox: `claim`, `mark`), this module decides when and what:
1. claim: due rows (pending, next_attempt_at reached, no live lease) get a lease
   (`claimed_until`, LEASE) and this batch's token (`claimed_by`); on PostgreSQL `FOR UPDATE SKIP
   LOCKED`, on SQLite the write lock: several workers never claim one row at once;
2. send, with no transaction open;
3. mark, guarded by the token (`WHERE claimed_by = :token AND state = 'pending'`): `sent`; or
   another try after an exponential back-off with jitter (connection errors, 5xx); or `dead`
   with `last_error` (a refusal, the last try, a message older than MAX_AGE, a template the
   catalogue lost). A `sent` row is never claimed again: from the registry's side each message
   (its `message_id`) is handed over once.

What the wire gets is at-least-once: if the process dies after Kannel answered 202 and before
step 3 commits, the row is still pending with its lease; when the lease runs out (LEASE) a
worker sends it again and the recipient gets it twice. The window is the time between Kannel's
answer and the commit of one small UPDATE — a few milliseconds on a local database — so a
duplicate takes a crash (or a database outage) at exactly that moment. Kannel's sendsms has no
idempotency key that would close it.

Logs name a message by its id and a masked number (+98912•••4567), never its text.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from ivr.registry import outbox
from ivr.registry.outbox import Claimed
from ivr.registry.store import Store
from ivr.sms.kannel import Answer, Verdict
from ivr.sms.texts import UnknownTemplate, render

log = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, to: str, text: str) -> Answer: ...


@dataclass(frozen=True)
class Policy:
    """How hard the worker tries. Defaults: tries after about 5 s, 10 s, 20 s … up to 30 min
    apart, 10 tries (about 1 h 40 min in all), then dead."""

    max_attempts: int = 10
    base: float = 5.0  # seconds before the second try
    cap: float = 1800.0  # longest wait between tries
    lease: float = 60.0  # a claim's life; longer than one send's timeout
    max_age: timedelta = timedelta(hours=24)  # a receipt older than this is not sent any more
    batch: int = 20

    def backoff(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before the next try after `attempts` failed ones: the exponential step,
        half of it fixed and half random ("equal jitter"), so failed rows do not return at
        once."""
        step = min(self.cap, self.base * 2.0 ** (attempts - 1))
        return step / 2 + step / 2 * rand()


@dataclass
class Tally:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
    ids: list[str] = field(default_factory=list)  # message ids sent

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.dead + self.lost_lease


def masked(msisdn: str) -> str:
    """A number as logs show it: its prefix and last four digits."""
    return f"{msisdn[:6]}•••{msisdn[-4:]}" if len(msisdn) > 10 else "•••"


class Worker:
    def __init__(self, store: Store, sender: Sender, policy: Policy | None = None, *,
                 rand: Callable[[], float] = random.random) -> None:
        self.store = store
        self.sender = sender
        self.policy = policy or Policy()
        self.rand = rand

    # --- 1. claim ---------------------------------------------------------------------------------
    def claim(self) -> tuple[str, list[Claimed]]:
        """Lease up to `batch` due rows to a new token; (token, rows)."""
        return outbox.claim(self.store, batch=self.policy.batch,
                            lease=timedelta(seconds=self.policy.lease))

    # --- 2. send and 3. mark ----------------------------------------------------------------------
    def run_once(self) -> Tally:
        """Claim one batch and deliver it; what happened."""
        token, rows = self.claim()
        tally = Tally()
        for row in rows:
            self._deliver(token, row, tally)
        return tally

    def drain(self, limit: int = 1000) -> Tally:
        """Run batches until none is due (for `sms deliver --once` and tests)."""
        total = Tally()
        for _ in range(limit):
            tally = self.run_once()
            if not tally.handled:
                break
            total.sent += tally.sent
            total.retried += tally.retried
            total.dead += tally.dead
            total.lost_lease += tally.lost_lease
            total.ids += tally.ids
        return total

    def _deliver(self, token: str, row: Claimed, tally: Tally) -> None:
        who = f"SMS {row.message_id} to {masked(row.msisdn)} ({row.template})"
        if self.store.now() - row.created_at > self.policy.max_age:
            self._mark(token, row, tally, dead=f"expired: not sent within "
                       f"{self.policy.max_age.total_seconds() / 3600:g} h", who=who)
            return
        try:
            text = render(row.template, row.values())
        except UnknownTemplate as exc:
            self._mark(token, row, tally, dead=str(exc), who=who)
            return
        answer = self.sender.send(row.msisdn, text)
        if answer.verdict == Verdict.SENT:
            self._mark(token, row, tally, sent=answer.detail, who=who)
        elif answer.verdict == Verdict.REFUSED:
            self._mark(token, row, tally, dead=f"refused: {answer.detail}", who=who)
        elif row.attempts + 1 >= self.policy.max_attempts:
            self._mark(token, row, tally, dead=f"last try ({row.attempts + 1}) failed: "
                       f"{answer.detail}", who=who)
        else:
            self._mark(token, row, tally, retry=answer.detail, who=who)

    def _mark(self, token: str, row: Claimed, tally: Tally, *, who: str, sent: str | None = None,
              dead: str | None = None, retry: str | None = None) -> None:
        policy = self.policy
        wait = policy.backoff(row.attempts + 1, self.rand) if retry is not None else 0.0
        if not outbox.mark(self.store, row, token, sent=sent is not None, dead=dead, retry=retry,
                           wait=timedelta(seconds=wait)):
            tally.lost_lease += 1
            log.warning("%s: its lease ran out before it was marked (another worker may send it "
                        "again); raise the lease or lower the send timeout", who)
        elif sent is not None:
            tally.sent += 1
            tally.ids.append(row.message_id)
            log.info("%s sent (%s)", who, sent)
        elif dead is not None:
            tally.dead += 1
            log.warning("%s dead after %d tries: %s (hamta-ivr sms resend %s)", who,
                        row.attempts + 1, dead, row.message_id)
        else:
            tally.retried += 1
            refused_user = (retry or "").startswith(("HTTP 401", "HTTP 403"))
            log.log(logging.WARNING if refused_user else logging.INFO,
                    "%s not sent (try %d of %d: %s)%s; next try in %.0f s", who,
                    row.attempts + 1, policy.max_attempts, retry,
                    ": check kannel_username and kannel_password_file against kannel.conf"
                    if refused_user else "", wait)

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Deliver until `stop` is set, looking for due rows every `interval` seconds (at once
        again after a full batch)."""
        while not stop.is_set():
            try:
                tally = self.run_once()
            except Exception:  # the database went away: keep the worker, try again later
                log.exception("SMS worker: could not read the outbox; trying again in %g s",
                              interval * 5)
                stop.wait(interval * 5)
                continue
            if tally.handled < self.policy.batch:
                stop.wait(interval)
