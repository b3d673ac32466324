"""The hub's parts wired together for one process: database, vault, policy cache, tokens, audit, calls."""

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from hub.audit import AuditWriter
from hub.calls import CallPipeline
from hub.connections import revoke_connection
from hub.db import Database
from hub.errors import DatabaseUnavailable
from hub.flows import FlowStore
from hub.models import HubMeta
from hub.oauth import OAuthFlow
from hub.policy_cache import PolicyCache
from hub.providers import resolve_providers
from hub.rates import rate_counter
from hub.settings import Settings
from hub.tokens import TokenManager
from hub.vault import Vault, load_master_keys

__all__ = ["Hub", "hub_secret", "open_vault"]

log = logging.getLogger(__name__)


def open_vault(settings: Settings) -> Vault:
    env = settings.master_keys.get_secret_value() if settings.master_keys else None

    def reload() -> list[bytes]:
        return load_master_keys(env, settings.data_dir)

    return Vault(reload(), reload=None if env else reload)


def hub_secret(db: Database, vault: Vault, name: str) -> bytes:
    """A hub-wide random key kept encrypted in hub_meta (created on first use), e.g. the audit digest key.

    It lives in the database, not derived from a master key, so rotating master keys leaves digests valid.
    """

    def get_or_create(session: Session) -> bytes:
        meta = session.get(HubMeta, name)
        if meta is None:
            meta = HubMeta(
                key=name,
                value=vault.encrypt(base64.b64encode(secrets.token_bytes(32)).decode(), context=f"hub_meta:{name}"),
            )
            session.add(meta)
        return base64.b64decode(vault.decrypt(meta.value, context=f"hub_meta:{name}"))

    return db.run_sync(get_or_create)


class Hub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.vault = open_vault(settings)
        self.providers = resolve_providers(settings)
        self.policy = PolicyCache(self.db, settings.cache_poll_interval)
        self.tokens = TokenManager(db=self.db, vault=self.vault, settings=settings, providers=self.providers)
        self.tokens.on_status_change = self.changed
        self.oauth = OAuthFlow(db=self.db, vault=self.vault, settings=settings, providers=self.providers)
        self.audit = AuditWriter(self.db)
        self.secret_key = hub_secret(self.db, self.vault, "hub_secret_key")
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        self.rates = rate_counter(self.db, redis_url, self.secret_key)
        self.flows = FlowStore(self.db, settings, hub_secret(self.db, self.vault, "flow_fingerprint_key"))
        self.calls = CallPipeline(
            db=self.db,
            vault=self.vault,
            policy=self.policy,
            tokens=self.tokens,
            audit=self.audit,
            rates=self.rates,
            flows=self.flows,
            digest_key=self.secret_key,
            timeout=settings.provider_timeout,
            approval_ttl=settings.approval_ttl,
        )
        # Set when a human approves a call through this process, so it runs now rather than at the next poll.
        self.approved = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        # Provider SDKs that are synchronous run in the loop's default executor (asyncio.to_thread); its
        # default size (cores + 4) would cap concurrent provider calls far below what the pools allow.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=self.settings.provider_threads, thread_name_prefix="provider")
        )
        await self.policy.reload()
        self.audit.start()
        self.rates.start()
        self._tasks = [
            asyncio.create_task(self.policy.watch(), name="policy-watch"),
            asyncio.create_task(self._every(self.settings.refresh_interval, self._refresh_idle), name="refresher"),
            asyncio.create_task(self._every(3600, self.flows.purge), name="flow-purge"),
            asyncio.create_task(self._run_approved(), name="approvals"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rates.stop()
        await self.audit.stop()
        self.tokens.close()
        self.db.dispose()

    async def revoke_connection(self, name: str) -> None:
        """Revoke at the provider where it offers an endpoint, then forget the tokens here."""
        await self.oauth.revoke_at_provider(name=name)
        await self.db.run(lambda s: revoke_connection(s, name=name))
        await self.changed()

    async def changed(self) -> None:
        """Policy changed through this process: reload now, so the very next call sees it."""
        await self.policy.reload()

    async def _run_approved(self) -> None:
        """Run approved calls: at once when approved here, else within `approval_poll` (other replicas, the CLI,
        or calls approved while no hub was running)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.approved.wait(), self.settings.approval_poll)
            self.approved.clear()
            try:
                await self.calls.run_due_approvals()
            except DatabaseUnavailable:
                pass  # hub.db reports the outage; the next poll retries
            except Exception:
                log.warning("running approved calls failed; will retry", exc_info=True)

    async def _refresh_idle(self) -> None:
        await self.tokens.refresh_due(list(self.policy.snapshot.connections.values()))

    @staticmethod
    async def _every(interval: float, job: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await job()
            except DatabaseUnavailable:
                pass  # hub.db reports the outage; the next round retries
            except Exception:
                log.warning("background job %s failed", getattr(job, "__name__", job), exc_info=True)
