"""The doctor's checks of everything a call needs, each failure with its fix (`hamta-ivr doctor`
prints them; exit 0 when every check passes, 1 otherwise). Run it as the user `serve` runs as,
with the same environment (HAMTA_DB_URL, HAMTA_PEPPER_FILE, HAMTA_SOUNDS_DIR, …). Each check is a
small function answering ok (with what it found) or a problem and its fix:

    database   reachable and at the latest migration (a missing SQLite file is not created)
    pepper     the registry's PIN and code hashes were made with this pepper (Registry.open)
    prompts    every catalogue prompt the flows play, every digit and number word, built
               (ivr.prompts.check with ivr.flows.keys.USED_KEYS)
    spool      the secret-digit spool exists, serve can write it, Asterisk can read its files
               (the running Asterisk's user and groups, else the `asterisk` user's)
    ami        AMI answers with the configured credentials and the dialplan's route
               (ivr.asterisk.dialplan, 7777@hamta-ivr) is loaded (ShowDialPlan), its
               AGI pointing at this server's port
    fastagi    the FastAGI port accepts a connection (closed at once: serve logs a port probe)
    metrics    /healthz and /readyz answer, at the address serve is configured with (serve's
               own reading of --metrics/HAMTA_METRICS/`metrics`), for each of its --processes
               (skipped with --metrics off / HAMTA_METRICS=off)
    kannel     when SMS is configured (kannel_url): its settings, and smsbox's sendsms
               accepting them (nothing sent); the outbox's dead and overdue receipts

A check whose prerequisite failed is shown as skipped. A check that passed with something to fix
is a warning (exit 0): the registry's SQLite files, the pepper file or the Kannel password file
readable by their group or by everyone (one line: the files and `chmod 600 …`). Nothing secret
is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from sqlalchemy import make_url

from ivr import config
from ivr.asterisk import dialplan
from ivr.asterisk.ami import AmiError, ami_session
from ivr.asterisk.config import AsteriskConfig, read_secret, spool_path
from ivr.call.agi_spool import SECRET_MODE
from ivr.config import (
    AgiAddress,
    ConfigError,
    agi_address,
    db_url,
    pepper_source,
)
from ivr.flows import keys
from ivr.prompts.check import check
from ivr.prompts.layout import LANGUAGE, sounds_dir
from ivr.registry import meta
from ivr.registry.db import (
    SQLITE_SUFFIXES,
    check_schema,
    current_revision,
    make_engine,
    sqlite_path,
)
from ivr.registry.errors import SchemaNotReady
from ivr.registry.outbox import backlog
from ivr.registry.service import Registry
from ivr.sms import kannel

TIMEOUT = 3.0
OK, FAIL, SKIP, WARN = "ok", "fail", "skip", "warn"
ASTERISK_USER = "asterisk"
_AGI_URL = re.compile(r"agi://\[?(?P<host>[^/\]]*?)\]?(?::(?P<port>[0-9]+))?/")


@dataclass
class Result:
    name: str
    status: str
    detail: str = ""
    problem: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status != FAIL


def ok(name: str, detail: str) -> Result:
    return Result(name, OK, detail=detail)


def fail(name: str, problem: str, fix: str) -> Result:
    return Result(name, FAIL, problem=" ".join(problem.split()), fix=fix)


def skip(name: str, why: str) -> Result:
    return Result(name, SKIP, detail=why)


# --- files only their owner may read ------------------------------------------------------------
def exposed(paths: Iterable[Path]) -> tuple[str, str] | None:
    """(problem, fix) when any of `paths` (those that exist) can be read by its group or by
    everyone, else None. These files hold secrets or the registry: serve's user needs them,
    nobody else (Asterisk's user is in the service's group, to read the spool)."""
    found: list[tuple[Path, os.stat_result]] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        if st.st_mode & 0o044:
            found.append((path, st))
    if not found:
        return None
    said = ", ".join(f"{path} ({oct(stat.S_IMODE(st.st_mode))[2:].zfill(4)}, "
                     f"{'everyone' if st.st_mode & 0o004 else f'group {_group_name(st.st_gid)}'})"
                     for path, st in found)
    names = " ".join(str(path) for path, _ in found)
    me = os.geteuid()
    theirs = [p for p, st in found if st.st_uid != me and not (me == 0 and st.st_uid != 0)]
    chown = ""
    if theirs:  # chmod 600 alone would lock serve's user out of a file it reads by its group
        who = _user_name(me) if me != 0 else "<serve's user>"
        chown = f"chown {who} {' '.join(map(str, theirs))} && "
    return f"readable by others than its owner: {said}", f"{chown}chmod 600 {names}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def warned(result: Result, paths: Iterable[Path]) -> Result:
    """`result`, a warning instead when it passed and any of `paths` is `exposed`."""
    if result.status != OK:
        return result
    found = exposed(paths)
    if found is None:
        return result
    return replace(result, status=WARN, problem=found[0], fix=found[1])


def sqlite_files(url: str) -> list[Path]:
    """The registry's SQLite files (database, -wal, -shm, -journal); none for PostgreSQL."""
    try:
        parsed = make_url(url)
    except Exception:
        return []
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    return [] if path is None else [path.with_name(path.name + s) for s in SQLITE_SUFFIXES]


