"""What an agent's own page shows, read in one transaction into plain objects that hold no secret: the agent
with its keys, grants and flow rules, the connections a grant may name, and the agent's latest calls."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import agents as agent_service
from hub.admin.views import FLOW_LABELS, FLOW_TARGETS, Choice
from hub.connections import list_connections
from hub.models import AuditRecord
from hub.schemas import AgentRead, ConnectionRead

__all__ = ["RECENT_CALLS", "AgentPage", "Call", "load_agent_page"]

RECENT_CALLS = 20


@dataclass(frozen=True, slots=True)
class Call:
    """One audit record, as the agent page lists it."""

    call_id: str
    ts: datetime
    tool: str
    connection: str | None
    decision: str
    status: int
    problem: str | None
    latency_ms: float


@dataclass(frozen=True, slots=True)
class AgentPage:
    agent: AgentRead
    connections: list[ConnectionRead]
    calls: list[Call]  # the newest RECENT_CALLS, newest first

    @property
    def calls_shown(self) -> int:
        return RECENT_CALLS

    @property
    def grantable(self) -> list[ConnectionRead]:
        """Connections a grant can name: not revoked, and authorised for at least one scope."""
        return [c for c in self.connections if c.status != "revoked" and c.hub_scopes]

    def connection(self, name: str) -> ConnectionRead | None:
        return next((c for c in self.connections if c.name == name), None)

    @property
    def flow_labels(self) -> tuple[Choice, ...]:
        return FLOW_LABELS

    @property
    def flow_targets(self) -> tuple[tuple[str, tuple[Choice, ...]], ...]:
        return FLOW_TARGETS


def _calls(session: Session, name: str) -> list[Call]:
    # The (agent_name, seq) index serves this straight: the newest records of one agent, read backwards.
    records = session.scalars(
        select(AuditRecord).where(AuditRecord.agent_name == name).order_by(AuditRecord.seq.desc()).limit(RECENT_CALLS)
    )
    return [Call(r.call_id, r.ts, r.tool, r.connection, r.decision, r.status, r.problem, r.latency_ms) for r in records]


def load_agent_page(session: Session, *, name: str) -> AgentPage:
    """The agent named `name` (NotFound if there is none) and what its page shows beside it."""
    agent = agent_service.get_agent(session, name=name)
    return AgentPage(
        agent=AgentRead.of(agent),
        connections=[ConnectionRead.of(c) for c in list_connections(session)],
        calls=_calls(session, name),
    )
