"""Every prompt key the flows and the call API play — `prompts check` verifies each has text and
audio, and the transcript tests verify each is actually heard on some path. The keys the declared
questions say are collected from ivr.flows.questions; the rest are listed here."""

from __future__ import annotations

from ivr.call.api import Question
from ivr.flows import questions
from ivr.flows.activate import BUYER_PROMPTS
from ivr.flows.buyer_rights import RIGHTS
from ivr.flows.common import OWNER_PROMPTS, REFUSAL_PROMPTS, SIM_CODE_PROMPTS
from ivr.flows.inquiry import ANSWERS, REPORTED
from ivr.flows.staff import HOURS_PROMPTS


def _asked() -> set[str]:
    said: set[str] = set()
    for question in vars(questions).values():
        if isinstance(question, Question):
            parts = (*question.prompt, *question.reprompt, *question.star)
            said.update(part for part in parts if isinstance(part, str))
    return said


USED_KEYS: frozenset[str] = frozenset({
    # session and call API
    "welcome", "invalid_choice", "invalid_entry", "no_input", "too_many_attempts",
    "goodbye", "system_error", "cancelled",
    # played by the dialplan when the IVR server is unreachable, by the server when it is full
    "service_unavailable", "busy",
    # whose devices, password, device list
    "no_caller_id", "no_password", "wrong_password", "attempts_left", "attempts_left_end",
    "locked", "try_again_after", "minutes_later", "hours_later", "no_devices", "device_count",
    "device_count_end", "device_number", "imei_ending", "device_blocked",
    "choose_device_long_last", "list_end",
    # the operations
    "phone_code", "code_is", "is_end", "code_generated", "code_replace_confirm",
    "codes_mismatch", "code_too_simple", "code_changed", "change_code_advice",
    "activate_confirm", "activate_confirm_to", "activate_confirm_end", "no_caller_id_activate",
    "activated", "transfer_confirm", "transfer_confirm_to", "transfer_confirm_end",
    "transferred", "reference_is",
    # lost or stolen, the 7-day return, the buyer's rights
    "rights_offer", "device_reported", "report_confirm", "report_confirm_lost_end",
    "report_confirm_stolen_end", "reported", "case_is", "report_exists", "withdraw_confirm",
    "report_withdrawn", "return_confirm_end", "return_started", "returns_waiting",
    "return_take_back", "return_take_back_from", "return_take_back_end", "returned",
    "returns_arrived", "arrived_from", "arrived_today", "arrived_yesterday", "arrived_days_ago",
    *RIGHTS, *REPORTED.values(),
    *_asked(),
    # what a validator of ivr.flows.questions names (an 11-digit number that is not 09…)
    "invalid_number",
    # a person behind `0` (a staff queue configured); `staff_busy`: the dialplan's, after Queue()
    "staff_connecting", "staff_busy", *HOURS_PROMPTS,
    # the SIM as a second factor
    "wrong_sim_code", *SIM_CODE_PROMPTS.values(),
    *REFUSAL_PROMPTS.values(), *OWNER_PROMPTS.values(), *BUYER_PROMPTS.values(),
    *ANSWERS.values(),
})
