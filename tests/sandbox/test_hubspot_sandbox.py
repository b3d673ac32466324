"""The HubSpot sandbox behaves like HubSpot: OAuth with PKCE, token refresh, CRM v3 shapes and errors."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from hub.sandbox import _hubspot_oauth
from hub.sandbox.hubspot import HubSpotSandbox
from tests.sandbox.consent import ConsentForm, approve, pkce

CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret-0123"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
READ_WRITE = " ".join(f"crm.objects.{t}.{m}" for t in ("contacts", "companies", "deals") for m in ("read", "write"))
REPO = Path(__file__).resolve().parents[2]


def _consent(
    client: httpx.Client | TestClient,
    *,
    prefix: str = "",
    scope: str = READ_WRITE,
    challenge: str | None = None,
    decision: str = "Connect",
) -> dict[str, str]:
    """GET the consent page, press a button, return the redirect's query parameters."""
    params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": scope, "state": "st-42"}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return approve(client, f"{prefix}/oauth/authorize", params, decision=decision, redirect=REDIRECT)


class _Answer(Protocol):
    """An httpx response; TestClient's come from `httpx2`, a different class with the same shape."""

    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def _token(client: httpx.Client | TestClient, prefix: str = "", **form: str) -> _Answer:
    return client.post(
        f"{prefix}/oauth/v1/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form}
    )


def _connect(client: httpx.Client | TestClient, scope: str = READ_WRITE) -> dict[str, Any]:
    verifier, challenge = pkce()
    code = _consent(client, scope=scope, challenge=challenge)["code"]
    answer = _token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
def sandbox() -> HubSpotSandbox:
    return HubSpotSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def client(sandbox: HubSpotSandbox) -> Iterator[TestClient]:
    with TestClient(sandbox.app) as test_client:
        yield test_client


@pytest.fixture
def auth(client: TestClient) -> dict[str, str]:
    return _bearer(_connect(client))


# -- OAuth -------------------------------------------------------------------------------------------------


