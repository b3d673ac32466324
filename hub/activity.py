"""The activity log: the audit records an admin asks for, filtered, searched, paged and exported.

One filter (`ActivityFilter`) serves the admin page, its exports and `GET /admin/api/audit`, turned into SQL
by `conditions()`. Search is a case-insensitive substring match (`ILIKE`, or `lower() LIKE` on SQLite) over
agent, tool, connection, problem and call id: no full-text index, so it scans what the other filters leave.
Pages are keyset-paged on `seq` (newest first), so a page costs the same however deep it is. Exports walk the
filtered records in chain order in short transactions of `_CHUNK` records, up to the newest record when the
export began. Nothing here reads arguments: the audit keeps only their keyed digest.
"""

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Literal
from urllib.parse import urlencode

import orjson
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from hub.audit import as_row
from hub.db import Database
from hub.errors import InvalidArguments, NotFound, SwitchboardError
from hub.models import Approval, AuditRecord, utcnow

__all__ = [
    "COLUMNS",
    "DECISIONS",
    "PROBLEMS",
    "WITHIN",
    "ActivityFilter",
    "ActivityPage",
    "CallDetail",
    "Export",
    "FilterParams",
    "HeldCall",
    "call_detail",
    "conditions",
    "csv_lines",
    "export",
    "json_lines",
    "page",
    "parse_filter",
    "stream",
]

DECISIONS = ("allow", "deny", "pending")
# Relative time windows a filter may name instead of (or besides) a start time.
WITHIN = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
# What an export holds, in this order: every stored field of a record.
COLUMNS = (
    "seq",
    "call_id",
    "ts",
    "agent_name",
    "tool",
    "connection",
    "decision",
    "status",
    "problem",
    "latency_ms",
    "args_digest",
    "prev_hash",
    "hash",
)
_MAX_NAME = 64
_MAX_SEARCH = 100
_CHUNK = 1000


def _problems() -> dict[str, str]:
    # Every problem type a call can end with, and its title: the audit's `problem` is one of these codes.
    found: dict[str, str] = {}
    pending: list[type[SwitchboardError]] = [SwitchboardError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls.title)
        pending.extend(cls.__subclasses__())
    return dict(sorted(found.items()))


PROBLEMS = _problems()


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """Which records: each set field narrows the set (exact match, except `q`, a substring of several)."""

    agent: str | None = None
    tool: str | None = None
    connection: str | None = None
    decision: Literal["allow", "deny", "pending"] | None = None
    problem: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    within: str | None = None  # a key of WITHIN: the last hour, day…, counted back from now
    q: str | None = None

    def params(self) -> dict[str, str]:
        """The filter as query parameters, as parse_filter reads them back."""
        values = {
            "agent": self.agent,
            "tool": self.tool,
            "connection": self.connection,
            "decision": self.decision,
            "problem": self.problem,
            "since": _stamp(self.since),
            "until": _stamp(self.until),
            "within": self.within,
            "q": self.q,
        }
        return {k: v for k, v in values.items() if v}

    def query(self, **extra: str | int | None) -> str:
        """A URL query string for this filter plus `extra` (empty values left out)."""
        params: dict[str, Any] = self.params()
        params.update({k: v for k, v in extra.items() if v not in (None, "")})
        return urlencode(params)

    @property
    def active(self) -> bool:
        return bool(self.params())


def _stamp(moment: datetime | None) -> str | None:
    # As a datetime-local input shows it (UTC, to the minute unless seconds matter).
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S" if moment.second else "%Y-%m-%dT%H:%M")


def _moment(text: str, *, what: str, end_of_day: bool) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:  # a bare date: from its start, or (as an end) up to the next day's start
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArguments(f"{what} must look like 2030-12-31T23:59 (UTC) or 2030-12-31") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _name(value: str, what: str, limit: int = _MAX_NAME) -> str | None:
    value = value.strip()
    if len(value) > limit:
        raise InvalidArguments(f"{what} is at most {limit} characters")
    return value or None


