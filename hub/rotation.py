"""`switchboard keys rotate`: seal every stored secret under the newest master key, hub running or not.

With keys in the key file, a new key is put first and the old ones kept, so replicas still running with
the old key set open new ciphertexts by reloading the file (hub.vault). With keys in
`SWITCHBOARD_MASTER_KEYS`, the operator puts the new key first there, rolls the replicas, then runs this;
afterwards the old key can be dropped from the variable.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.approvals import approval_context
from hub.db import Database
from hub.models import Approval, Connection, HubMeta, OAuthState
from hub.runtime import open_vault
from hub.settings import Settings
from hub.tokens import token_context
from hub.vault import Vault, add_key_file_key

__all__ = ["rotate"]


def _reseal_all(session: Session, vault: Vault) -> int:
    count = 0

    def reseal(value: str | None, context: str) -> str | None:
        nonlocal count
        if value is None or vault.sealed_with_newest(value):
            return value
        count += 1
        return vault.reseal(value, context=context)

    for connection in session.scalars(select(Connection)):
        connection.access_token_enc = reseal(connection.access_token_enc, token_context(connection.id, "access_token"))
        connection.refresh_token_enc = reseal(
            connection.refresh_token_enc, token_context(connection.id, "refresh_token")
        )
    for state in session.scalars(select(OAuthState).where(OAuthState.used_at.is_(None))):
        state.code_verifier_enc = reseal(state.code_verifier_enc, f"oauth_state:{state.state_hash}") or ""
    for approval in session.scalars(select(Approval)):
        approval.arguments_enc = reseal(approval.arguments_enc, approval_context(approval.call_id, "arguments")) or ""
        approval.result_enc = reseal(approval.result_enc, approval_context(approval.call_id, "result"))
    for meta in session.scalars(select(HubMeta)):
        if meta.value.startswith("v1."):
            meta.value = reseal(meta.value, f"hub_meta:{meta.key}") or ""
    return count


def rotate(settings: Settings) -> tuple[int, str]:
    if settings.master_keys is None:
        add_key_file_key(settings.data_dir)
    vault = open_vault(settings)
    db = Database(settings.database_url)
    try:
        return db.run_sync(lambda s: _reseal_all(s, vault)), vault.newest_key_id
    finally:
        db.dispose()
