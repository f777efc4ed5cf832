"""A key pressed in the silence between digit groups is kept, on the real Asterisk (issue 18).

The groups of a read-back were separated by the dialplan's `Wait`, which reads and drops the
caller's DTMF; the pause is now AGI `WAIT FOR DIGIT` of the same length, which listens. The call
presses each key the moment a pause starts (`hamta-ivr dial`'s predicate barge-in) and checks
that the reading stopped there and that the IVR took the key as the answer."""

from __future__ import annotations

import asyncio

import pytest

from ivr.asterisk import ami, config, dev
from ivr.registry.demo import demo_imei
from ivr.registry.service import Registry
from tests.asterisk.conftest import AgiServer, is_subsequence

pytestmark = pytest.mark.asterisk


async def test_a_key_pressed_between_the_groups_of_a_code_answers_the_next_question(
        agi_server: AgiServer, registry: Registry, cast: dict) -> None:
    owner = cast["s8"]
    registry.portal.add_device(demo_imei(608), owner=owner, brand="Nokia", model="C32")
    cfg = config.load(classic_agi=dev.Runtime.detect().classic_agi, create_secrets=False)
    # get a code for the one device; `1` (hear it again) in the first pause of its reading, `2`
    # (finish) in the first pause of the second reading, then hang up at the menu
    result = await asyncio.wait_for(ami.dial(
        cfg, caller=owner, keys=f"4 1 {cast['pin']}# 1 1 2 h", spool=str(config.spool_dir()),
        barge_in=lambda command: command.pauses), 240)
    assert result.ok, result
    assert is_subsequence(["code_is", "(secret)", "code_is", "(secret)", "main_menu_again"],
                          result.prompts), result.prompts
    assert "code_repeat_or_finish" not in result.prompts  # answered before it was asked
    # the key landed in the pause, not in the next group: each reading stopped after its first
    # group (with the dialplan's Wait the key was dropped, or taken by the second group)
    first, second = [i for i, p in enumerate(result.prompts) if p == "code_is"][:2]
    assert result.prompts[first + 1:second] == ["(secret)"], result.prompts
    assert result.prompts[second + 1:second + 2] == ["(secret)"], result.prompts
    assert result.prompts[second + 2] != "(secret)", result.prompts
