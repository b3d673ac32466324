"""Usage and cost: tool calls counted from the audit log by hour or day, model tokens that runtimes report
(`POST /v1/usage`), and the price table that turns tokens into dollars.

Call statistics are aggregated in SQL, one row per (time bucket, agent, tool): counts, denials, errors,
latency sum and a cumulative latency histogram, so the result stays small however many calls there were.
Buckets are whole UTC hours or days counted from the Unix epoch (`_epoch_bucket`, the one dialect-specific
expression). The median latency is read from the histogram the way Prometheus' `histogram_quantile` does
(linear inside the bin that holds it): approximate, and the same on SQLite and PostgreSQL.
"""

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import BigInteger, ColumnElement, Integer, and_, case, cast, extract, func, or_, select
from sqlalchemy.orm import Session, aliased

from hub.errors import InvalidArguments, NotFound
from hub.models import Agent, Approval, AuditRecord, ModelPrice, UsageReport, utcnow

__all__ = [
    "LATENCY_BOUNDS",
    "MODEL_PATTERN",
    "PERIODS",
    "AgentCost",
    "CallStats",
    "Period",
    "PriceRead",
    "PriceWrite",
    "Usage",
    "UsageCreate",
    "delete_price",
    "get_price",
    "list_prices",
    "load_usage",
    "models_reported",
    "record_usage",
    "set_price",
]

MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$"  # claude-sonnet-4-5, models/gemini-2.0, a Bedrock ARN id…
_MAX_TOKENS = 10**12
_MAX_PRICE = 1_000_000.0
# Upper bounds (ms) of the latency histogram's bins, like hub.metrics.CALL_LATENCY's; the last bin is open.
LATENCY_BOUNDS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000)
# Approvals whose call will never run: refused by a human or the clock, or failed before it could run (its
# agent disabled, its arguments changed). One that failed while running has a run record, which counts.
_REFUSED = ("denied", "expired", "failed")


# --- schemas -------------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True)


def _integral(value: object) -> object:
    # JSON has one number type: 12.0 is the integer 12 (as JSON Schema's "integer" says); 12.5 stays refused.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Model = Annotated[str, Field(pattern=MODEL_PATTERN, description="The model's name, as its provider spells it.")]
Tokens = Annotated[int, Field(ge=0, le=_MAX_TOKENS), BeforeValidator(_integral)]
Price = Annotated[float, Field(ge=0, le=_MAX_PRICE, allow_inf_nan=False)]


class UsageCreate(BaseModel):
    """One model turn's tokens, as a runtime reports them for the agent whose key it holds."""

    model_config = _STRICT
    model: Model
    input_tokens: Annotated[Tokens, Field(description="Prompt tokens, cached ones included.")]
    output_tokens: Annotated[Tokens, Field(description="Generated tokens.")]


class PriceWrite(BaseModel):
    model_config = _STRICT  # a strict float still takes 3 for 3.0; it refuses true and "3"
    input_per_mtok: Annotated[Price, Field(description="USD per million input tokens.")]
    output_per_mtok: Annotated[Price, Field(description="USD per million output tokens.")]


class PriceRead(BaseModel):
    model: str
    input_per_mtok: float
    output_per_mtok: float
    updated_at: datetime

    @classmethod
    def of(cls, price: ModelPrice) -> "PriceRead":
        return cls.model_validate(price, from_attributes=True)


# --- usage reports and prices --------------------------------------------------------------------------


def record_usage(session: Session, *, agent_id: int, report: UsageCreate) -> int:
    stored = UsageReport(
        agent_id=agent_id, model=report.model, input_tokens=report.input_tokens, output_tokens=report.output_tokens
    )
    session.add(stored)
    session.flush()
    return stored.id


def _model(model: str) -> str:
    if not re.fullmatch(MODEL_PATTERN, model):
        raise InvalidArguments("a model name is 1-100 letters, digits and ._:/@+- (starting with a letter or digit)")
    return model


def list_prices(session: Session) -> list[PriceRead]:
    return [PriceRead.of(p) for p in session.scalars(select(ModelPrice).order_by(ModelPrice.model))]


def get_price(session: Session, *, model: str) -> PriceRead:
    price = session.get(ModelPrice, model)
    if price is None:
        raise NotFound(f"no price for model {model!r}")
    return PriceRead.of(price)


def set_price(session: Session, *, model: str, price: PriceWrite) -> tuple[PriceRead, bool]:
    """Create or replace `model`'s price; True when it is new."""
    stored = session.get(ModelPrice, _model(model))
    created = stored is None
    if stored is None:
        stored = ModelPrice(model=model, input_per_mtok=0.0, output_per_mtok=0.0)
        session.add(stored)
    stored.input_per_mtok, stored.output_per_mtok = price.input_per_mtok, price.output_per_mtok
    stored.updated_at = utcnow()
    session.flush()
    return PriceRead.of(stored), created


