"""Provider faults, injected by the sandboxes (`POST /_control/fault`, `/throttle`, `/revoke-all`), against one
hub on PostgreSQL with a provider time-out of 1 second and four providers behind it: HubSpot (its SDK builds
each request, aiohttp sends it), Slack (asynchronous SDK on aiohttp), Stripe (stripe-python on requests, which
retries 5xx and connection errors itself, with idempotency keys) and Google Drive (google-api-python-client on
httplib2).

Each fault ends in the design's problem type within the call's deadline, only what is safe is retried (a read
once more; a write never, unless its SDK sends it with an idempotency key), every call leaves its audit
record with that problem type, and a transient fault never marks a healthy connection dead: it stays
`active` and the next call succeeds. A token revoked at the provider, or a rotated refresh token lost in a
crash (docs/deploy.md, "Refresh-token rotation and crashes"), ends in one refused refresh and
`connection_needs_reauth`, never a loop.

The hub and sandboxes start once for the module; the last test revokes every token, so it stays last.
"""

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from hub.db import Database
from hub.models import Connection
from hub.tokens import token_context
from hub.vault import Vault, load_master_keys
from tests.harness import Hub, Sandbox, postgres_database, run_hub, run_sandbox

TIMEOUT = 1.0
DEADLINE = TIMEOUT * 2 + 5  # the pipeline's bound on one call (hub/calls.py)


@dataclass(frozen=True)
class Provider:
    """One provider behind the hub: its sandbox, connection, a read and a write tool, and how many requests a
    failing read or write reaches the provider with (the SDK's own retries times the hub's)."""

    name: str
    connection: str
    scopes: str
    read: tuple[str, dict[str, Any]]
    write: tuple[str, dict[str, Any]]
    read_attempts: int
    write_attempts: int
    sandbox: Sandbox | None = None

    def requests(self) -> int:
        assert self.sandbox is not None
        return int(self.sandbox.stats()["api_requests"])

    def control(self, action: str, **body: Any) -> None:
        assert self.sandbox is not None
        httpx.post(f"{self.sandbox.url}/_control/{action}", json=body).raise_for_status()


PROVIDERS = (
    # The hub retries a failed read once; the SDK sends each attempt once.
    Provider(
        "hubspot",
        "crm",
        "crm.contacts.read,crm.contacts.write",
        ("hubspot_contacts_search", {"limit": 1}),
        ("hubspot_contacts_create", {"email": "fault@example.com"}),
        read_attempts=2,
        write_attempts=1,
    ),
    # The SDK's reader retries a dropped connection once itself, so the hub does not retry that again.
    Provider(
        "slack",
        "chat",
        "messaging.chat.read,messaging.chat.send",
        ("slack_channels_list", {"limit": 1}),
        ("slack_messages_post", {"channel": "C0GENERAL1", "text": "fault drill"}),
        read_attempts=2,
        write_attempts=1,
    ),
    # stripe-python retries 5xx and connection errors twice, writes with the same Idempotency-Key.
    Provider(
        "stripe",
        "pay",
        "payments.charges.read,payments.customers.write",
        ("stripe_balance_get", {}),
        ("stripe_customers_create", {"email": "fault@example.com"}),
        read_attempts=3,
        write_attempts=3,
    ),
    Provider(
        "google_drive",
        "drive",
        "storage.files.read,storage.files.write",
        ("gdrive_files_list", {}),
        ("gdrive_folders_create", {"name": "fault drill"}),
        read_attempts=2,
        write_attempts=1,
    ),
)
# What a fault costs when a retry of the same fault succeeds is the same as when it fails, so some kinds
# differ: the providers' SDKs retry dropped connections and 5xx by their own rules, malformed JSON never.
RESET_READ_ATTEMPTS = {"hubspot": 2, "slack": 2, "stripe": 3, "google_drive": 2}
MALFORMED_READ_ATTEMPTS = {"hubspot": 2, "slack": 2, "stripe": 2, "google_drive": 2}


