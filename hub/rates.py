"""Rate limits of grants (`rate: {per_minute, per_day}`): fixed-window counters in the database, so every
replica counts against the same numbers. Only calls through a rate-limited grant pay this round trip, on the
database's counters engine (`Database.count`: commits that do not wait for the disk)."""

import time
from collections.abc import Sequence
from functools import cache

from sqlalchemy import Connection, Executable, and_, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from hub.db import Database
from hub.models import RateCount
from scopes import RateLimit, RateUsage

__all__ = ["RateCounter"]

_PERIODS = (("m", 60), ("d", 86_400))


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


def _bump(connection: Connection, agent_id: int, limit: RateLimit, now: float) -> RateUsage:
    bump, clear = _statements(connection.dialect.name)
    counts, resets = [], []
    for period, seconds in _PERIODS:
        start = int(now // seconds)
        window = {
            "agent_id": agent_id,
            "connection": limit.connection,
            "scope": limit.scope,
            "period": period,
            "period_start": start,
        }
        count = connection.execute(bump, {**window, "count": 1}).scalar_one()
        counts.append(count)
        resets.append((start + 1) * seconds - now)
        if count == 1:
            # The first call of a new window clears the ended ones, which are of no further use.
            connection.execute(clear, window)
    return RateUsage(minute=counts[0], day=counts[1], minute_resets_in=resets[0], day_resets_in=resets[1])


class RateCounter:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def count(self, agent_id: int, limits: Sequence[RateLimit]) -> dict[tuple[str, str], RateUsage]:
        """Count this call against each limit; the usage returned includes it."""
        now = time.time()
        return await self._db.count(lambda c: {limit.key: _bump(c, agent_id, limit, now) for limit in limits})
