"""The rendered Asterisk configuration a staff softphone meets: accounts that carry a mobile number
(plain 7777 reaches the IVR as that caller, not withheld), G.711 and RFC 4733 DTMF, passwords kept
out of `asterisk status`, and the machine's host name in the Asterisk root's /etc/hosts. No
Asterisk needed."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from ivr.asterisk import ami, config, dev
from ivr.config import FILE_KEYS, env_name


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in FILE_KEYS:
        monkeypatch.delenv(env_name(key), raising=False)
    monkeypatch.setenv("HAMTA_CONFIG", "")
    monkeypatch.setenv("HAMTA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HAMTA_AMI_SECRET", raising=False)
    for name in ("STAFF1", "STAFF2"):
        monkeypatch.delenv(f"HAMTA_SIP_SECRET_{name}", raising=False)
    return monkeypatch


def sections(text: str) -> dict[str, list[dict[str, str]]]:
    """name -> the sections of that name (endpoint and aor share one), each key -> value."""
    found: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split(";")[0].strip()
        head = re.fullmatch(r"\[([^\]]+)\](?:\(([^)]*)\))?", line)
        if head:
            current = {"(template)": head.group(2) or ""}
            found.setdefault(head.group(1), []).append(current)
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return found


def test_default_staff_accounts_call_as_the_demo_numbers(env, tmp_path):
    cfg = config.load(classic_agi="/usr/bin/hamta-ivr-agi")
    assert [(a.name, a.msisdn) for a in cfg.staff] == [("staff1", "09121111111"),
                                                        ("staff2", "09122222222")]
    out = config.render(cfg, tmp_path / "etc")
    staff = sections((out / "pjsip_staff.conf").read_text())
    for acc in cfg.staff:
        endpoint, aor = staff[acc.name]
        assert endpoint["(template)"] == "hamta-staff-endpoint"
        assert endpoint["callerid"] == f'"{acc.name}" <{acc.msisdn}>'
        assert endpoint["auth"] == f"{acc.name}-auth" and endpoint["aors"] == acc.name
        assert aor["(template)"] == "hamta-staff-aor"
        [auth] = staff[f"{acc.name}-auth"]
        assert auth["username"] == acc.name and auth["password"] == acc.password
        assert len(acc.password) >= 20
    # what a softphone negotiates: G.711 only, RFC 4733 DTMF, calls land in hamta-staff
    [template] = sections((out / "pjsip_hamta.conf").read_text())["hamta-staff-endpoint"]
    assert template["allow"] == "g722,ulaw,alaw" and template["disallow"] == "all"
    assert template["dtmf_mode"] == "rfc4733" and template["context"] == "hamta-staff"
    [transport] = [s for group in sections((out / "pjsip.conf").read_text()).values()
                   for s in group if s.get("type") == "transport"]
    assert transport["protocol"] == "udp" and transport["bind"] == "127.0.0.1:5060"
    # plain 7777 from a staff phone is the IVR, keeping the account's caller ID
    dialplan = (out / "extensions.conf").read_text()
    staff_context = dialplan.split("[hamta-staff]")[1]
    assert "include => hamta-ivr" in staff_context
    assert "CALLERID" not in staff_context.split("exten => _7777*")[0]


def test_an_account_without_a_number_calls_withheld(env, tmp_path):
    env.setenv("HAMTA_SIP_STAFF", "alice,bob:09123333333")
    cfg = config.load(classic_agi="x")
    text = config.staff_conf(cfg.staff)
    assert "callerid" not in sections(text)["alice"][0]
    assert sections(text)["bob"][0]["callerid"] == '"bob" <09123333333>'


@pytest.mark.parametrize("value", ["staff1:0912", "Bad Name", "x:+989121111111"])
def test_bad_staff_settings_name_the_setting(env, value):
    env.setenv("HAMTA_SIP_STAFF", value)
    with pytest.raises(config.ConfigError, match="HAMTA_SIP_STAFF"):
        config.staff_accounts()


def test_status_names_where_passwords_are_not_the_passwords(env, tmp_path, monkeypatch):
    cfg = config.load(classic_agi="x")
    monkeypatch.setattr(dev, "running_pid", lambda cfg: 4242)

    async def ping(cfg: object, timeout: float) -> str:
        return "Asterisk 22.0.0"

    monkeypatch.setattr(ami, "ping", ping)
    runtime = dev.Runtime(None)
    ok, lines = dev.status(runtime, cfg)
    text = "\n".join(lines)
    assert ok
    for acc in cfg.staff:
        assert acc.password not in text
        assert f"account {acc.name} ({acc.msisdn})" in text
        assert str(tmp_path / "data" / "secrets" / f"sip-{acc.name}") in text
    assert "--show-secrets" in text
    ok, lines = dev.status(runtime, cfg, show_secrets=True)
    assert all(acc.password in "\n".join(lines) for acc in cfg.staff)
    env.setenv("HAMTA_SIP_SECRET_STAFF1", "from-the-environment")
    assert dev.secret_where("staff1") == "in $HAMTA_SIP_SECRET_STAFF1"


def test_status_lists_the_accounts_of_the_running_asterisk_not_of_this_shell(env, tmp_path,
                                                                             monkeypatch):
    """Issue 18: `asterisk status` listed the softphone accounts the current environment would
    render, not the ones the running Asterisk was started with."""
    started = config.load(classic_agi="x")  # the default staff1, staff2
    config.render(started)
    env.setenv("HAMTA_SIP_STAFF", "alice:09131234567")  # this shell's, rendered by nobody
    cfg = config.load(classic_agi="x")
    assert [a.name for a in cfg.staff] == ["alice"]
    monkeypatch.setattr(dev, "running_pid", lambda cfg: 4242)

    async def ping(cfg: object, timeout: float) -> str:
        return "Asterisk 22.0.0"

    monkeypatch.setattr(ami, "ping", ping)
    ok, lines = dev.status(dev.Runtime(None), cfg, show_secrets=True)
    text = "\n".join(lines)
    assert ok and "alice" not in text
    for acc in started.staff:
        assert f"account {acc.name} ({acc.msisdn})" in text and acc.password in text
    assert config.rendered_staff(tmp_path / "nowhere") is None


def test_the_asterisk_root_knows_the_host_name(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    hosts = root / "etc" / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    dev.add_host_name(dev.Runtime(root))
    name = socket.gethostname()
    assert f"127.0.1.1\t{name}\t" in hosts.read_text()
    before = hosts.read_text()
    dev.add_host_name(dev.Runtime(root))  # idempotent
    assert hosts.read_text() == before
    dev.add_host_name(dev.Runtime(None))  # the host's own Asterisk: nothing to do


def test_classic_agi_scripts_read_no_config_file(env, tmp_path):
    cfg = config.load(classic_agi="x")
    environment = dev.asterisk_env(cfg)
    assert environment["HAMTA_CONFIG"] == ""
    assert environment["HAMTA_DATA_DIR"] == str(tmp_path / "data")


def test_the_dialplan_tries_the_listed_fastagi_servers_in_order(env, tmp_path):
    """agi_servers (HAMTA_AGI_SERVERS): the rendered 7777 route tries each in order (Asterisk's
    own failover: AGISTATUS=FAILURE or HAMTA_RESULT=busy from all but the last, which is called
    without ?overflow=yes); by default the one HAMTA_AGI_HOST:HAMTA_AGI_PORT."""
    from ivr.doctor import _dialplan_servers

    env.setenv("HAMTA_AGI_PORT", "4999")
    dialplan = (config.render(config.load(classic_agi="x"), tmp_path / "one")
                / "extensions.conf").read_text()
    assert "Set(HAMTA_SERVERS=127.0.0.1:4999)" in dialplan
    assert "Set(HAMTA_SERVER=${SHIFT(HAMTA_SERVERS,&)})" in dialplan
    assert ("AGI(agi://${HAMTA_SERVER}/hamta?overflow=${IF(${HAMTA_MORE}?yes:no)},"
            "caller=${HAMTA_CALLER_TRUST})") in dialplan
    assert '"${AGISTATUS}" = "FAILURE"' in dialplan

    env.setenv("HAMTA_AGI_SERVERS", "127.0.0.1:4573, 10.0.0.2:4574,[::1]:4575")
    dialplan = (config.render(config.load(classic_agi="x"), tmp_path / "two")
                / "extensions.conf").read_text()
    assert "Set(HAMTA_SERVERS=127.0.0.1:4573&10.0.0.2:4574&[::1]:4575)" in dialplan
    steps = [{"Application": "Set", "AppData": "HAMTA_SERVERS=127.0.0.1:4573&10.0.0.2:4574"},
             {"Application": "AGI", "AppData": "agi://${HAMTA_SERVER}/hamta"}]
    assert _dialplan_servers(steps) == [("127.0.0.1", 4573), ("10.0.0.2", 4574)]

    env.setenv("HAMTA_AGI_SERVERS", "127.0.0.1:99999")
    with pytest.raises(config.ConfigError, match="HAMTA_AGI_SERVERS"):
        config.load(classic_agi="x")


def _extension(dialplan: str, context: str, exten: str) -> list[str]:
    """The priorities of one extension in one context: the application lines, in order."""
    body = dialplan.split(f"[{context}]\n", 1)[1].split("\n[", 1)[0]
    steps: list[str] = []
    taking = False
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("exten =>"):
            taking = line.startswith(f"exten => {exten},")
        if taking and not line.startswith(";") and "," in line:
            steps.append(line.split(",", 2)[2] if line.startswith("exten") else
                         line.removeprefix("same => ").split(",", 1)[1])
    return steps


def test_the_caller_id_is_vouched_for_only_on_a_trusted_entry(env, tmp_path):
    """Issue 17: [hamta-ivr] (softphones, VoIP trunks) sets HAMTA_CALLER_TRUST=none at priority 1,
    so nothing earlier can fake it; [hamta-ivr-trusted] (the mobile operators' trunks) sets
    network and joins past that priority; both AGI lines pass it as the argument caller=…, which
    the IVR takes as vouched only when it is exactly caller=network. Staff stay untrusted."""
    from ivr.call.agi_call import TRUST_ARGUMENT, caller_vouched

    dialplan = (config.render(config.load(classic_agi="/opt/agi"), tmp_path / "etc")
                / "extensions.conf").read_text()
    for exten in ("7777", "7778"):
        steps = _extension(dialplan, "hamta-ivr", exten)
        assert steps[0] == "Set(HAMTA_CALLER_TRUST=none)"
        [agi] = [s for s in steps if s.startswith("AGI(")]
        assert agi.endswith(",caller=${HAMTA_CALLER_TRUST})")
        assert any(s.startswith("NoOp(") for s in steps)  # the `vouched` label's priority
        assert "same => n(vouched)," in dialplan.split(f"exten => {exten},1,")[1]
        trusted = _extension(dialplan, "hamta-ivr-trusted", exten)
        assert trusted == ["Set(HAMTA_CALLER_TRUST=network)", f"Goto(hamta-ivr,{exten},vouched)"]
    assert "AGI(/opt/agi,caller=${HAMTA_CALLER_TRUST})" in dialplan
    # what Asterisk then sends: AGI(url,caller=network) is agi_arg_1
    assert TRUST_ARGUMENT == "caller=network"
    assert caller_vouched({"agi_arg_1": "caller=network"})
    assert not caller_vouched({"agi_arg_1": "caller=none"})
    # staff softphones: every entry goes to [hamta-ivr] at priority 1, never to the trusted one
    staff = dialplan.split("[hamta-staff]")[1]
    assert "hamta-ivr-trusted" not in staff and "include => hamta-ivr\n" in staff
    assert re.findall(r"Goto\(([^)]*)\)", staff) == ["hamta-ivr,7777,1", "hamta-ivr,7778,1"]
    assert "HAMTA_CALLER_TRUST" not in staff
    # no endpoint is trusted by default; CHANNEL(endpoint) only past the PJSIP guard
    assert dialplan.count("Set(HAMTA_TRUSTED_ENDPOINTS=)") == 2
    for exten in ("7777", "7778"):
        steps = _extension(dialplan, "hamta-ivr", exten)
        guard = next(i for i, s in enumerate(steps) if "CHANNEL(channeltype)" in s)
        endpoint = next(i for i, s in enumerate(steps) if "CHANNEL(endpoint)" in s)
        assert steps[guard] == 'GotoIf($["${CHANNEL(channeltype)}" != "PJSIP"]?vouched)'
        assert 0 < guard < endpoint


def test_trusted_endpoints_are_rendered_into_the_dialplan(env, tmp_path):
    """trusted_endpoints (HAMTA_TRUSTED_ENDPOINTS): PJSIP endpoints (the mobile operators' trunks)
    whose calls count as vouched in [hamta-ivr] too, matched with FIELDNUM on an &-list."""
    env.setenv("HAMTA_TRUSTED_ENDPOINTS", " mci-trunk, irancell.trunk_2 ,,mci-trunk")
    cfg = config.load(classic_agi="x")
    assert cfg.trusted_endpoints == ("mci-trunk", "irancell.trunk_2")
    dialplan = (config.render(cfg, tmp_path / "etc") / "extensions.conf").read_text()
    assert dialplan.count("Set(HAMTA_TRUSTED_ENDPOINTS=mci-trunk&irancell.trunk_2)") == 2
    assert dialplan.count("Set(HAMTA_CALLER_TRUST=${IF($[${FIELDNUM(HAMTA_TRUSTED_ENDPOINTS,&,"
                          "${CHANNEL(endpoint)})} > 0]?network:none)})") == 2


def test_trusted_endpoints_from_the_config_file(env, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('trusted_endpoints = "mci-trunk"\n')
    env.setenv("HAMTA_CONFIG", str(path))
    assert config.load(classic_agi="x").trusted_endpoints == ("mci-trunk",)
    path.write_text('trusted_endpoints = "mci trunk"\n')
    with pytest.raises(config.ConfigError, match=r"trusted_endpoints in .*config\.toml"):
        config.load(classic_agi="x")


@pytest.mark.parametrize("value, why", [
    ("mci-trunk,bad name", "not a PJSIP endpoint name"),
    ("mci;trunk", "not a PJSIP endpoint name"),
    ("a&b", "not a PJSIP endpoint name"),
    ("${CALLERID(num)}", "not a PJSIP endpoint name"),
    ("mci-trunk,STAFF1", "staff softphone account"),
])
def test_a_bad_trusted_endpoint_is_one_line_naming_the_setting(env, value, why):
    env.setenv("HAMTA_TRUSTED_ENDPOINTS", value)
    with pytest.raises(config.ConfigError) as caught:
        config.load(classic_agi="x")
    message = str(caught.value)
    assert message.startswith("HAMTA_TRUSTED_ENDPOINTS: ") and why in message
    assert "\n" not in message
