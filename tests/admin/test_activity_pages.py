"""The Activity page: allowed, denied and held calls made through the agent API, then found again with the
page's filters, search and paging, opened one by one, and exported as CSV and JSON lines (page and API)."""

import csv
import io
import re
import time
from dataclasses import dataclass

import httpx
import orjson

from hub.activity import COLUMNS
from tests.admin.page import csrf_of, htmx, signed_in
from tests.harness import Hub

SEARCH = "/v1/tools/hubspot_contacts_search/call"
CREATE = "/v1/tools/hubspot_contacts_create/call"
SECRET_QUERY = "ada-lovelace-private"  # an argument: it must appear nowhere on the page or in exports


@dataclass
class Calls:
    allowed: list[str]  # bot's searches
    denied: list[str]  # bot's create (no write scope), other's search (no grant)
    held: str  # careful's search, waiting for a human
    create: str
    others: str


def _call(agent: httpx.Client, path: str, status: int, **arguments: object) -> str:
    answer = agent.post(path, json={"arguments": arguments})
    assert answer.status_code == status, answer.text
    if "call_id" in answer.json():
        call_id: str = answer.json()["call_id"]
        return call_id
    return ""


def _make_calls(hub: Hub) -> Calls:
    """Two allowed searches and a denied create by `bot`, a denied search by `other`, a held one by `careful`."""
    hub.connect("hubspot", "crm", "crm.contacts.read")
    bot, other, careful = hub.create_agent("bot"), hub.create_agent("other"), hub.create_agent("careful")
    hub.grant("bot", "crm", "crm.contacts.read")
    hub.grant("careful", "crm", "crm.contacts.read", {"approval": "always"})
    with hub.agent(bot) as b, hub.agent(other) as o, hub.agent(careful) as c:
        allowed = [_call(b, SEARCH, 200, query=SECRET_QUERY), _call(b, SEARCH, 200, query="grace")]
        _call(b, CREATE, 403, email="eve@example.com")
        _call(o, SEARCH, 403, query=SECRET_QUERY)
        held = _call(c, SEARCH, 202, query=SECRET_QUERY)
    with hub.admin() as admin:
        newest = admin.get("/admin/api/audit", params={"limit": 5}).json()
    create = next(r["call_id"] for r in newest if r["tool"] == "hubspot_contacts_create")
    others = next(r["call_id"] for r in newest if r["agent_name"] == "other")
    return Calls(allowed, [create, others], held, create, others)


def _shown(page: str) -> set[str]:
    """The call ids the results list links to."""
    return set(re.findall(r'href="/admin/activity/([0-9a-f-]{36})"', page))


