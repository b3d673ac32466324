"""The call route is served in front of the router (hub.api.call_fast_path): it must answer exactly as the
routed API does — problems with their headers, the path's other methods, the OpenAPI document — and a
streamed body past the limit is still refused as it grows."""

import httpx

from tests.harness import Hub, Sandbox

CALL = "/v1/tools/hubspot_contacts_get/call"


def _problem(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = answer.json()
    return body


def test_the_call_route_answers_as_the_routed_api_does(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read")
    with httpx.Client(base_url=hub.url, timeout=30) as anonymous, hub.agent(key) as agent:
        # No key: 401 with the challenge, before the body is looked at.
        refused = anonymous.post(CALL, content=b"not json")
        assert _problem(refused, 401)["type"] == "unauthenticated"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert _problem(agent.post("/v1/tools/no_such_tool/call", json={}), 404)["type"] == "unknown_tool"
        assert _problem(agent.post(CALL, content=b"{"), 400)["type"] == "bad_request"
        found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        contact_id = found.json()["result"]["contacts"][0]["id"]
        ok = agent.post(CALL, json={"arguments": {"contact_id": contact_id}})
        assert ok.status_code == 200 and ok.json()["result"]["id"] == contact_id
        # Other methods on the path, and other paths, still go through the router.
        wrong_method = agent.get(CALL)
        assert _problem(wrong_method, 405)["type"] == "method_not_allowed"
        assert wrong_method.headers["allow"] == "POST"
        assert agent.post("/v1/tools/hubspot_contacts_get/calls", json={}).status_code == 404

        def streamed() -> object:
            yield b'{"arguments": {"query": "'
            for _ in range(40):
                yield b"x" * 32768
            yield b'"}}'

        assert _problem(agent.post(CALL, content=streamed()), 413)["type"] == "payload_too_large"
        operation = anonymous.get("/openapi.json").json()["paths"]["/v1/tools/{tool}/call"]["post"]
        assert {p["name"] for p in operation["parameters"]} == {"tool", "X-Switchboard-Session"}