def parse_filter(
    *,
    agent: str = "",
    tool: str = "",
    connection: str = "",
    decision: str = "",
    problem: str = "",
    since: str = "",
    until: str = "",
    within: str = "",
    q: str = "",
) -> ActivityFilter:
    """A filter from query parameters (empty means "any"); InvalidArguments names what is wrong.

    Times without an offset are UTC; `until` is exclusive, and a bare date as `until` includes that day."""
    decision = decision.strip()
    if decision and decision not in DECISIONS:
        raise InvalidArguments(f"decision must be one of {', '.join(DECISIONS)}")
    within = within.strip()
    if within and within not in WITHIN:
        raise InvalidArguments(f"within must be one of {', '.join(WITHIN)}")
    start = _moment(since, what="since", end_of_day=False)
    end = _moment(until, what="until", end_of_day=True)
    if start is not None and end is not None and end <= start:
        raise InvalidArguments("until must be later than since")
    return ActivityFilter(
        agent=_name(agent, "agent"),
        tool=_name(tool, "tool"),
        connection=_name(connection, "connection"),
        decision=decision or None,  # type: ignore[arg-type]  # checked against DECISIONS above
        problem=_name(problem, "problem", 48),
        since=start,
        until=end,
        within=within or None,
        q=_name(q, "search", _MAX_SEARCH),
    )


@dataclass(frozen=True, slots=True)
class FilterParams:
    """A filter as the query string has it, before parse_filter: a FastAPI dependency (`Depends()`) for the
    page, its exports and the admin API, and what the page's filter form shows back."""

    agent: str = ""
    tool: str = ""
    connection: str = ""
    decision: str = ""
    problem: str = ""
    since: str = ""
    until: str = ""
    within: str = ""
    q: str = ""

    def parse(self) -> ActivityFilter:
        return parse_filter(
            agent=self.agent,
            tool=self.tool,
            connection=self.connection,
            decision=self.decision,
            problem=self.problem,
            since=self.since,
            until=self.until,
            within=self.within,
            q=self.q,
        )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(wanted: ActivityFilter, *, now: datetime | None = None) -> list[ColumnElement[bool]]:
    """The WHERE clauses selecting `wanted`'s records: the one definition the page, exports and API share."""
    record = AuditRecord
    where: list[ColumnElement[bool]] = []
    for column, value in (
        (record.agent_name, wanted.agent),
        (record.tool, wanted.tool),
        (record.connection, wanted.connection),
        (record.decision, wanted.decision),
        (record.problem, wanted.problem),
    ):
        if value is not None:
            where.append(column == value)
    if wanted.since is not None:
        where.append(record.ts >= wanted.since)
    if wanted.within is not None:
        where.append(record.ts >= (now or utcnow()) - WITHIN[wanted.within])
    if wanted.until is not None:
        where.append(record.ts < wanted.until)
    if wanted.q is not None:
        pattern = _like(wanted.q)
        searched = (record.agent_name, record.tool, record.connection, record.problem, record.call_id)
        where.append(or_(*(column.ilike(pattern, escape="\\") for column in searched)))
    return where


# --- the page ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActivityPage:
    rows: list[dict[str, Any]]  # newest first, as `hub.audit.as_row` (plus `held`: a held call's status now)
    older: int | None  # the `before` of the next page, if there is one
    before: int | None  # this page's own `before` (None: the newest records)


def _held_status(session: Session, call_ids: Iterable[str]) -> dict[str, str]:
    ids = list(call_ids)
    if not ids:
        return {}
    now = utcnow()
    found = session.execute(
        select(Approval.call_id, Approval.status, Approval.expires_at).where(Approval.call_id.in_(ids))
    )
    return {c: "expired" if s == "pending" and e <= now else s for c, s, e in found}


def page(session: Session, wanted: ActivityFilter, *, before: int | None = None, limit: int = 50) -> ActivityPage:
    """Up to `limit` records matching `wanted`, newest first, older than seq `before` when given."""
    query = select(AuditRecord).where(*conditions(wanted)).order_by(AuditRecord.seq.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditRecord.seq < before)
    records = list(session.scalars(query))
    more = len(records) > limit
    rows = [as_row(r) for r in records[:limit]]
    held = _held_status(session, (r["call_id"] for r in rows if r["decision"] == "pending"))
    for row in rows:
        row["held"] = held.get(row["call_id"])
    return ActivityPage(rows, rows[-1]["seq"] if more else None, before)