def test_filters_search_and_paging_find_the_right_calls(hub: Hub) -> None:
    with signed_in(hub) as browser:
        empty = browser.get("/admin/activity")
        assert empty.status_code == 200 and "No tool calls yet" in empty.text
        assert 'href="/admin/activity" aria-current="page"' in empty.text  # the nav says where we are

        calls = _make_calls(hub)
        everything = {*calls.allowed, *calls.denied, calls.held}
        page = browser.get("/admin/activity").text
        assert _shown(page) == everything and SECRET_QUERY not in page

        def shown(**params: str) -> set[str]:
            answer = browser.get("/admin/activity", params=params)
            assert answer.status_code == 200, answer.text
            return _shown(answer.text)

        assert shown(agent="bot") == {*calls.allowed, calls.create}
        assert shown(decision="allow") == set(calls.allowed)
        assert shown(decision="deny") == set(calls.denied)
        assert shown(decision="pending") == {calls.held}
        assert "(pending)" in browser.get("/admin/activity", params={"decision": "pending"}).text
        assert shown(problem="scope_denied") == set(calls.denied)
        assert shown(tool="hubspot_contacts_create") == {calls.create}
        assert shown(agent="bot", decision="allow", tool="hubspot_contacts_search") == set(calls.allowed)
        assert shown(connection="crm", decision="allow") == set(calls.allowed)
        assert shown(within="1h") == everything
        assert shown(since="2000-01-01T00:00", until="2000-01-02") == set()
        assert shown(q="CONTACTS_CREATE") == {calls.create}  # case-insensitive, inside a name
        assert shown(q=calls.held[9:18]) == {calls.held}  # a piece of a call id
        assert shown(q="scope_den") == set(calls.denied)
        assert shown(q="%") == set() and shown(q="hub_pot") == set()  # LIKE wildcards are taken literally
        assert "No calls match these filters" in browser.get("/admin/activity", params={"q": "nothing"}).text

        bad = browser.get("/admin/activity", params={"since": "yesterday", "agent": "bot"})
        assert bad.status_code == 422 and "since must look like" in bad.text
        assert '<option value="bot" selected>' in bad.text  # the form keeps what was asked

        # htmx swaps only the results, and restores whole pages from history.
        fragment = browser.get("/admin/activity", params={"decision": "deny"}, headers=htmx(csrf_of(browser)))
        assert fragment.text.lstrip().startswith('<section id="activity-results"') and "<html" not in fragment.text
        assert _shown(fragment.text) == set(calls.denied)
        restore = {**htmx(csrf_of(browser)), "HX-History-Restore-Request": "true"}
        assert "<html" in browser.get("/admin/activity", headers=restore).text

        # 52 more denials: the newest 50 on the first page, the rest behind "Older calls".
        with hub.agent(hub.create_agent("noisy")) as noisy:
            for _ in range(52):
                _call(noisy, SEARCH, 403)
        with hub.admin() as admin:
            listed = admin.get("/admin/api/audit", params={"agent": "noisy", "limit": 100}).json()
        burst = [r["call_id"] for r in listed]
        first = browser.get("/admin/activity", params={"agent": "noisy"}).text
        assert len(burst) == 52 and _shown(first) == set(burst[:50])  # the newest 50
        older = re.search(r'href="(/admin/activity\?[^"]*before=\d+)"', first)
        assert older, "no link to older calls"
        second = browser.get(older.group(1).replace("&amp;", "&")).text
        assert _shown(second) == set(burst[50:]) and 'href="/admin/activity?agent=noisy"' in second
        assert "Older calls" not in second


def test_a_calls_detail_shows_every_stored_field_and_its_approval(hub: Hub) -> None:
    calls = _make_calls(hub)
    with hub.admin() as admin:
        records = {r["call_id"]: r for r in admin.get("/admin/api/audit", params={"limit": 10}).json()}
    with signed_in(hub) as browser:
        allowed = records[calls.allowed[0]]
        detail = browser.get(f"/admin/activity/{allowed['call_id']}")
        assert detail.status_code == 200
        for name in ("call_id", "args_digest", "hash", "prev_hash", "tool", "agent_name", "connection"):
            assert str(allowed[name]) in detail.text, name
        assert f"<dd>{allowed['seq']} " in detail.text and "<dd>200</dd>" in detail.text
        assert SECRET_QUERY not in detail.text and "not stored" in detail.text

        denied = browser.get(f"/admin/activity/{calls.create}").text
        assert "scope_denied" in denied and "/admin/activity?problem=scope_denied" in denied

        held = browser.get(f"/admin/activity/{calls.held}").text
        assert "Held for approval" in held and f'href="/admin/#approval-{calls.held}"' in held
        assert SECRET_QUERY not in held  # the arguments stay on the approvals queue
        with hub.admin() as admin:
            assert admin.post(f"/admin/api/approvals/{calls.held}", json={"approve": True}).status_code == 200
        run_call_id = _wait_for_run(hub, calls.held)
        decided = browser.get(f"/admin/activity/{calls.held}").text
        assert f'href="/admin/activity/{run_call_id}"' in decided and "Decide it" not in decided
        run = browser.get(f"/admin/activity/{run_call_id}").text
        assert "Run after approval" in run and f'href="/admin/activity/{calls.held}"' in run

        missing = browser.get("/admin/activity/no-such-call")
        assert missing.status_code == 404 and "no call" in missing.text and "<html" in missing.text


