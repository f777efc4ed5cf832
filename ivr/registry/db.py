"""Engines and migrations: one code path for SQLite (embedded default) and PostgreSQL.

SQLite: pysqlite defers BEGIN until the first write, so two transactions can both read a row,
then both write: a read-then-write race. Following the SQLAlchemy recipe, the driver's own
transaction handling is switched off and the `begin` event emits `BEGIN IMMEDIATE` for write
transactions (the write lock is taken at BEGIN; others wait up to the busy timeout) and a plain
`BEGIN` for reads. WAL mode lets readers run beside the one writer.

PostgreSQL: READ COMMITTED with `SELECT … FOR UPDATE` row locks in write transactions; the guarded
`UPDATE … WHERE version = :seen` re-checks the row after a lock wait.

`upgrade(url)` runs the Alembic migrations programmatically, found via HAMTA_MIGRATIONS_DIR or,
by default, `db/migrations` next to the `ivr` package (the project is installed editable).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ivr.config import ConfigError, current
from ivr.registry.errors import SchemaNotReady

# Alembic announces every plugin it loads at INFO; the CLI logs INFO by default.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

SQLITE_BUSY_TIMEOUT_S = 30
WRITE = {"hamta_write": True}  # execution option: this transaction will write


SETTING = "HAMTA_DB_URL/--db"
EXAMPLES = "e.g. sqlite:////var/lib/hamta/registry.db or postgresql+psycopg://user:pw@host/db"
SQLITE_HEADER = b"SQLite format 3\x00"
PYSQLITE_ARGS = {"uri", "timeout", "isolation_level", "detect_types", "check_same_thread",
                 "cached_statements"}
PG_CONNECT_TIMEOUT_S = 10


def normalize_url(url: str) -> URL:
    """`postgresql://` and `postgres://` mean psycopg 3 here (psycopg2 is not a dependency).
    A string that is no database URL at all is a ConfigError naming the setting."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError as exc:
        raise ConfigError(f"{SETTING} {_shown(url)} is not a database URL; use {EXAMPLES}"
                          ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _shown(url: str | URL) -> str:
    """The URL as an operator wrote it, quoted, its password hidden."""
    try:
        return repr(unquote(make_url(url).render_as_string(hide_password=True)))
    except ArgumentError:
        return "(not a URL)"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the registry at `url`: only SQLite (a file) and PostgreSQL (psycopg 3).

    Every mistake in the URL is a ConfigError naming HAMTA_DB_URL/--db and the fix, raised here
    before any connection: an unknown database or missing driver, an in-memory or URI-less
    read-only SQLite, a SQLite path under a file, a folder or a file that is not SQLite."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _check_sqlite(parsed)
        connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT_S,
                                        "check_same_thread": False}
        engine = _create(parsed, connect_args=connect_args, **kwargs)
        _sqlite_events(engine, None if parsed.query.get("mode") == "ro" else sqlite_path(parsed))
        return engine
    if backend != "postgresql":
        raise ConfigError(f"{SETTING} {_shown(parsed)}: the registry runs on SQLite or "
                          f"PostgreSQL only, not {backend!r}; use {EXAMPLES}")
    if parsed.get_driver_name() != "psycopg":
        raise ConfigError(f"{SETTING} {_shown(parsed)}: use the psycopg 3 driver "
                          "(postgresql+psycopg://… or postgresql://…), the one installed")
    args = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return _create(parsed, pool_pre_ping=True, connect_args=args, **kwargs)


def _create(parsed: URL, **kwargs: Any) -> Engine:
    """The engine, with the SQL parameters of every statement kept out of its exceptions' text
    and its log (they are the registry's numbers, IMEIs and references: logs never show one)."""
    kwargs["hide_parameters"] = True  # whatever a caller asked for
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{SETTING} {_shown(parsed)} cannot be used ({detail}); use "
                          f"{EXAMPLES}") from exc
    event.listen(engine, "handle_error", _without_values)
    return engine


HIDDEN_DETAIL = "(hidden: it may quote the registry's values)"


def _without_values(context: Any) -> None:
    """PostgreSQL's error text quotes values in its DETAIL line (`Key (msisdn)=(+98…) already
    exists`, `Failing row contains (…)`): hidden in the driver's exception and in SQLAlchemy's,
    before either is raised or logged. The primary message (which names the constraint, as
    Store's retry on a duplicate random number needs) is kept."""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    detail = getattr(diag, "message_detail", None) if diag is not None else None
    if not detail:
        return
    for exc in (orig, context.sqlalchemy_exception):
        if exc is not None and exc.args and isinstance(exc.args[0], str):
            exc.args = (exc.args[0].replace(detail, HIDDEN_DETAIL), *exc.args[1:])


