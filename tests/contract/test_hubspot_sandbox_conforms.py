"""The HubSpot sandbox answers in the shapes of HubSpot's published CRM v3 spec, for every object type.

One erratum, applied on purpose: HubSpot answers `null` for a requested property that has no value (and the
sandbox does too), which the spec's `properties: {additionalProperties: {type: string}}` leaves out.

The spec covers contacts, companies and deals. Notes are served by the same generic objects API, so their
answers are checked against the schemas of that API's operations (taken from the contacts paths). Pipelines
and owners are not in the spec at all: tests/sandbox/test_hubspot_sandbox.py checks those answers by
parsing them with the official SDK's generated models, which refuse a missing required field.
"""

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jsonschema import FormatChecker
from starlette.testclient import TestClient

from hub.sandbox.hubspot import HubSpotSandbox
from tests.contract.spec import SpecSchemas

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared/specs/hubspot-crm-v3.json"
SPEC_URI = "urn:hubspot-crm-v3"
CLIENT_ID, CLIENT_SECRET = "conformance-client", "conformance-secret"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
ALL_SCOPES = " ".join(f"crm.objects.{t}.{m}" for t in ("contacts", "companies", "deals") for m in ("read", "write"))
NEW: dict[str, dict[str, str]] = {
    "contacts": {"email": "grace@navy.example.com", "firstname": "Grace", "lastname": "Hopper"},
    "companies": {"name": "Harvard Mark I", "domain": "mark-one.example.com"},
    "deals": {"dealname": "Mark I - support", "amount": "1944", "pipeline": "default", "dealstage": "qualifiedtobuy"},
}
CHANGE: dict[str, dict[str, str]] = {
    "contacts": {"jobtitle": "Rear Admiral", "phone": ""},
    "companies": {"industry": "COMPUTER_SOFTWARE"},
    "deals": {"dealstage": "closedwon"},
}
ITEM = {"contacts": "{contactId}", "companies": "{companyId}", "deals": "{dealId}"}
FORMATS = FormatChecker(formats=("uuid",))


def _date_time(value: object) -> bool:
    return not isinstance(value, str) or ("T" in value and bool(datetime.fromisoformat(value)))


FORMATS.checks("date-time", raises=ValueError)(_date_time)


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    for name in ("SimplePublicObject", "SimplePublicObjectWithAssociations"):
        values = spec["components"]["schemas"][name]["properties"]["properties"]["additionalProperties"]
        assert values == {"type": "string"}, f"the spec changed: review the erratum for {name}"
        values["type"] = ["string", "null"]
    return spec


SPEC = _spec()
SCHEMAS = SpecSchemas(SPEC, SPEC_URI, format_checker=FORMATS)


def _problems(body: Any, path: str, method: str, status: int) -> list[str]:
    """Where `body` breaks the spec's schema for that operation's `status` answer (`default` if unlisted)."""
    responses = SPEC["paths"][path][method]["responses"]
    key = str(status) if str(status) in responses else "default"
    response = responses[key]
    where = ("paths", path, method, "responses", key)
    if "$ref" in response:
        where = tuple(response["$ref"].removeprefix("#/").split("/"))
        response = SPEC
        for part in where:
            response = response[part]
    assert "application/json" in response["content"], f"{method} {path} {key} has no JSON body"
    return SCHEMAS.problems(body, *where, "content", "application/json", "schema")


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    sandbox = HubSpotSandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with TestClient(sandbox.app, follow_redirects=False) as client:
        client.headers["Authorization"] = f"Bearer {_access_token(client, ALL_SCOPES)}"
        yield client


