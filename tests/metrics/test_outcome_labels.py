"""hamta_calls_total{outcome}: every operation the menu offers is a label of its own, taken from
the menu itself (issue 17: lost_stolen, return and buyer_rights were counted as `other` because
the metrics kept a hand-made copy of the names)."""

from __future__ import annotations

import pytest

from ivr import metrics
from ivr.flows.session import MORE, OPERATION_NAMES, OPERATIONS

MENU = sorted({name for name, _ in [*OPERATIONS.values(), *MORE.values()]})


def test_the_menu_is_what_is_checked() -> None:
    assert {"lost_stolen", "return", "buyer_rights", "inquiry"} <= set(MENU)
    assert set(MENU) == OPERATION_NAMES


@pytest.mark.parametrize("name", MENU)
def test_every_operation_of_the_menu_has_its_label(name: str) -> None:
    assert metrics.outcome_label(f"{name}:completed") == name
    assert metrics.outcome_label(name) == name
    before = metrics.value("hamta_calls_total", {"outcome": name})
    metrics.call_ended(f"{name}:refused:blocked")
    assert metrics.value("hamta_calls_total", {"outcome": name}) == before + 1


@pytest.mark.parametrize("outcome", ["hung_up", "timed_out", "gave_up", "error", "busy",
                                     "interrupted"])
def test_the_ends_of_a_call_have_their_labels(outcome: str) -> None:
    assert metrics.outcome_label(outcome) == outcome


@pytest.mark.parametrize("outcome", ["no_such_operation:completed", "", "9121234567", None,
                                     "other_thing"])
def test_anything_else_is_other(outcome: object) -> None:
    assert metrics.outcome_label(outcome) == "other"
    before = metrics.value("hamta_calls_total", {"outcome": "other"})
    metrics.call_ended(outcome)
    assert metrics.value("hamta_calls_total", {"outcome": "other"}) == before + 1


async def test_the_labels_are_series_once_the_endpoint_listens() -> None:
    """Every label is a series from the first scrape (a dashboard sees 0, not nothing)."""
    endpoint = metrics.MetricsServer("127.0.0.1", 0)
    await endpoint.start()
    await endpoint.stop()
    for name in (*MENU, "hung_up", "other"):
        assert metrics.REGISTRY.get_sample_value("hamta_calls_total",
                                                 {"outcome": name}) is not None, name
