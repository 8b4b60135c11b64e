"""The gradebook's database: nbgrader's `db_url` (SQLAlchemy), SQLite by default, PostgreSQL for scale.

A course keeps its gradebook where its nbgrader_config.py says: `c.CourseDirectory.db_url`, by default
`sqlite:///<course>/gradebook.db`. For a large class, or several grading machines, point it at PostgreSQL:

    c.CourseDirectory.db_url = "postgresql+psycopg2://grader:PASSWORD@db.example.edu:5432/gradebook"
    c.CourseDirectory.db_url = "postgresql+psycopg2://grader@/gradebook?host=/run/postgresql"   (a Unix socket)

(or `--db-url URL` on `python -m grader.classroom`, `DB_URL=...` for make). The database must exist (CREATE DATABASE
gradebook OWNER grader); nbgrader makes its tables on first use.

check(url) says, in one line, what is wrong with a URL before any submission is touched: not a URL, an unknown kind
of database, a driver that is not installed, a SQLite file in a folder that does not exist, a server that cannot be
reached or refuses the login, a database that does not exist. Passwords are never printed.
"""

from __future__ import annotations

import contextlib
import os

CONNECT_SECONDS = 10  # a server that does not answer within this is reported unreachable
SQLITE_BUSY_SECONDS = 60  # how long a SQLite writer waits for another (nbgrader's engines keep the default 5 s)


def _sqlite_pragmas(dbapi_connection, _record):
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()


def tune_sqlite():
    """Make every SQLite connection this process opens (nbgrader's gradebook, the ledger) use write-ahead logging,
    synchronous=NORMAL and a long busy timeout. nbgrader commits some 36 times per notebook; with the default
    rollback journal each commit waits for two fsyncs, and a reader blocks the writers of the other threads or
    worker processes. In WAL mode readers and one writer proceed together, and a commit is made durable at the next
    checkpoint: a crash of the process loses nothing, a power failure can lose the last commits, never the file's
    consistency (https://www.sqlite.org/wal.html). WAL needs every process on one machine: a gradebook shared by
    several machines belongs in PostgreSQL (SQLite never did work on a network file system). Idempotent."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


@contextlib.contextmanager
def kept_open(db_url):
    """Hold one idle connection to a SQLite gradebook while grading: nbgrader opens and closes its connections
    several times per notebook, and the last connection to close checkpoints the write-ahead log, with an fsync.
    Nothing for other databases."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if make_url(db_url).get_backend_name() != "sqlite":
        yield
        return
    tune_sqlite()
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))  # (opened, then idle: it holds no lock)
            connection.commit()
            yield
    finally:
        engine.dispose()


class GradebookError(Exception):
    """The gradebook's database cannot be used; the message is one line, without the password."""


def shown(url):
    """The URL as it may be printed: the password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: printed as given (it has no password field to hide)
        return str(url)


def _first_line(exc):
    text = str(getattr(exc, "orig", None) or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _where(url):
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    host = url.query.get("host") or url.host or "localhost (its default socket)"
    if isinstance(host, tuple):
        host = host[0]
    port = f":{url.port}" if url.port else ""
    return f"{host}{port}, database {url.database!r}"


def check(db_url):
    """Raise GradebookError (one line: what and where) unless the gradebook's database can be connected to."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if not db_url:
        raise GradebookError("the gradebook's db_url is empty (c.CourseDirectory.db_url in nbgrader_config.py)")
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise GradebookError(f"the gradebook's db_url {shown(db_url)!r} is not a database URL (expected e.g. "
                             "sqlite:////path/gradebook.db or postgresql+psycopg2://user@host/gradebook)") from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise GradebookError(f"the gradebook's db_url {shown(db_url)!r}: {url.drivername!r} is not a kind of "
                             "database SQLAlchemy knows (sqlite, postgresql+psycopg2, ...)") from None
    try:
        dialect.import_dbapi() if hasattr(dialect, "import_dbapi") else dialect.dbapi()
    except ImportError as exc:
        hint = " (pip install psycopg2-binary)" if url.get_backend_name() == "postgresql" else ""
        raise GradebookError(f"the gradebook's db_url {shown(db_url)!r} needs the Python driver "
                             f"{exc.name or url.get_driver_name()!r}, which is not installed{hint}") from None
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            folder = os.path.dirname(os.path.abspath(url.database))
            if not os.path.isdir(folder):
                raise GradebookError(f"the gradebook {url.database} cannot be made: its folder {folder} does not "
                                     "exist")
    kwargs = {"connect_args": {"connect_timeout": CONNECT_SECONDS}} if url.get_backend_name() == "postgresql" else {}
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:  # noqa: BLE001 - e.g. a wrong query parameter
        raise GradebookError(f"the gradebook's db_url {shown(db_url)!r} is not usable: {_first_line(exc)}") from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - OperationalError: unreachable, refused, no such database or role
        raise GradebookError(f"cannot reach the gradebook database at {_where(url)} ({shown(db_url)}): "
                             f"{_first_line(exc)}") from None
    finally:
        engine.dispose()