def pepper_file() -> Path | None:
    """The file the pepper is read from; None when HAMTA_PEPPER holds it."""
    settings = config.current()
    return None if settings.pepper else settings.pepper_file


# --- database and pepper -------------------------------------------------------------------------
def check_database(url: str) -> Result:
    """Reachable and migrated; a SQLite file that does not exist is reported, not created."""
    name = "database"
    upgrade = "run `hamta-ivr db upgrade` with the same HAMTA_DB_URL/--db (`db seed-demo` " \
              "after it for the demo)"
    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
        if parsed.get_backend_name() == "sqlite":
            path = sqlite_path(parsed)
            if path is not None and not path.exists():
                return fail(name, f"no registry database at {path} (HAMTA_DB_URL/--db)",
                            upgrade + ", or point HAMTA_DB_URL/--db at the registry")
        engine = make_engine(url)
    except ConfigError as exc:
        return fail(name, str(exc), "set HAMTA_DB_URL/--db to the registry's URL")
    except Exception as exc:  # make_url on garbage
        return fail(name, f"HAMTA_DB_URL/--db is not a database URL ({type(exc).__name__})",
                    "set HAMTA_DB_URL/--db to e.g. sqlite:////var/lib/hamta/registry.db or "
                    "postgresql+psycopg://user@host/db")
    try:
        check_schema(engine)
        revision = current_revision(engine)
    except SchemaNotReady as exc:
        return fail(name, str(exc), upgrade)
    except ConfigError as exc:
        return fail(name, str(exc), "start the database server, check the host, user and "
                    "password in HAMTA_DB_URL/--db, and that this user can read the file")
    finally:
        engine.dispose()
    return warned(ok(name, f"{shown} at revision {revision} (the latest)"), sqlite_files(url))


def check_pepper(url: str) -> Result:
    """The pepper matches the registry's fingerprint of it (Registry.open's own check). A new
    registry (no hash, no fingerprint) passes without creating anything."""
    name = "pepper"
    try:
        engine = make_engine(url)
        try:
            state = meta.pepper_state(engine)
        finally:
            engine.dispose()
        if state.new:
            found = pepper_file()
            return warned(ok(name, "a new registry: no PIN or code hashed yet; serve records "
                             "the pepper's fingerprint at its first start"),
                          [] if found is None else [found])
        Registry.open(url).close()
    except ConfigError as exc:
        return fail(name, str(exc), "restore the pepper this registry was made with "
                    "(HAMTA_PEPPER, HAMTA_PEPPER_FILE, or the file `pepper` in the data "
                    "directory) from its backup; never make a new one for an existing registry")
    found = pepper_file()
    return warned(ok(name, f"{pepper_source()} matches the registry"),
                  [] if found is None else [found])


