"""Human approval, end to end on SQLite and PostgreSQL: a held call answers 202 and reaches no provider; it
appears in the queue with its exact arguments; two approvers racing (on one replica or two) decide it once; it
runs exactly once, also when the hub stops between approval and execution; a denied or expired call answers
approval_denied; MCP says how to fetch the outcome; a signed link decides for a named approver, once."""

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.harness import Hub, Sandbox, mcp_session, run_hub

NEW_CONTACT = {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}


def _setup(hub: Hub) -> str:
    hub.connect("hubspot", "crm", "crm.contacts.read,crm.contacts.write")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.write", {"approval": "always"})
    return key


def _creates(hubspot: Sandbox) -> int:
    """Requests HubSpot received: the hub calls it for nothing but the approved creations here, so this is
    what 'exactly once' is counted in."""
    requests: int = hubspot.stats()["api_requests"]
    return requests


def _hold(agent: httpx.Client, **extra: Any) -> str:
    held = agent.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {**NEW_CONTACT, **extra}})
    assert held.status_code == 202, held.text
    body = held.json()
    assert body["status"] == "pending_approval" and f"/v1/calls/{body['call_id']}" in body["detail"]
    call_id: str = body["call_id"]
    return call_id


def _approve_at_once(urls: list[str], token: str, call_id: str) -> list[int]:
    """POST the same approval from several admins at the same moment."""

    def approve(url: str) -> int:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as admin:
            return admin.post(f"/admin/api/approvals/{call_id}", json={"approve": True}).status_code

    with ThreadPoolExecutor(len(urls)) as pool:
        return sorted(pool.map(approve, urls))


