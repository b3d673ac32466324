"""Engine and sessions for SQLite or PostgreSQL, and migrations (Alembic) run from code.

A database that cannot be reached is an outage the hub rides out, not a bug: sessions raise
`DatabaseUnavailable` (503, Retry-After) instead of the driver's error, connecting and waiting for a pooled
connection are bounded so callers are answered within seconds, and the log gets one line when an outage
starts, one every `_REPORT_EVERY` seconds while it lasts and one when it ends, never a stack trace per request.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio.to_thread
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, CursorResult, Dialect, Engine, Executable, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import DatabaseUnavailable

__all__ = [
    "Database",
    "SchemaTooNew",
    "WriterConnection",
    "alembic_config",
    "database_unavailable",
    "driver_cursor",
    "driver_mark",
    "is_current",
    "is_unavailable",
    "lock_row",
    "migrate",
    "rows_changed",
    "schema_floor",
    "schema_status",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
_MIGRATIONS = Path(__file__).with_name("migrations")
# Seconds to wait for PostgreSQL to accept a connection, and for a pooled connection when all are busy: an
# unreachable database must answer callers with 503 in seconds, not after the pool's default 30 s.
_CONNECT_TIMEOUT = 3
_POOL_TIMEOUT = 5.0
_REPORT_EVERY = 10.0


def is_unavailable(error: BaseException) -> bool:
    """The database could not be reached, dropped the connection or had none free, as opposed to refusing a
    statement (a constraint, a bug): the first is worth a retry, the second is not."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError)


class _Outage:
    """What the log says about an outage: when it starts, every `_REPORT_EVERY` seconds, and when it ends."""

    def __init__(self) -> None:
        self.since: float | None = None
        self._reported = 0.0
        self._failures = 0
        self._lock = threading.Lock()

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            if self.since is not None and now - self._reported < _REPORT_EVERY:
                return
            self.since = self.since if self.since is not None else now
            self._reported, failures, self._failures = now, self._failures, 0
        cause = getattr(error, "orig", None) or error
        first_line = (str(cause).splitlines() or [""])[0][:300]
        log.warning(
            "the database is unavailable (%s: %s); answering 503 until it is back (%d failed since the last report)",
            type(cause).__name__,
            first_line,
            failures,
        )

    def ended(self) -> None:
        with self._lock:
            if self.since is None:
                return
            lasted, self.since, self._failures = time.monotonic() - self.since, None, 0
        log.warning("the database is reachable again, after %.1f s", lasted)


_OUTAGE = _Outage()


def database_unavailable(error: BaseException) -> DatabaseUnavailable:
    """The caller's answer to `error` (one for which `is_unavailable` holds), noted in the outage report."""
    _OUTAGE.failed(error)
    return DatabaseUnavailable()


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _engine(url: str, *, durable: bool = True, pool_size: int = 10) -> Engine:
    """An engine for `url`. Commits on a `durable=False` one do not wait for the disk: a crash may forget
    the last moment's commits, never tear them (for counters whose loss costs nothing)."""
    _ensure_sqlite_dir(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, pool_size=pool_size, max_overflow=pool_size)
        # FULL: a committed audit record survives a power cut, not just a crash.
        synchronous = "FULL" if durable else "NORMAL"

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() in ("psycopg", "psycopg2"):
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = _CONNECT_TIMEOUT
        if not durable:
            connect_args["options"] = "-c synchronous_commit=off"
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=_POOL_TIMEOUT,
        connect_args=connect_args,
    )


@contextmanager
def _outages_as_unavailable() -> Iterator[None]:
    """Raise DatabaseUnavailable when the database cannot be reached, whether on connecting, in the block or
    on commit; a statement the database refuses raises the driver's error as before."""
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        if not is_unavailable(exc):
            raise
        raise database_unavailable(exc) from exc
    if _OUTAGE.since is not None:
        _OUTAGE.ended()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Rate-limit counts: a round trip on every rate-limited call, not worth a disk flush each. A crash
        # loses at most the last moment's counts, letting a few more calls through; it never blocks one.
        self.counters = _engine(url, durable=False, pool_size=4)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends without error (DatabaseUnavailable when
        the database cannot be reached)."""
        with _outages_as_unavailable(), self.sessions() as session, session.begin():
            yield session

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        with self.session() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in one transaction on a worker thread, so the event loop never waits on the database."""
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a plain connection (no ORM session) on a worker thread: for small reads made often."""
        return await anyio.to_thread.run_sync(self._read_sync, fn)

    def _read_sync(self, fn: Callable[[Connection], T]) -> T:
        with _outages_as_unavailable(), self.engine.connect() as connection:
            return fn(connection)

    def dispose(self) -> None:
        self.engine.dispose()
        self.counters.dispose()


class WriterConnection:
    """The one connection a group commit's writer thread (`hub.group_commit`) writes its batches on.

    Checking a connection out of the pool for each batch, as `engine.begin()` does, cost a one-record audit
    batch on SQLite 234 µs of CPU against 183 on a kept connection, and on PostgreSQL a ping round trip more;
    at one client every call pays that alone. Use it from one thread at a time."""

    def __init__(self, engine: Engine, *, autocommit: bool = False) -> None:
        """`autocommit`: each statement commits on its own and `transact` adds no BEGIN or COMMIT, for a
        writer that makes its batch atomic itself and its retry harmless (`hub.audit` on PostgreSQL)."""
        self._engine = engine
        self._autocommit = autocommit
        self._connection: Connection | None = None

    def transact(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in one transaction and commit it.

        A connection found lost before the commit (the database restarted, or something between dropped it
        while it was idle) is replaced and `fn` runs once more: nothing of the first attempt was committed.
        One lost during the commit is not retried, since that commit may have happened. With `autocommit`, `fn`
        commits its own statements and runs once more after a connection lost anywhere in it: it must find
        out whether its first run committed. After any failure the next batch takes a fresh connection from
        the pool, which checks it first."""
        for attempt in (1, 2):
            connection = self._connection = self._connection or self._connect()
            transaction = connection.begin()
            try:
                result = fn(connection)
            except sa_exc.DBAPIError as exc:
                self.close()
                if attempt == 1 and exc.connection_invalidated:
                    continue
                raise
            except BaseException:
                self.close()
                raise
            try:
                transaction.commit()
            except BaseException:
                self.close()
                raise
            return result
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _connect(self) -> Connection:
        connection = self._engine.connect()
        return connection.execution_options(isolation_level="AUTOCOMMIT") if self._autocommit else connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def driver_mark(dialect: Dialect) -> str:
    """The parameter placeholder of `driver_cursor` SQL: sqlite3 takes `?`, psycopg `%s`."""
    return "?" if dialect.name == "sqlite" else "%s"