# --- prompts -------------------------------------------------------------------------------------
def check_prompts(sounds: Path, shown: int = 3) -> Result:
    name = "prompts"
    report = check(sounds, used=keys.USED_KEYS)
    if report.problems:
        more = len(report.problems) - shown
        listed = "; ".join(p.removesuffix("; run `hamta-ivr prompts build`")
                           for p in report.problems[:shown])
        listed += f"; and {more} more" if more > 0 else ""
        return fail(name, f"{len(report.problems)} problem(s) in {sounds / LANGUAGE}: {listed}",
                    f"run `hamta-ivr prompts build` (HAMTA_SOUNDS_DIR={sounds}); a prompt key "
                    "missing from the catalogue needs its text in prompts/catalogue.toml first; "
                    "`hamta-ivr prompts check` lists every problem")
    if report.transcoded:
        return Result(name, WARN,
                      detail=f"{report.files} sounds in {sounds / LANGUAGE}, all playable",
                      problem=f"{report.transcoded} sound(s) have only their .wav: Asterisk "
                              "transcodes them for every call and G.722 callers hear 8 kHz",
                      fix=f"run `hamta-ivr prompts build` (HAMTA_SOUNDS_DIR={sounds}) to add "
                          ".ulaw, .alaw and .sln16 beside each .wav")
    return ok(name, f"{report.files} sounds in {sounds / LANGUAGE}, each in .wav, .ulaw, .alaw "
              f"and .sln16; the {report.keys} prompt keys the flows play are all in the "
              "catalogue")


# --- the spool -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Who a process runs as: what file permissions are checked against."""

    label: str
    uid: int
    gids: frozenset[int] = field(default_factory=frozenset)

    def can(self, st: os.stat_result, bit: str) -> bool:
        """`bit`: r, w or x, by owner / group / other as the kernel checks it."""
        if self.uid == 0:
            return True  # folders and readable files: root passes every check made here
        shift = 6 if st.st_uid == self.uid else 3 if st.st_gid in self.gids else 0
        return bool(st.st_mode >> shift & {"r": 4, "w": 2, "x": 1}[bit])


