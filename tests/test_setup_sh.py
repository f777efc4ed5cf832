"""setup.sh: its syntax, and the demo's SMS settings (add_demo_sms_settings, run from the sourced
script on temporary config files): appended once to the config deploy/install.sh writes, valid for
ivr.config, never to a config that already names a kannel_url, no key twice."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from ivr.config import read_config_file
from ivr.testing.kannel import free_port

SETUP = Path(__file__).resolve().parents[1] / "setup.sh"
CONFIG_TEMPLATE = SETUP.with_name("deploy") / "config.toml"  # what the service's install writes


def add_settings(config: Path, data: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", 'source "$1" && add_demo_sms_settings "$2" "$3"', "bash", str(SETUP),
         str(config), str(data)], env=os.environ | {"DEMO_SMS_PORT": str(port)}, text=True,
        capture_output=True, timeout=30)


def test_setup_sh_parses():
    done = subprocess.run(["bash", "-n", str(SETUP)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_demo_s_sms_settings_are_added_once_to_the_service_s_config(tmp_path):
    config = tmp_path / "config.toml"
    written = CONFIG_TEMPLATE.read_text()
    config.write_text(written)
    port = free_port()
    first = add_settings(config, Path("/var/lib/hamta-ivr"), port)
    assert first.returncode == 0, first.stderr
    assert "the demo's SMS settings added" in first.stdout
    text = config.read_text()
    assert text.startswith(written)  # the rest as it was, the commented kannel_url too
    assert "# The demo's SMS (./setup.sh demo):" in text[len(written):]
    assert read_config_file(config) == {
        "data_dir": "/var/lib/hamta-ivr", "agi_host": "127.0.0.1", "agi_port": "4573",
        "kannel_url": f"http://127.0.0.1:{port}/cgi-bin/sendsms", "kannel_username": "hamta",
        "kannel_password_file": "/var/lib/hamta-ivr/kannel-password", "sms_sender": "7777"}
    again = add_settings(config, Path("/var/lib/hamta-ivr"), port)  # ./setup.sh demo, run twice
    assert again.returncode == 0 and again.stdout == "", again.stderr
    assert config.read_text() == text


def test_a_port_in_use_is_not_written(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('data_dir = "/srv/hamta"\n')
    with socket.socket() as taken:  # e.g. Debian's own Kannel on 13013
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = add_settings(config, Path("/srv/hamta"), port)
    assert done.returncode == 0, done.stderr
    url = read_config_file(config)["kannel_url"]
    assert url.startswith("http://127.0.0.1:") and f":{port}/" not in url


def test_an_operator_s_kannel_is_never_touched(tmp_path):
    config = tmp_path / "config.toml"
    operator = ('data_dir = "/var/lib/hamta-ivr"\n'
                '  kannel_url = "http://10.0.0.5:13013/cgi-bin/sendsms"\n'
                'kannel_username = "ivr"')  # no newline at the end, either
    config.write_text(operator)
    done = add_settings(config, Path("/var/lib/hamta-ivr"), free_port())
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert config.read_text() == operator


def test_keys_the_operator_set_are_kept_not_repeated(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('sms_sender = "30001234"\nkannel_username = "ivr"')  # no final newline
    done = add_settings(config, tmp_path, free_port())
    assert done.returncode == 0, done.stderr
    values = read_config_file(config)  # valid TOML: no key twice
    assert values["sms_sender"] == "30001234" and values["kannel_username"] == "ivr"
    assert values["kannel_password_file"] == f"{tmp_path}/kannel-password"


def test_the_python_the_scripts_run_imports_what_exists():
    """The scripts' `python -c` lines import from ivr by name: a name renamed or removed in the
    package (as `ivr.config.setting` was, issue 20) would break `./setup.sh demo` at run time,
    after every test passed. Each `from ivr… import …` line they hold must import."""
    import importlib
    import re

    scripts = [SETUP, SETUP.with_name("deploy") / "install.sh", *SETUP.parent.glob("db/*.sh")]
    imports = [(script.name, match.group(1), match.group(2)) for script in scripts
               for match in re.finditer(r"from (ivr[\w.]*) import ([\w, ]+)", script.read_text())]
    assert imports, "no `from ivr… import` line found: is this test still looking at them?"
    for script, module, names in imports:
        loaded = importlib.import_module(module)
        for name in (n.strip() for n in names.split(",")):
            assert hasattr(loaded, name), f"{script}: from {module} import {name}: no such name"
