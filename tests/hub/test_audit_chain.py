import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

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
