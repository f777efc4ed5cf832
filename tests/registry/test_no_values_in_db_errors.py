"""A failing statement never puts the registry's values (numbers, IMEIs, references) into an
exception's text or a log line (issue 17): every engine the project makes hides SQL parameters,
and PostgreSQL's DETAIL line (which quotes the failing key or row) is hidden too."""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ivr.registry.db import make_engine
from ivr.registry.tables import subscribers

NUMBER, IMEI, REFERENCE, NATIONAL_ID = ("+989121234567", "356938035643809", "4815162342",
                                         "0071234567")
VALUES = (NUMBER, IMEI, REFERENCE, NATIONAL_ID, "9121234567")


def shown(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """Everything an operator could see of `exc`: its text, its traceback (with the driver's
    exception it chains), and the log line of `log.exception`."""
    with caplog.at_level(logging.ERROR):
        try:
            raise exc
        except DBAPIError:
            logging.getLogger("hamta.test").exception("a registry question failed")
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)),
                      caplog.text])


def leaked(seen: str) -> list[str]:
    return [value for value in VALUES if value in seen]


def test_a_missing_table_with_bound_values(db_url: str, caplog: pytest.LogCaptureFixture
                                           ) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(DBAPIError) as info, engine.connect() as conn:
            conn.execute(text("INSERT INTO no_such_table (msisdn, imei, reference) "
                              "VALUES (:msisdn, :imei, :reference)"),
                         {"msisdn": NUMBER, "imei": IMEI, "reference": REFERENCE})
    finally:
        engine.dispose()
    seen = shown(info.value, caplog)
    assert "no_such_table" in seen  # what failed is still said
    assert leaked(seen) == [], seen


def test_a_duplicate_number(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A unique key violated: PostgreSQL's DETAIL would say `Key (msisdn)=(+98…) already
    exists`."""
    engine = make_engine(db_url)
    row: dict[str, Any] = {"msisdn": NUMBER, "failed_attempts": 0, "lock_level": 0,
                           "others_failed_attempts": 0, "others_lock_level": 0,
                           "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    try:
        with engine.begin() as conn:
            conn.execute(insert(subscribers).values(**row))
        with pytest.raises(IntegrityError) as info, engine.begin() as conn:
            conn.execute(insert(subscribers).values(**row))
    finally:
        engine.dispose()
    seen = shown(info.value, caplog)
    assert "msisdn" in seen  # the column (constraint) is still named
    assert leaked(seen) == [], seen


def test_a_row_that_breaks_a_constraint(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A NOT NULL violated: PostgreSQL's DETAIL would quote the whole failing row."""
    engine = make_engine(db_url)
    try:
        with pytest.raises(IntegrityError) as info, engine.begin() as conn:
            conn.execute(insert(subscribers).values(msisdn=NUMBER, national_id=NATIONAL_ID,
                                                    created_at=None))
    finally:
        engine.dispose()
    seen = shown(info.value, caplog)
    assert leaked(seen) == [], seen
