"""Provider errors reach agents as the design's problem types: a rate-limited read is retried within its
budget, a rate-limited write is not (it could act twice), a missing provider scope names itself."""

import httpx

from tests.harness import Hub, Sandbox


def _throttle(sandbox: Sandbox, count: int, retry_after: int | None) -> None:
    httpx.post(f"{sandbox.url}/_control/throttle", json={"count": count, "retry_after": retry_after}).raise_for_status()


def test_rate_limits_retry_reads_and_never_writes(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read,crm.contacts.write")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read")
    hub.grant("bot", "crm", "crm.contacts.write")
    with hub.agent(key) as agent:
        _throttle(hubspot, 2, 1)
        before = hubspot.stats()["api_requests"]
        read = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 1}})
        assert read.status_code == 200, read.text
        assert hubspot.stats()["api_requests"] == before + 3  # two 429s, then the answer

        _throttle(hubspot, 1, 7)
        before = hubspot.stats()["api_requests"]
        write = agent.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": {"email": "new@example.com"}})
        assert write.status_code == 429 and write.json()["type"] == "rate_limited"
        assert write.headers["retry-after"] == "7"
        assert hubspot.stats()["api_requests"] == before + 1

        # A read whose Retry-After exceeds the retry budget fails fast instead of waiting it out.
        _throttle(hubspot, 1, 60)
        slow = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {}})
        assert slow.status_code == 429 and slow.headers["retry-after"] == "60"


def test_missing_provider_scope_and_not_found(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("bot")
    hub.grant("bot", "crm", "crm.contacts.read")
    with hub.agent(key) as agent:
        missing = agent.post("/v1/tools/hubspot_contacts_get/call", json={"arguments": {"contact_id": "999999"}})
        assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    # A grant the connection was never authorised for is refused when made, not discovered at call time.
    with hub.admin() as admin:
        refused = admin.post(
            "/admin/api/grants", json={"agent": "bot", "connection": "crm", "scope": "crm.contacts.write"}
        )
    assert refused.status_code == 409 and "reconnect" in refused.json()["detail"]


def test_admin_api_refuses_bad_input_as_problems(hub: Hub) -> None:
    with hub.admin() as admin:
        for method, path, body in (
            ("POST", "/admin/api/agents", {"name": "Bad Name"}),
            ("POST", "/admin/api/agents", {"name": "ok", "extra": 1}),
            ("POST", "/admin/api/grants", {"agent": "nobody", "connection": "none", "scope": "crm.contacts.read"}),
            ("DELETE", "/admin/api/grants/999", None),
            ("GET", "/admin/api/agents/nobody", None),
            (
                "POST",
                "/admin/api/connections",
                {"name": "k", "provider": "hubspot", "api_key": "x", "scopes": ["crm.contacts.read"]},
            ),
            ("GET", "/connect/nowhere?name=x&scopes=crm.contacts.read", None),
            ("GET", "/connect/hubspot?name=x&scopes=crm.nothing", None),
        ):
            answer = admin.request(method, path, json=body)
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json"), path
    bad_callback = httpx.get(f"{hub.url}/oauth/callback", params={"state": "forged", "code": "x"})
    assert bad_callback.status_code == 400 and bad_callback.json()["type"] == "bad_request"
    assert httpx.get(f"{hub.url}/admin/api/agents").status_code == 401
    wrong = httpx.get(f"{hub.url}/admin/api/agents", headers={"Authorization": "Bearer sba_wrong"})
    assert wrong.status_code == 401