# --- one call ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldCall:
    """The approval of a held call, without its arguments (those stay encrypted on the approvals queue)."""

    call_id: str
    status: str
    reason: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    run_call_id: str | None
    problem: str | None  # the problem type, when the approved run failed


@dataclass(frozen=True, slots=True)
class CallDetail:
    record: dict[str, Any]  # every stored field, as `hub.audit.as_row`
    held: HeldCall | None = None  # this call waited for a human
    approved_as: HeldCall | None = None  # this call is the run of a held call a human approved
    problem_title: str | None = None


def _held(approval: Approval) -> HeldCall:
    status = approval.status
    if status == "pending" and approval.expires_at <= utcnow():
        status = "expired"
    problem = approval.problem.get("type") if isinstance(approval.problem, dict) else None
    return HeldCall(
        call_id=approval.call_id,
        status=status,
        reason=approval.reason,
        created_at=approval.created_at,
        expires_at=approval.expires_at,
        decided_at=approval.decided_at,
        decided_by=approval.decided_by,
        run_call_id=approval.run_call_id,
        problem=str(problem) if problem else None,
    )


def call_detail(session: Session, call_id: str) -> CallDetail:
    record = session.scalar(select(AuditRecord).where(AuditRecord.call_id == call_id[:36]))
    if record is None:
        raise NotFound(f"no call {call_id[:36]!r} in the audit log")
    held = session.get(Approval, record.call_id) if record.decision == "pending" else None
    approved_as = session.scalar(select(Approval).where(Approval.run_call_id == record.call_id))
    return CallDetail(
        record=as_row(record),
        held=_held(held) if held is not None else None,
        approved_as=_held(approved_as) if approved_as is not None else None,
        problem_title=PROBLEMS.get(record.problem) if record.problem else None,
    )


# --- exports -------------------------------------------------------------------------------------------


def _newest_seq(session: Session) -> int:
    return int(session.scalar(select(func.max(AuditRecord.seq))) or 0)


def _rows(session: Session, *, query: Select[AuditRecord]) -> list[dict[str, Any]]:
    return [as_row(r) for r in session.scalars(query)]


async def stream(db: Database, wanted: ActivityFilter) -> AsyncIterator[dict[str, Any]]:
    """Every record matching `wanted`, in chain order, up to the newest one when the export began; read
    `_CHUNK` at a time, each in its own short transaction, so a slow download holds no connection."""
    where = conditions(wanted)  # a relative window is fixed once, when the export begins
    last = await db.run(_newest_seq)
    after = 0
    while True:
        query = (
            select(AuditRecord)
            .where(*where, AuditRecord.seq > after, AuditRecord.seq <= last)
            .order_by(AuditRecord.seq)
            .limit(_CHUNK)
        )
        chunk = await db.run(partial(_rows, query=query))
        for row in chunk:
            yield row
        if len(chunk) < _CHUNK:
            return
        after = chunk[-1]["seq"]


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with = + - @ as a formula; tool names come from agents, so such
    # text is quoted (OWASP's CSV-injection advice). Numbers are left alone.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


async def csv_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    async for row in rows:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
        if buffer.tell() > 32_768:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def json_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for row in rows:
        yield orjson.dumps({c: row[c] for c in COLUMNS}) + b"\n"


@dataclass(frozen=True, slots=True)
class Export:
    """A download of the filtered records: stream `body` with these headers."""

    body: AsyncIterator[bytes]
    media_type: str
    filename: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Disposition": f'attachment; filename="{self.filename}"'}


def export(db: Database, wanted: ActivityFilter, *, format: Literal["csv", "json"]) -> Export:
    """CSV (a header row, then one row per record) or JSON lines (one object per record), in chain order."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    if format == "csv":
        return Export(csv_lines(stream(db, wanted)), "text/csv; charset=utf-8", f"switchboard-activity-{stamp}.csv")
    return Export(json_lines(stream(db, wanted)), "application/x-ndjson", f"switchboard-activity-{stamp}.jsonl")