async def _mcp_call(hub: Hub, key: str, tool: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    async with mcp_session(hub, key) as session:
        called = await session.call_tool(tool, arguments)
        text = called.content[0].text  # type: ignore[union-attr]
        return bool(called.is_error), json.loads(text)


def test_held_call_is_decided_once_and_runs_once(hub: Hub, hubspot: Sandbox) -> None:
    key = _setup(hub)
    other = hub.create_agent("other")
    with hub.agent(key) as agent, hub.admin() as admin:
        before = _creates(hubspot)
        call_id = _hold(agent)
        assert _creates(hubspot) == before  # held: HubSpot saw nothing
        assert agent.get(f"/v1/calls/{call_id}").status_code == 202
        with hub.agent(other) as stranger:
            assert stranger.get(f"/v1/calls/{call_id}").status_code == 404  # another agent's call is not found

        queue = admin.get("/admin/api/approvals").json()
        assert [(a["call_id"], a["agent"], a["tool"], a["arguments"]) for a in queue] == [
            (
                call_id,
                "bot",
                "hubspot_contacts_create",
                {**NEW_CONTACT, "phone": None, "company": None, "jobtitle": None},
            )
        ]
        assert "approval" in queue[0]["reason"]

        assert _approve_at_once([hub.url, hub.url], hub.admin_token, call_id) == [200, 409]
        done = agent.get(f"/v1/calls/{call_id}", params={"wait": 30})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "done" and done.json()["result"]["email"] == NEW_CONTACT["email"]
        assert _creates(hubspot) == before + 1
        assert admin.get(f"/admin/api/approvals/{call_id}").json()["status"] == "done"
        assert admin.post(f"/admin/api/approvals/{call_id}", json={"approve": True}).status_code == 409

        denied = _hold(agent)
        assert admin.post(f"/admin/api/approvals/{denied}", json={"approve": False}).json()["status"] == "denied"
        refused = agent.get(f"/v1/calls/{denied}", params={"wait": 5})
        assert refused.status_code == 403 and refused.json()["type"] == "approval_denied"
        assert _creates(hubspot) == before + 1

        # Over MCP: a clear tool error naming the call and where its outcome will be.
        second_contact = {**NEW_CONTACT, "email": "grace@example.com"}
        is_error, body = asyncio.run(_mcp_call(hub, key, "hubspot_contacts_create", second_contact))
        assert is_error and body["status"] == "pending_approval" and f"/v1/calls/{body['call_id']}" in body["detail"]

        # A signed link for a named approver: looking decides nothing, the form decides once.
        link = admin.post(f"/admin/api/approvals/{body['call_id']}/link", json={"approver": "grace"}).json()["url"]
        with httpx.Client(timeout=30) as browser:
            page = browser.get(link)
            assert page.status_code == 200 and "hubspot_contacts_create" in page.text and "grace" in page.text
            assert agent.get(f"/v1/calls/{body['call_id']}").status_code == 202
            assert browser.post(link, data={"decision": "approve"}).status_code == 200
            assert browser.post(link, data={"decision": "approve"}).status_code == 409
            forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
            assert browser.get(forged).status_code == 404
        assert agent.get(f"/v1/calls/{body['call_id']}", params={"wait": 30}).json()["result"]["firstname"] == "Ada"
        assert admin.get(f"/admin/api/approvals/{body['call_id']}").json()["decided_by"] == "grace (signed link)"
        assert _creates(hubspot) == before + 2

        # Usage counts each held call once: the two that ran by their runs, the refused one as a denial.
        usage = admin.get("/admin/api/usage", params={"period": "hour"}).json()["agents"]["bot"]
        assert (usage["calls"], usage["denials"], usage["errors"], usage["pending"]) == (3, 1, 0, 0)


def test_approved_call_runs_once_across_replicas_and_restarts(
    tmp_path: Path, database_url: str, hubspot: Sandbox
) -> None:
    with run_hub(tmp_path / "a", database_url, providers={"hubspot": hubspot}) as first:
        key = _setup(first)
        shared = {
            "SWITCHBOARD_MASTER_KEYS": (first.data_dir / "master.key").read_text().strip().replace("\n", ","),
            "SWITCHBOARD_ADMIN_TOKEN": first.admin_token,
        }
        before = _creates(hubspot)
        with run_hub(tmp_path / "b", database_url, providers={"hubspot": hubspot}, extra_env=shared) as second:
            with first.agent(key) as agent:
                call_id = _hold(agent)
            # One admin on each replica, at the same moment: one decision, one run, whichever replica runs it.
            assert _approve_at_once([first.url, second.url], first.admin_token, call_id) == [200, 409]
            with second.agent(key) as agent:
                assert agent.get(f"/v1/calls/{call_id}", params={"wait": 30}).json()["status"] == "done"
            with first.agent(key) as agent:
                waiting = _hold(agent, email="grace@example.com")
        assert _creates(hubspot) == before + 1
        cli = first.cli

    # No hub runs: approving records the decision; the next hub to start runs the call, once.
    approved = cli("approvals", "approve", waiting)
    assert approved.returncode == 0 and "approved" in approved.stdout, approved.stderr
    assert cli("approvals", "approve", waiting).returncode == 2  # decided already
    assert _creates(hubspot) == before + 1
    shared_env = {"SWITCHBOARD_MASTER_KEYS": shared["SWITCHBOARD_MASTER_KEYS"]}
    with run_hub(tmp_path / "c", database_url, providers={"hubspot": hubspot}, extra_env=shared_env) as third:
        with third.agent(key) as agent:
            outcome = agent.get(f"/v1/calls/{waiting}", params={"wait": 30})
        assert outcome.status_code == 200 and outcome.json()["status"] == "done", outcome.text
    with run_hub(tmp_path / "d", database_url, providers={"hubspot": hubspot}, extra_env=shared_env) as fourth:
        time.sleep(2)  # several of its polls for approved calls: none may run again
        with fourth.admin() as admin:
            assert admin.get("/admin/api/audit/verify").json()["intact"] is True
    assert _creates(hubspot) == before + 2


def test_an_unanswered_approval_expires(tmp_path: Path, database_url: str, hubspot: Sandbox) -> None:
    with run_hub(
        tmp_path, database_url, providers={"hubspot": hubspot}, extra_env={"SWITCHBOARD_APPROVAL_TTL": "1"}
    ) as hub:
        key = _setup(hub)
        with hub.agent(key) as agent, hub.admin() as admin:
            call_id = _hold(agent)
            time.sleep(1.2)
            assert admin.post(f"/admin/api/approvals/{call_id}", json={"approve": True}).status_code == 409
            expired = agent.get(f"/v1/calls/{call_id}")
            assert expired.status_code == 403 and expired.json()["type"] == "approval_denied"
            assert "expired" in expired.json()["detail"]
