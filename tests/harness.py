"""Real servers on loopback for integration tests: the hub and sandbox providers as separate processes."""

import html
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import httpx2
import psycopg
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from connectors import CONNECTORS
from hub.demo import approve_consent

PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_PG", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def inside_one_minute_window(seconds_needed: float = 20) -> None:
    """Wait until the clock's minute has `seconds_needed` left, so calls a test counts against a per-minute
    rate limit all land in one fixed window, however slowly a busy machine runs them."""
    left = 60 - time.time() % 60
    if left < seconds_needed:
        time.sleep(left + 0.05)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"sb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Process:
    """A child process whose output goes to a log file, stopped (and waited for) on exit."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_for(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.args} exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not come up:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclass
class Sandbox:
    """A sandbox provider served alone on its own port, with its client credentials."""

    url: str
    client_id: str
    client_secret: str
    process: Process

    def control(self, action: str) -> None:
        httpx.post(f"{self.url}/_control/{action}").raise_for_status()

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/_control/stats").json()
        return body

    def issued_tokens(self) -> list[str]:
        tokens: list[str] = httpx.get(f"{self.url}/_control/issued-tokens").json()["tokens"]
        return tokens


@contextmanager
def run_sandbox(provider: str, tmp: Path, *extra: str) -> Iterator[Sandbox]:
    port = free_port()
    client_id, client_secret = f"test-{provider}", secrets.token_urlsafe(24)
    env = {**os.environ, "SANDBOX_CLIENT_ID": client_id, "SANDBOX_CLIENT_SECRET": client_secret}
    process = Process(
        [sys.executable, "-m", "hub.sandbox", provider, "--port", str(port), *extra], env, tmp / f"{provider}.log"
    )
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_for(f"{url}/_control/stats")
        yield Sandbox(url, client_id, client_secret, process)
    finally:
        process.stop()


@dataclass
class Hub:
    url: str
    admin_token: str
    data_dir: Path
    database_url: str
    env: dict[str, str]
    process: Process
    secrets: set[str] = field(default_factory=set)
    # Every error body the hub sent to a client made here, for the scan that no secret leaks into one.
    error_bodies: list[bytes] = field(default_factory=list)

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client of the hub (cookies kept, redirects not followed) whose error answers are kept."""

        def keep(response: httpx.Response) -> None:
            if response.status_code >= 400:
                self.error_bodies.append(response.read())

        return httpx.Client(base_url=self.url, headers=headers, timeout=30, event_hooks={"response": [keep]})

    def admin(self) -> httpx.Client:
        return self.client({"Authorization": f"Bearer {self.admin_token}"})

    def agent(self, key: str) -> httpx.Client:
        self.secrets.add(key)
        return self.client({"Authorization": f"Bearer {key}"})

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub", *args], env=self.env, capture_output=True, text=True, cwd=ROOT, timeout=60
        )

    def create_agent(self, name: str) -> str:
        with self.admin() as admin:
            created = admin.post("/admin/api/agents", json={"name": name})
            assert created.status_code == 201, created.text
            key: str = created.json()["key"]
        self.secrets.add(key)
        return key

    def grant(self, agent: str, connection: str, scope: str, constraints: dict[str, Any] | None = None) -> int:
        with self.admin() as admin:
            body = {"agent": agent, "connection": connection, "scope": scope, "constraints": constraints or {}}
            granted = admin.post("/admin/api/grants", json=body)
            assert granted.status_code == 201, granted.text
            grant_id: int = granted.json()["id"]
            return grant_id

    def connect(self, provider: str, name: str, scopes: str) -> httpx.Response:
        """Walk the real OAuth flow: /connect → the sandbox's consent page → /oauth/callback."""
        with self.admin() as admin:
            start = admin.get(f"/connect/{provider}", params={"name": name, "scopes": scopes})
            assert start.status_code == 302, start.text
        with httpx.Client(timeout=30) as browser:
            return browser.get(approve_consent(browser, start.headers["location"]))


