"""The tool-call pipeline, DESIGN.md section 2: each step one function, denials before provider I/O.

    agent → tool → scope → validate arguments → look-ups (rates, provider facts, fingerprints, session)
          → decide → [hold for approval] → token → provider → shape result → audit (+ flow effects)

Every call that reaches `run`, allowed, denied or held, writes exactly one audit record, and the caller
gets its answer only after that record is durable. A held call (`pending_approval`) runs later, once, under
a new call id, when a human approves it (`run_approved`); its outcome is kept for the agent to fetch.
"""

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from connectors import TOOLS
from connectors.base import Tool
from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from hub import approvals
from hub.audit import AuditEntry, AuditWriter, args_digest
from hub.db import Database
from hub.errors import (
    ApprovalDenied,
    ConnectionNeedsReauth,
    ConstraintViolated,
    FlowBlocked,
    InvalidArguments,
    NotFound,
    RateLimited,
    ScopeDenied,
    ServiceUnavailable,
    SwitchboardError,
    UnknownTool,
    UpstreamError,
    UpstreamTimeout,
)
from hub.flows import CallEffects, FlowStore, session_key
from hub.metrics import PENDING_APPROVALS, PROVIDER_ERRORS, count_call
from hub.models import Approval, utcnow
from hub.policy_cache import AgentPrincipal, ConnectionInfo, PolicyCache
from hub.rates import RateCounter
from hub.tokens import TokenManager
from hub.vault import Vault
from scopes import (
    CallFacts,
    Decision,
    FactsNeeded,
    arguments_digest,
    decide,
    facts_needed,
    fingerprint_result,
    rate_limits_for,
    shape_result,
)

__all__ = ["CallPipeline", "CallResult", "validate_arguments"]

log = logging.getLogger(__name__)
# A rate-limited read is retried within this budget (seconds), honouring the provider's Retry-After, and
# never so late that one more attempt would outlast the call's deadline. A read that failed on a 5xx, a
# dropped connection or an unreadable answer is retried once, after _BACKOFF; a timed-out one never.
_RETRY_BUDGET = 10.0
_MAX_RETRIES = 3
_BACKOFF = 0.5
# How often a caller waiting for an approved call's outcome looks again.
_POLL = 0.2
_DENIALS: dict[str, type[SwitchboardError]] = {
    "scope_denied": ScopeDenied,
    "invalid_arguments": InvalidArguments,
    "constraint_violated": ConstraintViolated,
    "flow_blocked": FlowBlocked,
    "approval_denied": ApprovalDenied,
}


@dataclass(slots=True)
class _Record:
    """What the audit record of one call needs, filled in as the pipeline advances."""

    call_id: str
    started: float
    agent: AgentPrincipal
    tool: str
    arguments: Any
    connection: str | None = None
    decision: str = "deny"  # allow | deny | pending


@dataclass(frozen=True, slots=True)
class CallResult:
    call_id: str
    result: Any
    # What policy did to the call, for the agent: clamped limits, filtered or masked results.
    notes: tuple[str, ...] = ()
    # Set when the call waits for a human: why. `result` is None until it has run.
    pending: str | None = None


