"""Group commit (hub.group_commit) and the rate counters on it: concurrent calls share transactions, each
gets its own result, and a failed batch fails every call in it with the right error."""

import asyncio
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from hub.db import Database, migrate
from hub.errors import DatabaseUnavailable
from hub.group_commit import GroupCommit
from hub.models import RateCount
from hub.rates import _CHUNK, DatabaseRates, _Asked, _count, _Usage
from scopes import RateLimit, RateUsage


def test_concurrent_submissions_share_batches_and_each_gets_its_own_result() -> None:
    batches: list[list[int]] = []
    release = threading.Event()

    def write(items: list[int]) -> list[int]:
        batches.append(items)
        release.wait(5)  # the first batch holds the writer while the rest queue up behind it
        return [item * 10 for item in items]

    async def go() -> list[int]:
        commits = GroupCommit(write, name="test")
        commits.start()
        first = asyncio.create_task(commits.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(commits.submit(n)) for n in range(1, 21)]
        await asyncio.sleep(0.05)
        release.set()
        results = await asyncio.gather(first, *rest)
        await commits.stop()
        return results

    assert asyncio.run(go()) == [n * 10 for n in range(21)]
    assert batches == [[0], list(range(1, 21))]


def test_idle_only_when_nothing_is_queued_or_being_written() -> None:
    release = threading.Event()

    def write(items: list[int]) -> list[int]:
        release.wait(5)
        return items

    async def go() -> list[bool]:
        commits = GroupCommit(write, name="test")
        commits.start()
        seen = [commits.idle]
        first = asyncio.create_task(commits.submit(1))
        await asyncio.sleep(0.05)
        seen.append(commits.idle)  # the first batch is being written
        second = asyncio.create_task(commits.submit(2))
        await asyncio.sleep(0)
        seen.append(commits.idle)  # and another call waits behind it
        release.set()
        await asyncio.gather(first, second)
        seen.append(commits.idle)
        await commits.stop()
        return seen

    assert asyncio.run(go()) == [True, False, False, True]


def test_a_coroutine_writer_runs_on_the_loop_and_batches_alike() -> None:
    batches: list[list[int]] = []
    threads: set[int] = set()

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        threads.add(threading.get_ident())
        await asyncio.sleep(0.05)  # the round trip: the rest queue up behind it
        return [item * 10 for item in items]

    async def go() -> list[int]:
        commits = GroupCommit(write, name="test")
        commits.start()
        first = asyncio.create_task(commits.submit(0))
        await asyncio.sleep(0.01)
        results = await asyncio.gather(first, *(commits.submit(n) for n in range(1, 21)))
        await commits.stop()
        return results

    assert asyncio.run(go()) == [n * 10 for n in range(21)]
    assert batches == [[0], list(range(1, 21))] and threads == {threading.get_ident()}


def test_stop_writes_everything_queued_before_it_even_mid_batch() -> None:
    written: list[int] = []
    release = threading.Event()

    def write(items: list[int]) -> list[None]:
        release.wait(5)
        written.extend(items)
        return [None] * len(items)

    async def go() -> None:
        commits = GroupCommit(write, name="test")
        commits.start()
        calls = [asyncio.create_task(commits.submit(0))]
        await asyncio.sleep(0.05)  # the first batch is being written
        calls += [asyncio.create_task(commits.submit(n)) for n in range(1, 6)]
        await asyncio.sleep(0)
        stopping = asyncio.create_task(commits.stop())
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.wait_for(asyncio.gather(*calls, stopping), 5)

    asyncio.run(go())
    assert written == list(range(6))


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (OperationalError("INSERT", {}, Exception("connection refused")), DatabaseUnavailable),
        (ValueError("a bug"), ValueError),
    ],
)
def test_a_failed_batch_fails_each_of_its_calls(raised: Exception, expected: type[Exception]) -> None:
    def write(items: list[int]) -> list[int]:
        raise raised

    async def go() -> list[BaseException | int]:
        commits = GroupCommit(write, name="test")
        commits.start()
        try:
            return await asyncio.gather(*(commits.submit(n) for n in range(5)), return_exceptions=True)
        finally:
            await commits.stop()

    outcomes = asyncio.run(go())
    assert len(outcomes) == 5 and all(isinstance(o, expected) for o in outcomes)


