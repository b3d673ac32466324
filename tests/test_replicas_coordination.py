"""Two `switchboard serve` processes on one database behave as one hub, on SQLite and PostgreSQL: a key or grant
revoked through one is refused by the other within a second (the measured time is printed), rate limits count
calls made through either, and data an agent read through one cannot leave through the other.
(Approvals across replicas: tests/test_approvals.py; one shared token refresh: tests/test_replicas_and_demo.py.)"""

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.harness import Hub, Sandbox, inside_one_minute_window, run_hub

PROPAGATION_LIMIT = 1.0


@pytest.fixture
def replicas(tmp_path: Path, database_url: str, hubspot: Sandbox) -> Iterator[tuple[Hub, Hub]]:
    with ExitStack() as stack:
        first = stack.enter_context(run_hub(tmp_path / "a", database_url, providers={"hubspot": hubspot}))
        first.connect("hubspot", "crm", "crm.contacts.read,crm.notes.write")
        shared = {
            "SWITCHBOARD_MASTER_KEYS": (first.data_dir / "master.key").read_text().strip().replace("\n", ","),
            "SWITCHBOARD_ADMIN_TOKEN": first.admin_token,
        }
        second = stack.enter_context(
            run_hub(tmp_path / "b", database_url, providers={"hubspot": hubspot}, extra_env=shared)
        )
        yield first, second


def _search(agent: httpx.Client) -> httpx.Response:
    return agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 5}})


def _tool_names(agent: httpx.Client) -> set[str]:
    """The tools a replica lists for the agent; none while the agent's new key has not reached it (401)."""
    listed = agent.get("/v1/tools")
    return {t["name"] for t in listed.json()["tools"]} if listed.status_code == 200 else set()


def _refused_within(agent: httpx.Client, status: int) -> float:
    """Seconds until the other replica answers `status` (polling every 20 ms)."""
    started = time.monotonic()
    while _search(agent).status_code != status:
        assert time.monotonic() - started < 5, "the other replica never noticed"
        time.sleep(0.02)
    return time.monotonic() - started


def test_revocations_reach_the_other_replica_within_a_second(replicas: tuple[Hub, Hub]) -> None:
    first, second = replicas
    key = first.create_agent("bot")
    grant_id = first.grant("bot", "crm", "crm.contacts.read")
    with second.agent(key) as agent:
        _refused_within(agent, 200)  # the new agent and grant have reached the second replica
        with first.admin() as admin:
            assert admin.delete(f"/admin/api/grants/{grant_id}").status_code == 204
        grant_seconds = _refused_within(agent, 403)
    with first.admin() as admin:
        key_id = next(k["id"] for k in admin.get("/admin/api/agents/bot").json()["keys"])
        admin.post("/admin/api/grants", json={"agent": "bot", "connection": "crm", "scope": "crm.contacts.read"})
    with second.agent(key) as agent:
        _refused_within(agent, 200)
        with first.admin() as admin:
            assert admin.delete(f"/admin/api/agents/bot/keys/{key_id}").status_code == 204
        key_seconds = _refused_within(agent, 401)
    print(f"revocation seen by the other replica after: grant {grant_seconds:.3f} s, key {key_seconds:.3f} s")
    assert grant_seconds < PROPAGATION_LIMIT and key_seconds < PROPAGATION_LIMIT


def test_rate_limits_count_calls_through_either_replica(replicas: tuple[Hub, Hub], hubspot: Sandbox) -> None:
    first, second = replicas
    key = first.create_agent("bot")
    first.grant("bot", "crm", "crm.contacts.read", {"rate": {"per_minute": 3}})
    inside_one_minute_window()
    with first.agent(key) as one, second.agent(key) as other:
        _refused_within(other, 200)  # the grant has reached the second replica (this call counts: 1)
        assert [_search(agent).status_code for agent in (one, other)] == [200, 200]
        before = hubspot.stats()["api_requests"]
        limited = _search(one)
        assert limited.status_code == 429 and limited.json()["type"] == "rate_limited"
        assert _search(other).status_code == 429
        assert hubspot.stats()["api_requests"] == before


def test_data_read_through_one_replica_cannot_leave_through_the_other(replicas: tuple[Hub, Hub]) -> None:
    first, second = replicas
    key = first.create_agent("bot")
    first.grant("bot", "crm", "crm.contacts.read")
    first.grant("bot", "crm", "crm.notes.write")
    with first.agent(key) as one, second.agent(key) as other:
        contact = _search(one).json()["result"]["contacts"][0]
        started = time.monotonic()
        while "hubspot_notes_create" not in _tool_names(other):
            assert time.monotonic() - started < 5, "the second replica never saw the agent and its grants"
            time.sleep(0.02)
        note = other.post(
            "/v1/tools/hubspot_notes_create/call",
            json={"arguments": {"body": f"Reach them at {contact['email']}", "contact_id": contact["id"]}},
        )
        assert note.status_code == 403 and note.json()["type"] == "flow_blocked", note.text
        assert "hubspot_contacts_search" in note.json()["detail"]