class CallPipeline:
    def __init__(
        self,
        *,
        db: Database,
        vault: Vault,
        policy: PolicyCache,
        tokens: TokenManager,
        audit: AuditWriter,
        rates: RateCounter,
        flows: FlowStore,
        digest_key: bytes,
        timeout: float,
        approval_ttl: float,
    ) -> None:
        self._db = db
        self._vault = vault
        self._flows = flows
        self._approval_ttl = approval_ttl
        self._rates = rates
        self._policy = policy
        self._tokens = tokens
        self._audit = audit
        self._digest_key = digest_key
        # The provider client has its own time-out; this deadline also bounds refresh and queueing.
        self._timeout = timeout
        self._deadline = timeout * 2 + 5

    async def run(
        self,
        agent: AgentPrincipal,
        tool_name: str,
        arguments: Any,
        connection: object = None,
        session: str | None = None,
    ) -> CallResult:
        """Run one call for `agent`; `session` is the MCP session or `X-Switchboard-Session` id, if any."""
        call_id = new_call_id()
        if connection is not None and not isinstance(connection, str):
            # Checked here, not by each transport, so REST and MCP refuse it alike, and audited.
            refused = InvalidArguments("'connection' must be a connection name")
            await self._record(_Record(call_id, time.perf_counter(), agent, tool_name, arguments), refused)
            raise refused
        return await self._run(call_id, agent, tool_name, arguments, connection, session_key(session))

    async def _run(
        self,
        call_id: str,
        agent: AgentPrincipal,
        tool_name: str,
        arguments: Any,
        connection: str | None,
        session: str,
        approved: bool = False,
    ) -> CallResult:
        record = _Record(call_id, time.perf_counter(), agent, tool_name, arguments)
        try:
            tool = _tool(tool_name)
            record.connection = _grant(agent, tool, connection)
            args = validate_arguments(tool, arguments)
            plain = args.model_dump(mode="json")
            decision = await self._decide(agent, tool, record.connection, args, plain, session, approved)
            if decision.pending:
                await self._hold(record, tool, plain, session, decision)
                record.decision = "pending"
                await self._record(record, None)
                return CallResult(call_id, None, decision.notes, pending=decision.detail)
            if not decision.allowed:
                raise _refuse(decision, tool)
            if decision.changes:
                args = args.model_copy(update=dict(decision.changes))
            info = self._connection(record.connection)
            record.decision = "allow"
            async with asyncio.timeout(self._deadline):  # not wait_for: that runs the call in a task of its own
                output = await self._invoke(tool, info, args)
            shaped = shape_result(
                output.model_dump(mode="json", exclude_none=True),
                policy=tool.policy,
                results=decision.results,
                key=self._digest_key,
            )
            effects = self._flows.news(
                CallEffects(
                    agent.id,
                    tool.name,
                    record.connection,
                    fingerprint_result(shaped.result, tool.policy, self._flows.key),
                    session if tool.policy.untrusted else None,
                )
            )
        except SwitchboardError as exc:
            await self._record(record, exc)
            raise
        except TimeoutError:
            timed_out = UpstreamTimeout("the provider did not answer in time")
            await self._record(record, timed_out)
            raise timed_out from None
        except Exception:
            # The single catch-all boundary: the log gets the detail, the agent a safe message.
            log.exception("tool %s failed unexpectedly (call %s)", tool_name, call_id)
            failed = UpstreamError("the tool failed unexpectedly; the hub's log has the detail")
            await self._record(record, failed)
            raise failed from None
        await self._record(record, None, effects)
        self._flows.stored(effects)
        return CallResult(call_id, shaped.result, tuple(dict.fromkeys((*decision.notes, *shaped.notes))))

    async def _decide(
        self,
        agent: AgentPrincipal,
        tool: Tool,
        connection: str,
        args: BaseModel,
        plain: dict[str, Any],
        session: str,
        approved: bool = False,
        explain: bool = False,
    ) -> Decision:
        """The full decision, with what it needs looked up: rate counts, provider facts, the agent's
        fingerprints found in a sink's arguments, the session's trust. Each costs only the calls it concerns.
        `explain` looks up nothing at the provider and counts nothing."""
        limits = rate_limits_for(tool.provider, tool.scopes, agent.grants, connection)
        # Count first, then decide once: the decision sees this call in the rate windows. A call a human
        # approved was counted when it was asked.
        counted = limits and not (approved or explain)
        usage = await self._rates.count(agent.id, limits) if counted else None
        facts = None
        if not explain:
            needed = facts_needed(tool.policy, agent.grants, connection, plain, tool.scopes)
            facts = await self._facts(tool, connection, args, needed) if needed else None
        flow, state = await self._flows.context(
            agent_id=agent.id,
            rules=agent.flow_rules,
            untrusted_policy=agent.untrusted_policy,
            session=session,
            policy=tool.policy,
            arguments=plain,
        )
        return decide(
            tool=tool.name,
            provider=tool.provider,
            needed=tool.scopes,
            grants=agent.grants,
            connection=connection,
            policy=tool.policy,
            arguments=plain,
            facts=facts,
            flow=flow,
            session=state,
            usage=usage,
            approved=approved,
        )

    async def _facts(self, tool: Tool, connection: str, args: BaseModel, needed: FactsNeeded) -> CallFacts:
        """What only the provider can tell (a file's folders, a charge's customer), for the constraints."""
        info = self._connection(connection)
        client, _ = await self._tokens.client(info)
        try:
            async with asyncio.timeout(self._deadline):
                return await tool.resolve_facts(client, args, needed)
        except ConnectorError as exc:
            raise _problem(exc, info) from None

    async def _hold(
        self, record: "_Record", tool: Tool, plain: dict[str, Any], session: str, decision: Decision
    ) -> None:
        assert record.connection is not None
        connection = record.connection

        def hold(s: Session) -> None:
            approvals.create(
                s,
                self._vault,
                call_id=record.call_id,
                agent_id=record.agent.id,
                agent_name=record.agent.name,
                tool=tool.name,
                connection=connection,
                arguments=plain,
                args_hash=arguments_digest(tool.name, connection, plain),
                session_key=session,
                reason=decision.detail,
                ttl=self._approval_ttl,
            )

        await self._db.run(hold)
        PENDING_APPROVALS.inc()

    async def explain(
        self, agent: AgentPrincipal, tool: Tool, connection: str, arguments: Any, session: str | None = None
    ) -> dict[str, Any]:
        """What policy would decide for this call now (POST /admin/api/explain): every rule that fired, what
        the hub would look up at the provider, and nothing called, counted or stored."""
        args = validate_arguments(tool, arguments)
        plain = args.model_dump(mode="json")
        decision = await self._decide(agent, tool, connection, args, plain, session_key(session), explain=True)
        needed = facts_needed(tool.policy, agent.grants, connection, plain, tool.scopes)
        answer = decision.to_dict()
        if needed:
            answer["facts_needed"] = {
                "ancestors": {k: list(v) for k, v in needed.ancestors.items()},
                "resources": list(needed.resources),
                "amount": needed.amount,
            }
            answer["notes"].append(
                "the hub looks these facts up at the provider when the call is made; explain does not, "
                "so rules that need them are shown as undetermined"
            )
        return answer

    async def run_approved(self, call_id: str) -> bool:
        """Run one approved call if this replica wins its claim; the outcome is stored for the agent."""
        run_id = new_call_id()
        if not await self._db.run(lambda s: approvals.claim(s, call_id=call_id, run_call_id=run_id)):
            return False
        approval = await self._db.run(lambda s: approvals.get(s, call_id))
        try:
            agent = self._policy.snapshot.agents.get(approval.agent_id)
            if agent is None:
                raise ScopeDenied(f"agent {approval.agent_name!r} was disabled while its call waited")
            stored = approvals.arguments(approval, self._vault)
            if arguments_digest(approval.tool, approval.connection, stored) != approval.args_hash:
                raise ApprovalDenied("the stored arguments do not match what was approved; the call was not run")
            done = await self._run(
                run_id, agent, approval.tool, stored, approval.connection, approval.session or "", approved=True
            )
        except SwitchboardError as exc:
            problem = exc.problem()
            await self._db.run(lambda s: approvals.finish(s, self._vault, call_id=call_id, problem=problem))
        else:
            await self._db.run(
                lambda s: approvals.finish(s, self._vault, call_id=call_id, result=done.result, notes=done.notes)
            )
        return True

    async def run_due_approvals(self) -> int:
        """Expire overdue approvals, fail calls a stopped hub left running, run every approved call."""

        def sweep(s: Session) -> tuple[list[Approval], list[str], int]:
            if not approvals.any_open(s):  # the usual case, every second: no write lock taken for nothing
                return [], [], 0
            approvals.expire_overdue(s)
            stale = approvals.fail_stale(s, stale_after=self._deadline + 60)
            return stale, approvals.claimable(s), approvals.pending_count(s)

        interrupted, due, waiting = await self._db.run(sweep)
        PENDING_APPROVALS.set(waiting)
        for approval in interrupted:
            await self._record_interrupted(approval)
        ran = 0
        for call_id in due:
            ran += await self.run_approved(call_id)
        return ran

    async def _record_interrupted(self, approval: Approval) -> None:
        """The audit record of an approved run a stopped hub left unfinished: allowed, and failed with the
        outcome unknown, since it may have reached the provider."""
        assert approval.run_call_id is not None
        interrupted = UpstreamError(approvals.STALE_RUN)
        started = approval.claimed_at or utcnow()
        entry = AuditEntry(
            call_id=approval.run_call_id,
            ts=utcnow(),
            agent_name=approval.agent_name,
            tool=approval.tool,
            connection=approval.connection,
            decision="allow",
            status=interrupted.status,
            problem=interrupted.code,
            latency_ms=round((utcnow() - started).total_seconds() * 1000, 3),
            args_digest=args_digest(self._digest_key, approvals.arguments(approval, self._vault)),
        )
        await self._audit.append(entry)

    async def outcome(self, agent: AgentPrincipal, call_id: str, wait: float) -> approvals.Outcome:
        """The outcome of one of the agent's held calls, waiting up to `wait` seconds for it to finish."""
        give_up = time.monotonic() + wait
        while True:
            found = await self._db.run(lambda s: approvals.outcome(s, self._vault, call_id=call_id, agent_id=agent.id))
            if found.status in approvals.TERMINAL or time.monotonic() >= give_up:
                return found
            await asyncio.sleep(min(_POLL, max(0.0, give_up - time.monotonic())))

    def _connection(self, name: str) -> ConnectionInfo:
        info = self._policy.snapshot.connections[name]
        if info.status != "active":
            raise ConnectionNeedsReauth(f"connection {name!r} is {info.status}: an admin must reconnect it")
        return info

    async def _invoke(self, tool: Tool, info: ConnectionInfo, args: BaseModel) -> BaseModel:
        started = time.monotonic()
        client, version = await self._tokens.client(info)
        give_up_at = started + min(_RETRY_BUDGET, self._deadline - self._timeout)
        refreshed, retried, attempt = False, False, 0
        try:
            while True:
                try:
                    return await tool.invoke(client, args)
                except ProviderAuthExpired:
                    # The provider refused a token we believed valid: refresh once (shared with every
                    # concurrent caller) and retry once.
                    if refreshed:
                        raise
                    live = await self._tokens.refresh(info, stale_version=version)
                    client, version, refreshed = live.client, live.version, True
                except ProviderRateLimited as exc:
                    # Only reads are retried: a retried write could act twice (writes that are safe to
                    # retry carry idempotency keys inside their connector, e.g. Stripe).
                    wait = exc.retry_after if exc.retry_after is not None else _BACKOFF * 2**attempt
                    if not tool.is_read or attempt >= _MAX_RETRIES or time.monotonic() + wait > give_up_at:
                        raise
                    attempt += 1
                    await asyncio.sleep(wait)
                except ProviderUnavailable as exc:
                    # Safe for a read alone; once, since an outage outlasts any retry within one call.
                    if not tool.is_read or exc.retried or retried or time.monotonic() + _BACKOFF > give_up_at:
                        raise
                    retried = True
                    await asyncio.sleep(_BACKOFF)
        except ConnectorError as exc:
            PROVIDER_ERRORS.labels(info.provider, type(exc).__name__).inc()
            raise _problem(exc, info) from None

    async def _record(
        self, record: "_Record", error: SwitchboardError | None, effects: CallEffects | None = None
    ) -> None:
        """Write the call's one audit record; the caller's answer waits until it is durable."""
        elapsed = time.perf_counter() - record.started
        tool = record.tool[:64]
        outcome = "pending" if record.decision == "pending" else "ok" if error is None else error.code
        # Metric labels name known tools only: each name an agent makes up would be a new series kept forever.
        series = tool if tool in TOOLS else "(unknown)"
        count_call(record.agent.name, series, outcome, elapsed)
        entry = AuditEntry(
            call_id=record.call_id,
            ts=utcnow(),
            agent_name=record.agent.name,
            tool=tool,
            connection=record.connection,
            decision=record.decision,
            status=(202 if record.decision == "pending" else 200) if error is None else error.status,
            problem=None if error is None else error.code,
            latency_ms=round(elapsed * 1000, 3),
            args_digest=args_digest(self._digest_key, record.arguments),
        )
        try:
            await self._audit.append(entry, effects)
        except Exception:
            # No audit record, no answer: the agent must never hold a result the log does not show.
            raise ServiceUnavailable("the audit log cannot be written right now; try again shortly") from None