def test_consent_page_lists_scopes_and_posts_back_under_the_mount(sandbox: HubSpotSandbox) -> None:
    host = Starlette(routes=[Mount("/sandbox/hubspot", app=sandbox.app)])
    with TestClient(host) as client:
        page = client.get(
            "/sandbox/hubspot/oauth/authorize",
            params={
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "state": "s",
                "scope": "crm.objects.contacts.read crm.objects.deals.write",
            },
        )
        form = ConsentForm()
        form.feed(page.text)
        assert form.action == "/sandbox/hubspot/oauth/authorize"
        assert form.scopes == ["crm.objects.contacts.read", "crm.objects.deals.write"]
        assert set(form.buttons) == {"Connect", "Cancel"}
        assert page.headers["cache-control"] == "no-store"
        code = _consent(client, prefix="/sandbox/hubspot", scope="crm.objects.contacts.read")["code"]
        tokens = _token(
            client, "/sandbox/hubspot", grant_type="authorization_code", code=code, redirect_uri=REDIRECT
        ).json()
        listed = client.get("/sandbox/hubspot/crm/v3/objects/contacts", headers=_bearer(tokens))
        assert listed.status_code == 200
    assert ("GET", "/crm/v3/objects/contacts") in sandbox.stats.requests  # paths relative to the mount


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "someone-else", "redirect_uri": REDIRECT},
        {"client_id": CLIENT_ID},
        {"client_id": CLIENT_ID, "redirect_uri": "javascript:alert(1)"},
        {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "code_challenge": "abc",
            "code_challenge_method": "plain",
        },
    ],
)
def test_bad_authorize_request_gets_an_html_400(client: TestClient, params: dict[str, str]) -> None:
    answer = client.get("/oauth/authorize", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in answer.text


def test_cancel_redirects_with_access_denied_and_state(client: TestClient) -> None:
    query = _consent(client, decision="Cancel")
    assert query["error"] == "access_denied"
    assert query["state"] == "st-42"
    assert "code" not in query


def test_pkce_right_verifier_gets_tokens_and_the_code_is_single_use(client: TestClient) -> None:
    verifier, challenge = pkce()
    query = _consent(client, challenge=challenge)
    assert query["state"] == "st-42"
    first = _token(
        client,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    assert body["access_token"] != body["refresh_token"]
    again = _token(
        client,
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant" and again.json()["status"] == "BAD_AUTH_CODE"


@pytest.mark.parametrize("verifier", ["wrong-verifier-" + "x" * 40, None])
def test_pkce_wrong_or_missing_verifier_is_invalid_grant(client: TestClient, verifier: str | None) -> None:
    _, challenge = pkce()
    code = _consent(client, challenge=challenge)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    answer = _token(client, **form, **({"code_verifier": verifier} if verifier else {}))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["correlationId"]


def test_code_is_bound_to_its_redirect_uri(client: TestClient) -> None:
    code = _consent(client)["code"]
    answer = _token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "/other")
    assert answer.status_code == 400 and answer.json()["status"] == "BAD_REDIRECT_URI"


def test_code_expires_after_ten_minutes(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _consent(client)["code"]
    later = time.monotonic() + _hubspot_oauth.CODE_TTL + 1
    monkeypatch.setattr(_hubspot_oauth, "_clock", lambda: later)
    answer = _token(client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(client: TestClient) -> None:
    code = _consent(client)["code"]
    answer = client.post(
        "/oauth/v1/token",
        data={
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "client_secret": "nope",
            "code": code,
            "redirect_uri": REDIRECT,
        },
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == "BAD_CLIENT_ID"
    assert answer.json()["error"] == "invalid_client"


def test_http_basic_client_authentication_is_accepted(client: TestClient) -> None:
    code = _consent(client)["code"]
    answer = client.post(
        "/oauth/v1/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
    )
    assert answer.status_code == 200 and answer.json()["access_token"]


def test_refresh_keeps_the_refresh_token_like_hubspot(client: TestClient) -> None:
    tokens = _connect(client)
    refreshed = _token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] == tokens["refresh_token"]
    assert refreshed.json()["access_token"] != tokens["access_token"]
    again = _token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert again.status_code == 200
    ok = client.get("/crm/v3/objects/contacts", headers=_bearer(refreshed.json()))
    assert ok.status_code == 200


def test_rotating_refresh_invalidates_the_old_refresh_token() -> None:
    sandbox = HubSpotSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, rotate_refresh_tokens=True)
    with TestClient(sandbox.app) as client:
        tokens = _connect(client)
        rotated = _token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert rotated.status_code == 200
        assert rotated.json()["refresh_token"] != tokens["refresh_token"]
        old = _token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        assert old.status_code == 400
        assert old.json()["error"] == "invalid_grant" and old.json()["status"] == "BAD_REFRESH_TOKEN"
        newer = _token(client, grant_type="refresh_token", refresh_token=rotated.json()["refresh_token"])
        assert newer.status_code == 200
    assert sandbox.stats.token_requests == {"authorization_code": 1, "refresh_token": 3}


def test_revoke_all_makes_every_refresh_token_invalid(client: TestClient) -> None:
    tokens = _connect(client)
    assert client.post("/_control/revoke-all").status_code == 204
    answer = _token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


# -- API authentication and scopes -------------------------------------------------------------------------


def test_missing_or_unknown_token_is_401_invalid_authentication(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        answer = client.get("/crm/v3/objects/contacts", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["category"] == "INVALID_AUTHENTICATION"
        assert answer.json()["message"].startswith("Authentication credentials not found")


def test_expired_token_is_401_until_refreshed(sandbox: HubSpotSandbox, client: TestClient) -> None:
    tokens = _connect(client)
    sandbox.expire_access_tokens()
    answer = client.get("/crm/v3/objects/contacts", headers=_bearer(tokens))
    assert answer.status_code == 401 and answer.json()["category"] == "EXPIRED_AUTHENTICATION"
    fresh = _token(client, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
    assert client.get("/crm/v3/objects/contacts", headers=_bearer(fresh)).status_code == 200
    assert client.post("/_control/expire-tokens").status_code == 204
    assert client.get("/crm/v3/objects/contacts", headers=_bearer(fresh)).status_code == 401


def test_access_token_ttl_is_honoured() -> None:
    sandbox = HubSpotSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token_ttl=0)
    with TestClient(sandbox.app) as client:
        tokens = _connect(client)
        assert tokens["expires_in"] == 0
        answer = client.get("/crm/v3/objects/contacts", headers=_bearer(tokens))
        assert answer.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_missing_scope_is_403_naming_the_scope(client: TestClient) -> None:
    write_only = _bearer(_connect(client, scope="crm.objects.contacts.write"))
    created = client.post(
        "/crm/v3/objects/contacts", headers=write_only, json={"properties": {"email": "w@example.com"}}
    )
    assert created.status_code == 201
    read = client.get(f"/crm/v3/objects/contacts/{created.json()['id']}", headers=write_only)
    assert read.status_code == 403
    body = read.json()
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.read"]
    search = client.post("/crm/v3/objects/contacts/search", headers=write_only, json={})
    assert search.status_code == 403
    deals = client.post("/crm/v3/objects/deals", headers=write_only, json={"properties": {"dealname": "x"}})
    assert deals.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.deals.write"]


def test_stats_count_api_calls_including_refused_ones(sandbox: HubSpotSandbox, client: TestClient) -> None:
    tokens = _connect(client)
    client.post("/_control/reset-stats")
    client.get("/crm/v3/objects/contacts")  # 401
    client.get("/crm/v3/objects/deals", headers=_bearer(_connect(client, scope="")))  # 403
    client.get("/crm/v3/objects/companies", headers=_bearer(tokens))
    stats = client.get("/_control/stats").json()
    assert stats["api_requests"] == 3
    assert stats["token_requests"] == {"authorization_code": 1}
    assert ["GET", "/crm/v3/objects/companies"] in stats["requests"]
    assert not any(path.startswith("/_control") for _, path in stats["requests"])
    assert sandbox.stats.api_requests == 3
    client.post("/_control/reset-stats")
    assert sandbox.stats.api_requests == 0 and sandbox.stats.requests == []


def test_throttle_answers_429_for_the_next_calls(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/_control/throttle", json={"count": 1, "retry_after": 2})
    limited = client.get("/crm/v3/objects/contacts", headers=auth)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["errorType"] == "RATE_LIMIT"
    assert client.get("/crm/v3/objects/contacts", headers=auth).status_code == 200


# -- CRM objects -------------------------------------------------------------------------------------------


def test_seed_data_is_there_with_default_properties(client: TestClient, auth: dict[str, str]) -> None:
    contacts = client.get("/crm/v3/objects/contacts", headers=auth).json()["results"]
    assert len(contacts) >= 5
    first = contacts[0]
    assert set(first) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert set(first["properties"]) == {
        "firstname",
        "lastname",
        "email",
        "createdate",
        "lastmodifieddate",
        "hs_object_id",
    }
    assert first["properties"]["hs_object_id"] == first["id"]
    deals = client.get("/crm/v3/objects/deals", headers=auth).json()["results"]
    assert {"dealname", "amount", "dealstage", "pipeline", "closedate"} <= set(deals[0]["properties"])
    companies = client.get("/crm/v3/objects/companies", headers=auth).json()["results"]
    assert {"name", "domain"} <= set(companies[0]["properties"])


def test_create_then_search_finds_it_by_query_and_by_filter(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(
        "/crm/v3/objects/contacts",
        headers=auth,
        json={
            "properties": {
                "email": "Rosalind.Franklin@example.com",
                "firstname": "Rosalind",
                "lastname": "Franklin",
                "phone": "+1 555 0199",
            }
        },
    )
    assert created.status_code == 201
    new_id = created.json()["id"]
    by_query = client.post(
        "/crm/v3/objects/contacts/search",
        headers=auth,
        json={"query": "rosalind", "properties": ["email", "phone"]},
    ).json()
    assert [r["id"] for r in by_query["results"]] == [new_id]
    assert by_query["total"] == 1
    assert by_query["results"][0]["properties"]["phone"] == "+1 555 0199"
    by_filter = client.post(
        "/crm/v3/objects/contacts/search",
        headers=auth,
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": "rosalind.franklin@example.com"}]}
            ]
        },
    ).json()
    assert [r["id"] for r in by_filter["results"]] == [new_id]
    none = client.post(
        "/crm/v3/objects/contacts/search",
        headers=auth,
        json={
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "email", "operator": "EQ", "value": "rosalind.franklin@example.com"},
                        {"propertyName": "lastname", "operator": "NEQ", "value": "Franklin"},
                    ]
                }
            ]
        },
    ).json()
    assert none["total"] == 0 and none["results"] == []


def test_search_operators_and_sorts(client: TestClient, auth: dict[str, str]) -> None:
    def search(**body: Any) -> list[dict[str, Any]]:
        answer = client.post("/crm/v3/objects/deals/search", headers=auth, json=body)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["results"])

    big = search(
        filterGroups=[{"filters": [{"propertyName": "amount", "operator": "GT", "value": "10000"}]}],
        sorts=[{"propertyName": "amount", "direction": "DESCENDING"}],
    )
    amounts = [float(r["properties"]["amount"]) for r in big]
    assert amounts == sorted(amounts, reverse=True) and min(amounts) > 10000 and len(amounts) >= 2
    either = search(
        filterGroups=[
            {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}]},
            {"filters": [{"propertyName": "dealstage", "operator": "EQ", "value": "closedlost"}]},
        ]
    )
    assert {r["properties"]["dealstage"] for r in either} == {"closedwon", "closedlost"}
    token = search(
        filterGroups=[{"filters": [{"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "pilot"}]}]
    )
    assert [r["properties"]["dealname"] for r in token] == ["Compiler Works - enterprise pilot"]
    wildcard = search(
        filterGroups=[
            {
                "filters": [
                    {"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "traject*"},
                    {"propertyName": "amount", "operator": "HAS_PROPERTY"},
                ]
            }
        ]
    )
    assert [r["properties"]["dealname"] for r in wildcard] == ["Orbital Mechanics - trajectory suite"]
    no_description = search(filterGroups=[{"filters": [{"propertyName": "description", "operator": "HAS_PROPERTY"}]}])
    assert no_description == []
    early = search(
        filterGroups=[
            {
                "filters": [  # closedate is a date; filters compare it as epoch ms
                    {"propertyName": "closedate", "operator": "LT", "value": "1720000000000"}
                ]
            }
        ]
    )  # 2024-07-03
    assert [r["properties"]["dealname"] for r in early] == ["Analytical Engines - annual plan"]


def test_search_validation_errors(client: TestClient, auth: dict[str, str]) -> None:
    for body in (
        {"limit": 201},
        {"filterGroups": [{"filters": [{"propertyName": "x", "operator": "LIKE"}]}]},
    ):
        answer = client.post("/crm/v3/objects/contacts/search", headers=auth, json=body)
        assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    broken = client.post("/crm/v3/objects/contacts/search", headers=auth, content=b"{not json")
    assert broken.status_code == 400 and broken.json()["category"] == "VALIDATION_ERROR"


def test_get_patch_archive_and_404(client: TestClient, auth: dict[str, str]) -> None:
    created = client.post(
        "/crm/v3/objects/companies",
        headers=auth,
        json={"properties": {"name": "Difference Engines", "domain": "diff.example.com"}},
    ).json()
    url = f"/crm/v3/objects/companies/{created['id']}"
    got = client.get(url, headers=auth, params={"properties": "name,industry"}).json()
    assert got["properties"] == {"name": "Difference Engines", "industry": None}
    patched = client.patch(url, headers=auth, json={"properties": {"industry": "COMPUTER_HARDWARE"}})
    assert patched.status_code == 200 and patched.json()["properties"]["industry"] == "COMPUTER_HARDWARE"
    assert patched.json()["updatedAt"] >= created["updatedAt"]
    assert client.get(url, headers=auth).json()["properties"]["name"] == "Difference Engines"
    assert client.delete(url, headers=auth).status_code == 204
    gone = client.get(url, headers=auth)
    assert gone.status_code == 404
    assert gone.json()["category"] == "OBJECT_NOT_FOUND" and gone.json()["status"] == "error"
    assert client.get(url, headers=auth, params={"archived": "true"}).json()["archived"] is True
    assert (
        client.patch("/crm/v3/objects/companies/999999", headers=auth, json={"properties": {"name": "x"}}).status_code
        == 404
    )


def test_invalid_properties_are_validation_errors(client: TestClient, auth: dict[str, str]) -> None:
    for props in ({"no_such_property": "1"}, {"hs_object_id": "5"}, {"email": "not-an-email"}):
        answer = client.post("/crm/v3/objects/contacts", headers=auth, json={"properties": props})
        assert answer.status_code == 400, props
        assert answer.json()["category"] == "VALIDATION_ERROR"
    stage = client.post("/crm/v3/objects/deals", headers=auth, json={"properties": {"dealstage": "won"}})
    assert "INVALID_OPTION" in stage.json()["message"]
    no_props = client.post("/crm/v3/objects/deals", headers=auth, json={"dealname": "x"})
    assert no_props.status_code == 400


def test_duplicate_contact_email_is_409(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.post(
        "/crm/v3/objects/contacts",
        headers=auth,
        json={"properties": {"email": "ADA@analytical-engines.example.com"}},
    )
    assert answer.status_code == 409
    assert answer.json()["category"] == "CONFLICT" and "Existing ID" in answer.json()["message"]


def test_get_by_email_id_property(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.get(
        "/crm/v3/objects/contacts/grace@compilerworks.example.com",
        headers=auth,
        params={"idProperty": "email"},
    )
    assert answer.status_code == 200 and answer.json()["properties"]["firstname"] == "Grace"


def test_paging_with_after_visits_every_object_once(client: TestClient, auth: dict[str, str]) -> None:
    for n in range(7):
        client.post("/crm/v3/objects/deals", headers=auth, json={"properties": {"dealname": f"Bulk {n}"}})
    seen: list[str] = []
    params: dict[str, str] = {"limit": "3"}
    while True:
        page = client.get("/crm/v3/objects/deals", headers=auth, params=params).json()
        assert len(page["results"]) <= 3
        seen += [r["id"] for r in page["results"]]
        if "paging" not in page:
            break
        assert page["paging"]["next"]["link"].endswith(f"after={page['paging']['next']['after']}")
        params["after"] = page["paging"]["next"]["after"]
    assert len(seen) == len(set(seen)) == 11  # 4 seeded + 7 created
    found: list[str] = []
    body: dict[str, Any] = {"query": "bulk", "limit": 2}
    while True:
        result = client.post("/crm/v3/objects/deals/search", headers=auth, json=body).json()
        assert result["total"] == 7
        found += [r["id"] for r in result["results"]]
        if "paging" not in result:
            break
        body["after"] = result["paging"]["next"]["after"]
    assert sorted(found) == sorted(seen[4:])


def test_unknown_object_type_is_400(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.get("/crm/v3/objects/tickets", headers=auth)
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"


# -- associations, notes, pipelines, owners ----------------------------------------------------------------

NOTES = "/crm/v3/objects/notes"
STAMP = "2025-03-14T14:09:26.000Z"


def _note(target_type: int, target: str, body: str = "Called about the renewal.") -> dict[str, Any]:
    return {
        "properties": {"hs_note_body": body, "hs_timestamp": STAMP},
        "associations": [
            {
                "to": {"id": target},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": target_type}],
            }
        ],
    }


def test_note_associations_are_listed_from_both_sides(client: TestClient, auth: dict[str, str]) -> None:
    deal = client.get("/crm/v3/objects/deals", headers=auth).json()["results"][0]["id"]
    created = client.post(NOTES, headers=auth, json=_note(214, deal))
    assert created.status_code == 201, created.text
    note = created.json()
    assert {"hs_note_body", "hs_timestamp", "hs_createdate", "hs_lastmodifieddate", "hs_object_id"} <= set(
        note["properties"]
    )
    assert "associations" not in note  # HubSpot's create answer does not echo them

    seen_from_note = client.get(f"{NOTES}/{note['id']}", headers=auth, params={"associations": "deals,contacts"})
    assert seen_from_note.json()["associations"] == {"deals": {"results": [{"id": deal, "type": "note_to_deal"}]}}
    seen_from_deal = client.get(
        f"/crm/v3/objects/deals/{deal}", headers=auth, params=[("associations", "notes"), ("associations", "tickets")]
    ).json()
    assert {"id": note["id"], "type": "deal_to_note"} in seen_from_deal["associations"]["notes"]["results"]
    assert "tickets" not in seen_from_deal["associations"]  # unknown types are ignored, as HubSpot does

    # A primary association is listed twice: labelled and unlabelled.
    companies = client.get(f"/crm/v3/objects/deals/{deal}", headers=auth, params={"associations": "companies"}).json()
    types = [r["type"] for r in companies["associations"]["companies"]["results"]]
    assert types == ["deal_to_company", "deal_to_company_unlabeled"]

    # An archived record drops out of the lists.
    assert client.delete(f"{NOTES}/{note['id']}", headers=auth).status_code == 204
    again = client.get(f"/crm/v3/objects/deals/{deal}", headers=auth, params={"associations": "notes"}).json()
    assert note["id"] not in [r["id"] for r in again.get("associations", {}).get("notes", {}).get("results", [])]


@pytest.mark.parametrize(
    ("association", "message"),
    [
        (
            {
                "to": {"id": "987654321"},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}],
            },
            "no deals record",
        ),
        (
            {"to": {"id": "1001"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]},
            "cannot link from notes",
        ),
        (
            {"to": {"id": "1001"}, "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 190}]},
            "not a HubSpot-defined",
        ),
        ({"to": {"id": "1001"}, "types": []}, "non-empty `types`"),
        ({"types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 190}]}, "`to.id`"),
    ],
)
def test_invalid_associations_are_validation_errors_and_create_nothing(
    client: TestClient, auth: dict[str, str], association: dict[str, Any], message: str
) -> None:
    before = client.post(f"{NOTES}/search", headers=auth, json={}).json()["total"]
    body = {"properties": {"hs_note_body": "x", "hs_timestamp": STAMP}, "associations": [association]}
    answer = client.post(NOTES, headers=auth, json=body)
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    assert message in answer.json()["message"]
    assert client.post(f"{NOTES}/search", headers=auth, json={}).json()["total"] == before


def test_notes_need_a_valid_timestamp(client: TestClient, auth: dict[str, str]) -> None:
    missing = client.post(NOTES, headers=auth, json={"properties": {"hs_note_body": "x"}, "associations": []})
    assert missing.status_code == 400 and "REQUIRED_FIELD" in missing.json()["message"]
    bad = {"properties": {"hs_note_body": "x", "hs_timestamp": "last tuesday"}, "associations": []}
    answer = client.post(NOTES, headers=auth, json=bad)
    assert answer.status_code == 400 and "INVALID_DATE" in answer.json()["message"]
    epoch_ms = {"properties": {"hs_note_body": "x", "hs_timestamp": "1710425366000"}, "associations": []}
    assert client.post(NOTES, headers=auth, json=epoch_ms).status_code == 201


def test_notes_take_the_contacts_scopes(client: TestClient) -> None:
    deals_only = _bearer(_connect(client, scope="crm.objects.deals.read crm.objects.deals.write"))
    denied = client.post(NOTES, headers=deals_only, json=_note(214, "1010"))
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]
    writer = _bearer(_connect(client, scope="crm.objects.contacts.write"))
    created = client.post(NOTES, headers=writer, json=_note(190, "1001"))
    assert created.status_code == 201
    read = client.get(f"{NOTES}/{created.json()['id']}", headers=writer)
    assert read.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.read"]


def test_deal_stage_must_belong_to_its_pipeline(client: TestClient, auth: dict[str, str]) -> None:
    deals = "/crm/v3/objects/deals"
    wrong = {"properties": {"dealname": "x", "pipeline": "1203581", "dealstage": "closedwon"}, "associations": []}
    answer = client.post(deals, headers=auth, json=wrong)
    assert answer.status_code == 400 and "allowed options for pipeline 1203581" in answer.json()["message"]
    right = {"properties": {"dealname": "x", "dealstage": "qualifiedtobuy"}, "associations": []}
    created = client.post(deals, headers=auth, json=right).json()
    assert created["properties"]["pipeline"] == "default"  # HubSpot's default pipeline when none is given
    moved = client.patch(f"{deals}/{created['id']}", headers=auth, json={"properties": {"pipeline": "1203581"}})
    assert moved.status_code == 400  # its stage is not in the new pipeline
    both = {"properties": {"pipeline": "1203581", "dealstage": "1203582"}}
    assert client.patch(f"{deals}/{created['id']}", headers=auth, json=both).status_code == 200


def test_owner_ids_must_be_live_owners(client: TestClient, auth: dict[str, str]) -> None:
    url = "/crm/v3/objects/companies/1001"
    for owner, status in (("41629780", 200), ("41629782", 400), ("12", 400)):  # 41629782 is archived
        answer = client.patch(url, headers=auth, json={"properties": {"hubspot_owner_id": owner}})
        assert answer.status_code == status, answer.text
    assert "INVALID_OWNER_ID" in answer.json()["message"]


def test_deal_pipelines_are_listed_with_their_stages(client: TestClient, auth: dict[str, str]) -> None:
    answer = client.get("/crm/v3/pipelines/deals", headers=auth)
    assert answer.status_code == 200
    pipelines = answer.json()["results"]
    assert [p["id"] for p in pipelines] == ["default", "1203581"]
    stage = pipelines[0]["stages"][0]
    assert set(stage) == {
        "label",
        "displayOrder",
        "metadata",
        "id",
        "createdAt",
        "updatedAt",
        "archived",
        "writePermissions",
    }
    assert stage["metadata"] == {"isClosed": "false", "probability": "0.2"}
    assert "paging" not in answer.json()  # HubSpot lists pipelines without paging

    assert client.get("/crm/v3/pipelines/contacts", headers=auth).status_code == 400
    assert client.get("/crm/v3/pipelines/deals").status_code == 401
    contacts_only = _bearer(_connect(client, scope="crm.objects.contacts.read"))
    denied = client.get("/crm/v3/pipelines/deals", headers=contacts_only)
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.deals.read"]


def test_owners_are_listed_filtered_and_paged(client: TestClient) -> None:
    reader = _bearer(_connect(client, scope="crm.objects.owners.read"))
    listed = client.get("/crm/v3/owners/", headers=reader).json()
    assert [o["id"] for o in listed["results"]] == ["41629779", "41629780", "41629781"]
    assert set(listed["results"][0]) >= {"id", "email", "firstName", "lastName", "userId", "teams", "archived"}
    assert client.get("/crm/v3/owners", headers=reader).json() == listed  # with or without the slash
    archived = client.get("/crm/v3/owners/", headers=reader, params={"archived": "true"}).json()["results"]
    assert [o["lastName"] for o in archived] == ["Roy"]
    one = client.get("/crm/v3/owners/", headers=reader, params={"email": "Annie.Easley@switchboard-demo.example.com"})
    assert [o["id"] for o in one.json()["results"]] == ["41629781"]

    first = client.get("/crm/v3/owners/", headers=reader, params={"limit": 2}).json()
    assert len(first["results"]) == 2 and first["paging"]["next"]["after"] == "41629781"
    assert "after=41629781" in first["paging"]["next"]["link"]
    rest = client.get("/crm/v3/owners/", headers=reader, params={"limit": 2, "after": "41629781"}).json()
    assert [o["id"] for o in rest["results"]] == ["41629781"] and "paging" not in rest

    assert client.get("/crm/v3/owners/", headers=reader, params={"limit": 501}).status_code == 400
    assert client.get("/crm/v3/owners/", headers=reader, params={"after": "x"}).status_code == 400
    crm_only = _bearer(_connect(client, scope=READ_WRITE))
    denied = client.get("/crm/v3/owners/", headers=crm_only)
    assert denied.status_code == 403
    assert denied.json()["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.owners.read"]


# -- over real HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
def live() -> Iterator[tuple[HubSpotSandbox, str]]:
    sandbox = HubSpotSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(sandbox.app, lifespan="off", ws="none", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sandbox, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_official_hubspot_client_works_against_the_sandbox(live: tuple[HubSpotSandbox, str]) -> None:
    from hubspot.crm.contacts import (
        ApiClient,
        ApiException,
        BasicApi,
        Configuration,
        Filter,
        FilterGroup,
        PublicObjectSearchRequest,
        SearchApi,
        SimplePublicObjectInput,
        SimplePublicObjectInputForCreate,
    )

    sandbox, base = live
    with httpx.Client(base_url=base) as http:
        tokens = _connect(http)
    configuration = Configuration(host=base)  # hubspot-api-client 12 takes no access_token argument
    configuration.access_token = tokens["access_token"]
    with ApiClient(configuration) as api_client:
        basic, search = BasicApi(api_client), SearchApi(api_client)
        created = basic.create(
            SimplePublicObjectInputForCreate(
                associations=[],
                properties={"email": "hedy@example.com", "firstname": "Hedy", "lastname": "Lamarr"},
            )
        )
        assert created.id and created.properties["email"] == "hedy@example.com"
        page = basic.get_page(limit=2, properties=["email", "jobtitle"])
        assert len(page.results) == 2 and page.paging.next.after
        assert set(page.results[0].properties) == {"email", "jobtitle"}
        basic.update(created.id, SimplePublicObjectInput(properties={"jobtitle": "Inventor"}))
        assert basic.get_by_id(created.id, properties=["jobtitle"]).properties["jobtitle"] == "Inventor"
        found = search.do_search(
            PublicObjectSearchRequest(
                filter_groups=[
                    FilterGroup(filters=[Filter(property_name="email", operator="EQ", value="hedy@example.com")])
                ],
                properties=["email"],
                limit=5,
            )
        )
        assert found.total == 1 and found.results[0].id == created.id
        with pytest.raises(ApiException) as missing:
            basic.get_by_id("424242")
        assert missing.value.status == 404
        sandbox.expire_access_tokens()
        with pytest.raises(ApiException) as expired:
            basic.get_page()
        assert expired.value.status == 401
        assert orjson.loads(expired.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    assert sandbox.stats.api_requests == 7


def test_official_sdk_parses_pipelines_owners_and_notes_into_its_models(live: tuple[HubSpotSandbox, str]) -> None:
    # The generated models refuse an answer missing a field HubSpot always sends, so this checks the shapes
    # of the endpoints the published spec in shared/specs leaves out.
    from hubspot.crm import owners, pipelines
    from hubspot.crm.objects import notes

    _, base = live
    with httpx.Client(base_url=base) as http:
        tokens = _connect(http, scope=f"{READ_WRITE} crm.objects.owners.read")

    def configured(package: Any) -> Any:
        configuration = package.Configuration(host=base)
        configuration.access_token = tokens["access_token"]
        return package.ApiClient(configuration)

    with configured(pipelines) as p, configured(owners) as o, configured(notes) as n:
        listed = pipelines.PipelinesApi(p).get_all("deals")
        assert [s.id for s in listed.results[1].stages] == ["1203582", "1203583", "1203584"]
        assert listed.results[0].stages[5].metadata == {"isClosed": "true", "probability": "1.0"}
        page = owners.OwnersApi(o).get_page(limit=2)
        assert page.results[1].teams[1].name == "Support" and page.paging.next.after == "41629781"
        created = notes.BasicApi(n).create(
            notes.SimplePublicObjectInputForCreate(
                properties={"hs_note_body": "Signed.", "hs_timestamp": STAMP},
                associations=[
                    notes.PublicAssociationsForObject(
                        to=notes.PublicObjectId(id="1010"),
                        types=[notes.AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=214)],
                    )
                ],
            )
        )
        got = notes.BasicApi(n).get_by_id(created.id, properties=["hs_note_body"], associations=["deals"])
        assert got.properties["hs_note_body"] == "Signed."
        assert [(a.id, a.type) for a in got.associations["deals"].results] == [("1010", "note_to_deal")]


def test_module_entry_point_serves_the_sandbox() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SANDBOX_CLIENT_ID": CLIENT_ID, "SANDBOX_CLIENT_SECRET": CLIENT_SECRET}
    command = [
        sys.executable,
        "-m",
        "hub.sandbox",
        "hubspot",
        "--port",
        str(port),
        "--rotate-refresh-tokens",
        "--access-token-ttl",
        "60",
    ]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 15
            while True:
                try:
                    http.get("/_control/stats")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    assert time.monotonic() < deadline, "sandbox did not start"
                    time.sleep(0.05)
            tokens = _connect(http)
            assert tokens["expires_in"] == 60
            rotated = _token(http, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()
            assert rotated["refresh_token"] != tokens["refresh_token"]
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()


def test_module_entry_point_refuses_to_start_without_credentials() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_CLIENT")}
    done = subprocess.run(
        [sys.executable, "-m", "hub.sandbox", "hubspot"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "SANDBOX_CLIENT_ID" in done.stderr