def sqlite_path(parsed: URL) -> Path | None:
    """The file a SQLite URL names (also as a `file:` URI with uri=true); None when in memory."""
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1", "True"):
        if parsed.query.get("mode") == "memory" or database.startswith("file::memory:"):
            return None
        if database.startswith("file:"):
            database = database.removeprefix("file:")
            if database.startswith("//"):  # file://[host]/path
                database = "/" + database[2:].partition("/")[2]
    if database in ("", ":memory:"):
        return None
    return Path(database)


def _check_sqlite(parsed: URL) -> None:
    shown = _shown(parsed)
    if parsed.username or parsed.password or parsed.host or parsed.port:
        raise ConfigError(f"{SETTING} {shown}: a SQLite URL names a file, not a host; use "
                          "sqlite:////absolute/path/registry.db (four slashes)")
    ignored = sorted(set(parsed.query) - PYSQLITE_ARGS)
    if ignored and parsed.query.get("uri") not in ("true", "1", "True"):
        raise ConfigError(f"{SETTING} {shown}: {', '.join(ignored)} would be ignored; SQLite "
                          "URI options need the form sqlite:///file:/path/registry.db?mode=ro"
                          "&uri=true")
    path = sqlite_path(parsed)
    if path is None:
        raise ConfigError(f"{SETTING} {shown}: the registry needs a SQLite file "
                          "(sqlite:////path/registry.db): an in-memory database is private to "
                          "one connection and lost at exit")
    read_only = parsed.query.get("mode") == "ro"
    for folder in [path.parent, *path.parent.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise ConfigError(f"{SETTING} {shown}: {folder} is a file, not a folder; name a "
                                  "SQLite file in a folder, e.g. sqlite:////var/lib/hamta/"
                                  "registry.db")
            break
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{SETTING} {shown}: cannot create the folder {path.parent} "
                              f"({exc.strerror}); name a SQLite file in a folder this user "
                              "can write") from exc
    if path.is_dir():
        raise ConfigError(f"{SETTING} {shown}: {path} is a folder, not a SQLite file; name the "
                          f"file, e.g. sqlite:///{path / 'registry.db'}")
    if path.is_file():
        try:
            with path.open("rb") as fh:
                head = fh.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise ConfigError(f"{SETTING} {shown}: cannot read {path} ({exc.strerror}); give "
                              "this user read and write access to it and its folder") from exc
        if head and head != SQLITE_HEADER:
            raise ConfigError(f"{SETTING} {shown}: {path} is not a SQLite database; name the "
                              "registry's file, or move this one away and run "
                              "`hamta-ivr db upgrade` to create a new registry")


def _sqlite_file(url: str | URL | None) -> Path | None:
    try:
        parsed = make_url(url) if url is not None else None
    except ArgumentError:
        return None
    if parsed is None or parsed.get_backend_name() != "sqlite":
        return None
    return sqlite_path(parsed)


@contextmanager
def database_errors(url: str | URL | None) -> Iterator[None]:
    """Turn a database failure while opening, checking or migrating the registry at `url` into
    a ConfigError: one line naming HAMTA_DB_URL/--db and the likely fix."""
    try:
        yield
    except DBAPIError as exc:
        raise explain(exc, url) from exc


def explain(exc: BaseException, url: str | URL | None) -> ConfigError:
    """A database failure as one line naming HAMTA_DB_URL/--db and the likely fix."""
    where = _shown(url) if url is not None else "(the registry database)"
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    detail = lines[0] if lines else type(orig).__name__
    lowered = " ".join(lines).lower()
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if "readonly database" in lowered or "read-only" in lowered or state == "25006":
        return ConfigError(f"the registry database {where} is read-only for this user "
                           f"({detail}); {SETTING} must name a database this user can write: "
                           "fix the owner/permissions of the file and its folder, or drop "
                           "mode=ro")
    if state == "42501" or "permission denied" in lowered:
        return ConfigError(f"the registry database {where} refused this user ({detail}); "
                           f"grant the user of {SETTING} the rights on the registry tables, or "
                           "fix the URL's user")
    if "file is not a database" in lowered:
        return ConfigError(f"{SETTING} {where} is not a SQLite database ({detail}); name the "
                           "registry's file, or move this one away and run `hamta-ivr db "
                           "upgrade`")
    if "unable to open database file" in lowered:
        path = _sqlite_file(url)
        if path is not None and not path.exists():
            return ConfigError(f"{SETTING} {where}: there is no SQLite file at {path} ({detail}); "
                               "fix the path, or create the registry with `hamta-ivr db upgrade` "
                               "(without mode=ro)")
        return ConfigError(f"cannot open the SQLite file of {SETTING} {where} ({detail}); this "
                           "user needs read and write access to the file and its folder (SQLite "
                           "in WAL mode keeps -wal/-shm files beside it, even to read)")
    if "database is locked" in lowered:
        return ConfigError(f"the registry database {where} stayed locked by another process for "
                           f"{SQLITE_BUSY_TIMEOUT_S} s ({detail}); retry, or stop what holds it "
                           f"(a long write on the file of {SETTING})")
    if isinstance(exc, OperationalError) or isinstance(orig, (ConnectionError, OSError)):
        return ConfigError(f"cannot use the registry database {where} ({detail}); check "
                           f"{SETTING} (host, port, user, password, database name) and that "
                           "the database server is running")
    return ConfigError(f"the registry database {where} failed ({type(orig).__name__}: "
                       f"{detail}); check {SETTING} and that the database is the registry's")


