"""`switchboard demo`: once the hub answers, connect every sandbox provider (`<provider>-demo`, with all the
hub scopes it serves) through the real OAuth flow, and seed `demo-agent` with the read scopes on each,
printing its key.

Every sandbox consent page accepts the authorize request's own parameters posted back with
`decision=approve`, which is what a person clicking "Connect" sends; the demo does the same.
"""

import threading
import time
from urllib.parse import parse_qsl, urlsplit

import httpx

from connectors import CONNECTORS
from hub import admin_auth
from hub.db import Database
from hub.sandbox import SANDBOXES
from hub.settings import Settings

__all__ = ["approve_consent", "schedule_demo_setup"]

DEMO_AGENT = "demo-agent"


def approve_consent(client: httpx.Client, authorize_url: str) -> str:
    """Click "Connect" on a sandbox consent page; returns the callback URL the provider redirects to."""
    page = client.get(authorize_url)
    page.raise_for_status()
    parts = urlsplit(authorize_url)
    form = dict(parse_qsl(parts.query))
    answer = client.post(f"{parts.scheme}://{parts.netloc}{parts.path}", data={**form, "decision": "approve"})
    if answer.status_code != 302:
        raise RuntimeError(f"consent was not accepted ({answer.status_code})")
    return answer.headers["location"]


def _wait_until_up(base_url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the hub did not start")


def _connect(admin: httpx.Client, provider: str) -> tuple[str, list[str]]:
    """Connect `<provider>-demo` with every hub scope the provider serves; returns (name, scopes)."""
    name = f"{provider}-demo"
    scopes = sorted(CONNECTORS[provider].manifest.scope_map)
    start = admin.get(f"/connect/{provider}", params={"name": name, "scopes": ",".join(scopes)})
    if start.status_code != 302:
        raise RuntimeError(f"connecting {provider} failed: {start.text}")
    with httpx.Client(timeout=10) as browser:
        done = browser.get(approve_consent(browser, start.headers["location"]))
    if done.status_code != 303:
        raise RuntimeError(f"the {provider} callback failed: {done.text}")
    return name, scopes


def _seed_agent(admin: httpx.Client, connections: list[tuple[str, list[str]]]) -> str:
    """Through the admin API, so the running hub sees the agent before its key is printed."""
    created = admin.post("/admin/api/agents", json={"name": DEMO_AGENT, "description": "Demo agent: reads everything"})
    if created.status_code == 409:  # a previous demo run made it: give it a fresh key
        created = admin.post(f"/admin/api/agents/{DEMO_AGENT}/keys", json={})
    created.raise_for_status()
    for connection, scopes in connections:
        for scope in (s for s in scopes if s.endswith(".read")):
            grant = {"agent": DEMO_AGENT, "connection": connection, "scope": scope}
            admin.post("/admin/api/grants", json=grant).raise_for_status()
    key: str = created.json()["key"]
    return key


def _set_up(settings: Settings) -> None:
    base = settings.base_url.rstrip("/")
    _wait_until_up(base)
    db = Database(settings.database_url)
    try:
        token = db.run_sync(admin_auth.create_api_token)
    finally:
        db.dispose()
    with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}) as admin:
        connections = [_connect(admin, provider) for provider in SANDBOXES if provider in CONNECTORS]
        key = _seed_agent(admin, connections)
    print(
        f"\nDemo ready: {', '.join(name for name, _ in connections)} (sandbox accounts), and agent {DEMO_AGENT}"
        f" with the read scopes on each.\nTry:  curl -s -H 'Authorization: Bearer {key}' {base}/v1/tools\n"
        f"Agent key for {DEMO_AGENT} (shown once):\n{key}",
        flush=True,
    )


def schedule_demo_setup(settings: Settings) -> None:
    def run() -> None:
        try:
            _set_up(settings)
        except Exception as exc:
            print(f"demo set-up failed: {exc}", flush=True)

    threading.Thread(target=run, name="demo-setup", daemon=True).start()
