import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from hub.audit import AuditEntry, AuditWriter, args_digest, as_row, verify
from hub.db import Database, driver_cursor, is_unavailable, migrate
from hub.models import AuditRecord
from tests.harness import PG_ADMIN_URL, postgres_database


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        call_id=f"00000000-0000-0000-0000-{n:012d}",
        ts=datetime.now(UTC),
        agent_name="bot",
        tool="hubspot_contacts_search",
        connection="crm",
        decision="allow",
        status=200,
        problem=None,
        latency_ms=1.25,
        args_digest=args_digest(b"k" * 32, {"query": n}),
    )


def _write(db: Database, count: int) -> None:
    async def go() -> None:
        writer = AuditWriter(db)
        writer.start()
        await asyncio.gather(*(writer.append(_entry(n)) for n in range(count)))
        await writer.stop()

    asyncio.run(go())


def test_concurrent_appends_form_one_verified_chain(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    _write(db, 50)
    assert db.run_sync(verify) == (True, 50, "")
    seqs = db.run_sync(lambda s: list(s.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq))))
    assert seqs == list(range(1, 51))
    db.dispose()


def test_records_read_back_exactly_as_written(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    written = _entry(1)

    async def go() -> None:
        writer = AuditWriter(db)
        writer.start()
        await writer.append(written)
        await writer.stop()

    asyncio.run(go())
    [row] = db.run_sync(lambda s: [as_row(r) for r in s.scalars(select(AuditRecord))])
    assert row["ts"] == written.ts.isoformat()  # to the microsecond, with its UTC offset
    assert {k: row[k] for k in ("call_id", "agent_name", "tool", "status", "latency_ms", "args_digest")} == {
        "call_id": written.call_id,
        "agent_name": "bot",
        "tool": "hubspot_contacts_search",
        "status": 200,
        "latency_ms": 1.25,
        "args_digest": written.args_digest,
    }
    db.dispose()


def test_a_refused_batch_raises_sqlalchemys_error_and_leaves_the_chain_as_it_was(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    _write(db, 3)

    async def go() -> None:
        writer = AuditWriter(db)
        writer.start()
        with pytest.raises(sa_exc.IntegrityError):  # the driver's own error class would escape hub.db's mapping
            await writer.append(replace(_entry(1), latency_ms=9.0))  # a call id already in the log
        await writer.append(_entry(3))
        await writer.stop()

    asyncio.run(go())
    assert db.run_sync(verify) == (True, 4, "")
    db.dispose()


def test_a_connection_lost_under_the_driver_cursor_is_an_outage_and_is_replaced() -> None:
    with postgres_database() as url:
        migrate(url)
        db = Database(url)
        with pytest.raises(sa_exc.OperationalError) as lost, db.engine.begin() as connection:
            backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            with driver_cursor(connection) as cursor:
                cursor.execute("SELECT 1")
        assert lost.value.connection_invalidated and is_unavailable(lost.value)
        _write(db, 2)  # the pool hands out a new connection
        assert db.run_sync(verify) == (True, 2, "")
        db.dispose()


def test_the_writer_keeps_one_connection_for_its_batches(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    checkouts: list[object] = []
    event.listen(db.engine, "checkout", lambda *_: checkouts.append(None))

    async def go() -> None:
        writer = AuditWriter(db)
        writer.start()
        for n in range(10):  # one by one: ten batches
            await writer.append(_entry(n))
        await writer.stop()

    asyncio.run(go())
    assert len(checkouts) == 1
    assert db.run_sync(verify) == (True, 10, "")
    db.dispose()


def test_the_writers_connection_dropped_while_idle_is_replaced_without_failing_a_call() -> None:
    """A database restart, or a firewall that drops idle connections, between two batches: the next batch
    finds its connection gone before anything was committed, and runs again on a fresh one."""
    with postgres_database() as url:
        migrate(url)
        db = Database(url)

        async def go() -> int:
            writer = AuditWriter(db)
            writer.start()
            await writer.append(_entry(1))
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                dropped = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                    (make_url(url).database,),
                ).fetchone()
            await writer.append(_entry(2))
            await writer.stop()
            return dropped[0] if dropped else 0

        assert asyncio.run(go()) >= 1
        assert db.run_sync(verify) == (True, 2, "")
        db.dispose()


def test_writers_of_two_replicas_chain_after_each_other(database_url: str) -> None:
    """Each replica has its own writer. On PostgreSQL a writer chains a batch after the head it last wrote;
    once the other replica has moved the head, its statement writes nothing and the batch goes the locking
    way. Alternating and concurrent appends leave one unbroken chain with every record in it."""
    migrate(database_url)
    db = Database(database_url)

    async def go() -> None:
        first, second = AuditWriter(db), AuditWriter(db)
        first.start()
        second.start()
        for n in range(6):  # alternating: every batch after the first two finds its writer's head stale
            await (first if n % 2 else second).append(_entry(n))
        await asyncio.gather(*((first, second)[n % 2].append(_entry(n)) for n in range(6, 86)))
        await first.stop()
        await second.stop()

    asyncio.run(go())
    assert db.run_sync(verify) == (True, 86, "")
    call_ids = db.run_sync(lambda s: set(s.scalars(select(AuditRecord.call_id))))
    assert call_ids == {_entry(n).call_id for n in range(86)}
    db.dispose()


def test_the_writers_autocommit_stays_with_the_writer() -> None:
    """On PostgreSQL the writer's connection commits statement by statement. Back in the pool, that
    connection must make transactions again, or every session given it later would commit half-way."""
    with postgres_database() as url:
        migrate(url)
        db = Database(url)
        db.engine.pool.dispose()
        _write(db, 3)  # the writer checks out, and returns, the pool's only connection
        assert isinstance(db.engine.pool, QueuePool) and db.engine.pool.checkedin() == 1
        with db.engine.connect() as connection:
            assert connection.connection.dbapi_connection is not None
            assert connection.connection.dbapi_connection.autocommit is False
            assert connection.exec_driver_sql("SELECT count(*) FROM audit_records").scalar() == 3
        db.dispose()


@contextlib.contextmanager
def _relay_to_postgres(cut_after: bytes) -> Iterator[tuple[int, threading.Event]]:
    """A TCP relay on loopback to the test PostgreSQL. Once the returned event is set, the first connection
    to send a message containing `cut_after` is closed when the server answers it, the answer undelivered:
    the statement ran (and, in autocommit, committed), and its client cannot know."""
    listener = socket.create_server(("127.0.0.1", 0))
    armed = threading.Event()
    target = make_url(PG_ADMIN_URL)

    def pump(source: socket.socket, sink: socket.socket, watch: bool, doomed: threading.Event) -> None:
        try:
            while chunk := source.recv(65536):
                if watch and armed.is_set() and cut_after in chunk:
                    armed.clear()
                    doomed.set()
                elif not watch and doomed.is_set():
                    break  # the server's answer to the marked statement: dropped, with the connection
                sink.sendall(chunk)
        except OSError:
            pass
        for end in (source, sink):  # shutdown, not just close: the other pump may be blocked reading it
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection((target.host or "127.0.0.1", target.port or 5432))
            doomed = threading.Event()
            threading.Thread(target=pump, args=(client, server, True, doomed), daemon=True).start()
            threading.Thread(target=pump, args=(server, client, False, doomed), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], armed
    finally:
        listener.close()


def test_a_batch_committed_on_a_connection_lost_before_its_answer_is_not_written_twice() -> None:
    """On PostgreSQL a batch is one statement: if the connection drops after the database committed it but
    before the answer arrived, the writer runs the batch again on a fresh connection, finds its last record
    with the hash it was sent with, and reports it written. Without that check the rerun would insert the
    same call ids again, and the unique constraint would fail the calls whose records are in the log."""
    with postgres_database() as url, _relay_to_postgres(b"WITH head AS") as (port, armed):
        migrate(url)
        db = Database(make_url(url).set(port=port).render_as_string(hide_password=False))
        backends: list[object] = []
        event.listen(db.engine, "connect", lambda *_: backends.append(None))

        async def go() -> None:
            writer = AuditWriter(db)
            writer.start()
            await writer.append(_entry(1))  # the head is now this writer's: the next batch is one statement
            armed.set()
            await writer.append(_entry(2))  # committed, its answer lost, and reported written
            assert not armed.is_set()
            await writer.append(_entry(3))
            await writer.stop()

        asyncio.run(go())
        assert len(backends) == 2  # the lost connection was replaced once
        assert db.run_sync(verify) == (True, 3, "")
        db.dispose()


def test_an_edited_record_breaks_the_chain(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    _write(db, 5)
    db.run_sync(lambda s: s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(decision="deny")))
    intact, _, problem = db.run_sync(verify)
    assert not intact and "record 3" in problem
    db.dispose()


def test_a_removed_last_record_is_detected(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    _write(db, 5)
    db.run_sync(lambda s: s.execute(delete(AuditRecord).where(AuditRecord.seq == 5)))
    intact, _, problem = db.run_sync(verify)
    assert not intact and "head" in problem
    db.dispose()


def test_argument_digests_are_keyed() -> None:
    assert args_digest(b"a" * 32, {"email": "x@y.com"}) != args_digest(b"b" * 32, {"email": "x@y.com"})
    assert args_digest(b"a" * 32, {"b": 1, "a": 2}) == args_digest(b"a" * 32, {"a": 2, "b": 1})