def test_concurrent_rate_counts_are_distinct_per_window_and_agent(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    one = (RateLimit("crm", "crm.contacts.read", 100, 1000),)
    two = (RateLimit("crm", "crm.contacts.read", 100, None), RateLimit("crm", "crm.deals.read", None, 50))

    async def go() -> list[dict[tuple[str, str], RateUsage]]:
        rates = DatabaseRates(db)
        rates.start()
        try:
            counted = await asyncio.gather(
                *(rates.count(1, one) for _ in range(40)), *(rates.count(2, two) for _ in range(10))
            )
        finally:
            await rates.stop()
        return counted

    try:
        counted = asyncio.run(go())
    finally:
        db.dispose()
    first, second = counted[:40], counted[40:]
    minutes = sorted(usage[("crm", "crm.contacts.read")].minute for usage in first)
    days = sorted(usage[("crm", "crm.contacts.read")].day for usage in first)
    assert minutes == days == list(range(1, 41))
    for key in (("crm", "crm.contacts.read"), ("crm", "crm.deals.read")):
        assert sorted(usage[key].minute for usage in second) == list(range(1, 11))
    assert all(0 < usage[("crm", "crm.deals.read")].minute_resets_in <= 60 for usage in second)


def _counted(db: Database, batch: Sequence[_Asked]) -> list[_Usage]:
    with db.counters.begin() as connection:
        return _count(connection, list(batch))


def test_a_new_window_counts_from_one_and_clears_the_ended_ones(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    limits = (RateLimit("crm", "crm.contacts.read", 100, 1000),)
    minute = 1_800_000_000.0  # a minute's start, eight hours into a day
    try:
        for at in (minute, minute + 1, minute + 61):
            [usage] = _counted(db, [(1, limits, at)])
        windows = db.run_sync(
            lambda s: sorted(s.execute(select(RateCount.period, RateCount.period_start, RateCount.count)).all())
        )
    finally:
        db.dispose()
    assert (usage[limits[0].key].minute, usage[limits[0].key].day) == (1, 3)
    # The ended minute is gone; the day, still running, keeps its count.
    assert windows == [("d", int(minute // 86_400), 3), ("m", int(minute // 60) + 1, 1)]


def test_a_batch_bumps_each_window_once_and_gives_each_call_its_own_count_in_order(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    limits = (RateLimit("crm", "crm.contacts.read", 100, 1000),)
    key = limits[0].key
    minute = 1_800_000_000.0
    # Agent 1: two calls in one minute, one in the next (which clears the first); agent 2 counts apart.
    batch = [(1, limits, minute), (2, limits, minute), (1, limits, minute + 1), (1, limits, minute + 61)]
    try:
        counted = _counted(db, batch)
        # A later batch carries on from the counts the earlier one committed.
        [later] = _counted(db, [(1, limits, minute + 62)])
        windows = db.run_sync(
            lambda s: sorted(
                s.execute(select(RateCount.agent_id, RateCount.period, RateCount.period_start, RateCount.count)).all()
            )
        )
    finally:
        db.dispose()
    assert [(usage[key].minute, usage[key].day) for usage in counted] == [(1, 1), (1, 1), (2, 2), (1, 3)]
    assert (later[key].minute, later[key].day) == (2, 4)
    day, next_minute = int(minute // 86_400), int(minute // 60) + 1
    assert windows == [(1, "d", day, 4), (1, "m", next_minute, 2), (2, "d", day, 1), (2, "m", next_minute - 1, 1)]


def test_a_batch_of_more_windows_than_one_statement_takes_counts_them_all(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    limits = (RateLimit("crm", "crm.contacts.read", 100, 1000),)
    agents = range(1, _CHUNK + 2)  # two windows each (minute, day): more than two statements' worth
    batch = [(agent, limits, 1_800_000_000.0) for agent in agents for _ in range(2)]
    try:
        counted = _counted(db, batch)
    finally:
        db.dispose()
    key = limits[0].key
    assert [(usage[key].minute, usage[key].day) for usage in counted] == [(1, 1), (2, 2)] * len(agents)