def asterisk_identity() -> Identity | None:
    """The running Asterisk's user and groups (/proc), else the `asterisk` user's; None when
    neither is known here."""
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                if Path(entry.path, "comm").read_text().strip() != "asterisk":
                    continue
                fields = dict(line.split(":", 1) for line in
                              Path(entry.path, "status").read_text().splitlines() if ":" in line)
            except OSError:
                continue
            uid = int(fields["Uid"].split()[1])
            gids = {int(fields["Gid"].split()[1]), *map(int, fields.get("Groups", "").split())}
            return Identity(f"the running Asterisk (pid {entry.name}, uid {uid})", uid,
                            frozenset(gids))
    try:
        user = pwd.getpwnam(ASTERISK_USER)
    except KeyError:
        return None
    gids = {user.pw_gid, *(g.gr_gid for g in grp.getgrall() if ASTERISK_USER in g.gr_mem)}
    return Identity(f"the user {ASTERISK_USER!r}", user.pw_uid, frozenset(gids))


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def check_spool(spool: Path, asterisk: Identity | None, serve: Identity | None = None) -> Result:
    """The spool exists, serve (this user, unless `serve` is given) can write it and give its
    files the spool's group, and Asterisk can reach it and read files of mode 0640 there."""
    name = "spool"
    serve = serve or Identity("this user", os.geteuid(), frozenset({os.getegid(),
                                                                     *os.getgroups()}))
    try:
        st = spool.stat()
    except FileNotFoundError:
        return fail(name, f"the spool {spool} does not exist (HAMTA_SPOOL_DIR)",
                    f"`install -d -m 2750 -o <serve user> -g asterisk {spool}` (or start serve "
                    "once as its user: it creates it)")
    except OSError as exc:
        return fail(name, f"cannot reach the spool {spool}: {exc.strerror}",
                    "fix the permissions of its parent folders (HAMTA_SPOOL_DIR)")
    if not stat.S_ISDIR(st.st_mode):
        return fail(name, f"the spool {spool} is not a folder (HAMTA_SPOOL_DIR)",
                    "remove it or set HAMTA_SPOOL_DIR to a folder")
    if not (serve.can(st, "w") and serve.can(st, "x")):
        return fail(name, f"{serve.label} (uid {serve.uid}) cannot write the spool {spool}",
                    f"`chown <serve user> {spool}` (run doctor as serve's user)")
    group = _group_name(st.st_gid)
    if serve.uid != 0 and st.st_gid not in serve.gids:
        return fail(name, f"serve's secret files cannot take the spool's group {group!r}: "
                    f"{serve.label} is not in it, so Asterisk may not read them",
                    f"add serve's user to group {group!r} (`usermod -aG {group} <serve user>`), "
                    "or chgrp the spool to a group both share")
    if asterisk is None:
        return ok(name, f"{spool}: serve can write it (group {group}); no Asterisk running and "
                  f"no {ASTERISK_USER!r} user here, so Asterisk's access is not checked")
    for folder in [*reversed(spool.parents), spool]:
        try:
            fst = folder.stat()
        except OSError:
            continue
        if not asterisk.can(fst, "x"):
            where = "the spool" if folder == spool else f"its parent {folder}"
            agroup = _group_name(min(asterisk.gids)) if asterisk.gids else ASTERISK_USER
            fix = (f"`chgrp {agroup} {spool} && chmod 2750 {spool}`" if folder == spool
                   else f"`chmod o+x {folder}` (or move the spool: HAMTA_SPOOL_DIR)")
            return fail(name, f"{asterisk.label} cannot enter {where} ({oct(fst.st_mode & 0o777)}"
                        f", group {_group_name(fst.st_gid)}), so it cannot play a secret digit "
                        "string", fix)
    # a secret file: mode 0640, owner serve, group the spool's
    reads = asterisk.uid in (0, serve.uid) or (st.st_gid in asterisk.gids
                                                and bool(SECRET_MODE & 0o040))
    if not reads:
        agroup = _group_name(min(asterisk.gids)) if asterisk.gids else ASTERISK_USER
        return fail(name, f"{asterisk.label} is not in the spool's group {group!r}, so it cannot "
                    f"read the secret files (mode 0640) serve writes to {spool}",
                    f"`chgrp {agroup} {spool} && chmod 2750 {spool}` and add serve's user to "
                    f"group {agroup!r}")
    return ok(name, f"{spool}: serve writes, {asterisk.label} reads (group {group})")


# --- Asterisk, the FastAGI port, the metrics endpoint --------------------------------------------
def ami_settings() -> AsteriskConfig:
    """The AMI part of the Asterisk settings (port, user, secret), without touching the other
    parts' secrets; ConfigError when the AMI secret is nowhere."""
    settings = config.current().checked("ami_port")
    port = settings.ami_port
    return AsteriskConfig(
        base=settings.data_dir / "asterisk", sounds=sounds_dir(), agi=agi_address(),
        ami_port=port, ami_secret=read_secret("HAMTA_AMI_SECRET", "ami", create=False),
        sip_bind="", sip_port=0, rtp_range=(0, 0), classic_agi="")


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "connection refused"
    return getattr(exc, "strerror", None) or str(exc)


def _wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "*")


