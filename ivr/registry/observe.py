"""The registry's one hook for whoever watches it: the Prometheus metrics (ivr.metrics) and the
bench's timers (bench.probe) attach an Observer here; the registry imports neither.

What is told, and from where:
- `waiting(pool, change)`: a question starts (+1) or stops (-1) waiting for a thread of `pool`
  (ivr.registry.aio), from the event loop or the thread that takes it;
- `question(asked)`: one question answered or failed (ivr.registry.aio), on the asking task, so
  its context variables are the call's;
- `lockouts(secret, count)` and `sign_in_failed()`: from the worker thread whose transaction
  committed them (ivr.registry.kartabl, ivr.registry.devices).

Observers are per process, like the metrics they feed; an observer must be quick and must not
raise (it runs inside every question).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Asked:
    """One registry question as its observers see it; seconds throughout."""

    name: str  # as the flows ask it (AsyncRegistry's attribute): `sign_in`, `call_started`
    pool: str  # the thread pool it ran in: hashing, database, sms
    took: float  # from the asking to the answer, waiting for a thread included
    waited: float  # of `took`, waiting for a thread
    ran: float  # in its thread, wall clock (the database work, the hashing)
    cpu: float  # in its thread, that thread's CPU
    ok: bool  # answered (False: it raised, or was cancelled)


class Observer:
    """Watches the registry; override what you watch (each default does nothing)."""

    def waiting(self, pool: str, change: int) -> None:
        """A question starts (+1) or stops (-1) waiting for a thread of `pool`."""

    def question(self, asked: Asked) -> None:
        """A question was answered, or raised."""

    def lockouts(self, secret: str, count: int) -> None:
        """A committed transaction engaged `count` locks (`secret`: pin or code)."""

    def sign_in_failed(self) -> None:
        """A kartabl PIN was verified and was wrong (the spraying signal)."""


# A tuple, replaced whole: worker threads read it while the loop may attach.
_observers: tuple[Observer, ...] = ()


def attach(observer: Observer) -> None:
    """Tell `observer` from now on (once, however often attached)."""
    global _observers
    if observer not in _observers:
        _observers = (*_observers, observer)


def detach(observer: Observer) -> None:
    global _observers
    _observers = tuple(o for o in _observers if o is not observer)


@contextmanager
def attached(observer: Observer) -> Iterator[Observer]:
    """`observer` attached for a block (tests, a bench run)."""
    attach(observer)
    try:
        yield observer
    finally:
        detach(observer)


def observers() -> tuple[Observer, ...]:
    """Those attached now (ivr.registry.aio reads them once per question)."""
    return _observers


def lockouts(secret: str, count: int) -> None:
    if count:
        for observer in _observers:
            observer.lockouts(secret, count)


def sign_in_failed() -> None:
    for observer in _observers:
        observer.sign_in_failed()
