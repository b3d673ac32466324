"""Rate limits of grants (`rate: {per_minute, per_day}`): fixed-window counters in the database, so every
replica counts against the same numbers. Only calls through a rate-limited grant pay this round trip, on the
database's counters engine (`Database.count_sync`: commits that do not wait for the disk), and concurrent
calls share one transaction."""

import time
from collections.abc import Sequence
from functools import cache

from sqlalchemy import Connection, Executable, and_, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from hub.db import Database
from hub.group_commit import GroupCommit
from hub.models import RateCount
from scopes import RateLimit, RateUsage

__all__ = ["RateCounter"]

_PERIODS = (("m", 60), ("d", 86_400))
_SECONDS = dict(_PERIODS)
# One call's ask: the agent, the limits its call counts against, and when it was made.
_Asked = tuple[int, tuple[RateLimit, ...], float]


@cache
def _statements(dialect: str) -> tuple[Executable, Executable]:
    """The window's upsert and the clean-up of ended windows, built once per dialect (so compiled once)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One atomic upsert per window: concurrent calls on any replica each get a distinct count.
    bump = (
        insert(RateCount)
        .on_conflict_do_update(
            index_elements=["agent_id", "connection", "scope", "period", "period_start"],
            set_={"count": RateCount.count + 1},
        )
        .returning(RateCount.count)
    )
    clear = delete(RateCount).where(
        and_(
            RateCount.agent_id == bindparam("agent_id"),
            RateCount.connection == bindparam("connection"),
            RateCount.scope == bindparam("scope"),
            RateCount.period == bindparam("period"),
            RateCount.period_start < bindparam("period_start"),
        )
    )
    return bump, clear


def _count(connection: Connection, batch: list[_Asked]) -> list[dict[tuple[str, str], RateUsage]]:
    """Bump every window a batch of calls counts against, in one transaction. The windows are bumped in key
    order, so two replicas' overlapping batches lock rows in one order (no deadlock); two calls of one agent
    in one batch get two distinct counts, as they would one after the other."""
    bump, clear = _statements(connection.dialect.name)
    bumps = sorted(
        (agent_id, limit.connection, limit.scope, period, index)
        for index, (agent_id, limits, _) in enumerate(batch)
        for limit in limits
        for period, _seconds in _PERIODS
    )
    counts: dict[tuple[int, str, str, str], int] = {}
    for agent_id, connection_name, scope, period, index in bumps:
        now = batch[index][2]
        window = {
            "agent_id": agent_id,
            "connection": connection_name,
            "scope": scope,
            "period": period,
            "period_start": int(now // _SECONDS[period]),
        }
        count = connection.execute(bump, {**window, "count": 1}).scalar_one()
        counts[(index, connection_name, scope, period)] = count
        if count == 1:
            # The first call of a new window clears the ended ones, which are of no further use.
            connection.execute(clear, window)
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
