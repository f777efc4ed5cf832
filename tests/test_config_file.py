"""The config file (/etc/hamta-ivr/config.toml, HAMTA_CONFIG): its keys mirror the environment
settings, the environment overrides it, a flag overrides both, and a bad file is one line naming
the file, the key and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr import config
from ivr.asterisk import config as asterisk_config
from ivr.cli import main
from ivr.config import FILE_KEYS, ConfigError, env_name
from ivr.prompts import layout


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in FILE_KEYS:
        monkeypatch.delenv(env_name(key), raising=False)
    for name in ("HAMTA_CONFIG", "HAMTA_PEPPER", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def write(tmp_path: Path, text: str, env: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    env.setenv("HAMTA_CONFIG", str(path))
    return path


def test_the_file_is_read_and_the_environment_and_flags_override_it(tmp_path, clean_env):
    data = tmp_path / "data"
    write(tmp_path, f'data_dir = "{data}"\nagi_host = "0.0.0.0"\nagi_port = 4600\n'
          f'db_url = "sqlite:///{tmp_path}/r.db"\nsounds_dir = "{tmp_path}/snd"\n'
          f'spool_dir = "{tmp_path}/spool"\nsip_port = 5070\nmax_calls = 80\ndrain = 30.5\n',
          clean_env)
    assert config.data_dir() == data
    assert config.db_url() == f"sqlite:///{tmp_path}/r.db"
    assert config.agi_address() == config.AgiAddress("0.0.0.0", 4600)
    assert layout.sounds_dir() == tmp_path / "snd"
    assert asterisk_config.spool_dir() == tmp_path / "spool"
    assert asterisk_config._port("sip_port", 5060) == 5070
    assert config.current().raw["max_calls"] == "80" and config.current().drain == 30.5
    assert config.default_pepper_file() == data / "pepper"
    # the environment wins over the file, a flag over both
    clean_env.setenv("HAMTA_AGI_PORT", "4700")
    clean_env.setenv("HAMTA_DB_URL", "sqlite:////elsewhere/r.db")
    assert config.agi_address().port == 4700
    assert config.agi_address(port=4800).port == 4800
    assert config.db_url() == "sqlite:////elsewhere/r.db"
    assert config.db_url("sqlite:////flag/r.db") == "sqlite:////flag/r.db"
    # an empty variable does not hide the file
    clean_env.setenv("HAMTA_AGI_HOST", "")
    assert config.agi_address().host == "0.0.0.0"


def test_no_file_means_the_defaults(tmp_path, clean_env):
    clean_env.setenv("HAMTA_CONFIG", "")  # read none
    clean_env.setenv("XDG_DATA_HOME", str(tmp_path))
    assert config.file_settings() == {}
    assert config.data_dir_path() == tmp_path / "hamta-ivr"
    assert config.agi_address() == config.AgiAddress("127.0.0.1", 4573)


def test_the_default_file_may_be_absent(tmp_path, clean_env):
    clean_env.setattr(config, "DEFAULT_CONFIG_FILE", tmp_path / "absent.toml")
    assert config.config_file() == tmp_path / "absent.toml"
    assert config.file_settings() == {}


def test_an_edited_file_is_read_again(tmp_path, clean_env):
    path = write(tmp_path, "agi_port = 4600\n", clean_env)
    assert config.agi_address().port == 4600
    path.write_text("agi_port = 4601\n# longer\n")
    assert config.agi_address().port == 4601


def test_a_pepper_file_named_in_the_file_is_used(tmp_path, clean_env):
    pepper = tmp_path / "pepper"
    pepper.write_text("ab" * 32 + "\n")
    write(tmp_path, f'pepper_file = "{pepper}"\n', clean_env)
    assert config.load_pepper() == bytes.fromhex("ab" * 32)
    assert str(pepper) in config.pepper_source()
    pepper.unlink()
    with pytest.raises(ConfigError, match=r"pepper_file in .*config\.toml"):
        config.load_pepper()


def test_staff_accounts_from_the_file(tmp_path, clean_env):
    write(tmp_path, f'data_dir = "{tmp_path}"\nsip_staff = "ops:09120000001"\n', clean_env)
    clean_env.setenv("HAMTA_SIP_SECRET_OPS", "secret-of-ops")
    [ops] = asterisk_config.staff_accounts()
    assert (ops.name, ops.msisdn, ops.password) == ("ops", "09120000001", "secret-of-ops")


BAD_FILES = {
    "toml": ('agi_port = \n', ["not valid TOML", "line 1"]),
    "unknown-key": ('agi_prot = 4573\n', ["unknown key 'agi_prot'", "did you mean 'agi_port'"]),
    "pepper-inline": ('pepper = "' + "ab" * 32 + '"\n', ["'pepper' is not allowed",
                                                      "pepper_file ="]),
    "port-as-string": ('agi_port = "4573"\n', ['agi_port = "4573" must be a whole number',
                                               "agi_port = 4573"]),
    "bool-as-number": ("max_calls = true\n", ["max_calls = true must be a whole number"]),
    "relative-path": ('data_dir = "data"\n', ['data_dir = "data" must be an absolute path',
                                              'data_dir = "/var/lib/hamta-ivr"']),
    "empty-url": ('db_url = ""\n', ["db_url", "must be a string"]),
    "float-port": ("agi_port = 45.73\n", ["agi_port = 45.73 must be a whole number"]),
    "table": ("[serve]\nport = 1\n", ["unknown key 'serve'"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_naming_file_key_and_fix(case, tmp_path, clean_env, capsys):
    text, expected = BAD_FILES[case]
    path = write(tmp_path, text, clean_env)
    with pytest.raises(ConfigError) as caught:
        config.file_settings()
    for part in [str(path), *expected]:
        assert part in str(caught.value)
    # as an operator sees it: exit 2, one line, no traceback
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"hamta-ivr: error: {path}: ")


def test_a_named_file_that_is_missing_is_an_error(tmp_path, clean_env):
    clean_env.setenv("HAMTA_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"HAMTA_CONFIG names .*nope\.toml.*does not exist"):
        config.current().checked("db_url")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(tmp_path, clean_env, caplog):
    path = write(tmp_path, "agi_port = 4600\n", clean_env)
    path.chmod(0)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        config.file_settings()
    # the default file unreadable (not in group hamta): a warning, the defaults
    clean_env.delenv("HAMTA_CONFIG")
    clean_env.setattr(config, "DEFAULT_CONFIG_FILE", path)
    assert config.file_settings() == {}
    assert "cannot read" in caplog.text


def test_errors_from_file_values_name_the_key_in_the_file(tmp_path, clean_env):
    path = write(tmp_path, 'db_url = "registry.db"\nagi_port = 70000\n', clean_env)
    with pytest.raises(ConfigError, match=f"db_url in {path}/--db 'registry.db'"):
        config.db_url()
    with pytest.raises(ConfigError, match=f"agi_port in {path}/--port 70000 is outside"):
        config.agi_address()


def test_every_key_has_a_type_and_example_that_parse(tmp_path, clean_env):
    lines = [f"{key} = {example}" for key, (_, example) in FILE_KEYS.items()]
    write(tmp_path, "\n".join(lines) + "\n", clean_env)
    assert set(config.file_settings()) == set(FILE_KEYS)


def test_prompts_build_writes_where_serve_and_asterisk_look(tmp_path, clean_env):
    """The `sounds_dir` drift (issue 20): set in the config file only, `prompts build`, `prompts
    check` and `doctor` looked in <data dir>/sounds while `serve` and `asterisk up` used the
    configured folder. One function answers for all of them now."""
    write(tmp_path, f'data_dir = "{tmp_path}/data"\nsounds_dir = "{tmp_path}/snd"\n', clean_env)
    from ivr import doctor, serve
    from ivr.cli import prompts

    assert layout.sounds_dir() == tmp_path / "snd"
    for module in (asterisk_config, doctor, prompts, serve):  # nobody keeps a copy of the rule
        assert "def sounds_dir" not in Path(module.__file__).read_text()


def test_a_spool_folder_that_cannot_be_made_is_one_line_naming_the_setting(tmp_path, clean_env):
    blocker = tmp_path / "file"
    blocker.write_text("")
    clean_env.setenv("HAMTA_SPOOL_DIR", str(blocker / "spool"))
    with pytest.raises(ConfigError, match="HAMTA_SPOOL_DIR"):
        asterisk_config.spool_dir()
    assert asterisk_config.spool_path() == blocker / "spool"  # doctor's view: nothing created