def new_call_id() -> str:
    """A UUIDv7 (RFC 9562): milliseconds since the epoch, then 74 random bits. Ids that grow with time append
    at the right-hand end of the audit log's call_id index; random ones land on a random page of it, which at
    millions of records costs a page read and a full-page WAL write per call."""
    millis = time.time_ns() // 1_000_000 & (1 << 48) - 1
    random = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = random >> 68, random & (1 << 62) - 1
    digits = f"{millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b:032x}"
    # What str(uuid.UUID(int=...)) gives, without the UUID object's validation on every call.
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _tool(name: str) -> Tool:
    tool = TOOLS.get(name)
    if tool is None:
        raise UnknownTool(f"no tool named {name[:64]!r}; GET /v1/tools lists the tools you may call")
    return tool


def _grant(agent: AgentPrincipal, tool: Tool, connection: str | None) -> str:
    """The scope check alone, before arguments are validated: an agent without the scope learns nothing
    from the tool's validation errors."""
    decision = decide(
        tool=tool.name, provider=tool.provider, needed=tool.scopes, grants=agent.grants, connection=connection
    )
    if not decision.allowed:
        raise _refuse(decision, tool)
    assert decision.connection is not None
    return decision.connection


def _refuse(decision: Decision, tool: Tool) -> SwitchboardError:
    detail = decision.detail
    if decision.reason == "scope_denied":
        detail += "; an admin can grant it on the Switchboard admin page"
    if decision.reason == "rate_limited":
        return RateLimited(detail, retry_after=decision.retry_after)
    return _DENIALS.get(decision.reason, ConstraintViolated)(detail, scopes=list(tool.scopes))


