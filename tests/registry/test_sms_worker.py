"""The SMS worker against the outbox, on SQLite and PostgreSQL, with a recording sender in place of
Kannel (the real Kannel: tests/sms/): sent once, retried with back-off, dead after the last try or
a refusal, re-sent on request, and two workers racing send each row once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from ivr.registry import outbox
from ivr.registry.msisdn import normalize
from ivr.registry.tables import outbox as outbox_table
from ivr.sms.kannel import Answer, Verdict
from ivr.sms.worker import Policy, Worker, masked

from .cast import BUYER, CODE, PHONE, SELLER, populate
from .support import transfer_direct


class Recorder:
    """Answers `verdict` (or a script of them) and records what it was given."""

    def __init__(self, *verdicts: Verdict, delay: float = 0.0) -> None:
        self.script = list(verdicts)
        self.delay = delay
        self.sent: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def send(self, to: str, text: str) -> Answer:
        time.sleep(self.delay)
        with self.lock:
            verdict = self.script.pop(0) if len(self.script) > 1 else (
                self.script[0] if self.script else Verdict.SENT)
            if verdict == Verdict.SENT:
                self.sent.append((to, text))
        return Answer(verdict, f"fake {verdict}")


def state(registry):
    with registry.store.reading() as conn:
        return {r.message_id: r for r in conn.execute(select(outbox_table))}


def queue_many(registry, n: int) -> None:
    def work(conn):
        for i in range(n):
            outbox.queue(conn, normalize(f"0912000{i:04d}"), "sms_code_changed",
                         at=registry.store.now(), imei=PHONE)

    registry.store.write(work)


NO_JITTER = Policy(base=5, cap=60, max_attempts=4)


def test_a_transfer_s_receipts_are_sent_once(registry):
    populate(registry)
    change = transfer_direct(registry, SELLER, PHONE, CODE, BUYER)
    sender = Recorder()
    worker = Worker(registry.store, sender)
    tally = worker.drain()
    assert tally.sent == 2 and tally.dead == tally.retried == 0
    assert sorted(to for to, _ in sender.sent) == sorted([normalize(SELLER), normalize(BUYER)])
    seller_text = dict(sender.sent)[normalize(SELLER)]
    assert "۰۹۱۲۲۲۲۲۲۲۲" in seller_text and change.reference.translate(
        str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")) in seller_text
    assert all(r.state == "sent" and r.attempts == 1 and r.sent_at is not None
               for r in state(registry).values())
    assert worker.drain().handled == 0  # nothing sent twice
    assert len(sender.sent) == 2


def test_back_off_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    policy = Policy(base=5, cap=60)
    assert [policy.backoff(n, lambda: 0.0) for n in range(1, 7)] == [2.5, 5, 10, 20, 30, 30]
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_a_failed_send_waits_its_back_off_then_is_dead_after_the_last_try(registry, clock):
    queue_many(registry, 1)
    sender = Recorder(Verdict.RETRY)
    worker = Worker(registry.store, sender, NO_JITTER, rand=lambda: 1.0)
    waits = []
    for attempt in range(1, NO_JITTER.max_attempts):
        assert worker.run_once().retried == 1
        (row,) = state(registry).values()
        assert row.state == "pending" and row.attempts == attempt
        assert row.last_error == "fake retry"
        waits.append((row.next_attempt_at - clock()).total_seconds())
        assert worker.run_once().handled == 0  # not due yet
        clock.advance(seconds=waits[-1])
    assert waits == [5, 10, 20]
    assert worker.run_once().dead == 1
    (row,) = state(registry).values()
    assert row.state == "dead" and row.attempts == NO_JITTER.max_attempts
    assert row.last_error.startswith("last try (4) failed")
    assert sender.sent == []


def test_a_refusal_is_dead_at_once_and_resend_brings_it_back(registry):
    queue_many(registry, 1)
    worker = Worker(registry.store, Recorder(Verdict.REFUSED))
    assert worker.run_once().dead == 1
    (message_id, row), = state(registry).items()
    assert row.state == "dead" and row.last_error == "refused: fake refused"
    assert outbox.resend(registry.store, message_id) is None
    assert outbox.resend(registry.store, "nope") == "no such message"
    sender = Recorder()
    assert Worker(registry.store, sender).run_once().sent == 1
    assert outbox.resend(registry.store, message_id) == "it is sent, not dead"
    assert len(sender.sent) == 1


def test_a_receipt_too_old_is_not_sent(registry, clock):
    queue_many(registry, 1)
    clock.advance(hours=25)
    sender = Recorder()
    assert Worker(registry.store, sender).run_once().dead == 1
    assert sender.sent == [] and next(iter(state(registry).values())).last_error.startswith(
        "expired")


def test_a_template_the_catalogue_lost_is_dead_not_retried(registry):
    registry.store.write(lambda conn: outbox.queue(conn, normalize(SELLER), "sms_nonexistent",
                                                   at=registry.store.now()))
    assert Worker(registry.store, Recorder()).run_once().dead == 1


def test_a_worker_whose_lease_ran_out_cannot_mark_the_row(registry, clock):
    queue_many(registry, 1)
    slow = Worker(registry.store, Recorder())
    token, claimed = slow.claim()
    assert len(claimed) == 1
    assert slow.claim()[1] == []  # leased: nobody else takes it
    clock.advance(seconds=NO_JITTER.lease + 1)
    other = Recorder()
    assert Worker(registry.store, other).run_once().sent == 1
    tally = slow.run_once()
    assert tally.handled == 0
    from ivr.sms.worker import Tally

    late = Tally()
    slow._deliver(token, claimed[0], late)  # the slow one finishes its send now
    assert late.lost_lease == 1 and late.sent == 0
    (row,) = state(registry).values()
    assert row.state == "sent" and row.attempts == 1


def test_two_workers_racing_send_each_row_once(registry_factory):
    first = registry_factory(use_clock=False)  # the workers' clock: the real one
    queue_many(first, 60)
    sender = Recorder(delay=0.002)
    workers = [Worker(registry_factory(use_clock=False).store, sender, Policy(batch=5))
               for _ in range(3)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    counts = Counter(to for to, _ in sender.sent)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert {r.state for r in state(first).values()} == {"sent"}


def test_numbers_in_logs_are_masked(registry, caplog):
    import logging

    queue_many(registry, 1)
    with caplog.at_level(logging.INFO, logger="ivr.sms.worker"):
        Worker(registry.store, Recorder(Verdict.RETRY)).run_once()
    assert "+98912•••0000" in caplog.text and "+989120000000" not in caplog.text
    assert "همتا" not in caplog.text
    assert masked("+989121234567") == "+98912•••4567"


@pytest.mark.parametrize("state_filter", [None, "pending"])
def test_messages_lists_without_text(registry, state_filter):
    queue_many(registry, 3)
    listed = outbox.messages(registry.store, state=state_filter)
    assert len(listed) == 3 and all(m.template == "sms_code_changed" for m in listed)
    assert outbox.messages(registry.store, state="sent") == []
    assert timedelta(0) == listed[0].next_attempt_at - listed[0].created_at


def test_a_refused_sendsms_user_is_retried_and_warned_about(registry, caplog):
    import logging

    class WrongUser:
        def send(self, to: str, text: str) -> Answer:
            return Answer(Verdict.RETRY, "HTTP 403: Authorization failed for sendsms")

    queue_many(registry, 1)
    with caplog.at_level(logging.INFO, logger="ivr.sms.worker"):
        assert Worker(registry.store, WrongUser()).run_once().retried == 1
    [record] = [r for r in caplog.records if r.name == "ivr.sms.worker"]
    assert record.levelno == logging.WARNING and "kannel_password_file" in record.getMessage()
    assert next(iter(state(registry).values())).state == "pending"
