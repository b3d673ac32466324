"""Admin credentials: API tokens, one-time sign-in links and page sessions with their CSRF tokens.

All are random 256-bit secrets stored as SHA-256. `SWITCHBOARD_ADMIN_TOKEN`, when set, is also accepted
as an API token (compared in constant time) for automation that cannot run the CLI.
"""

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.credentials import ADMIN_TOKEN_PREFIX, hash_secret, mint, same_secret
from hub.models import AdminCredential, utcnow

__all__ = [
    "SESSION_COOKIE",
    "check_api_token",
    "create_api_token",
    "create_login_link",
    "csrf_token",
    "redeem_login",
    "valid_session",
]

SESSION_COOKIE = "sb_admin"
_LOGIN_PREFIX = "sbl_"
_SESSION_PREFIX = "sbs_"


def create_api_token(session: Session) -> str:
    token = mint(ADMIN_TOKEN_PREFIX)
    session.add(AdminCredential(kind="api", token_hash=hash_secret(token)))
    return token


def create_login_link(session: Session, *, ttl: int) -> str:
    """A one-time sign-in token for `/admin/login?token=…`."""
    token = mint(_LOGIN_PREFIX)
    session.add(
        AdminCredential(kind="login", token_hash=hash_secret(token), expires_at=utcnow() + timedelta(seconds=ttl))
    )
    return token


def _live(kind: str, token: str):  # type: ignore[no-untyped-def]
    now = utcnow()
    return (
        AdminCredential.kind == kind,
        AdminCredential.token_hash == hash_secret(token),
        AdminCredential.revoked_at.is_(None),
        (AdminCredential.expires_at.is_(None)) | (AdminCredential.expires_at > now),
    )


def check_api_token(session: Session, token: str, configured: str | None) -> bool:
    if configured and same_secret(token, configured):
        return True
    if not token.startswith(ADMIN_TOKEN_PREFIX):
        return False
    return session.scalar(select(AdminCredential.id).where(*_live("api", token))) is not None


def redeem_login(session: Session, token: str, *, session_ttl: int) -> str | None:
    """Spend a sign-in token (once) and open a fresh page session; None if the token is not valid."""
    spent = session.execute(
        update(AdminCredential)
        .where(*_live("login", token), AdminCredential.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return None
    # A new session id every sign-in: a session id planted before sign-in is worth nothing (no fixation).
    session_token = mint(_SESSION_PREFIX)
    session.add(
        AdminCredential(
            kind="session",
            token_hash=hash_secret(session_token),
            expires_at=utcnow() + timedelta(seconds=session_ttl),
        )
    )
    return session_token


def valid_session(session: Session, token: str) -> bool:
    if not token.startswith(_SESSION_PREFIX):
        return False
    return session.scalar(select(AdminCredential.id).where(*_live("session", token))) is not None


def end_session(session: Session, token: str) -> None:
    session.execute(update(AdminCredential).where(*_live("session", token)).values(revoked_at=utcnow()))


def csrf_token(secret_key: bytes, session_token: str) -> str:
    """Bound to the session, so it needs no storage and a token from another session is worthless."""
    return hmac.new(secret_key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret_key: bytes, session_token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret_key, session_token), presented or "")
