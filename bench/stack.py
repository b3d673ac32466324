"""The servers under test, as real processes on loopback, and the ways to make the measured call.

One HubSpot sandbox is the upstream of every mode. The hub is connected to it over the real OAuth flow
and agents are granted crm.contacts.read (`bench.grants`: `hub` without constraints, the policy modes with);
"direct" reuses the access token the sandbox issued to the hub; the proxy forwards with that same token.
Every mode reads the same contact.
"""

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import redis

from bench.grants import SCOPE, AgentGrant, agent_grants
from bench.processes import Server, free_port
from bench.upstream import TOOL, contact_path
from hub.demo import approve_consent

__all__ = ["Stack", "Target", "running_stack"]

_CONNECTION = "bench-hubspot"


@dataclass(frozen=True)
class Target:
    """One mode's request, and the processes (by role) whose CPU a call in this mode costs."""

    mode: str
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    pids: dict[str, int]
    postgres_database: str | None = None
    database_pids: tuple[int, ...] = ()  # Redis, when the hub keeps its rate counters there
    redacts: bool = False  # the agent's grant masks PII: the probe checks that it did


@dataclass(frozen=True)
class Stack:
    targets: list[Target]
    servers: list[Server]
    grants: list[AgentGrant]
    # The sandbox, the access token it issued the hub and the contact every mode reads (`bench.sdk_share`).
    upstream: str = ""
    token: str = ""
    contact_id: str = ""

    def log_tails(self) -> str:
        return "\n".join(f"--- {s.name} log (tail) ---\n{s.log_tail()}" for s in self.servers)


def _server(name: str, args: list[str], env: dict[str, str], tmp: Path) -> Server:
    port = free_port()
    return Server(name, [*args, "--port", str(port)], env, tmp / f"{name}.log", f"http://127.0.0.1:{port}")


def _clean_env() -> dict[str, str]:
    # The hub is configured explicitly below; a developer's SWITCHBOARD_* settings must not leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}


def _start_sandbox(tmp: Path) -> tuple[Server, str, str]:
    client_id, client_secret = "bench-hubspot", secrets.token_urlsafe(24)
    env = {**_clean_env(), "SANDBOX_CLIENT_ID": client_id, "SANDBOX_CLIENT_SECRET": client_secret}
    # A day-long token: no refresh lands inside a measured run.
    sandbox = _server("sandbox", ["hub.sandbox", "hubspot", "--access-token-ttl", "86400"], env, tmp)
    sandbox.start("/_control/stats")
    return sandbox, client_id, client_secret


def _start_hub(
    tmp: Path, database_url: str, redis_url: str | None, sandbox: Server, client_id: str, client_secret: str
) -> tuple[Server, str]:
    admin_token = secrets.token_urlsafe(32)
    env = {
        **_clean_env(),
        **({"SWITCHBOARD_REDIS_URL": redis_url} if redis_url else {}),
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_DATA_DIR": str(tmp / "hubdata"),
        "SWITCHBOARD_ADMIN_TOKEN": admin_token,
        "SWITCHBOARD_HUBSPOT_CLIENT_ID": client_id,
        "SWITCHBOARD_HUBSPOT_CLIENT_SECRET": client_secret,
        "SWITCHBOARD_HUBSPOT_AUTHORIZE_URL": f"{sandbox.url}/oauth/authorize",
        "SWITCHBOARD_HUBSPOT_TOKEN_URL": f"{sandbox.url}/oauth/v1/token",
        "SWITCHBOARD_HUBSPOT_API_BASE": sandbox.url,
    }
    hub = _server("hub", ["hub", "serve"], env, tmp)
    hub.env["SWITCHBOARD_BASE_URL"] = hub.url  # OAuth redirects come back here
    hub.start("/healthz")
    return hub, admin_token


def _admin(hub: Server, admin_token: str) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30)


def _connect(hub: Server, admin_token: str) -> None:
    """Connect the hub to the sandbox over OAuth."""
    with _admin(hub, admin_token) as admin:
        start = admin.get("/connect/hubspot", params={"name": _CONNECTION, "scopes": SCOPE})
        if start.status_code != 302:
            raise RuntimeError(f"/connect answered {start.status_code}: {start.text[:300]}")
        with httpx.Client(timeout=30) as browser:
            done = browser.get(approve_consent(browser, start.headers["location"]))
            if done.status_code >= 400:
                raise RuntimeError(f"the OAuth callback answered {done.status_code}: {done.text[:300]}")