def _wait_for_run(hub: Hub, call_id: str) -> str:
    with hub.admin() as admin:
        for _ in range(100):
            found = admin.get(f"/admin/api/approvals/{call_id}").json()
            if found["status"] in ("done", "failed") and found["run_call_id"]:
                run_call_id: str = found["run_call_id"]
                return run_call_id
            time.sleep(0.1)
    raise AssertionError(f"call {call_id} never ran")


def test_exports_stream_the_filtered_calls_as_csv_and_json_lines(hub: Hub) -> None:
    calls = _make_calls(hub)
    with hub.agent(hub.create_agent("mallory")) as mallory:
        mallory.post("/v1/tools/=HYPERLINK(1)/call", json={"arguments": {}})  # a tool name a spreadsheet would run
    with signed_in(hub) as browser:
        exported = browser.get("/admin/activity/export", params={"format": "csv", "agent": "bot"})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert exported.headers["content-disposition"].startswith('attachment; filename="switchboard-activity-')
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert tuple(rows[0]) == COLUMNS
        assert [r["call_id"] for r in rows] == [*calls.allowed, calls.create]  # chain order
        assert {r["agent_name"] for r in rows} == {"bot"} and SECRET_QUERY not in exported.text
        assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)

        page = browser.get("/admin/activity", params={"agent": "bot"}).text
        assert 'href="/admin/activity/export?agent=bot&amp;format=csv"' in page

        injected = browser.get("/admin/activity/export", params={"format": "csv", "agent": "mallory"}).text
        (row,) = csv.DictReader(io.StringIO(injected))
        assert row["tool"] == "'=HYPERLINK(1)" and row["problem"] == "unknown_tool"

        lines = browser.get("/admin/activity/export", params={"format": "json", "decision": "deny", "agent": "other"})
        assert lines.headers["content-type"].startswith("application/x-ndjson")
        assert [orjson.loads(line)["call_id"] for line in lines.text.splitlines()] == [calls.others]

        bad = browser.get("/admin/activity/export", params={"format": "csv", "decision": "maybe"})
        assert bad.status_code == 422 and "decision must be one of" in bad.text

    with hub.admin() as admin:
        api = admin.get("/admin/api/audit", params={"format": "json", "agent": "bot", "decision": "allow"})
        assert api.status_code == 200
        parsed = [orjson.loads(line) for line in api.text.splitlines()]
        assert [p["call_id"] for p in parsed] == calls.allowed and set(parsed[0]) == set(COLUMNS)
        as_csv = admin.get("/admin/api/audit", params={"format": "csv", "q": "contacts_create"})
        assert [r["call_id"] for r in csv.DictReader(io.StringIO(as_csv.text))] == [calls.create]

        # Without `format`: a JSON list, newest first, as before; filters and `before` page it.
        newest = admin.get("/admin/api/audit", params={"limit": 2}).json()
        assert len(newest) == 2 and newest[0]["seq"] > newest[1]["seq"] and newest[0]["agent_name"] == "mallory"
        denied = admin.get("/admin/api/audit", params={"decision": "deny", "limit": 1}).json()
        paged = {"decision": "deny", "limit": 1, "before": denied[0]["seq"]}
        (older,) = admin.get("/admin/api/audit", params=paged).json()
        assert older["seq"] < denied[0]["seq"] and older["decision"] == "deny"
        refused = admin.get("/admin/api/audit", params={"since": "soon"})
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert admin.get("/admin/api/audit", params={"format": "xml"}).status_code == 422
    assert httpx.get(f"{hub.url}/admin/api/audit", params={"format": "csv"}).status_code == 401