@dataclass
class Stage:
    hub: Hub
    providers: dict[str, Provider]
    agent: httpx.Client

    def call(self, provider: Provider, tool: str, arguments: dict[str, Any], connection: str = "") -> httpx.Response:
        # Each call its own session, so that what one read returns never holds a later write (data-flow rules).
        body = {"arguments": arguments, "connection": connection or provider.connection}
        return self.agent.post(
            f"/v1/tools/{tool}/call", json=body, headers={"X-Switchboard-Session": str(uuid.uuid4())}
        )

    def read(self, provider: Provider) -> httpx.Response:
        return self.call(provider, *provider.read)

    def write(self, provider: Provider) -> httpx.Response:
        tool, arguments = provider.write
        if "email" in arguments:  # a new contact or customer each time
            arguments = {**arguments, "email": f"fault-{uuid.uuid4().hex[:8]}@example.com"}
        return self.call(provider, tool, arguments)

    def connections(self) -> dict[str, dict[str, Any]]:
        with self.hub.admin() as admin:
            return {c["name"]: c for c in admin.get("/admin/api/connections").json()}

    def last_audit(self) -> dict[str, Any]:
        with self.hub.admin() as admin:
            (record,) = admin.get("/admin/api/audit", params={"limit": 1}).json()
        return dict(record)

    def refused(self, answer: httpx.Response, status: int, problem: str, tool: str) -> None:
        """The call failed as `problem`, in problem+json, and its audit record says so."""
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"] == problem, answer.text
        record = self.last_audit()
        assert (record["tool"], record["problem"], record["status"]) == (tool, problem, status), record

    def still_healthy(self, provider: Provider) -> None:
        """A transient fault leaves the connection active, and its next call succeeds."""
        assert self.connections()[provider.connection]["status"] == "active"
        answer = self.read(provider)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    tmp = tmp_path_factory.mktemp("faults")
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):  # module-scoped: the autouse fixture that does this has not run yet
            if name.startswith("SWITCHBOARD_") and name != "SWITCHBOARD_TEST_PG":
                env.delenv(name)
        with (
            run_sandbox("hubspot", tmp / "hubspot") as hubspot,
            run_sandbox("slack", tmp / "slack", "--rotate-refresh-tokens") as slack,
            run_sandbox("stripe", tmp / "stripe") as stripe,
            run_sandbox("google_drive", tmp / "google") as google,
            postgres_database() as database_url,
        ):
            sandboxes = {"hubspot": hubspot, "slack": slack, "stripe": stripe, "google_drive": google}
            extra = {"SWITCHBOARD_PROVIDER_TIMEOUT": str(TIMEOUT)}
            with run_hub(tmp, database_url, providers=sandboxes, extra_env=extra) as hub:
                providers = {p.name: replace(p, sandbox=sandboxes[p.name]) for p in PROVIDERS}
                key = hub.create_agent("fault-bot")
                for provider in providers.values():
                    assert hub.connect(provider.name, provider.connection, provider.scopes).status_code == 303
                    for scope in provider.scopes.split(","):
                        hub.grant("fault-bot", provider.connection, scope)
                with hub.agent(key) as agent:
                    yield Stage(hub, providers, agent)


def _providers() -> list[Any]:
    return [pytest.param(p.name, id=p.name) for p in PROVIDERS]


@pytest.mark.parametrize("name", _providers())
def test_a_slow_provider_ends_in_upstream_timeout_within_the_deadline(stage: Stage, name: str) -> None:
    provider = stage.providers[name]
    tool = provider.read[0]
    provider.control("fault", kind="slow", delay=TIMEOUT + 2, count=1)
    before, started = provider.requests(), time.monotonic()
    answer = stage.read(provider)
    elapsed = time.monotonic() - started
    stage.refused(answer, 504, "upstream_timeout", tool)
    assert elapsed < DEADLINE, elapsed
    assert provider.requests() == before + 1  # a timed-out read has used its time: not retried
    stage.still_healthy(provider)


@pytest.mark.parametrize("name", _providers())
def test_server_errors_end_in_upstream_error_and_reads_are_retried_once(stage: Stage, name: str) -> None:
    provider = stage.providers[name]
    read, write = provider.read[0], provider.write[0]
    for status in (500, 502, 503):
        provider.control("fault", kind="status", status=status, count=10)
        before = provider.requests()
        stage.refused(stage.read(provider), 502, "upstream_error", read)
        assert provider.requests() == before + provider.read_attempts, status
        provider.control("fault", count=0)
        stage.still_healthy(provider)
    provider.control("fault", kind="status", status=502, count=10)
    before = provider.requests()
    stage.refused(stage.write(provider), 502, "upstream_error", write)
    assert provider.requests() == before + provider.write_attempts
    provider.control("fault", count=0)
    stage.still_healthy(provider)
    # One 503 on a read is absorbed by the retry; on a write (without an idempotency key) it is not.
    provider.control("fault", kind="status", status=503, count=1)
    assert stage.read(provider).status_code == 200
    provider.control("fault", kind="status", status=503, count=1)
    written = stage.write(provider)
    assert written.status_code == (200 if provider.write_attempts > 1 else 502), written.text


@pytest.mark.parametrize("name", _providers())
def test_a_reset_connection_ends_in_upstream_error(stage: Stage, name: str) -> None:
    provider = stage.providers[name]
    provider.control("fault", kind="reset", count=10)
    before = provider.requests()
    stage.refused(stage.read(provider), 502, "upstream_error", provider.read[0])
    assert provider.requests() == before + RESET_READ_ATTEMPTS[name]
    before = provider.requests()
    stage.refused(stage.write(provider), 502, "upstream_error", provider.write[0])
    assert provider.requests() == before + provider.write_attempts
    provider.control("fault", count=0)
    stage.still_healthy(provider)


