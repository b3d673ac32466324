import asyncio
from datetime import UTC, datetime

from sqlalchemy import delete, select, update

from hub.audit import AuditEntry, AuditWriter, args_digest, verify
from hub.db import Database, migrate
from hub.models import AuditRecord


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