def delete_price(session: Session, *, model: str) -> None:
    price = session.get(ModelPrice, model)
    if price is None:
        raise NotFound(f"no price for model {model!r}; it may have been removed already")
    session.delete(price)


# --- call statistics -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    name: Literal["hour", "day"]
    step: int  # seconds per bucket
    buckets: int
    label: str


PERIODS = {
    "hour": Period("hour", 3600, 24, "the last 24 hours, by hour"),
    "day": Period("day", 86_400, 14, "the last 14 days, by day"),
}


@dataclass(slots=True)
class CallStats:
    """Calls in some slice of time, agents and tools, each once. A call held for a human is pending until it
    runs, then counted by its run's record (in the run's hour), or a denial when a human or the clock refused
    it. Errors are allowed calls that failed (at the provider, or a connection needing re-authorisation);
    latency counts allowed calls only, what reached the provider."""

    calls: int = 0
    denials: int = 0
    errors: int = 0
    pending: int = 0
    latency_total: float = 0.0
    # Allowed calls at or under each LATENCY_BOUNDS bound, then all allowed calls (the open bin).
    histogram: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))

    def add(self, other: "CallStats") -> None:
        self.calls += other.calls
        self.denials += other.denials
        self.errors += other.errors
        self.pending += other.pending
        self.latency_total += other.latency_total
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram, strict=True)]

    @property
    def succeeded(self) -> int:
        return self.calls - self.denials - self.errors - self.pending

    @property
    def timed(self) -> int:
        return self.histogram[-1]

    @property
    def avg_ms(self) -> float | None:
        return self.latency_total / self.timed if self.timed else None

    @property
    def p50_ms(self) -> float | None:
        """The median latency, interpolated inside the histogram bin that holds it."""
        if not self.timed:
            return None
        rank = self.timed / 2
        lower, below = 0.0, 0
        for bound, count in zip((*LATENCY_BOUNDS, None), self.histogram, strict=True):
            if count >= rank:
                if bound is None:  # beyond the last bound: all that is known is "over it"
                    return float(lower)
                inside = count - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = float(bound or 0), count
        return None  # unreachable: the open bin holds every timed call

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "denials": self.denials,
            "errors": self.errors,
            "pending": self.pending,
            "p50_ms": _round(self.p50_ms),
            "avg_ms": _round(self.avg_ms),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass(frozen=True, slots=True)
class AgentCost:
    agent: str
    input_tokens: int
    output_tokens: int
    cost: float  # USD, for the models that have a price
    unpriced: tuple[str, ...]  # models reported without a price: their tokens are not in `cost`

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost, 6),
            "unpriced_models": list(self.unpriced),
        }


@dataclass(frozen=True, slots=True)
class Usage:
    period: Period
    starts: list[datetime]  # each bucket's start, oldest first
    series: list[CallStats]  # per bucket, for the chosen agent and tool (all when none is chosen)
    agents: dict[str, CallStats]  # per agent, for the chosen tool
    tools: dict[str, CallStats]  # per tool, for the chosen agent
    agent_series: dict[str, list[int]]  # calls per bucket per agent, for the chosen tool
    tool_series: dict[str, list[int]]  # calls per bucket per tool, for the chosen agent
    costs: list[AgentCost]  # model tokens and cost per agent over the same time
    unpriced: tuple[str, ...]  # every model reported in that time without a price
    agent: str | None = None
    tool: str | None = None

    @property
    def buckets(self) -> list[tuple[datetime, CallStats]]:
        return list(zip(self.starts, self.series, strict=True))

    @property
    def total(self) -> CallStats:
        total = CallStats()
        for stats in self.series:
            total.add(stats)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.name,
            "agent": self.agent,
            "tool": self.tool,
            "buckets": [{"start": s.isoformat(), **b.to_dict()} for s, b in self.buckets],
            "agents": {name: stats.to_dict() for name, stats in self.agents.items()},
            "tools": {name: stats.to_dict() for name, stats in self.tools.items()},
            "costs": [c.to_dict() for c in self.costs],
            "unpriced_models": list(self.unpriced),
        }


def _epoch_bucket(column: Any, step: int, dialect: str) -> ColumnElement[int]:
    """Whole `step`s since the Unix epoch (UTC): integer division of the epoch seconds.

    SQLite: SQLAlchemy renders extract('epoch') as CAST(strftime('%s', ts) AS INTEGER), and integer `/`
    truncates, which for times after 1970 is floor. PostgreSQL: EXTRACT(epoch) is numeric, so floor it."""
    if dialect == "postgresql":
        return cast(func.floor(extract("epoch", column) / step), BigInteger)
    return cast(func.strftime("%s", column), Integer) // step