async def check_ami(cfg: AsteriskConfig | ConfigError, agi: AgiAddress,
                    timeout: float = TIMEOUT) -> Result:
    """AMI login with the configured credentials, then ShowDialPlan of the dialplan's route."""
    name = "ami"
    if isinstance(cfg, ConfigError):
        return fail(name, str(cfg), "set HAMTA_AMI_SECRET to the secret of the [hamta] user in "
                    "Asterisk's manager.conf (or run `hamta-ivr asterisk up` for the development "
                    "Asterisk)")
    route = dialplan.route()
    try:
        async with ami_session(cfg, timeout=timeout) as manager:
            answer = await asyncio.wait_for(manager.send_action({
                "Action": "ShowDialPlan", "Context": dialplan.IVR_CONTEXT,
                "Extension": dialplan.IVR_EXTENSION}), timeout)
    except AmiError as exc:
        text = str(exc)
        if "refused" in text:
            fix = ("make HAMTA_AMI_SECRET (or <data dir>/secrets/ami) the secret of "
                   f"[{cfg.ami_user}] in manager.conf (`hamta-ivr asterisk render`), then "
                   "`asterisk -rx 'manager reload'`")
        else:
            fix = ("start Asterisk (`systemctl start asterisk`; the development one: "
                   "`hamta-ivr asterisk up`) and check HAMTA_AMI_PORT and manager.conf's "
                   "[general] enabled/port")
        return fail(name, text, fix)
    except TimeoutError:
        return fail(name, f"AMI did not answer ShowDialPlan within {timeout:g}s",
                    "check Asterisk's load (`asterisk -rx 'core show uptime'`)")
    messages = answer if isinstance(answer, list) else [answer]
    head = messages[0] if messages else None
    include = ("`#include` the rendered dialplan (`hamta-ivr asterisk render --out DIR`; "
               "asterisk-conf/README.md) and `asterisk -rx 'dialplan reload'`")
    if head is None or head.get("Response") != "Success":
        said = head.get("Message", "no answer") if head is not None else "no answer"
        if "permission" in said.lower():
            return fail(name, f"the AMI user {cfg.ami_user!r} may not read the dialplan ({said})",
                        f"add `reporting` to `write =` of [{cfg.ami_user}] in manager.conf, "
                        "then `asterisk -rx 'manager reload'`")
        return fail(name, f"the dialplan route {route} is not loaded (Asterisk: {said})", include)
    steps = [m for m in messages[1:] if m.get("Event") == "ListDialplan"
             and m.get("Extension") == dialplan.IVR_EXTENSION]
    if not steps:
        return fail(name, f"the dialplan route {route} is not loaded (no priority listed)",
                    include)
    named = _dialplan_servers(steps)
    if named and not any(port == agi.port and (_wildcard(agi.host) or host == agi.host)
                         for host, port in named):
        listed = ", ".join(f"agi://{host}:{port}" for host, port in named)
        return fail(name, f"{route} sends calls to {listed}, but serve listens on "
                    f"{agi.host}:{agi.port} (HAMTA_AGI_HOST/HAMTA_AGI_PORT)",
                    "render the dialplan with the same HAMTA_AGI_HOST/HAMTA_AGI_PORT (or "
                    "HAMTA_AGI_SERVERS listing it) as serve (`hamta-ivr asterisk render`), then "
                    "`asterisk -rx 'dialplan reload'`")
    return ok(name, f"AMI 127.0.0.1:{cfg.ami_port} as {cfg.ami_user!r}; {route} loaded "
              f"({len(steps)} priorities)")


def _dialplan_servers(steps: list[dict[str, str]]) -> list[tuple[str, int]]:
    """The FastAGI servers the route's steps name: literal agi:// URLs, and the list the rendered
    dialplan tries in order (`Set(HAMTA_SERVERS=host:port&host:port)`)."""
    named: list[tuple[str, int]] = []
    for step in steps:
        app, data = step.get("Application", "").upper(), step.get("AppData", "")
        if app == "SET" and data.startswith("HAMTA_SERVERS="):
            for item in data.partition("=")[2].split("&"):
                match = _AGI_URL.match(f"agi://{item.strip()}/")
                if match is not None:
                    named.append((match["host"], int(match["port"] or 4573)))
        elif app == "AGI":
            match = _AGI_URL.search(data)
            if match is not None and "$" not in match["host"]:
                named.append((match["host"], int(match["port"] or 4573)))
    return named


