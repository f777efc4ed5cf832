"""How an operation ended, as the call log records it, and how it ends early.

An operation that runs to its end returns its Outcome. One that stops on the way — a refusal, a
cancelled confirmation, a question whose tries ran out, no password — has already told the caller
why; the step that stopped it raises Ended with the Outcome, and the menu that ran the operation
(ivr.flows.session) catches it, once. So a flow reads as the procedure, step after step, with no
checks between them. A hang-up is not an early end: CallerHungUp goes past the menu to the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ivr.call.api import Answer, Status
from ivr.registry.types import Refusal


class End(StrEnum):
    COMPLETED = "completed"
    ANSWERED = "answered"  # an inquiry: the detail is the registry's answer
    REFUSED = "refused"  # the detail says why (a registry refusal, "locked", "already_yours", …)
    CANCELLED = "cancelled"
    NO_PASSWORD = "no_password"  # go to the web portal first
    NO_DEVICES = "no_devices"
    BACK = "back"  # the caller pressed `#` alone: back to the main menu, nothing changed
    TIMED_OUT = "timed_out"  # silence on every try of a question: the call ends
    GAVE_UP = "gave_up"  # wrong entries on every try of a question: the call ends


@dataclass(frozen=True)
class Outcome:
    end: End
    detail: str = ""

    @classmethod
    def refused(cls, why: Refusal | str) -> Outcome:
        return cls(End.REFUSED, str(why))

    @classmethod
    def unanswered(cls, answer: Answer) -> Outcome:
        """A question that got no entry: its tries ran out, or the caller went back."""
        ends = {Status.TIMED_OUT: End.TIMED_OUT, Status.BACK: End.BACK}
        return cls(ends.get(answer.status, End.GAVE_UP))

    @property
    def ends_call(self) -> bool:
        """The caller used every try of a question: "too many attempts", goodbye."""
        return self.end in (End.TIMED_OUT, End.GAVE_UP)

    @property
    def logged(self) -> str:
        """As the call log writes it: `completed`, `refused:blocked`, `registered`, …"""
        if self.end is End.ANSWERED:
            return self.detail
        return f"{self.end.value}:{self.detail}" if self.detail else self.end.value


COMPLETED = Outcome(End.COMPLETED)


class Ended(Exception):
    """The operation stops here, the caller already told why: raised by a step, caught by the
    menu that ran the operation, which records `outcome` as the operation's."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.logged)
        self.outcome = outcome

    @classmethod
    def unanswered(cls, answer: Answer) -> Ended:
        return cls(Outcome.unanswered(answer))
