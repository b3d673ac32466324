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


@cache
def _statements(dialect: Dialect) -> tuple[str, str]:
    """The window's upsert and the clean-up of ended windows, in the driver's SQL (`hub.db.driver_cursor`:
    sent through SQLAlchemy, a rate-limited call's two upserts cost it 11% more hub CPU at 16 clients)."""
    mark = driver_mark(dialect)
    window = "agent_id, connection, scope, period, period_start"
    # One atomic upsert per window: concurrent calls on any replica each get a distinct count.
    bump = (
        f"INSERT INTO rate_counts ({window}, count) VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, 1) "
        f"ON CONFLICT ({window}) DO UPDATE SET count = rate_counts.count + 1 RETURNING count"
    )
    clear = (
        f"DELETE FROM rate_counts WHERE agent_id = {mark} AND connection = {mark} AND scope = {mark} "
        f"AND period = {mark} AND period_start < {mark}"
    )
    return bump, clear


def _count(connection: Connection, batch: list[_Asked]) -> list[dict[tuple[str, str], RateUsage]]:
    """Bump every window a batch of calls counts against, in one transaction. The windows are bumped in key
    order, so two replicas' overlapping batches lock rows in one order (no deadlock); two calls of one agent
    in one batch get two distinct counts, as they would one after the other."""
    bump, clear = _statements(connection.dialect)
    bumps = sorted(
        (agent_id, limit.connection, limit.scope, period, index)
        for index, (agent_id, limits, _) in enumerate(batch)
        for limit in limits
        for period, _seconds in _PERIODS
    )
    counts: dict[tuple[int, str, str, str], int] = {}
    with driver_cursor(connection) as cursor:
        for agent_id, connection_name, scope, period, index in bumps:
            window = (agent_id, connection_name, scope, period, int(batch[index][2] // _SECONDS[period]))
            cursor.execute(bump, window)
            bumped = cursor.fetchone()
            assert bumped is not None, "an upsert returns its row"
            count = bumped[0]
            counts[(index, connection_name, scope, period)] = count
            if count == 1:
                # The first call of a new window clears the ended ones, which are of no further use.
                cursor.execute(clear, window)
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