SQLITE_FILE_MODE = 0o600  # the registry's numbers and hashes: its owner (serve's user) only
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")  # the files SQLite keeps of one database


def _create_private(path: Path) -> None:
    """Create the SQLite file `path`, empty, mode 0600 whatever the umask, unless it exists.
    SQLite would create it with 0644 & ~umask; the -wal, -shm and -journal files it makes
    later take their database file's mode (and, for root, its owner), so they are 0600 too."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                     SQLITE_FILE_MODE)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite's own open says what is wrong (explain())
    try:
        os.fchmod(fd, SQLITE_FILE_MODE)
    finally:
        os.close(fd)


def _sqlite_events(engine: Engine, create: Path | None = None) -> None:
    """`create`: the database file, made private (`_create_private`) before the first
    connection would create it (None for a read-only URL: nothing is created)."""
    if create is not None:
        @event.listens_for(engine, "do_connect")
        def private_file(*_: Any) -> None:
            if not create.exists():
                _create_private(create)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get("hamta_write", False)
        # straight to the driver: every transaction of every call begins here, and the
        # statement needs none of SQLAlchemy's execution machinery
        connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")


def migrations_dir() -> Path:
    """HAMTA_MIGRATIONS_DIR, else the migrations shipped in the package."""
    explicit = current().migrations_dir
    if explicit:
        return explicit
    import ivr.migrations  # db/migrations, mapped into the package by pyproject.toml

    return Path(ivr.migrations.__file__).resolve().parent


def _alembic_config(engine_url: str) -> Any:
    from alembic.config import Config

    where = migrations_dir()
    if not (where / "env.py").is_file():
        named = ("HAMTA_MIGRATIONS_DIR=" if current().migrations_dir
                 else "the default migrations folder ")
        raise SchemaNotReady(
            f"the registry migrations are not at {named}{where}; set HAMTA_MIGRATIONS_DIR to "
            "the db/migrations folder of the hamta-ivr source (or unset it)"
        )
    config = Config()
    config.set_main_option("script_location", str(where))
    config.set_main_option("sqlalchemy.url", engine_url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> str:
    """Bring the database at `url` up to `revision`; the revision it is at afterwards."""
    from alembic import command

    return _migrate(url, revision, command.upgrade)


def downgrade(url: str, revision: str) -> str:
    """Take the database at `url` back to `revision` (rolling a release back)."""
    from alembic import command

    return _migrate(url, revision, command.downgrade)


def _migrate(url: str, revision: str, step: Any) -> str:
    from alembic.util.exc import CommandError

    engine = make_engine(url)
    try:
        config = _alembic_config(url)
        with database_errors(engine.url):
            with engine.connect() as connection:
                if engine.dialect.name == "sqlite":  # batch migrations copy referred-to tables
                    raw = connection.connection.driver_connection
                    assert raw is not None
                    raw.execute("PRAGMA foreign_keys=OFF")
                config.attributes["connection"] = connection
                try:
                    step(config, revision)
                except CommandError as exc:
                    raise SchemaNotReady(
                        f"cannot migrate the registry database {_shown(engine.url)} to "
                        f"{revision} ({str(exc).splitlines()[0]}); check {SETTING} and "
                        "HAMTA_MIGRATIONS_DIR (this program's migrations)") from exc
            return current_revision(engine) or ""
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest migration; None when the migrations are not shipped at the default place.
    An HAMTA_MIGRATIONS_DIR that holds none is a SchemaNotReady naming it."""
    from alembic.script import ScriptDirectory

    try:
        config = _alembic_config("sqlite://")
    except SchemaNotReady:
        if current().migrations_dir:
            raise
        return None
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def check_schema(engine: Engine) -> None:
    """Raise SchemaNotReady (one line naming the fix) unless the database is at the head; a
    database that cannot be reached or read is a ConfigError naming HAMTA_DB_URL/--db."""
    with database_errors(engine.url):
        current = current_revision(engine)
    head = head_revision()
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaNotReady(
            f"the registry database {where} has no tables yet; run `hamta-ivr db upgrade`"
        )
    if head is not None and current != head:
        raise SchemaNotReady(
            f"the registry database {where} is at revision {current}, this program needs "
            f"{head}; run `hamta-ivr db upgrade`"
        )