@asynccontextmanager
async def mcp_session(hub: Hub, key: str) -> AsyncIterator[ClientSession]:
    """An initialised session of the official MCP client on the hub's /mcp, as the agent whose key is `key`."""
    hub.secrets.add(key)  # as Hub.agent does: the secrets scan looks for it everywhere
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        streamable_http_client(f"{hub.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


@contextmanager
def run_hub(
    tmp: Path, database_url: str, *, providers: dict[str, Sandbox], extra_env: dict[str, str] | None = None
) -> Iterator[Hub]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp / "hubdata"
    admin_token = secrets.token_urlsafe(32)
    env = {
        **{k: v for k, v in os.environ.items() if k != "SWITCHBOARD_MASTER_KEYS"},
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_BASE_URL": url,
        "SWITCHBOARD_ADMIN_TOKEN": admin_token,
        "SWITCHBOARD_LOG_LEVEL": "DEBUG",
        **(extra_env or {}),
    }
    for name, sandbox in providers.items():
        # The sandbox serves each endpoint at the real URL's path, like the hub's own sandbox mounts.
        manifest = CONNECTORS[name].manifest
        key = manifest.settings_key.upper()
        env |= {
            f"SWITCHBOARD_{key}_CLIENT_ID": sandbox.client_id,
            f"SWITCHBOARD_{key}_CLIENT_SECRET": sandbox.client_secret,
            f"SWITCHBOARD_{key}_AUTHORIZE_URL": sandbox.url + urlsplit(manifest.authorize_url).path,
            f"SWITCHBOARD_{key}_TOKEN_URL": sandbox.url + urlsplit(manifest.token_url).path,
            f"SWITCHBOARD_{key}_API_BASE": sandbox.url + urlsplit(manifest.api_base).path.rstrip("/"),
        }
    process = Process([sys.executable, "-m", "hub", "serve", "--port", str(port)], env, tmp / "hub.log")
    process.start()
    try:
        process.wait_for(f"{url}/healthz")
        hub = Hub(url, admin_token, data_dir, database_url, env, process)
        hub.secrets |= {admin_token, *(s.client_secret for s in providers.values())}
        yield hub
    finally:
        process.stop()


# --- Node peers: a real OAuth authorization server (oidc-provider) and the MCP Inspector CLI --------------

NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
# The Inspector needs Node 22; `.ci/run` installs it with npm's `node@22` package beside the Inspector.
INSPECTOR_BIN = ROOT / ".tools" / "inspector" / "node_modules" / ".bin"
INSPECTOR_CLI = INSPECTOR_BIN / "mcp-inspector"


@dataclass
class OidcServer:
    """tests/peers/oidc_server.mjs on its own port: one confidential client, PKCE required, rotating refresh
    tokens, and the HubSpot contacts search endpoint as its resource server."""

    url: str
    client_id: str
    client_secret: str
    process: Process

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/_control/stats", timeout=10).json()
        return body

    def revoke_grants(self) -> int:
        answer = httpx.post(f"{self.url}/_control/revoke-grants", timeout=10)
        answer.raise_for_status()
        revoked: int = answer.json()["revoked"]
        return revoked


def oidc_hub_env(url: str, client_id: str, client_secret: str, provider: str = "hubspot") -> dict[str, str]:
    """Hub settings that point `provider`'s OAuth and API at an oidc server at `url` (started or not yet:
    the hub must know it before the server can know the hub's redirect URI)."""
    key = provider.upper()
    return {
        f"SWITCHBOARD_{key}_CLIENT_ID": client_id,
        f"SWITCHBOARD_{key}_CLIENT_SECRET": client_secret,
        f"SWITCHBOARD_{key}_AUTHORIZE_URL": f"{url}/auth",
        f"SWITCHBOARD_{key}_TOKEN_URL": f"{url}/token",
        f"SWITCHBOARD_{key}_API_BASE": url,
    }


@contextmanager
def run_oidc_server(
    tmp: Path,
    *,
    port: int,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    scopes: list[str],
    access_token_ttl: int = 30,
) -> Iterator[OidcServer]:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "oidc-provider").is_dir():
        raise RuntimeError("oidc-provider is not installed: npm install --prefix .tools/node oidc-provider@9")
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": client_id,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_REDIRECT_URI": redirect_uri,
        "OIDC_SCOPES": " ".join(scopes),
        "OIDC_ACCESS_TOKEN_TTL": str(access_token_ttl),
        "NODE_MODULES_DIR": str(NODE_MODULES),
    }
    process = Process([node, str(ROOT / "tests" / "peers" / "oidc_server.mjs")], env, tmp / "oidc.log")
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_for(f"{url}/_control/stats")
        yield OidcServer(url, client_id, client_secret, process)
    finally:
        process.stop()


def oidc_authorize(browser: httpx.Client, authorize_url: str, *, login: str = "ada") -> str:
    """Sign in and consent on oidc-provider's development forms; returns the URL it redirects back to
    (the client's redirect URI with code and state), without following it."""
    issuer = urlsplit(authorize_url)
    response = browser.get(authorize_url)
    for _ in range(12):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if urlsplit(location).netloc != issuer.netloc:
                return location
            response = browser.get(location)
            continue
        if response.status_code != 200:
            raise RuntimeError(f"the authorization server answered {response.status_code}: {response.text[:500]}")
        action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
        if action is None or prompt is None:
            raise RuntimeError(f"no login or consent form on the page: {response.text[:500]}")
        form = {"prompt": prompt[1]}
        if prompt[1] == "login":
            form |= {"login": login, "password": "any"}
        response = browser.post(urljoin(str(response.url), html.unescape(action[1])), data=form)
    raise RuntimeError("the authorization server never redirected back")