def validate_arguments(tool: Tool, arguments: Any) -> BaseModel:
    if not isinstance(arguments, dict):
        raise InvalidArguments("'arguments' must be a JSON object")
    try:
        return tool.input_model.model_validate(arguments)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(root)", "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidArguments(f"arguments do not match {tool.name}'s input schema", errors) from None


def _problem(exc: ConnectorError, info: ConnectionInfo) -> SwitchboardError:
    if isinstance(exc, ProviderAuthExpired):
        return ConnectionNeedsReauth(
            f"{info.provider} refused a freshly refreshed token for {info.name!r}: an admin must reconnect it"
        )
    if isinstance(exc, ProviderForbidden):
        return ScopeDenied(
            f"{exc.message}. The connection {info.name!r} lacks that provider permission: reconnect it with the scope",
            missing_provider_scopes=list(exc.missing_scopes),
        )
    if isinstance(exc, ProviderNotFound):
        return NotFound(exc.message)
    if isinstance(exc, ProviderRejected):
        return InvalidArguments(exc.message)
    if isinstance(exc, ProviderRateLimited):
        return RateLimited(exc.message, retry_after=exc.retry_after)
    if isinstance(exc, ProviderTimeout):
        return UpstreamTimeout(exc.message)
    return UpstreamError(exc.message)
