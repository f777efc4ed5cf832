"""The pepper is checked: the registry keeps a fingerprint of it (never the pepper), another pepper
is refused with one line naming HAMTA_PEPPER/HAMTA_PEPPER_FILE, and a pepper file is created only
for a new registry (no hash, no fingerprint), mode 600."""

from __future__ import annotations

import logging
import stat

import pytest
from sqlalchemy import delete, inspect, select

from ivr.config import ConfigError
from ivr.registry import meta
from ivr.registry.hashing import TEST_ONLY_FAST
from ivr.registry.service import Registry
from ivr.registry.tables import metadata, registry_meta
from ivr.registry.types import PasswordStatus

from .support import TEST_PEPPER

OTHER_PEPPER = bytes.fromhex("a7" * 32)
NUMBER, PIN = "09121111111", "73916482"


@pytest.fixture
def no_pepper_env(monkeypatch, tmp_path):
    """No HAMTA_PEPPER/HAMTA_PEPPER_FILE: the default file in a data directory of this test."""
    monkeypatch.delenv("HAMTA_PEPPER", raising=False)
    monkeypatch.delenv("HAMTA_PEPPER_FILE", raising=False)
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "pepper"


def open_(url: str, pepper: bytes | None = None) -> Registry:
    return Registry.open(url, pepper=pepper, hash_params=TEST_ONLY_FAST)


def stored_fingerprint(registry: Registry) -> str | None:
    with registry.store.engine.connect() as conn:
        return meta.get(conn, meta.PEPPER_FINGERPRINT)


def populate(url: str, pepper: bytes = TEST_PEPPER) -> None:
    with open_(url, pepper) as registry:
        registry.portal.add_subscriber(NUMBER, password=PIN)
        registry.portal.add_device("350000000000014", owner=NUMBER, brand="S", model="A",
                                   activation_code="48151623")


def forget_fingerprint(registry: Registry) -> None:
    """What a registry made before fingerprints looks like."""
    with registry.store.engine.begin() as conn:
        conn.execute(delete(registry_meta))


def assert_one_line_naming_the_pepper(error: pytest.ExceptionInfo[ConfigError]) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert "HAMTA_PEPPER" in message and "HAMTA_PEPPER_FILE" in message
    assert "restore" in message


def test_a_new_registry_records_the_fingerprint_of_its_pepper(db_url):
    with open_(db_url, TEST_PEPPER) as registry:
        assert stored_fingerprint(registry) == meta.pepper_fingerprint(TEST_PEPPER)
        assert len(stored_fingerprint(registry) or "") == 64


def test_the_right_pepper_is_accepted(db_url):
    populate(db_url)
    with open_(db_url, TEST_PEPPER) as registry:
        assert registry.kartabl.sign_in(NUMBER, PIN).status is PasswordStatus.OK


def test_a_wrong_pepper_is_refused(db_url):
    populate(db_url)
    with pytest.raises(ConfigError) as error:
        open_(db_url, OTHER_PEPPER)
    assert_one_line_naming_the_pepper(error)
    with open_(db_url, TEST_PEPPER) as registry:  # nothing was changed by the refusal
        assert registry.portal.subscriber_info(NUMBER).failed_attempts == 0
        assert stored_fingerprint(registry) == meta.pepper_fingerprint(TEST_PEPPER)


def test_a_wrong_pepper_is_refused_even_before_anything_was_hashed(db_url):
    open_(db_url, TEST_PEPPER).close()  # a new registry: the fingerprint is recorded
    with pytest.raises(ConfigError) as error:
        open_(db_url, OTHER_PEPPER)
    assert_one_line_naming_the_pepper(error)


def test_a_wrong_hamta_pepper_is_refused_naming_it(db_url, monkeypatch):
    populate(db_url)
    monkeypatch.setenv("HAMTA_PEPPER", OTHER_PEPPER.hex())
    with pytest.raises(ConfigError, match=r"the pepper \(HAMTA_PEPPER\)") as error:
        open_(db_url)
    assert_one_line_naming_the_pepper(error)
    monkeypatch.setenv("HAMTA_PEPPER", TEST_PEPPER.hex())
    open_(db_url).close()