def _stats_rows(
    session: Session, *, period: Period, since: datetime, now: datetime
) -> list[tuple[int, str, str, CallStats]]:
    record = AuditRecord
    allowed = record.decision == "allow"
    held = record.decision == "pending"
    # A held call has two records when it ran: its hold and its run's. The run's counts; the hold does not.
    approval, run = aliased(Approval), aliased(AuditRecord)
    refused = and_(
        held,
        or_(
            approval.status.in_(_REFUSED),
            and_(approval.status == "pending", approval.expires_at <= now),  # expired, not yet swept
        ),
    )
    bucket = _epoch_bucket(record.ts, period.step, session.get_bind().dialect.name).label("bucket")

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = (
        select(
            bucket,
            record.agent_name,
            record.tool,
            func.count(),
            count_if(record.decision == "deny"),
            count_if(refused),
            count_if(and_(allowed, record.problem.is_not(None))),
            count_if(held),
            func.coalesce(func.sum(case((allowed, record.latency_ms), else_=0.0)), 0.0),
            *(count_if(and_(allowed, record.latency_ms <= bound)) for bound in LATENCY_BOUNDS),
            count_if(allowed),
        )
        .outerjoin(approval, and_(held, approval.call_id == record.call_id))
        .outerjoin(run, run.call_id == approval.run_call_id)
        .where(record.ts >= since, run.seq.is_(None))
        .group_by(bucket, record.agent_name, record.tool)
    )
    found = []
    for row in session.execute(query):
        at, agent, tool, calls, denials, refused_holds, errors, holds, latency, *histogram = row
        stats = CallStats(
            int(calls),
            int(denials) + int(refused_holds),
            int(errors),
            int(holds) - int(refused_holds),
            float(latency),
            [int(h) for h in histogram],
        )
        found.append((int(at), agent or "", tool, stats))
    return found


def _costs(session: Session, *, since: datetime) -> tuple[list[AgentCost], tuple[str, ...]]:
    prices = {p.model: p for p in session.scalars(select(ModelPrice))}
    query = (
        select(Agent.name, UsageReport.model, func.sum(UsageReport.input_tokens), func.sum(UsageReport.output_tokens))
        .join(Agent, Agent.id == UsageReport.agent_id)
        .where(UsageReport.ts >= since)
        .group_by(Agent.name, UsageReport.model)
        .order_by(Agent.name, UsageReport.model)
    )
    per_agent: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for agent, model, tokens_in, tokens_out in session.execute(query):
        per_agent[agent].append((model, int(tokens_in or 0), int(tokens_out or 0)))
    costs = []
    for agent, models in per_agent.items():
        cost = sum(
            (i * prices[m].input_per_mtok + o * prices[m].output_per_mtok) / 1_000_000
            for m, i, o in models
            if m in prices
        )
        unpriced = tuple(m for m, _, _ in models if m not in prices)
        costs.append(AgentCost(agent, sum(i for _, i, _ in models), sum(o for _, _, o in models), cost, unpriced))
    unpriced_models = tuple(sorted({m for c in costs for m in c.unpriced}))
    return costs, unpriced_models


def _first_bucket(period: Period, now: datetime) -> int:
    return int(now.timestamp()) // period.step - (period.buckets - 1)


def load_usage(
    session: Session, *, period: Period, agent: str | None = None, tool: str | None = None, now: datetime | None = None
) -> Usage:
    """Calls per bucket (for `agent` and `tool` when given), per agent and per tool, and cost per agent,
    over the period's buckets up to and including the current one."""
    now = now or utcnow()
    first = _first_bucket(period, now)
    since = datetime.fromtimestamp(first * period.step, UTC)
    rows = _stats_rows(session, period=period, since=since, now=now)
    series = [CallStats() for _ in range(period.buckets)]
    agents: dict[str, CallStats] = defaultdict(CallStats)
    tools: dict[str, CallStats] = defaultdict(CallStats)
    agent_series: dict[str, list[int]] = defaultdict(lambda: [0] * period.buckets)
    tool_series: dict[str, list[int]] = defaultdict(lambda: [0] * period.buckets)
    for at, row_agent, row_tool, stats in rows:
        index = at - first
        if not 0 <= index < period.buckets:
            continue  # a record stamped ahead of this replica's clock
        agent_ok, tool_ok = agent in (None, row_agent), tool in (None, row_tool)
        if agent_ok and tool_ok:
            series[index].add(stats)
        if tool_ok:
            agents[row_agent].add(stats)
            agent_series[row_agent][index] += stats.calls
        if agent_ok:
            tools[row_tool].add(stats)
            tool_series[row_tool][index] += stats.calls
    costs, unpriced = _costs(session, since=since)
    return Usage(
        period=period,
        starts=[since + timedelta(seconds=period.step * i) for i in range(period.buckets)],
        series=series,
        agents=dict(sorted(agents.items())),
        tools=dict(sorted(tools.items(), key=lambda item: (-item[1].calls, item[0]))),
        agent_series=dict(agent_series),
        tool_series=dict(tool_series),
        costs=costs,
        unpriced=unpriced,
        agent=agent,
        tool=tool,
    )


def models_reported(session: Session) -> Sequence[str]:
    """Every model a runtime has reported, for the price form's suggestions."""
    return list(session.scalars(select(UsageReport.model).distinct().order_by(UsageReport.model)))
