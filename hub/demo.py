"""`switchboard demo`: once the hub answers, connect `hubspot-demo` through the real OAuth flow against the
sandbox, and seed `demo-agent` with a read grant, printing its key.

Every sandbox consent page accepts the authorize request's own parameters posted back with
`decision=approve`, which is what a person clicking "Connect" sends; the demo does the same.
"""

import threading
import time
from urllib.parse import parse_qsl, urlsplit

import httpx

from hub import admin_auth, agents
from hub.db import Database
from hub.errors import Conflict
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


def _seed_agent(db: Database) -> str:
    def seed(session) -> str:  # type: ignore[no-untyped-def]
        try:
            agent, key = agents.create_agent(
                session, name=DEMO_AGENT, description="Demo agent: reads CRM contacts"
            )
        except Conflict:
            agent = agents.get_agent(session, name=DEMO_AGENT)
            key = agents.create_key(session, agent=agent)
        connection = agents.get_connection(session, name=DEMO_CONNECTION)
        agents.add_grant(session, agent=agent, connection=connection, scope="crm.contacts.read")
        return key

    return db.run_sync(seed)


def _set_up(settings: Settings) -> None:
    base = settings.base_url.rstrip("/")
    _wait_until_up(base)
    db = Database(settings.database_url)
    try:
        token = db.run_sync(admin_auth.create_api_token)
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
            start = client.get(
                f"{base}/connect/hubspot", params={"name": DEMO_CONNECTION, "scopes": DEMO_SCOPES}
            )
            if start.status_code != 302:
                raise RuntimeError(f"connect failed: {start.text}")
            with httpx.Client(timeout=10) as browser:
                callback = approve_consent(browser, start.headers["location"])
                done = browser.get(callback)
                if done.status_code != 303:
                    raise RuntimeError(f"callback failed: {done.text}")
        key = _seed_agent(db)
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