def test_a_registry_from_before_fingerprints_is_fingerprinted_on_trust(db_url, caplog):
    populate(db_url)
    with open_(db_url, TEST_PEPPER) as registry:
        forget_fingerprint(registry)
    caplog.set_level(logging.WARNING, logger="ivr.registry.meta")
    with open_(db_url, TEST_PEPPER) as registry:
        assert stored_fingerprint(registry) == meta.pepper_fingerprint(TEST_PEPPER)
    assert any("on trust" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError):  # from now on it is checked
        open_(db_url, OTHER_PEPPER)


def test_a_new_registry_fingerprinted_without_warning(db_url, caplog):
    caplog.set_level(logging.WARNING, logger="ivr.registry.meta")
    open_(db_url, TEST_PEPPER).close()
    assert not [r for r in caplog.records if r.name == "ivr.registry.meta"]


def test_a_missing_pepper_file_with_a_populated_registry_is_refused(db_url, no_pepper_env):
    populate(db_url)
    with pytest.raises(ConfigError) as error:
        open_(db_url)
    message = str(error.value)
    assert str(no_pepper_env) in message and "HAMTA_PEPPER_FILE" in message
    assert "restore" in message and "\n" not in message
    assert not no_pepper_env.exists()  # no new pepper was made up


def test_a_missing_pepper_file_on_a_legacy_registry_is_refused(db_url, no_pepper_env):
    """Hashes but no fingerprint (before this check existed): still never a new pepper."""
    populate(db_url)
    with open_(db_url, TEST_PEPPER) as registry:
        forget_fingerprint(registry)
    with pytest.raises(ConfigError, match="HAMTA_PEPPER_FILE"):
        open_(db_url)
    assert not no_pepper_env.exists()


def test_a_missing_pepper_file_with_a_fingerprint_and_no_hash_is_refused(db_url,
                                                                         no_pepper_env):
    open_(db_url, TEST_PEPPER).close()
    with pytest.raises(ConfigError, match="HAMTA_PEPPER_FILE"):
        open_(db_url)
    assert not no_pepper_env.exists()


def test_no_pepper_file_with_an_empty_registry_creates_one(db_url, no_pepper_env, caplog):
    caplog.set_level(logging.WARNING, logger="ivr.config")
    with open_(db_url) as registry:
        registry.portal.add_subscriber(NUMBER, password=PIN)
        assert stored_fingerprint(registry) is not None
    assert stat.S_IMODE(no_pepper_env.stat().st_mode) == 0o600
    text = no_pepper_env.read_text().strip()
    assert len(text) == 64 and bytes.fromhex(text)
    assert any("created a new pepper" in r.getMessage() for r in caplog.records)
    with open_(db_url) as registry:  # the same file from now on: the PIN still verifies
        assert stored_fingerprint(registry) == meta.pepper_fingerprint(bytes.fromhex(text))
        assert registry.kartabl.sign_in(NUMBER, PIN).status is PasswordStatus.OK


def test_reading_names_without_the_pepper_neither_records_nor_checks_it(db_url):
    """ivr.registry.device_names reads device names with a dummy pepper and check_pepper=False."""
    dummy = bytes(32)
    with Registry.open(db_url, pepper=dummy, check_pepper=False) as registry:
        assert stored_fingerprint(registry) is None
    populate(db_url)
    Registry.open(db_url, pepper=dummy, check_pepper=False).close()
    with pytest.raises(ConfigError):
        open_(db_url, dummy).close()


def test_the_pepper_never_appears_in_the_database(db_url):
    populate(db_url)
    values: list[str] = []
    with open_(db_url, TEST_PEPPER) as registry, registry.store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            assert inspect(conn).has_table(table.name)
            for row in conn.execute(select(table)):
                values.extend(str(v) for v in row)
    stored = "\n".join(values).lower()
    assert meta.pepper_fingerprint(TEST_PEPPER) in stored
    for form in (TEST_PEPPER.hex(), TEST_PEPPER.hex()[:16]):  # hex, or a part of it
        assert form not in stored
    assert TEST_PEPPER.decode("latin-1") not in "\n".join(values)  # the raw bytes


def test_processes_creating_the_pepper_at_once_get_the_same_one(no_pepper_env):
    from concurrent.futures import ThreadPoolExecutor

    from ivr.config import load_pepper

    with ThreadPoolExecutor(8) as pool:
        peppers = set(pool.map(lambda _: load_pepper(create=True), range(16)))
    assert len(peppers) == 1
    assert [p.name for p in no_pepper_env.parent.iterdir()] == ["pepper"]  # nothing left aside
