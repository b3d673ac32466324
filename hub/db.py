"""Engine and sessions for SQLite or PostgreSQL, and migrations (Alembic) run from code."""

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
from sqlalchemy import Connection, CursorResult, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "Database",
    "SchemaTooNew",
    "alembic_config",
    "is_current",
    "lock_row",
    "migrate",
    "rows_changed",
    "schema_floor",
    "schema_status",
]

T = TypeVar("T")
_MIGRATIONS = Path(__file__).with_name("migrations")


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _engine(url: str) -> Engine:
    _ensure_sqlite_dir(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, pool_size=8, max_overflow=8)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed audit record survives a power cut, not just a crash.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends without error."""
        with self.sessions() as session, session.begin():
            yield session

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        with self.session() as session:
            return fn(session)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run `fn` in one transaction on a worker thread, so the event loop never waits on the database."""
        return await anyio.to_thread.run_sync(self.run_sync, fn)

    def dispose(self) -> None:
        self.engine.dispose()


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