@pytest.mark.parametrize("name", _providers())
def test_malformed_json_ends_in_upstream_error_not_a_server_error(stage: Stage, name: str) -> None:
    provider = stage.providers[name]
    provider.control("fault", kind="malformed", count=10)
    before = provider.requests()
    stage.refused(stage.read(provider), 502, "upstream_error", provider.read[0])
    assert provider.requests() == before + MALFORMED_READ_ATTEMPTS[name]
    before = provider.requests()
    stage.refused(stage.write(provider), 502, "upstream_error", provider.write[0])
    assert provider.requests() == before + 1  # a 200 is not retried, even with an idempotency key
    provider.control("fault", count=0)
    stage.still_healthy(provider)
    log = stage.hub.process.log_path.read_text()
    assert "failed unexpectedly" not in log  # each fault was understood, none reached the catch-all


def test_rate_limits_never_outlast_the_deadline(stage: Stage) -> None:
    # With a 1 s provider time-out the call's deadline is 7 s: a read that would wait 4 s twice answers
    # rate_limited after the first wait instead of running into the deadline as upstream_timeout.
    provider = stage.providers["hubspot"]
    provider.control("throttle", count=2, retry_after=4)
    before, started = provider.requests(), time.monotonic()
    answer = stage.read(provider)
    stage.refused(answer, 429, "rate_limited", provider.read[0])
    assert answer.headers["retry-after"] == "4"
    assert provider.requests() == before + 2 and time.monotonic() - started < DEADLINE
    # A rate-limited write is never retried, whichever SDK.
    for provider in stage.providers.values():
        provider.control("throttle", count=1, retry_after=9)
        before = provider.requests()
        stage.refused(stage.write(provider), 429, "rate_limited", provider.write[0])
        assert provider.requests() == before + 1
        stage.still_healthy(provider)


def _stored_refresh_token(hub: Hub, connection: str) -> str:
    """What a replica reads from the database before refreshing: the connection's sealed refresh token."""
    db = Database(hub.database_url)
    try:
        row = db.run_sync(lambda s: s.scalars(select(Connection).where(Connection.name == connection)).one())
    finally:
        db.dispose()
    assert row.refresh_token_enc is not None
    vault = Vault(load_master_keys(None, hub.data_dir))
    return vault.decrypt(row.refresh_token_enc, context=token_context(row.id, "refresh_token"))


def test_a_rotated_refresh_token_lost_in_a_crash_ends_in_needs_reauth(stage: Stage) -> None:
    provider = stage.providers["slack"]
    assert provider.sandbox is not None
    slack = provider.sandbox
    assert stage.hub.connect("slack", "chat-crash", provider.scopes).status_code == 303
    for scope in provider.scopes.split(","):
        stage.hub.grant("fault-bot", "chat-crash", scope)
    read, arguments = provider.read
    assert stage.call(provider, read, arguments, "chat-crash").status_code == 200

    # A replica refreshes: Slack rotates the refresh token and answers the new pair, and the replica dies
    # before it commits them. The stored refresh token is now one Slack has retired.
    answer = httpx.post(
        f"{slack.url}/api/oauth.v2.access",
        data={
            "grant_type": "refresh_token",
            "refresh_token": _stored_refresh_token(stage.hub, "chat-crash"),
            "client_id": slack.client_id,
            "client_secret": slack.client_secret,
        },
    )
    assert answer.json()["ok"] is True  # and dropped on the floor
    slack.control("expire-tokens")

    refreshes = slack.stats()["token_requests"]["refresh_token"]
    dead = stage.call(provider, read, arguments, "chat-crash")
    stage.refused(dead, 409, "connection_needs_reauth", read)
    assert slack.stats()["token_requests"]["refresh_token"] == refreshes + 1  # one refused refresh
    connection = stage.connections()["chat-crash"]
    assert connection["status"] == "needs_reauth" and "invalid_grant" in connection["last_error"]
    # No loop: the next call is refused by the hub without asking Slack anything.
    before = provider.requests()
    again = stage.call(provider, read, arguments, "chat-crash")
    stage.refused(again, 409, "connection_needs_reauth", read)
    assert slack.stats()["token_requests"]["refresh_token"] == refreshes + 1 and provider.requests() == before
    # The other Slack connection, whose refresh token is intact, refreshes and carries on.
    stage.still_healthy(provider)
    assert slack.stats()["token_requests"]["refresh_token"] == refreshes + 2


def test_a_token_revoked_at_the_provider_ends_in_needs_reauth_without_a_loop(stage: Stage) -> None:
    # Last: revoking kills every connection to these sandboxes.
    for name in ("hubspot", "slack"):
        provider = stage.providers[name]
        assert provider.sandbox is not None
        provider.control("revoke-all")
        provider.control("expire-tokens")  # HubSpot's revocation takes the refresh token; the access token lapses
        refreshes = provider.sandbox.stats()["token_requests"].get("refresh_token", 0)
        stage.refused(stage.read(provider), 409, "connection_needs_reauth", provider.read[0])
        assert provider.sandbox.stats()["token_requests"]["refresh_token"] == refreshes + 1
        before = provider.requests()
        for _ in range(3):
            stage.refused(stage.read(provider), 409, "connection_needs_reauth", provider.read[0])
        assert provider.sandbox.stats()["token_requests"]["refresh_token"] == refreshes + 1
        assert provider.requests() == before
        assert stage.connections()[provider.connection]["status"] == "needs_reauth"
