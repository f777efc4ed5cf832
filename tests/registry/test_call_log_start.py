"""The call log's start is one upsert (issue 12, less CPU per call): a call id logged again, e.g.
by a server that took the call over after a crash, stays one row that says the latest start."""

from __future__ import annotations

from datetime import timedelta

from ivr.registry.call_log import INTERRUPTED


def test_a_call_started_twice_is_one_row_with_the_latest_start(registry, clock) -> None:
    log = registry.call_log
    log.started("same.1", "09121111111", "PJSIP/1-0001", clock.now, server="a:4573")
    log.ended("same.1", ["inquiry"], "inquiry", clock.now)
    later = clock.now + timedelta(seconds=30)
    log.started("same.1", None, "PJSIP/2-0002", later, server="b:4573")
    [row] = log.calls()
    assert (row.call_id, row.msisdn, row.channel, row.server) == (
        "same.1", None, "PJSIP/2-0002", "b:4573")
    assert row.started == later
    # the path and outcome of the earlier start stay until the call ends again
    assert row.path == ["inquiry"] and row.outcome == "inquiry"


def test_an_upserted_start_is_still_closed_after_a_crash(registry, clock) -> None:
    log = registry.call_log
    log.started("crash.1", "09121111111", "PJSIP/1", clock.now, server="a:4573")
    log.started("crash.1", "09121111111", "PJSIP/1", clock.now, server="a:4573")
    assert log.close_stale("a:4573", clock.now) == 1
    [row] = log.calls()
    assert row.outcome == INTERRUPTED and row.ended is not None
