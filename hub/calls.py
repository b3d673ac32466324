"""The tool-call pipeline, DESIGN.md section 2: each step one function, denials before provider I/O.

    agent → tool → grant (decide) → validate arguments → token → provider → shape result → audit

Every call that reaches `run`, allowed or not, writes exactly one audit record, and the caller gets
its answer only after that record is durable.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

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
)
from hub.audit import AuditEntry, AuditWriter, args_digest
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
from hub.metrics import CALL_LATENCY, CALLS, PROVIDER_ERRORS
from hub.models import utcnow
from hub.policy_cache import AgentPrincipal, ConnectionInfo, PolicyCache
from hub.rates import RateCounter
from hub.tokens import TokenManager
from scopes import Decision, RateUsage, decide, rate_limits_for, shape_result

__all__ = ["CallPipeline", "CallResult", "constrained_decision", "validate_arguments"]

log = logging.getLogger(__name__)
# A rate-limited read is retried within this budget (seconds), honouring the provider's Retry-After.
_RETRY_BUDGET = 10.0
_MAX_RETRIES = 3
_BACKOFF = 0.5
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
    allowed: bool = False


@dataclass(frozen=True, slots=True)
class CallResult:
    call_id: str
    result: Any
    # What policy did to the call, for the agent: clamped limits, filtered or masked results.
    notes: tuple[str, ...] = ()


class CallPipeline:
    def __init__(
        self,
        *,
        policy: PolicyCache,
        tokens: TokenManager,
        audit: AuditWriter,
        rates: RateCounter,
        digest_key: bytes,
        timeout: float,
    ) -> None:
        self._rates = rates
        self._policy = policy
        self._tokens = tokens
        self._audit = audit
        self._digest_key = digest_key
        # The provider client has its own time-out; this deadline also bounds refresh and queueing.
        self._deadline = timeout * 2 + 5

    async def run(
        self, agent: AgentPrincipal, tool_name: str, arguments: Any, connection: str | None = None
    ) -> CallResult:
        call_id = str(uuid.uuid4())
        started = time.perf_counter()
        record = _Record(call_id, started, agent, tool_name, arguments)
        try:
            tool = _tool(tool_name)
            record.connection = _grant(agent, tool, connection)
            args = validate_arguments(tool, arguments)
            # Count first, then decide once: the decision sees this call in the rate windows.
            limits = rate_limits_for(tool.provider, tool.scopes, agent.grants, record.connection)
            usage = await self._rates.count(agent.id, limits) if limits else None
            decision = _constrain(agent, tool, record.connection, args, usage)
            if decision.changes:
                args = args.model_copy(update=dict(decision.changes))
            info = self._connection(record.connection)
            record.allowed = True
            output = await asyncio.wait_for(self._invoke(tool, info, args), self._deadline)
            shaped = shape_result(
                output.model_dump(mode="json", exclude_none=True),
                policy=tool.policy,
                results=decision.results,
                key=self._digest_key,
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
        await self._record(record, None)
        return CallResult(call_id, shaped.result, tuple(dict.fromkeys((*decision.notes, *shaped.notes))))

    def _connection(self, name: str) -> ConnectionInfo:
        info = self._policy.snapshot.connections[name]
        if info.status != "active":
            raise ConnectionNeedsReauth(f"connection {name!r} is {info.status}: an admin must reconnect it")
        return info

    async def _invoke(self, tool: Tool, info: ConnectionInfo, args: BaseModel) -> BaseModel:
        client, version = await self._tokens.client(info)
        give_up_at = time.monotonic() + _RETRY_BUDGET
        refreshed, attempt = False, 0
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
        except ConnectorError as exc:
            PROVIDER_ERRORS.labels(info.provider, type(exc).__name__).inc()
            raise _problem(exc, info) from None

    async def _record(self, record: "_Record", error: SwitchboardError | None) -> None:
        """Write the call's one audit record; the caller's answer waits until it is durable."""
        elapsed = time.perf_counter() - record.started
        tool = record.tool[:64]
        CALLS.labels(record.agent.name, tool, "ok" if error is None else error.code).inc()
        CALL_LATENCY.labels(tool).observe(elapsed)
        entry = AuditEntry(
            call_id=record.call_id,
            ts=utcnow(),
            agent_name=record.agent.name,
            tool=tool,
            connection=record.connection,
            decision="allow" if record.allowed else "deny",
            status=200 if error is None else error.status,
            problem=None if error is None else error.code,
            latency_ms=round(elapsed * 1000, 3),
            args_digest=args_digest(self._digest_key, record.arguments),
        )
        try:
            await self._audit.append(entry)
        except Exception:
            # No audit record, no answer: the agent must never hold a result the log does not show.
            raise ServiceUnavailable("the audit log cannot be written right now; try again shortly") from None


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


def constrained_decision(
    agent: AgentPrincipal,
    tool: Tool,
    connection: str,
    args: BaseModel,
    usage: Mapping[tuple[str, str], RateUsage] | None = None,
) -> Decision:
    """The full decision on validated arguments: the grants' constraints, as `POST /admin/api/explain` shows."""
    return decide(
        tool=tool.name,
        provider=tool.provider,
        needed=tool.scopes,
        grants=agent.grants,
        connection=connection,
        policy=tool.policy,
        arguments=args.model_dump(),
        usage=usage,
    )


def _constrain(
    agent: AgentPrincipal,
    tool: Tool,
    connection: str,
    args: BaseModel,
    usage: Mapping[tuple[str, str], RateUsage] | None = None,
) -> Decision:
    decision = constrained_decision(agent, tool, connection, args, usage)
    if decision.pending:
        # Approvals are not collected yet: a call that needs one is refused, never run unapproved.
        raise ApprovalDenied(
            f"{decision.detail or 'this call needs a human approval'}; approvals are not available on this hub yet",
            scopes=list(tool.scopes),
        )
    if not decision.allowed:
        raise _refuse(decision, tool)
    return decision


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
