"""Calls waiting for a human: stored, decided once, run exactly once.

A call whose decision is `pending_approval` is stored with its exact arguments (encrypted; they may hold
personal data) and the hash `scopes.arguments_digest` binds them to: the call that runs is the call the
human saw. Every state change is one conditional UPDATE, so the database arbitrates races between
admins, replicas and restarts:

    pending ──approve──▶ approved ──claim──▶ running ──▶ done | failed
       └──deny──▶ denied      └── (expires_at passes while pending) ──▶ expired

- Two admins approving at once: one UPDATE … WHERE status='pending' matches, the other gets 409.
- Running: a replica claims an approved call (UPDATE … WHERE status='approved') and commits the claim before
  the provider is called, so no two replicas run it; a hub that stops after approval and before the claim
  leaves it `approved`, and whichever replica starts next runs it. A hub that dies while the call runs
  leaves it `running`: after `stale_after` it is marked failed with an unknown outcome — never run twice.
- Signed links: `link_token` signs (call id, approver, expiry) with the hub's secret; the link acts only
  while the call is pending, so it is used once.
"""

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hub.db import rows_changed
from hub.errors import Conflict, NotFound, UpstreamError
from hub.models import Approval, AuditRecord, utcnow
from hub.vault import Vault

__all__ = [
    "STALE_RUN",
    "TERMINAL",
    "ApprovalView",
    "Outcome",
    "any_open",
    "approval_context",
    "arguments",
    "claim",
    "claimable",
    "create",
    "decide",
    "expire_overdue",
    "fail_stale",
    "finish",
    "get",
    "link_token",
    "listing",
    "mask_secrets",
    "outcome",
    "pending_count",
    "read_link",
    "view",
]

TERMINAL = frozenset({"done", "failed", "denied", "expired"})
_SECRET_KEYS = ("password", "secret", "token", "api_key", "apikey", "authorization", "credential", "private_key")


def approval_context(call_id: str, what: str) -> str:
    return f"approvals:{call_id}:{what}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an agent polling a call learns: its status and, when finished, its result or problem."""

    call_id: str
    status: str
    result: Any = None
    notes: tuple[str, ...] = ()
    problem: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """An approval as the admin page and API show it: arguments with secret-looking values masked."""

    call_id: str
    agent: str
    tool: str
    connection: str
    arguments: dict[str, Any]
    reason: str
    status: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    run_call_id: str | None
    problem: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "agent": self.agent,
            "tool": self.tool,
            "connection": self.connection,
            "arguments": self.arguments,
            "reason": self.reason,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "run_call_id": self.run_call_id,
            "problem": self.problem,
        }