def _access_token(client: TestClient, scopes: str) -> str:
    """The sandbox's OAuth flow, as a browser walks it: consent page, "Connect", code exchange."""
    consent = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": scopes, "state": "s"}
    assert client.get("/oauth/authorize", params=consent).status_code == 200
    approved = client.post("/oauth/authorize", data={**consent, "decision": "approve"})
    assert approved.status_code == 302, approved.text
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    answer = client.post("/oauth/v1/token", data={**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _conforms(api: TestClient, method: str, spec_path: str, status: int, url: str, **kwargs: Any) -> Any:
    answer = api.request(method.upper(), url, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    problems = _problems(body, spec_path, method, status)
    assert not problems, f"{method.upper()} {url} -> {status} breaks the spec:\n" + "\n".join(problems)
    return body


def test_the_check_catches_a_body_that_breaks_the_spec() -> None:
    path = "/crm/v3/objects/contacts/{contactId}"
    assert _problems({"id": 1, "properties": {"email": ["x"]}}, path, "get", 200) == [
        "<body>: 'archived' is a required property",
        "<body>: 'createdAt' is a required property",
        "<body>: 'updatedAt' is a required property",
        "id: 1 is not of type 'string'",
        "properties/email: ['x'] is not of type 'string', 'null'",
    ]
    assert _problems({"message": "gone"}, path, "get", 404)  # no category, no correlationId
    assert _problems(
        {
            "id": "1",
            "properties": {},
            "archived": False,
            "createdAt": "yesterday",
            "updatedAt": "2024-05-06T09:30:00.000Z",
        },
        path,
        "get",
        200,
    ) == ["createdAt: 'yesterday' is not a 'date-time'"]


@pytest.mark.parametrize("object_type", ["contacts", "companies", "deals"])
def test_crm_answers_conform(api: TestClient, object_type: str) -> None:
    base = f"/crm/v3/objects/{object_type}"
    item = f"{base}/{ITEM[object_type]}"

    listed = _conforms(api, "get", base, 200, base, params={"limit": 2, "properties": "phone,email,dealname"})
    assert len(listed["results"]) == 2 and listed["paging"]["next"]["after"]
    _conforms(api, "get", base, 200, base, params={"after": listed["paging"]["next"]["after"], "limit": 100})

    created = _conforms(api, "post", base, 201, base, json={"properties": NEW[object_type], "associations": []})
    url = f"{base}/{created['id']}"
    _conforms(api, "get", item, 200, url, params=[("properties", p) for p in (*NEW[object_type], "jobtitle")])
    _conforms(api, "patch", item, 200, url, json={"properties": CHANGE[object_type]})

    search = {"filterGroups": [], "sorts": ["-createdate"], "properties": [], "limit": 1, "after": "0"}
    found = _conforms(api, "post", base + "/search", 200, base + "/search", json=search)
    assert found["total"] >= 2 and found["paging"]["next"]["after"] == "1"
    query = {**search, "query": next(iter(NEW[object_type].values())).split()[0], "limit": 10}
    _conforms(api, "post", base + "/search", 200, base + "/search", json=query)


@pytest.mark.parametrize("object_type", ["contacts", "companies", "deals"])
def test_crm_errors_conform(api: TestClient, object_type: str) -> None:
    base = f"/crm/v3/objects/{object_type}"
    item = f"{base}/{ITEM[object_type]}"
    gone = _conforms(api, "get", item, 404, f"{base}/987654321")
    assert gone["category"] == "OBJECT_NOT_FOUND"
    _conforms(api, "patch", item, 404, f"{base}/987654321", json={"properties": {}})
    bad = _conforms(api, "post", base, 400, base, json={"properties": {"no_such_property": "x"}, "associations": []})
    assert bad["category"] == "VALIDATION_ERROR"
    _conforms(api, "get", base, 401, base, headers={"Authorization": "Bearer not-a-token"})


def test_missing_scope_and_conflict_errors_conform(api: TestClient) -> None:
    base = "/crm/v3/objects/contacts"
    reader = _access_token(api, "crm.objects.contacts.read")
    denied = _conforms(
        api,
        "post",
        base,
        403,
        base,
        json={"properties": {"email": "eve@example.com"}, "associations": []},
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert denied["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.contacts.write"]
    body = {"properties": {"email": "ada@analytical-engines.example.com"}, "associations": []}
    assert _conforms(api, "post", base, 409, base, json=body)["category"] == "CONFLICT"


NOTE = {
    "properties": {"hs_note_body": "Kick-off booked.", "hs_timestamp": "2025-03-14T14:09:26.000Z"},
    "associations": [
        {"to": {"id": "1010"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}]}
    ],
}


def test_note_answers_conform_to_the_generic_objects_api(api: TestClient) -> None:
    base, item = "/crm/v3/objects/contacts", "/crm/v3/objects/contacts/{contactId}"  # the spec's stand-ins
    notes = "/crm/v3/objects/notes"
    created = _conforms(api, "post", base, 201, notes, json=NOTE)
    url = f"{notes}/{created['id']}"
    got = _conforms(api, "get", item, 200, url, params={"properties": "hs_note_body", "associations": "deals"})
    assert got["associations"]["deals"]["results"] == [{"id": "1010", "type": "note_to_deal"}]
    _conforms(api, "get", base, 200, notes, params={"limit": 1, "associations": "deals"})
    search = {
        "filterGroups": [],
        "sorts": [],
        "properties": ["hs_note_body"],
        "limit": 5,
        "after": "0",
        "query": "kick",
    }
    _conforms(api, "post", base + "/search", 200, notes + "/search", json=search)
    bad = _conforms(api, "post", base, 400, notes, json={"properties": {"hs_note_body": "x"}, "associations": []})
    assert bad["category"] == "VALIDATION_ERROR"  # hs_timestamp is required


def test_associations_in_read_answers_conform(api: TestClient) -> None:
    path = "/crm/v3/objects/deals/{dealId}"
    params = [("associations", "companies"), ("associations", "contacts"), ("associations", "notes")]
    deal = _conforms(api, "get", path, 200, "/crm/v3/objects/deals/1010", params=params)
    assert {"companies", "contacts"} <= set(deal["associations"])
    listed = _conforms(api, "get", "/crm/v3/objects/deals", 200, "/crm/v3/objects/deals", params=params)
    assert any("associations" in d for d in listed["results"])
