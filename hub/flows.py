"""Cross-tool data flow and untrusted sessions, kept in the database so every replica sees them.

`scopes.flow` decides; this module remembers. After a call, what the agent received leaves `CallEffects`:
the fingerprints of its sensitive values, and a mark on the session when the tool returned content written
by outsiders. They are committed with the call's audit record, or just before it (hub.audit), so they are
durable before the agent holds the result: no race lets an agent pass a value on before it is known.

Before a sink (or a high-risk tool) runs, `FlowStore.context` cuts its arguments into candidates, looks
their fingerprints up for this agent, and reads the session's mark: one database round trip, paid only by
sinks and high-risk tools.

Sessions: an MCP session, or the `X-Switchboard-Session` header on REST, is stored as a SHA-256 of its id.
A call with neither belongs to the agent's window session `""`, whose mark lasts `untrusted_window`
seconds; a named session's mark lasts `session_ttl`. A mark on any of the agent's sessions marks its window
session too: a call that names no session cannot show that it comes from another context than the one that
just read outsiders' text (say, a runtime reading mail over MCP, then acting over REST without the header).
Named sessions stay apart: one session's mark never reaches another.
"""

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.db import Database, rows_changed
from hub.models import FlowFingerprint, UntrustedSession, utcnow
from hub.settings import Settings
from scopes import FlowContext, FlowOrigin, SessionState, ToolPolicy, candidates
from scopes.flow import SessionPolicy

__all__ = ["CallEffects", "FlowStore", "session_key", "write_effects"]

WINDOW_SESSION = ""
_LOOKUP_CHUNK = 500
_STORED_MAX = 100_000  # fingerprints remembered as lately stored; past it the memory starts over


def session_key(session_id: str | None) -> str:
    """The stored form of a session id: its SHA-256, or the window session when there is none."""
    return hashlib.sha256(session_id.encode()).hexdigest() if session_id else WINDOW_SESSION


@dataclass(frozen=True, slots=True)
class CallEffects:
    """What one call leaves for later decisions about the same agent."""

    agent_id: int
    tool: str
    connection: str | None
    # fingerprint → label, of every sensitive value the agent received (scopes.fingerprint_result).
    fingerprints: Mapping[str, str]
    # The session this call marked untrusted, when its tool returned untrusted content.
    untrusted_session: str | None = None

    def __bool__(self) -> bool:
        return bool(self.fingerprints) or self.untrusted_session is not None


