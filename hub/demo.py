"""`switchboard demo`: once the hub answers, connect `hubspot-demo` through the real OAuth flow against the
sandbox, and seed `demo-agent` with a read grant, printing its key.

Every sandbox consent page accepts the authorize request's own parameters posted back with
`decision=approve`, which is what a person clicking "Connect" sends; the demo does the same.
"""

import threading
import time
from urllib.parse import parse_qsl, urlsplit

import httpx

from hub import admin_auth
from hub.db import Database
from hub.settings import Settings

__all__ = ["approve_consent", "schedule_demo_setup"]

DEMO_CONNECTION = "hubspot-demo"
DEMO_AGENT = "demo-agent"
DEMO_SCOPES = "crm.contacts.read,crm.contacts.write"


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


def _seed_agent(admin: httpx.Client) -> str:
    """Through the admin API, so the running hub sees the agent before its key is printed."""
    created = admin.post(
        "/admin/api/agents", json={"name": DEMO_AGENT, "description": "Demo agent: reads CRM contacts"}
    )
    if created.status_code == 409:  # a previous demo run made it: give it a fresh key
        created = admin.post(f"/admin/api/agents/{DEMO_AGENT}/keys", json={})
    created.raise_for_status()
    grant = {"agent": DEMO_AGENT, "connection": DEMO_CONNECTION, "scope": "crm.contacts.read"}
    admin.post("/admin/api/grants", json=grant).raise_for_status()
    key: str = created.json()["key"]
    return key


def _set_up(settings: Settings) -> None:
    base = settings.base_url.rstrip("/")
    _wait_until_up(base)
    db = Database(settings.database_url)
    try:
        token = db.run_sync(admin_auth.create_api_token)
        with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}) as admin:
            start = admin.get("/connect/hubspot", params={"name": DEMO_CONNECTION, "scopes": DEMO_SCOPES})
            if start.status_code != 302:
                raise RuntimeError(f"connect failed: {start.text}")
            with httpx.Client(timeout=10) as browser:
                done = browser.get(approve_consent(browser, start.headers["location"]))
                if done.status_code != 303:
                    raise RuntimeError(f"callback failed: {done.text}")
            key = _seed_agent(admin)
    finally:
        db.dispose()
    print(
        f"\nDemo ready: connection {DEMO_CONNECTION} (sandbox HubSpot) and agent {DEMO_AGENT} with crm.contacts.read.\n"
        f"Try:  curl -s -H 'Authorization: Bearer {key}' {base}/v1/tools\n"
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
