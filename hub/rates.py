"""Rate limits of grants (`rate: {per_minute, per_day}`): fixed-window counters every replica shares, so
all count against the same numbers. Only calls through a rate-limited grant pay for them.

Two stores, one behaviour: the database (`DatabaseRates`, the default: on its counters engine, whose commits
do not wait for the disk), or Redis when `SWITCHBOARD_REDIS_URL` is set (`RedisRates`: on the event loop, no
thread and no database write; counters expire with their window). Either way, concurrent calls are counted in
groups (`hub.group_commit`): each window a batch touches is bumped once, by the number of its calls, and each
call gets its own count, in the batch's order, as one after the other would (on SQLite, a call that comes
while no other is being counted is counted at once, on the event loop: `_SqliteOnLoop`). Neither store keeps
counts worth a durable write: losing them forgets a minute's or a day's calls. Both fail closed: a call that
cannot be counted is answered 503, not run uncounted.
"""

import hashlib
import hmac
import logging
import sqlite3
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

import redis.asyncio
import redis.exceptions
from sqlalchemy import Connection, Dialect, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import DBAPICursor

from hub.db import Database, WriterConnection, driver_cursor, driver_mark
from hub.errors import ServiceUnavailable
from hub.group_commit import BatchWriter, GroupCommit
from scopes import RateLimit, RateUsage

__all__ = ["DatabaseRates", "RateCounter", "RedisRates", "rate_counter"]

log = logging.getLogger(__name__)

_PERIODS = (("m", 60), ("d", 86_400))
_SECONDS = dict(_PERIODS)
# One call's ask: the agent, the limits its call counts against, and when it was made.
_Asked = tuple[int, tuple[RateLimit, ...], float]
# A counter: agent, connection, scope, period ("m" or "d") and the window's number.
_Window = tuple[int, str, str, str, int]
_Usage = dict[tuple[str, str], RateUsage]


class RateCounter:
    """Counts calls in groups (`hub.group_commit`): `write` counts a batch in its store and returns each call's
    usage, in order."""

    def __init__(self, write: BatchWriter[_Asked, _Usage], name: str) -> None:
        self._commits: GroupCommit[_Asked, _Usage] = GroupCommit(write, name=name)

    async def count(self, agent_id: int, limits: Sequence[RateLimit]) -> _Usage:
        """Count this call against each limit; the usage returned includes it."""
        return await self._commits.submit((agent_id, tuple(limits), time.time()))

    def start(self) -> None:
        self._commits.start()

    async def stop(self) -> None:
        await self._commits.stop()


def rate_counter(db: Database, redis_url: str | None, secret_key: bytes) -> RateCounter:
    return RedisRates(redis_url, secret_key) if redis_url else DatabaseRates(db)


