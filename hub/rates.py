"""Rate limits of grants (`rate: {per_minute, per_day}`): fixed-window counters in the database, so every
replica counts against the same numbers. Only calls through a rate-limited grant pay this round trip."""

import time
from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.db import Database
from hub.models import RateCount
from scopes import RateLimit, RateUsage

__all__ = ["RateCounter"]

_PERIODS = (("m", 60), ("d", 86_400))


class RateCounter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert

    def _bump(self, session: Session, agent_id: int, limit: RateLimit, now: float) -> RateUsage:
        counts, resets = [], []
        for period, seconds in _PERIODS:
            start = int(now // seconds)
            # One atomic upsert per window: concurrent calls on any replica each get a distinct count.
            statement = (
                self._insert(RateCount)
                .values(
                    agent_id=agent_id,
                    connection=limit.connection,
                    scope=limit.scope,
                    period=period,
                    period_start=start,
                    count=1,
                )
                .on_conflict_do_update(
                    index_elements=["agent_id", "connection", "scope", "period", "period_start"],
                    set_={"count": RateCount.count + 1},
                )
                .returning(RateCount.count)
            )
            count = session.execute(statement).scalar_one()
            counts.append(count)
            resets.append((start + 1) * seconds - now)
            if count == 1:
                # The first call of a new window clears the ended ones, which are of no further use.
                session.execute(
                    delete(RateCount).where(
                        RateCount.agent_id == agent_id,
                        RateCount.connection == limit.connection,
                        RateCount.scope == limit.scope,
                        RateCount.period == period,
                        RateCount.period_start < start,
                    )
                )
        return RateUsage(minute=counts[0], day=counts[1], minute_resets_in=resets[0], day_resets_in=resets[1])

    async def count(self, agent_id: int, limits: Sequence[RateLimit]) -> dict[tuple[str, str], RateUsage]:
        """Count this call against each limit; the usage returned includes it."""
        now = time.time()
        return await self._db.run(lambda s: {limit.key: self._bump(s, agent_id, limit, now) for limit in limits})