@contextmanager
def driver_cursor(connection: Connection) -> Iterator[DBAPICursor]:
    """A DBAPI cursor on `connection`, in its transaction, for statements on the hot path whose SQLAlchemy
    bookkeeping costs more than the statements do. Its errors are raised as SQLAlchemy's, as `execute`
    raises them, and a connection the driver reports lost is invalidated, as `execute` would do, so outage
    handling and the pool treat them alike."""
    dialect = connection.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except dbapi_error as exc:
        lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            None, None, exc, dbapi_error, connection_invalidated=lost, dialect=dialect
        ) from exc
    finally:
        if not connection.invalidated:
            cursor.close()


def rows_changed(session: Session, statement: Executable) -> int:
    """Execute an UPDATE or DELETE and return how many rows it changed (the arbiter of conditional updates)."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount or 0)


def lock_row(session: Session, table: str, row_id: int) -> None:
    """Take a write lock on one row until the transaction ends, on PostgreSQL and SQLite alike.

    A no-op UPDATE locks the row in PostgreSQL and takes SQLite's database write lock (waiting on
    busy_timeout), so the same statement serialises refreshers across processes on both.
    """
    session.execute(text(f"UPDATE {table} SET id = id WHERE id = :id"), {"id": row_id})


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@cache
def _scripts() -> ScriptDirectory:
    """This code's migrations (read once: they do not change while it runs)."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(config)


def schema_floor(scripts: ScriptDirectory) -> str:
    """The oldest code revision that can run on this code's newest schema.

    Migrations expand (add tables, nullable or defaulted columns) so that a replica still running the previous
    release keeps working while a newer one migrates; one that takes something away sets `contract = True`
    in its module, and code older than it cannot run on the result."""
    floor = None
    for script in scripts.walk_revisions():  # newest first
        if getattr(script.module, "contract", False) or script.down_revision is None:
            floor = script.revision
            break
    assert floor is not None
    return floor


def migrate(url: str) -> None:
    """Bring the schema to this code's head and record the floor older replicas check (`schema_status`).

    A database already migrated by a newer release is left alone when this code can still use it, and
    refused (SchemaTooNew) when it cannot."""
    _ensure_sqlite_dir(url)
    scripts = _scripts()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if schema_status(connection, scripts) == "ahead":
                return
        command.upgrade(alembic_config(url), "head")
        with engine.begin() as connection:
            floor = {"floor": schema_floor(scripts)}
            if not connection.execute(
                text("UPDATE hub_meta SET value = :floor WHERE key = 'schema_floor'"), floor
            ).rowcount:
                connection.execute(text("INSERT INTO hub_meta (key, value) VALUES ('schema_floor', :floor)"), floor)
    finally:
        engine.dispose()


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Switchboard that took away what this one needs."""


def schema_status(connection: Connection, scripts: ScriptDirectory) -> str:
    """`current`, `behind` (migrations pending), or `ahead`: migrated by a newer release whose schema this
    code can still use (its floor is a revision this code knows). Raises SchemaTooNew when it cannot."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision == scripts.get_current_head():
        return "current"
    known = {script.revision for script in scripts.walk_revisions()}
    if revision is None or revision in known:
        return "behind"
    floor = connection.execute(text("SELECT value FROM hub_meta WHERE key = 'schema_floor'")).scalar()
    if floor in known:
        return "ahead"
    raise SchemaTooNew(
        f"the database schema ({revision}) was migrated by a newer Switchboard and needs code at schema "
        f"revision {floor} or later; this release knows up to {scripts.get_current_head()}: upgrade it"
    )


def is_current(engine: Engine) -> bool:
    """Ready to serve: the schema is this code's, or a newer one this code can still use."""
    try:
        with engine.connect() as connection:
            return schema_status(connection, _scripts()) in ("current", "ahead")
    except SchemaTooNew:
        return False


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