async def check_fastagi(agi: AgiAddress, timeout: float = TIMEOUT) -> Result:
    """The FastAGI port accepts a connection; closed at once without a word (serve logs it as a
    port probe at debug level, no call is started)."""
    name = "fastagi"
    host = "127.0.0.1" if _wildcard(agi.host) else agi.host
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, agi.port)
    except (OSError, TimeoutError) as exc:
        return fail(name, f"nothing answers on the FastAGI port {host}:{agi.port} ({_why(exc)})",
                    "start the server: `hamta-ivr serve` (as a service: `systemctl start "
                    f"hamta-ivr@{agi.port}`), with the HAMTA_AGI_HOST/HAMTA_AGI_PORT the "
                    "dialplan uses")
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return ok(name, f"{host}:{agi.port} accepts connections")


async def http_get(host: str, port: int, path: str, timeout: float = TIMEOUT
                   ) -> tuple[int, str]:
    """(status, body) of a plain HTTP GET."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read(1 << 20)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b"\r\n", 1)[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, body.decode("utf-8", "replace").strip()


async def check_metrics(address: tuple[str, int] | None, timeout: float = TIMEOUT,
                        processes: int = 1) -> Result:
    """Every serve process's endpoint: process i (of --processes) serves on the port + i - 1."""
    name = "metrics"
    if address is None:
        return skip(name, "the metrics endpoint is off (HAMTA_METRICS=off)")
    host, port = address
    results = await asyncio.gather(*(_check_endpoint(host, port + index, timeout)
                                     for index in range(processes)))
    for index, result in enumerate(results, 1):
        if not result.ok:
            if processes > 1:
                result = replace(result, problem=f"process {index} of {processes}: "
                                 f"{result.problem}")
            return result
    if processes == 1:
        return results[0]
    shown = "127.0.0.1" if _wildcard(host) else host
    return ok(name, f"http://{shown}:{port}-{port + processes - 1} (the {processes} processes): "
              "healthy and ready")


async def _check_endpoint(host: str, port: int, timeout: float) -> Result:
    name = "metrics"
    host = "127.0.0.1" if _wildcard(host) else host
    where = f"http://{host}:{port}"
    try:
        health, _ = await http_get(host, port, "/healthz", timeout)
        ready, reason = await http_get(host, port, "/readyz", timeout)
    except (OSError, TimeoutError) as exc:
        return fail(name, f"nothing answers at {where}/healthz ({_why(exc)})",
                    "start `hamta-ivr serve` with the same --metrics/HAMTA_METRICS (default "
                    "127.0.0.1:9573)")
    if health != 200:
        return fail(name, f"{where}/healthz answered {health}", "restart `hamta-ivr serve`; "
                    "something else may hold the metrics port (--metrics/HAMTA_METRICS)")
    if ready != 200:
        return fail(name, f"{where}/readyz answered {ready}: {reason}",
                    "fix what it names (the database and pepper lines above); at --max-calls "
                    "add a server or raise HAMTA_MAX_CALLS")
    return ok(name, f"{where}: healthy and ready")


# --- running them --------------------------------------------------------------------------------
@dataclass
class Setup:
    """What the checks look at; `from_environment` reads serve's settings."""

    db: str
    sounds: Path
    spool: Path
    agi: AgiAddress
    ami: AsteriskConfig | ConfigError  # the ConfigError that loading it raised
    metrics: tuple[str, int] | None  # process 1's; process i's is on the port + i - 1
    asterisk: Identity | None = None
    timeout: float = TIMEOUT
    processes: int = 1  # serve's --processes

    @classmethod
    def from_environment(cls, *, db: str | None = None, host: str | None = None,
                         port: int | None = None, metrics: str | None = None,
                         timeout: float | None = TIMEOUT) -> Setup:
        """Serve's settings, as the settings room gives them to serve, so doctor looks where
        serve listens; the arguments are doctor's flags (None: the setting)."""
        serves = config.Settings.load(flags={"metrics": metrics}, strict=False)
        try:
            ami: AsteriskConfig | ConfigError = ami_settings()
        except ConfigError as exc:
            ami = exc
        return cls(
            db=db_url(db), sounds=Path(sounds_dir()).resolve(), spool=spool_path(),
            agi=agi_address(host, port), ami=ami, metrics=serves.checked("metrics").metrics,
            asterisk=asterisk_identity(), timeout=timeout or TIMEOUT,
            processes=serves.checked("processes").processes)