def _callers(batch: Sequence[_Asked]) -> dict[_Window, list[int]]:
    """Each window the batch counts against, in key order (so two replicas' batches lock rows in one order:
    no deadlock), with the indexes of its calls in the batch, in order."""
    callers: dict[_Window, list[int]] = {}
    for index, (agent_id, limits, now) in enumerate(batch):
        for limit in limits:
            for period, seconds in _PERIODS:
                window = (agent_id, limit.connection, limit.scope, period, int(now // seconds))
                callers.setdefault(window, []).append(index)
    return dict(sorted(callers.items()))


def _usages(batch: Sequence[_Asked], callers: dict[_Window, list[int]], totals: dict[_Window, int]) -> list[_Usage]:
    """Each call's usage, given each window's total after the whole batch was counted in it."""
    counts: dict[tuple[int, str, str, str], int] = {}
    for window, indexes in callers.items():
        _, connection, scope, period, _ = window
        before = totals[window] - len(indexes)
        for offset, index in enumerate(indexes, 1):
            counts[(index, connection, scope, period)] = before + offset
    return [
        {
            limit.key: RateUsage(
                minute=counts[(index, *limit.key, "m")],
                day=counts[(index, *limit.key, "d")],
                minute_resets_in=_resets_in(now, "m"),
                day_resets_in=_resets_in(now, "d"),
            )
            for limit in limits
        }
        for index, (_, limits, now) in enumerate(batch)
    ]


def _resets_in(now: float, period: str) -> float:
    seconds = _SECONDS[period]
    return (int(now // seconds) + 1) * seconds - now


# --- in the database -------------------------------------------------------------------------------------

_COLUMNS = "agent_id, connection, scope, period, period_start"
# Windows per upsert: six parameters each, well under the smallest parameter limit SQLite was built with.
_CHUNK = 100


@cache
def _bump(dialect: Dialect, windows: int) -> str:
    """One atomic upsert of `windows` windows, each by its own increment, returning every window's count:
    concurrent batches on any replica each get distinct counts. Rows are locked in the VALUES' order."""
    mark = driver_mark(dialect)
    row = f"({', '.join([mark] * 6)})"
    return (
        f"INSERT INTO rate_counts ({_COLUMNS}, count) VALUES {', '.join([row] * windows)} "
        f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET count = rate_counts.count + excluded.count "
        f"RETURNING {_COLUMNS}, count"
    )


@cache
def _clear(dialect: Dialect) -> str:
    mark = driver_mark(dialect)
    return (
        f"DELETE FROM rate_counts WHERE agent_id = {mark} AND connection = {mark} AND scope = {mark} "
        f"AND period = {mark} AND period_start < {mark}"
    )


def _count(connection: Connection, batch: list[_Asked]) -> list[_Usage]:
    """Count a batch in one transaction and one statement per hundred windows, in the driver's SQL
    (`hub.db.driver_cursor`: through SQLAlchemy it cost 11% more hub CPU at 16 clients). One by one, an
    agent's busy minute had cost a round trip per call and period."""
    with driver_cursor(connection) as cursor:
        return _count_on(cursor, connection.dialect, batch)


def _count_on(cursor: DBAPICursor, dialect: Dialect, batch: list[_Asked]) -> list[_Usage]:
    callers = _callers(batch)
    windows = list(callers)
    totals: dict[_Window, int] = {}
    for start in range(0, len(windows), _CHUNK):
        chunk = windows[start : start + _CHUNK]
        cursor.execute(_bump(dialect, len(chunk)), [v for w in chunk for v in (*w, len(callers[w]))])
        for agent_id, connection_name, scope, period, period_start, total in cursor.fetchall():
            totals[(agent_id, connection_name, scope, period, period_start)] = total
    for window in windows:
        if totals[window] == len(callers[window]):
            # The first calls of a new window clear the ended ones, which are of no further use.
            cursor.execute(_clear(dialect), window)
    return _usages(batch, callers, totals)


class _SqliteOnLoop:
    """Counts one call on the event loop, on SQLite, when the write lock is free.

    On the writer thread, most of a lone count's cost was handing it to the thread and back: in-process,
    170 µs of CPU against 33 µs here; in the bench, a rate-limited call at one client costs the hub 11% less.
    Nothing here can make the loop wait: the counters engine's commits need no disk flush, this connection
    gives up at once when another writer holds the lock (busy_timeout=0) and leaves checkpoints to the
    audit writer, whose commits run them (wal_autocheckpoint=0). Given up, or failed, the call is counted
    on the writer thread as before. Calls that come while a batch is being counted join the next batch."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None  # a sqlite3.Connection of its own, out of the engine's pool

    def count(self, asked: _Asked) -> _Usage | None:
        """The call's usage, or None when it must be counted on the writer thread."""
        try:
            connection = self._connection or self._connect()
            connection.execute("BEGIN IMMEDIATE")
        except (sqlite3.Error, sa_exc.DBAPIError):
            return None  # another writer holds the lock, or the file cannot be opened
        try:
            [usage] = _count_on(connection.cursor(), self._engine.dialect, [asked])
            connection.execute("COMMIT")
        except sqlite3.Error:
            self.close()  # rolled back as it closes; the writer thread's count reports what is wrong
            return None
        except BaseException:
            self.close()  # never leave the write lock held
            raise
        return usage

    def _connect(self) -> Any:
        pooled = self._engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # its pragmas below must not go back to the pool
        connection.isolation_level = None  # BEGIN and COMMIT are this class's own
        connection.execute("PRAGMA busy_timeout=0")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        self._connection = connection
        return connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class DatabaseRates(RateCounter):
    """Counts in the database, on the writer thread's own connection of the counters' engine; on SQLite, a
    call that comes when no other is being counted is counted on the event loop (`_SqliteOnLoop`)."""

    def __init__(self, db: Database) -> None:
        self._connection = WriterConnection(db.counters)
        self._on_loop = _SqliteOnLoop(db.counters) if db.is_sqlite else None
        super().__init__(lambda batch: self._connection.transact(lambda c: _count(c, batch)), "rate-counter")

    async def count(self, agent_id: int, limits: Sequence[RateLimit]) -> _Usage:
        asked = (agent_id, tuple(limits), time.time())
        if self._on_loop is not None and self._commits.idle:
            usage = self._on_loop.count(asked)
            if usage is not None:
                return usage
        return await self._commits.submit(asked)

    async def stop(self) -> None:
        await super().stop()
        self._connection.close()
        if self._on_loop is not None:
            self._on_loop.close()


# --- in Redis ----------------------------------------------------------------------------------------------

# Redis answers in well under a millisecond; a call waits this long at most before it is answered 503.
_REDIS_TIMEOUT = 1.0
# A window's counter outlives the window by this much, so a replica whose clock is a little behind finds it.
_REDIS_GRACE = 60
# Bump each key by its ARGV increment, set its time to live, return the totals: a batch in one command (as a
# pipeline it was two commands a window, each reply read and timed on its own: 208 against 151 us of client
# CPU per count at one call).
_BUMP = """
local totals = {}
for i, key in ipairs(KEYS) do
  totals[i] = redis.call('INCRBY', key, ARGV[2 * i - 1])
  redis.call('EXPIRE', key, ARGV[2 * i])
end
return totals
"""


class RedisRates(RateCounter):
    """Counts in Redis, on the event loop: a batch's windows in one script (`_BUMP`, sent by its
    digest once Redis has it), one round trip on one connection. Scripts run atomically, so calls through any
    replica get distinct counts. Keys are namespaced by a digest of the hub's secret key: the replicas of one
    hub share them, two hubs on one Redis (or two test databases) do not."""

    def __init__(self, url: str, secret_key: bytes) -> None:
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=_REDIS_TIMEOUT, socket_connect_timeout=_REDIS_TIMEOUT
        )
        self.prefix = "switchboard:" + hmac.new(secret_key, b"rate counters", hashlib.sha256).hexdigest()[:16]
        self._bump = self._redis.register_script(_BUMP)
        self._down = False
        super().__init__(self._count, "rate-counter-redis")

    async def _count(self, batch: list[_Asked]) -> list[_Usage]:
        callers = _callers(batch)
        keys = [f"{self.prefix}:{':'.join(map(str, window))}" for window in callers]
        args = [
            n for (*_, period, _), indexes in callers.items() for n in (len(indexes), _SECONDS[period] + _REDIS_GRACE)
        ]
        try:
            totals = await self._bump(keys=keys, args=args)
        except redis.exceptions.RedisError as exc:
            if not self._down:  # once per outage; the error's name only, as its message may name the host
                log.warning(
                    "rate counters: Redis is unreachable (%s); rate-limited calls answer 503", type(exc).__name__
                )
            self._down = True
            raise ServiceUnavailable("the rate-limit counters cannot be reached; try again shortly") from None
        if self._down:
            log.warning("rate counters: Redis is reachable again")
            self._down = False
        return _usages(batch, callers, dict(zip(callers, totals, strict=True)))

    async def stop(self) -> None:
        await super().stop()
        await self._redis.aclose()
