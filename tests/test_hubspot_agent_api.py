"""The HubSpot companies, deals, pipelines, notes and owners tools over the hub's agent API, on SQLite and
PostgreSQL, with the hub and the HubSpot sandbox as real processes: the connection asks HubSpot for exactly
the provider scopes its hub scopes need, and an agent walks a sales task through the tools it was granted."""

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.connectors.hubspot_sandbox import access_token
from tests.harness import Hub, Sandbox

SALES_SCOPES = ["crm.companies.read", "crm.deals.read", "crm.deals.write", "crm.notes.write"]
# crm.notes.write asks for crm.objects.contacts.write: HubSpot's notes API takes the contacts scopes.
SALES_PROVIDER_SCOPES = [
    "crm.objects.companies.read",
    "crm.objects.contacts.write",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
]
SALES_TOOLS = [
    "hubspot_companies_get",
    "hubspot_companies_search",
    "hubspot_deals_create",
    "hubspot_deals_get",
    "hubspot_deals_search",
    "hubspot_deals_update",
    "hubspot_notes_create",
    "hubspot_pipelines_list",
]


def _authorize_scopes(hub: Hub, name: str, scopes: list[str]) -> list[str]:
    with hub.admin() as admin:
        start = admin.get("/connect/hubspot", params={"name": name, "scopes": ",".join(scopes)})
    assert start.status_code == 302, start.text
    (requested,) = parse_qs(urlsplit(start.headers["location"]).query)["scope"]
    return requested.split(" ")


def _call(agent: httpx.Client, tool: str, **arguments: Any) -> Any:
    answer = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def test_sales_agent_creates_a_deal_and_notes_it_and_owners_need_their_own_scope(hub: Hub, hubspot: Sandbox) -> None:
    # One test walks it all: starting a hub costs more than every call in it, on either database.
    # Least privilege at the source: exactly these provider scopes, nothing for companies.write or owners.
    assert _authorize_scopes(hub, "crm", SALES_SCOPES) == SALES_PROVIDER_SCOPES
    assert hub.connect("hubspot", "crm", ",".join(SALES_SCOPES)).status_code == 303
    with hub.admin() as admin:
        (connection,) = admin.get("/admin/api/connections").json()
    assert connection["status"] == "active" and connection["granted_scopes"] == SALES_PROVIDER_SCOPES

    key = hub.create_agent("sales-bot")
    for scope in SALES_SCOPES:
        hub.grant("sales-bot", "crm", scope)
    with hub.agent(key) as agent:
        listed = agent.get("/v1/tools").json()["tools"]
        assert sorted(t["name"] for t in listed) == SALES_TOOLS

        pipelines = _call(agent, "hubspot_pipelines_list")["pipelines"]
        sales = next(p for p in pipelines if p["id"] == "default")
        first_stage, next_stage = sales["stages"][0]["id"], sales["stages"][1]["id"]

        (company,) = _call(agent, "hubspot_companies_search", query="Compiler Works")["companies"]
        deal = _call(
            agent,
            "hubspot_deals_create",
            dealname="Compiler Works - second team",
            dealstage=first_stage,
            amount=18000,
            closedate="2025-11-30",
            company_id=company["id"],
        )
        assert (deal["amount"], deal["dealstage"], deal["company_ids"]) == (18000.0, first_stage, [company["id"]])

        note = _call(agent, "hubspot_notes_create", body="Grace asked for a second team's seats.", deal_id=deal["id"])
        assert note["deal_ids"] == [deal["id"]] and set(note) == {
            "id",
            "timestamp",
            "contact_ids",
            "company_ids",
            "deal_ids",
        }

        moved = _call(agent, "hubspot_deals_update", deal_id=deal["id"], dealstage=next_stage)
        assert moved["dealstage"] == next_stage
        at_stage = _call(agent, "hubspot_deals_search", dealstage=next_stage)["deals"]
        assert deal["id"] in [d["id"] for d in at_stage]
        got = _call(agent, "hubspot_deals_get", deal_id=deal["id"])
        assert got["company_ids"] == [company["id"]] and got["closedate"] == "2025-11-30"

        # Not granted, not connected: refused before HubSpot is asked anything.
        before = hubspot.stats()["api_requests"]
        for tool, arguments in (
            ("hubspot_companies_create", {"name": "Eve Corp"}),
            ("hubspot_owners_list", {}),
            ("hubspot_contacts_search", {}),
        ):
            denied = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
            assert denied.status_code == 403 and denied.json()["type"] == "scope_denied", tool
        bad = agent.post("/v1/tools/hubspot_notes_create/call", json={"arguments": {"body": "x", "deal_id": "1/../2"}})
        assert bad.status_code == 422 and bad.json()["type"] == "invalid_arguments"
        assert hubspot.stats()["api_requests"] == before

    # At HubSpot, the note hangs on the deal.
    with httpx.Client(base_url=hubspot.url, timeout=10) as http:
        token = access_token(hubspot, "crm.objects.deals.read")
        seen = http.get(
            f"/crm/v3/objects/deals/{deal['id']}",
            params={"associations": "notes"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert {"id": note["id"], "type": "deal_to_note"} in seen["associations"]["notes"]["results"]

    # Owners (staff names and emails) take a scope of their own, on a connection of their own here.
    assert _authorize_scopes(hub, "staff", ["crm.owners.read"]) == ["crm.objects.owners.read"]
    assert hub.connect("hubspot", "staff", "crm.owners.read").status_code == 303
    hub.grant("sales-bot", "staff", "crm.owners.read")
    with hub.agent(key) as agent:
        tools = {t["name"]: t["connections"] for t in agent.get("/v1/tools").json()["tools"]}
        assert sorted(tools) == sorted([*SALES_TOOLS, "hubspot_owners_list"])
        assert tools["hubspot_owners_list"] == ["staff"]
        owners = _call(agent, "hubspot_owners_list", email="dorothy.vaughan@switchboard-demo.example.com")["owners"]
        assert [(o["firstname"], o["teams"]) for o in owners] == [("Dorothy", ["Sales", "Support"])]
