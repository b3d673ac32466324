"""On SQLite, a rate count that comes when no other is being counted is made on the event loop (no thread
hand-off), and one that finds the write lock taken is counted on the writer thread, without the loop waiting."""

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from hub.db import Database, migrate
from hub.rates import DatabaseRates
from scopes import RateLimit

LIMITS = (RateLimit("crm", "crm.contacts.read", 1000, 10_000),)
KEY = LIMITS[0].key


def _writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rate-counter")]


def test_counts_made_one_at_a_time_stay_on_the_loop_and_count_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    db = Database(url)

    async def go() -> tuple[list[int], list[str]]:
        rates = DatabaseRates(db)
        rates.start()
        try:
            minutes = [(await rates.count(1, LIMITS))[KEY].minute for _ in range(5)]
            return minutes, _writer_threads()
        finally:
            await rates.stop()

    try:
        minutes, threads = asyncio.run(go())
        # What the loop counted is in the database, where the writer thread (and other replicas) count on.
        with db.counters.begin() as connection:
            stored = connection.exec_driver_sql("SELECT period, count FROM rate_counts ORDER BY period").all()
    finally:
        db.dispose()
    assert minutes == [1, 2, 3, 4, 5]
    assert threads == []  # the writer thread never started: no count was handed to it
    assert [tuple(row) for row in stored] == [("d", 5), ("m", 5)]


def test_a_count_that_finds_the_lock_taken_waits_on_the_writer_thread_not_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    url = f"sqlite:///{path}"
    migrate(url)
    db = Database(url)
    other = sqlite3.connect(path, isolation_level=None)  # another writer, e.g. another process on the file

    async def go() -> tuple[int, int, float, list[str]]:
        rates = DatabaseRates(db)
        rates.start()
        try:
            first = (await rates.count(1, LIMITS))[KEY].minute
            other.execute("BEGIN IMMEDIATE")  # holds the write lock
            counting = asyncio.create_task(rates.count(1, LIMITS))
            started = time.perf_counter()
            await asyncio.sleep(0.3)  # the loop runs on while the count waits for the lock
            slept = time.perf_counter() - started
            assert not counting.done()
            other.execute("COMMIT")
            second = (await counting)[KEY].minute
            return first, second, slept, _writer_threads()
        finally:
            await rates.stop()

    try:
        first, second, slept, threads = asyncio.run(go())
    finally:
        other.close()
        db.dispose()
    assert (first, second) == (1, 2)
    assert slept < 0.3 + 0.2  # not held up by the lock (busy_timeout is 30 s on the writer thread)
    assert threads  # the second count went to the writer thread