def mask_secrets(value: Any) -> Any:
    """Arguments for human eyes: values under secret-looking keys (password, token, api_key…) masked."""
    if isinstance(value, dict):
        return {
            k: "[secret]" if any(s in str(k).lower() for s in _SECRET_KEYS) else mask_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def create(
    session: Session,
    vault: Vault,
    *,
    call_id: str,
    agent_id: int,
    agent_name: str,
    tool: str,
    connection: str,
    arguments: dict[str, Any],
    args_hash: str,
    session_key: str | None,
    reason: str,
    ttl: float,
) -> None:
    now = utcnow()
    session.add(
        Approval(
            call_id=call_id,
            agent_id=agent_id,
            agent_name=agent_name,
            tool=tool,
            connection=connection,
            arguments_enc=vault.encrypt(
                orjson.dumps(arguments).decode(), context=approval_context(call_id, "arguments")
            ),
            args_hash=args_hash,
            session=session_key,
            reason=reason[:2000],
            status="pending",
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )


def arguments(approval: Approval, vault: Vault) -> dict[str, Any]:
    plain = vault.decrypt(approval.arguments_enc, context=approval_context(approval.call_id, "arguments"))
    loaded: dict[str, Any] = orjson.loads(plain)
    return loaded


def get(session: Session, call_id: str) -> Approval:
    approval = session.get(Approval, call_id)
    if approval is None:
        raise NotFound(f"no approval {call_id[:36]!r}")
    return approval


def view(approval: Approval, vault: Vault) -> ApprovalView:
    return ApprovalView(
        call_id=approval.call_id,
        agent=approval.agent_name,
        tool=approval.tool,
        connection=approval.connection,
        arguments=mask_secrets(arguments(approval, vault)),
        reason=approval.reason,
        status=_effective_status(approval),
        created_at=approval.created_at,
        expires_at=approval.expires_at,
        decided_at=approval.decided_at,
        decided_by=approval.decided_by,
        run_call_id=approval.run_call_id,
        problem=approval.problem,
    )


def _effective_status(approval: Approval) -> str:
    if approval.status == "pending" and approval.expires_at <= utcnow():
        return "expired"
    return approval.status


def listing(session: Session, vault: Vault, *, status: str | None = None, limit: int = 100) -> list[ApprovalView]:
    query = select(Approval).order_by(Approval.created_at.desc()).limit(limit)
    if status == "pending":
        query = query.where(Approval.status == "pending", Approval.expires_at > utcnow())
    elif status is not None:
        query = query.where(Approval.status == status)
    return [view(a, vault) for a in session.scalars(query)]


def pending_count(session: Session) -> int:
    waiting = select(func.count()).select_from(Approval)
    return int(session.scalar(waiting.where(Approval.status == "pending", Approval.expires_at > utcnow())) or 0)


def decide(session: Session, *, call_id: str, approve: bool, by: str) -> str:
    """Approve or deny a pending call, once: the first decision wins, any later one is a 409."""
    now = utcnow()
    changed = rows_changed(
        session,
        update(Approval)
        .where(Approval.call_id == call_id, Approval.status == "pending", Approval.expires_at > now)
        .values(status="approved" if approve else "denied", decided_at=now, decided_by=by[:128]),
    )
    if changed == 1:
        return "approved" if approve else "denied"
    approval = get(session, call_id)
    status = _effective_status(approval)
    raise Conflict(f"call {call_id} is {status}, no longer pending: it was decided already or it expired")


def any_open(session: Session) -> bool:
    """Whether any call is pending, approved or running: the sweep's work, usually none (one indexed lookup)."""
    open_ = select(Approval.call_id).where(Approval.status.in_(("pending", "approved", "running"))).limit(1)
    return session.scalar(open_) is not None


def expire_overdue(session: Session) -> int:
    now = utcnow()
    return int(
        rows_changed(
            session,
            update(Approval)
            .where(Approval.status == "pending", Approval.expires_at <= now)
            .values(status="expired", decided_at=now),
        )
    )


def claimable(session: Session, limit: int = 20) -> list[str]:
    return list(
        session.scalars(
            select(Approval.call_id).where(Approval.status == "approved").order_by(Approval.decided_at).limit(limit)
        )
    )


def claim(session: Session, *, call_id: str, run_call_id: str) -> bool:
    """Take an approved call to run it; True for exactly one claimant, whatever replica it runs on."""
    changed = rows_changed(
        session,
        update(Approval)
        .where(Approval.call_id == call_id, Approval.status == "approved")
        .values(status="running", claimed_at=utcnow(), run_call_id=run_call_id),
    )
    return changed == 1


def finish(
    session: Session,
    vault: Vault,
    *,
    call_id: str,
    result: Any = None,
    notes: Sequence[str] = (),
    problem: dict[str, Any] | None = None,
) -> None:
    approval = get(session, call_id)
    approval.finished_at = utcnow()
    if problem is None:
        approval.status = "done"
        payload = orjson.dumps({"result": result, "notes": list(notes)}).decode()
        approval.result_enc = vault.encrypt(payload, context=approval_context(call_id, "result"))
    else:
        approval.status = "failed"
        approval.problem = problem


STALE_RUN = (
    "the hub stopped while this approved call ran; it was not retried, so check the provider before asking again"
)


def fail_stale(session: Session, *, stale_after: float) -> list[Approval]:
    """Calls left `running` by a hub that stopped mid-call: failed, outcome unknown, never run again.

    Returns those this sweep failed whose run has no audit record yet (the hub died before writing it), so
    the caller records them: the run may have reached the provider, and the log must not be silent on it.
    Each is failed by one sweep only, whichever replica runs it first."""
    problem = UpstreamError(STALE_RUN).problem()
    cutoff = utcnow() - timedelta(seconds=stale_after)
    failed = []
    stale = session.scalars(select(Approval).where(Approval.status == "running", Approval.claimed_at < cutoff)).all()
    for approval in stale:
        failing = update(Approval).where(Approval.call_id == approval.call_id, Approval.status == "running")
        if rows_changed(session, failing.values(status="failed", finished_at=utcnow(), problem=problem)):
            failed.append(approval)
    recorded = set(
        session.scalars(select(AuditRecord.call_id).where(AuditRecord.call_id.in_([a.run_call_id for a in failed])))
    )
    return [a for a in failed if a.run_call_id is not None and a.run_call_id not in recorded]


def outcome(session: Session, vault: Vault, *, call_id: str, agent_id: int) -> Outcome:
    """The outcome of a call for the agent that made it; another agent's call is not found."""
    approval = session.get(Approval, call_id)
    if approval is None or approval.agent_id != agent_id:
        raise NotFound(f"no call {call_id[:36]!r} of yours is waiting or recorded")
    status = _effective_status(approval)
    if status == "done" and approval.result_enc is not None:
        payload = orjson.loads(vault.decrypt(approval.result_enc, context=approval_context(call_id, "result")))
        return Outcome(call_id, status, payload["result"], tuple(payload["notes"]))
    return Outcome(call_id, status, problem=approval.problem)


# Signed one-time links for a named approver.


def _sign(secret: bytes, payload: bytes) -> str:
    mac = hmac.new(secret, b"approval-link\x1f" + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def link_token(secret: bytes, *, call_id: str, approver: str, ttl: float) -> str:
    payload = orjson.dumps({"c": call_id, "a": approver, "e": int(time.time() + ttl)})
    return f"{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}.{_sign(secret, payload)}"


def read_link(secret: bytes, token: str) -> tuple[str, str]:
    """(call id, approver) of a valid, unexpired link; NotFound for anything else (no oracle for forgers)."""
    body, _, signature = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        fields = orjson.loads(payload)
        valid = hmac.compare_digest(signature, _sign(secret, payload))
        call_id, approver, expires = str(fields["c"]), str(fields["a"]), int(fields["e"])
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise NotFound("this approval link is not valid") from None
    if not valid or expires < time.time():
        raise NotFound("this approval link is not valid or has expired")
    return call_id, approver
