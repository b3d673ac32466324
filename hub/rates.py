"""Rate limits of grants (`rate: {per_minute, per_day}`): fixed-window counters in the database, so every
replica counts against the same numbers. Only calls through a rate-limited grant pay this round trip, on the
database's counters engine (`Database.count_sync`: commits that do not wait for the disk), and concurrent
calls share one transaction."""

import time
from collections.abc import Sequence
from functools import cache

from sqlalchemy import Connection, Dialect

from hub.db import Database, driver_cursor, driver_mark
from hub.group_commit import GroupCommit
from scopes import RateLimit, RateUsage

__all__ = ["RateCounter"]

_PERIODS = (("m", 60), ("d", 86_400))
_SECONDS = dict(_PERIODS)
# One call's ask: the agent, the limits its call counts against, and when it was made.
_Asked = tuple[int, tuple[RateLimit, ...], float]


_WINDOW = "agent_id, connection, scope, period, period_start"
# A counter's row: agent, connection, scope, period ("m" or "d") and the window's number.
_Window = tuple[int, str, str, str, int]
# Windows per upsert: six parameters each, well under the smallest parameter limit SQLite was built with.
_CHUNK = 100


@cache
def _bump(dialect: Dialect, windows: int) -> str:
    """One atomic upsert of `windows` windows, each by its own increment, returning every window's count:
    concurrent batches on any replica each get distinct counts. Rows are locked in the VALUES' order."""
    mark = driver_mark(dialect)
    row = f"({', '.join([mark] * 6)})"
    return (
        f"INSERT INTO rate_counts ({_WINDOW}, count) VALUES {', '.join([row] * windows)} "
        f"ON CONFLICT ({_WINDOW}) DO UPDATE SET count = rate_counts.count + excluded.count "
        f"RETURNING {_WINDOW}, count"
    )


@cache
def _clear(dialect: Dialect) -> str:
    mark = driver_mark(dialect)
    return (
        f"DELETE FROM rate_counts WHERE agent_id = {mark} AND connection = {mark} AND scope = {mark} "
        f"AND period = {mark} AND period_start < {mark}"
    )


def _count(connection: Connection, batch: list[_Asked]) -> list[dict[tuple[str, str], RateUsage]]:
    """Bump every window a batch of calls counts against, in one transaction and one statement (the
    driver's SQL, `hub.db.driver_cursor`: through SQLAlchemy it cost 11% more hub CPU at 16 clients). Each
    window is bumped once, by the number of calls in it: one by one, an agent's busy minute cost a round trip
    per call and period. Each call gets its own count, in the batch's order, as one after the other would.
    Windows go in key order, so two replicas' overlapping batches lock rows in one order (no deadlock)."""
    callers: dict[_Window, list[int]] = {}
    for index, (agent_id, limits, now) in enumerate(batch):
        for limit in limits:
            for period, seconds in _PERIODS:
                window = (agent_id, limit.connection, limit.scope, period, int(now // seconds))
                callers.setdefault(window, []).append(index)
    windows = sorted(callers)
    totals: dict[_Window, int] = {}
    with driver_cursor(connection) as cursor:
        for start in range(0, len(windows), _CHUNK):
            chunk = windows[start : start + _CHUNK]
            cursor.execute(_bump(connection.dialect, len(chunk)), [v for w in chunk for v in (*w, len(callers[w]))])
            for agent_id, connection_name, scope, period, period_start, total in cursor.fetchall():
                totals[(agent_id, connection_name, scope, period, period_start)] = total
        for window in windows:
            if totals[window] == len(callers[window]):
                # The first calls of a new window clear the ended ones, which are of no further use.
                cursor.execute(_clear(connection.dialect), window)
    counts: dict[tuple[int, str, str, str], int] = {}
    for window in windows:
        _, connection_name, scope, period, _ = window
        before = totals[window] - len(callers[window])
        for offset, index in enumerate(callers[window], 1):
            counts[(index, connection_name, scope, period)] = before + offset
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


class RateCounter:
    """Counts, committed in groups (`hub.group_commit`) on the counters' engine."""

    def __init__(self, db: Database) -> None:
        self._commits: GroupCommit[_Asked, dict[tuple[str, str], RateUsage]] = GroupCommit(
            lambda batch: db.count_sync(lambda c: _count(c, batch)), name="rate-counter"
        )

    async def count(self, agent_id: int, limits: Sequence[RateLimit]) -> dict[tuple[str, str], RateUsage]:
        """Count this call against each limit; the usage returned includes it."""
        return await self._commits.submit((agent_id, tuple(limits), time.time()))

    def start(self) -> None:
        self._commits.start()

    async def stop(self) -> None:
        await self._commits.stop()