def _create_agents(hub: Server, admin_token: str, grants: list[AgentGrant]) -> dict[str, str]:
    """Create each agent with its grant through the admin API; returns mode -> the agent's key."""
    keys = {}
    with _admin(hub, admin_token) as admin:
        for grant in grants:
            created = admin.post("/admin/api/agents", json={"name": grant.agent})
            created.raise_for_status()
            body = {"agent": grant.agent, "connection": _CONNECTION, "scope": SCOPE, "constraints": grant.constraints}
            granted = admin.post("/admin/api/grants", json=body)
            if granted.status_code != 201:
                raise RuntimeError(f"granting {grant.agent} answered {granted.status_code}: {granted.text[:300]}")
            keys[grant.mode] = created.json()["key"]
    return keys


def _upstream_token_and_contact(sandbox: Server) -> tuple[str, str]:
    """The access token the sandbox issued to the hub (its refresh token answers 401), and a seeded contact."""
    tokens = httpx.get(f"{sandbox.url}/_control/issued-tokens").json()["tokens"]
    for token in tokens:
        found = httpx.post(
            f"{sandbox.url}/crm/v3/objects/contacts/search",
            headers={"Authorization": f"Bearer {token}"},
            json={"limit": 1},
        )
        if found.status_code == 200 and found.json()["results"]:
            return token, str(found.json()["results"][0]["id"])
    raise RuntimeError("no issued token can read contacts from the sandbox")


def _postgres_database(database_url: str) -> str | None:
    parts = urlsplit(database_url)
    return parts.path.lstrip("/") if parts.scheme.startswith("postgresql") else None


def _targets(
    sandbox: Server,
    proxy: Server,
    hub: Server,
    token: str,
    contact_id: str,
    database_url: str,
    redis_pids: tuple[int, ...],
    grants: list[AgentGrant],
    keys: dict[str, str],
) -> list[Target]:
    call = orjson.dumps({"arguments": {"contact_id": contact_id}}).decode()
    path = f"/v1/tools/{TOOL}/call"
    hub_pids = {"hop": hub.pid, "upstream": sandbox.pid}
    return [
        Target(
            "direct",
            "GET",
            sandbox.url + contact_path(contact_id),
            {"Authorization": f"Bearer {token}"},
            None,
            {"upstream": sandbox.pid},
        ),
        Target("proxy", "POST", proxy.url + path, {}, call, {"hop": proxy.pid, "upstream": sandbox.pid}),
        *(
            Target(
                grant.mode,
                "POST",
                hub.url + path,
                {"Authorization": f"Bearer {keys[grant.mode]}"},
                call,
                hub_pids,
                _postgres_database(database_url),
                redis_pids,
                grant.redacts,
            )
            for grant in grants
        ),
    ]


def _probe(target: Target, contact_id: str) -> None:
    """One call per mode before any load: each must answer 200 with the contact, or the comparison is void."""
    response = httpx.request(target.method, target.url, headers=target.headers, content=target.body, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"{target.mode} answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("result", body).get("id") != contact_id:
        raise RuntimeError(f"{target.mode} returned another object: {response.text[:300]}")
    # A grant whose constraints did not apply would measure nothing: its PII must come back masked.
    if target.redacts and "***@" not in str(body["result"].get("email")):
        raise RuntimeError(f"{target.mode}'s grant masks emails, but this one is not: {response.text[:300]}")


def _redis_pids(url: str) -> tuple[int, ...]:
    """The Redis server's process, whose CPU counts as the hub's database's."""
    with redis.Redis.from_url(url) as client:
        return (int(client.info("server")["process_id"]),)


@contextmanager
def running_stack(tmp: Path, database_url: str, redis_url: str | None = None) -> Iterator[Stack]:
    """The sandbox, the hub (its rate counters in Redis when `redis_url` is given) and the proxy, running."""
    servers: list[Server] = []
    try:
        sandbox, client_id, client_secret = _start_sandbox(tmp)
        servers.append(sandbox)
        hub, admin_token = _start_hub(tmp, database_url, redis_url, sandbox, client_id, client_secret)
        servers.append(hub)
        _connect(hub, admin_token)
        token, contact_id = _upstream_token_and_contact(sandbox)
        grants = agent_grants(contact_id)
        keys = _create_agents(hub, admin_token, grants)
        proxy_env = {**_clean_env(), "BENCH_UPSTREAM": sandbox.url, "BENCH_UPSTREAM_TOKEN": token}
        proxy = _server("proxy", ["bench.proxy"], proxy_env, tmp)
        servers.append(proxy)
        proxy.start("/healthz")
        redis_pids = _redis_pids(redis_url) if redis_url else ()
        targets = _targets(sandbox, proxy, hub, token, contact_id, database_url, redis_pids, grants, keys)
        stack = Stack(targets, servers, grants, sandbox.url, token, contact_id)
        for target in stack.targets:
            _probe(target, contact_id)
    except Exception:
        print(Stack([], servers, []).log_tails())
        for server in reversed(servers):
            server.stop()
        raise
    try:
        yield stack
    finally:
        for server in reversed(servers):
            server.stop()