@cache
def _upserts(dialect: str) -> tuple[Executable, Executable]:
    """The fingerprint and session-mark upserts for one dialect, built once: executed with a list of rows,
    the statement's compiled form is cached, however many rows a batch has."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    prints = insert(FlowFingerprint)
    marks = insert(UntrustedSession)
    return (
        prints.on_conflict_do_update(
            index_elements=["agent_id", "fingerprint", "label"],
            set_={
                "tool": prints.excluded.tool,
                "connection": prints.excluded.connection,
                "seen_at": prints.excluded.seen_at,
            },
        ),
        marks.on_conflict_do_update(
            index_elements=["agent_id", "session"],
            set_={"source_tool": marks.excluded.source_tool, "marked_at": marks.excluded.marked_at},
        ),
    )


def write_effects(connection: Connection, effects: Sequence[CallEffects]) -> None:
    """Upsert the fingerprints and session marks of a batch of calls (inside the audit transaction)."""
    upsert_prints, upsert_marks = _upserts(connection.dialect.name)
    now = utcnow()
    prints: dict[tuple[int, str, str], dict[str, Any]] = {}
    marks: dict[tuple[int, str], dict[str, Any]] = {}
    for effect in effects:
        for digest, label in effect.fingerprints.items():
            prints[(effect.agent_id, digest, label)] = {
                "agent_id": effect.agent_id,
                "fingerprint": digest,
                "label": label,
                "tool": effect.tool,
                "connection": effect.connection,
                "seen_at": now,
            }
        if effect.untrusted_session is not None:
            for session in {effect.untrusted_session, WINDOW_SESSION}:
                marks[(effect.agent_id, session)] = {
                    "agent_id": effect.agent_id,
                    "session": session,
                    "source_tool": effect.tool,
                    "marked_at": now,
                }
    # Sorted, so two replicas upserting overlapping batches take row locks in one order (no deadlock).
    if prints:
        connection.execute(upsert_prints, [prints[k] for k in sorted(prints)])
    if marks:
        connection.execute(upsert_marks, [marks[k] for k in sorted(marks)])


def _stored_key(effects: CallEffects, digest: str, label: str) -> tuple[int, str, str, str, str | None]:
    # The origin is part of the key: a value read through another tool is stored again, so a refusal
    # names the tool the agent read it from last.
    return effects.agent_id, digest, label, effects.tool, effects.connection


class FlowStore:
    def __init__(self, db: Database, settings: Settings, key: bytes) -> None:
        self._db = db
        self._key = key
        self._retention = timedelta(seconds=settings.flow_retention)
        self._window = timedelta(seconds=settings.untrusted_window)
        self._session_ttl = timedelta(seconds=settings.session_ttl)
        # What this process stored lately, and when: a value read again and again (the contact every call
        # fetches) is upserted once per `_restore_after`, not by every call.
        self._stored: dict[tuple[int, str, str, str, str | None], float] = {}
        self._restore_after = min(60.0, settings.flow_retention / 10)

    @property
    def key(self) -> bytes:
        return self._key

    def news(self, effects: CallEffects) -> CallEffects:
        """`effects` without the fingerprints this process stored less than `_restore_after` ago: their rows
        are durable already, and a `seen_at` that much older still lies well inside the retention."""
        if not effects.fingerprints:
            return effects
        now, never = time.monotonic(), -self._restore_after
        fresh = {
            digest: label
            for digest, label in effects.fingerprints.items()
            if now - self._stored.get(_stored_key(effects, digest, label), never) >= self._restore_after
        }
        if len(fresh) == len(effects.fingerprints):
            return effects
        return CallEffects(effects.agent_id, effects.tool, effects.connection, fresh, effects.untrusted_session)

    def stored(self, effects: CallEffects) -> None:
        """Remember `effects`' fingerprints as stored: call it once their transaction has committed."""
        if len(self._stored) > _STORED_MAX:
            self._stored.clear()
        now = time.monotonic()
        for digest, label in effects.fingerprints.items():
            self._stored[_stored_key(effects, digest, label)] = now

    async def context(
        self,
        *,
        agent_id: int,
        rules: Sequence[tuple[str, str]],
        untrusted_policy: SessionPolicy,
        session: str,
        policy: ToolPolicy,
        arguments: Mapping[str, Any],
    ) -> tuple[FlowContext | None, SessionState | None]:
        """What `decide` needs for a sink or high-risk tool: the agent's fingerprints found in the arguments,
        and whether the session is untrusted. (None, None) for other tools, without touching the database."""
        if not (policy.sink or policy.risk == "high"):
            return None, None
        digests = list(candidates(arguments, self._key)) if policy.sink else []
        now = utcnow()

        def load(s: Session) -> tuple[dict[str, FlowOrigin], str | None]:
            found: dict[str, FlowOrigin] = {}
            for start in range(0, len(digests), _LOOKUP_CHUNK):
                chunk = digests[start : start + _LOOKUP_CHUNK]
                rows = s.execute(
                    select(FlowFingerprint.fingerprint, FlowFingerprint.label)
                    .add_columns(FlowFingerprint.tool, FlowFingerprint.connection)
                    .where(
                        FlowFingerprint.agent_id == agent_id,
                        FlowFingerprint.fingerprint.in_(chunk),
                        FlowFingerprint.seen_at >= now - self._retention,
                    )
                    .order_by(FlowFingerprint.label)
                )
                for digest, label, tool, connection in rows:
                    found.setdefault(digest, FlowOrigin(label, tool, connection))
            lasts = self._window if session == WINDOW_SESSION else self._session_ttl
            source = s.scalar(
                select(UntrustedSession.source_tool).where(
                    UntrustedSession.agent_id == agent_id,
                    UntrustedSession.session == session,
                    UntrustedSession.marked_at >= now - lasts,
                )
            )
            return found, source

        found, source = await self._db.run(load)
        flow = FlowContext(found, self._key, rules) if policy.sink else None
        return flow, SessionState(untrusted=source is not None, policy=untrusted_policy, source=source)

    async def purge(self) -> int:
        """Forget fingerprints past their retention and session marks past their lifetime."""
        now = utcnow()

        def purge(s: Session) -> int:
            gone = rows_changed(s, delete(FlowFingerprint).where(FlowFingerprint.seen_at < now - self._retention))
            # Each mark is kept as long as `context` honours it: a named session's for `session_ttl`, the
            # window session's for `untrusted_window`.
            s.execute(
                delete(UntrustedSession).where(
                    UntrustedSession.session != WINDOW_SESSION, UntrustedSession.marked_at < now - self._session_ttl
                )
            )
            s.execute(
                delete(UntrustedSession).where(
                    UntrustedSession.session == WINDOW_SESSION, UntrustedSession.marked_at < now - self._window
                )
            )
            return gone

        return await self._db.run(purge)