async def run_checks(setup: Setup) -> list[Result]:
    results = [check_database(setup.db)]
    if results[0].ok:
        results.append(check_pepper(setup.db))
    else:
        results.append(skip("pepper", "the database check failed"))
    results.append(check_prompts(setup.sounds))
    results.append(check_spool(setup.spool, setup.asterisk))
    results += await asyncio.gather(
        check_ami(setup.ami, setup.agi, setup.timeout),
        check_fastagi(setup.agi, setup.timeout),
        check_metrics(setup.metrics, setup.timeout, setup.processes))
    results.append(check_kannel(setup.db if results[0].ok else None, setup.timeout))
    return results


def check_kannel(url: str | None, timeout: float = TIMEOUT) -> Result:
    """SMS receipts: skipped while kannel_url is unset; else the settings, Kannel answering
    them, and receipts dead or waiting longer than 10 minutes in the outbox."""
    if not kannel.configured():
        return skip("kannel", "SMS is not configured (kannel_url unset): receipts wait in the "
                    "outbox")
    settings = config.current()
    named = None if settings.kannel_password else settings.kannel_password_file
    secret = [named] if named else []
    try:
        sendsms = kannel.settings()
    except ConfigError as exc:
        return fail("kannel", str(exc), "see docs/gateways.md, \"Text messages (SMS)\"")
    answer = kannel.Kannel(replace(sendsms, timeout=timeout)).probe()
    if answer.verdict != kannel.Verdict.SENT:
        return fail("kannel", f"{sendsms.url}: {answer.detail}",
                    "start Kannel (bearerbox and smsbox) and check kannel_url, kannel_username "
                    "and the password against the sendsms-user group of kannel.conf")
    if url is None:
        return warned(ok("kannel", f"{sendsms.url} accepts {sendsms.username}"), secret)
    try:
        dead, late = backlog(url)
    except Exception as exc:  # the database check already said what is wrong
        return warned(ok("kannel", f"{sendsms.url} accepts {sendsms.username} (outbox unread: "
                         f"{type(exc).__name__})"), secret)
    if dead or late:
        return fail("kannel", f"{dead} receipt(s) dead, {late} waiting over 10 minutes",
                    "is `hamta-ivr sms deliver` (hamta-ivr-sms.service) running? "
                    "`hamta-ivr sms list --state dead` shows why; `hamta-ivr sms resend ID`")
    return warned(ok("kannel", f"{sendsms.url} accepts {sendsms.username}; no receipt dead or "
                     "late"), secret)


def render(results: Iterable[Result]) -> str:
    lines = []
    for r in results:
        mark = {OK: "ok  ", FAIL: "FAIL", SKIP: "skip", WARN: "WARN"}[r.status]
        if r.status == WARN:  # one line: what and the fix
            lines.append(f"{mark}  {r.name:<9} {r.problem}; fix: {r.fix}")
            continue
        lines.append(f"{mark}  {r.name:<9} {r.problem or r.detail}")
        if r.fix:
            lines.append(f"      {'':<9} fix: {r.fix}")
    return "\n".join(lines)


def summary(results: Sequence[Result]) -> str:
    """The last line: all passed, or how many failed (and warned)."""
    failed = sum(not r.ok for r in results)
    warnings = sum(r.status == WARN for r in results)
    return (("doctor: all checks passed" if not failed else f"doctor: {failed} check(s) failed")
            + (f" ({warnings} warning(s))" if warnings else ""))


def as_json(results: Sequence[Result]) -> str:
    return json.dumps({"ok": all(r.ok for r in results),
                       "checks": [asdict(r) for r in results]}, ensure_ascii=False, indent=2)
