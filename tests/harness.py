"""Real servers on loopback for integration tests: the hub and sandbox providers as separate processes."""

import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from hub.demo import approve_consent

PG_ADMIN_URL = os.environ.get("SWITCHBOARD_TEST_PG", "postgresql://127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_for(self, url: str, timeout: float = 30) -> None:
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

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30)

    def agent(self, key: str) -> httpx.Client:
        self.secrets.add(key)
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

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


@contextmanager
def run_hub(tmp: Path, database_url: str, *, providers: dict[str, Sandbox], extra_env: dict[str, str] | None = None) -> Iterator[Hub]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp / "hubdata"
    admin_token = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_BASE_URL": url,
        "SWITCHBOARD_ADMIN_TOKEN": admin_token,
        "SWITCHBOARD_LOG_LEVEL": "DEBUG",
        **(extra_env or {}),
    }
    env.pop("SWITCHBOARD_MASTER_KEYS", None)
    for name, sandbox in providers.items():
        key = name.upper()
        env |= {
            f"SWITCHBOARD_{key}_CLIENT_ID": sandbox.client_id,
            f"SWITCHBOARD_{key}_CLIENT_SECRET": sandbox.client_secret,
            f"SWITCHBOARD_{key}_AUTHORIZE_URL": f"{sandbox.url}/oauth/authorize",
            f"SWITCHBOARD_{key}_TOKEN_URL": f"{sandbox.url}/oauth/v1/token",
            f"SWITCHBOARD_{key}_API_BASE": sandbox.url,
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
