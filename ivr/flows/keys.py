"""Every prompt key the flows and the call API play — `prompts check` verifies each has text and
audio, and the transcript tests verify each is actually heard on some path."""

from __future__ import annotations

from ivr.flows.common import REFUSAL_PROMPTS
from ivr.flows.inquiry import ANSWERS

USED_KEYS: frozenset[str] = frozenset({
    # session and call API
    "welcome", "main_menu", "invalid_choice", "invalid_entry", "no_input", "too_many_attempts",
    "goodbye", "system_error", "cancelled", "confirm_or_cancel",
    # played by the dialplan when the IVR server is unreachable
    "service_unavailable",
    # whose devices, password, device list
    "whose_devices", "enter_other_number", "invalid_number", "no_caller_id",
    "enter_password", "no_password", "wrong_password", "attempts_left", "locked",
    "try_again_after", "no_devices", "device_count", "device_number", "imei_ending",
    "choose_device", "choose_device_long", "list_end",
    # the operations
    "enter_imei", "enter_activation_code", "code_is", "code_generated", "code_repeat_or_finish",
    "enter_new_code", "repeat_new_code", "codes_mismatch", "code_changed", "change_code_advice",
    "activate_confirm", "activate_confirm_to", "no_caller_id_activate", "activated",
    "already_yours", "enter_buyer_number",
    "transfer_confirm", "transfer_confirm_to", "transferred", "reference_is",
    *REFUSAL_PROMPTS.values(),
    *ANSWERS.values(),
})
