"""A new admin's first session, in a real chromium and through the page alone: sign in with a one-time link,
connect a sandbox HubSpot account on its consent page, create an agent, grant it scopes with constraints,
watch its calls in Activity, approve a held call, and see Usage change. The agent's side (its calls, the
tokens its runtime reports) goes through the agent API, as an agent's would.

With SWITCHBOARD_SCREENSHOTS=1 it also saves the main pages' screenshots under docs/."""

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.admin.page import KEY, login_link
from tests.harness import ROOT, Hub, Sandbox, run_hub

pytestmark = pytest.mark.browser

# Read at import: the autouse fixture in tests/conftest.py clears SWITCHBOARD_* before a test runs.
SCREENSHOTS = os.environ.get("SWITCHBOARD_SCREENSHOTS") == "1"
DOCS = ROOT / "docs"
VIEWPORT = {"width": 1280, "height": 800}
ROSTER = {"Role": "Answers support tickets", "Owner": "Support team", "Model": "claude-sonnet-4-5"}
NEW_CONTACT = {"email": "ada@example.com", "firstname": "Ada", "lastname": "Lovelace"}
TURN = {"model": "claude-sonnet-4-5", "input_tokens": 1200, "output_tokens": 350}


@pytest.fixture
def hub(tmp_path: Path, hubspot: Sandbox) -> Iterator[Hub]:
    with run_hub(tmp_path, f"sqlite:///{tmp_path / 'switchboard.db'}", providers={"hubspot": hubspot}) as running:
        yield running


def _shoot(page: Page, name: str, section: Locator | None = None) -> None:
    """The whole page, or the band of it that holds `section`, into docs/ (only with SWITCHBOARD_SCREENSHOTS=1)."""
    if not SCREENSHOTS:
        return
    box = section.bounding_box() if section is not None else None
    if box is None:
        page.screenshot(path=DOCS / f"{name}.png", full_page=True)
        return
    top = max(box["y"] + page.evaluate("window.scrollY") - 16, 0)
    clip = {"x": 0, "y": top, "width": VIEWPORT["width"], "height": box["height"] + 32}
    page.screenshot(path=DOCS / f"{name}.png", full_page=True, clip=clip)


def _cells(table: Locator, row: Locator) -> dict[str, str]:
    """A table row as {column header: cell text}, white space collapsed."""
    headers = table.get_by_role("columnheader").all_inner_texts()
    cells = row.locator("th, td").all_inner_texts()
    return {" ".join(h.split()): " ".join(c.split()) for h, c in zip(headers, cells, strict=True)}


def _agent_usage(page: Page, agent: str) -> dict[str, str]:
    table = page.get_by_role("region", name="Per agent").get_by_role("table")
    return _cells(table, table.get_by_role("row").filter(has=page.get_by_role("link", name=f"Chart only {agent}")))


def _calls_per_hour(page: Page) -> int:
    """The sum of the Calls column of the table beneath the calls chart."""
    table = page.get_by_role("table", name="Calls per hour")
    if not table.is_visible():
        page.get_by_text("Table of calls per hour", exact=True).click()  # a <summary>: no ARIA role to find
    body = table.get_by_role("rowgroup").nth(1)
    return sum(int(_cells(table, row)["Calls"]) for row in body.get_by_role("row").all())


def test_a_new_admin_connects_an_account_runs_an_agent_and_watches_it(hub: Hub, browser: Browser) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        _walk(hub, page)
    finally:
        context.close()


def _walk(hub: Hub, page: Page) -> None:
    nav = page.get_by_role("navigation", name="Sections")

    # 1. Without a session the page says how to get in; the CLI's one-time link signs in, once.
    page.goto(f"{hub.url}/admin/")
    expect(page.get_by_role("heading", name="Sign in to Switchboard")).to_be_visible()
    expect(page.get_by_text("switchboard admin link", exact=True)).to_be_visible()
    link = login_link(hub)
    problems: list[str] = []  # from here on, the console stays clean: no CSP violation, no script error
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(link)
    expect(page).to_have_url(f"{hub.url}/admin/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_text("No connections yet.")).to_be_visible()
    expect(page.get_by_text("No agents yet.")).to_be_visible()

    # 2. Connect HubSpot: the form, the provider's consent page, and back with the connection active.
    connect = page.get_by_role("form", name="Connect an account")
    connect.get_by_label("Provider").select_option(label="HubSpot")
    connect.get_by_label("Connection name").fill("crm")
    connect.get_by_role("checkbox", name="crm.contacts.read", exact=True).check()
    connect.get_by_role("checkbox", name="crm.contacts.write", exact=True).check()
    connect.get_by_role("button", name="Connect", exact=True).click()
    expect(page.get_by_role("heading", name="Connect to HubSpot (sandbox)")).to_be_visible()
    permissions = page.get_by_role("list", name="Requested permissions")
    expect(permissions).to_contain_text("crm.objects.contacts.read")
    expect(permissions).to_contain_text("crm.objects.contacts.write")
    page.get_by_role("button", name="Connect", exact=True).click()
    expect(page).to_have_url(f"{hub.url}/admin/?connected=crm")
    expect(page.get_by_role("status").filter(has_text="Connected crm.")).to_be_visible()
    connection = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="crm hubspot"))
    expect(connection.get_by_role("cell").first).to_have_text("active")
    expect(connection).to_contain_text("crm.contacts.write")

    # 3. Create an agent with its roster details; its key is shown once, then never again.
    create = page.get_by_role("form", name="Create an agent")
    create.get_by_label("Name", exact=True).fill("support-bot")
    for label, value in ROSTER.items():
        create.get_by_label(label).fill(value)
    create.get_by_role("button", name="Create agent and key").click()
    key_box = page.get_by_role("region", name="New key for support-bot — shown only this once")
    expect(key_box).to_be_visible()
    key = key_box.get_by_label("Agent key").input_value()
    assert KEY.fullmatch(key), key
    hub.secrets.add(key)
    roster = page.get_by_role("table", name="Agents: what each is, who owns it, and what it may do")
    bot_row = roster.get_by_role("row").filter(has=page.get_by_role("link", name="support-bot", exact=True))
    assert _cells(roster, bot_row) == {
        "Agent": "support-bot",
        "Status": "active",
        **ROSTER,
        "Runtime": "—",
        "Keys": "1 working key",
        "Grants": "0 grants",
        "Last activity": "no calls yet",
    }

    # 4. On its page, two grants: contacts read with at most 2 results, contacts write only with approval.
    key_box.get_by_role("link", name="grant support-bot its scopes").click()
    expect(page.get_by_role("heading", name="Agent support-bot", level=1)).to_be_visible()
    expect(page.get_by_text("No grants: this agent sees no tools.")).to_be_visible()
    assert not KEY.search(page.content())
    for scope, constraints in (
        ("crm.contacts.read", '{"max_results": 2}'),
        ("crm.contacts.write", '{"approval": "always"}'),
    ):
        grant = page.get_by_role("form", name="Grant a scope")
        # The one connection is already chosen (choosing another reloads the scope list with htmx).
        expect(grant.get_by_label("Connection", exact=True)).to_have_value("crm")
        grant.get_by_label("Scope").select_option(scope)
        grant.get_by_label("Constraints").fill(constraints)
        grant.get_by_role("button", name="Grant", exact=True).click()
        expect(page.get_by_role("button", name=f"Revoke {scope} on crm from support-bot")).to_be_visible()
    grants = page.get_by_role("table", name="Grants")
    rows = {
        scope: _cells(grants, grants.get_by_role("row").filter(has=page.get_by_role("rowheader", name=scope)))
        for scope in ("crm.contacts.read", "crm.contacts.write")
    }
    assert rows["crm.contacts.read"]["Constraints"] == '{"max_results": 2}'
    assert rows["crm.contacts.write"]["Constraints"] == '{"approval": "always"}'
    _shoot(page, "admin-agent")

    with hub.agent(key) as agent:
        # 5. The agent calls a tool; the call shows in Activity, filtered to this agent.
        searched = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"limit": 10}})
        assert searched.status_code == 200, searched.text
        assert len(searched.json()["result"]["contacts"]) == 2  # the grant's max_results, not the 10 asked
        nav.get_by_role("link", name="Activity").click()
        expect(page.get_by_role("heading", name="Activity", level=1)).to_be_visible()
        filters = page.get_by_role("search", name="Filter the activity")
        filters.get_by_label("Agent").select_option("support-bot")
        expect(page).to_have_url(re.compile(r"/admin/activity\?.*agent=support-bot"))
        calls = page.get_by_role("region", name="Calls matching the filters").get_by_role("table")
        expect(calls.get_by_role("row")).to_have_count(2)  # the header and the one call
        call = _cells(calls, calls.get_by_role("row").nth(1))
        assert (call["Agent"], call["Tool"], call["Connection"]) == ("support-bot", "hubspot_contacts_search", "crm")
        assert (call["Decision"], call["Status"]) == ("Allowed", "200")
        _shoot(page, "admin-activity")

        # 6. A call that needs approval waits; the nav shows it; approving it runs it, and the agent gets it.
        held = agent.post("/v1/tools/hubspot_contacts_create/call", json={"arguments": NEW_CONTACT})
        assert held.status_code == 202, held.text
        call_id = held.json()["call_id"]
        page.reload()
        waiting = nav.get_by_role("link", name="Approvals 1 waiting")
        expect(waiting).to_be_visible()
        waiting.click()
        approvals = page.get_by_role("region", name="Approvals")
        card = approvals.get_by_role("article", name="hubspot_contacts_create for support-bot")
        expect(card).to_contain_text(call_id)
        expect(card).to_contain_text('"email": "ada@example.com"')
        _shoot(page, "admin-dashboard")
        _shoot(page, "admin-approvals", approvals)
        card.get_by_role("button", name="Approve hubspot_contacts_create for support-bot and run it once").click()
        expect(card).to_have_count(0)
        expect(approvals.get_by_text("No call is waiting for approval.")).to_be_visible()
        expect(nav.get_by_role("link", name="Approvals", exact=True)).to_be_visible()  # the badge is gone
        decided = approvals.get_by_role("table").get_by_role("row").nth(1)
        expect(decided).to_contain_text("approved")
        outcome = agent.get(f"/v1/calls/{call_id}", params={"wait": 30})
        assert outcome.status_code == 200, outcome.text
        assert outcome.json()["result"]["email"] == NEW_CONTACT["email"]

        # 7. Usage: one more call and a model turn reported by the runtime show after a reload.
        nav.get_by_role("link", name="Usage").click()
        expect(page.get_by_role("heading", name="Usage and cost", level=1)).to_be_visible()
        before = _agent_usage(page, "support-bot")
        hourly_before = _calls_per_hour(page)
        assert before["Input tokens"] == "—" and before["Cost"] == "none reported"
        # Two calls: the search, and the create, counted once by its run (its hold is not a second call).
        assert int(before["Calls"]) == hourly_before == 2

        again = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
        assert again.status_code == 200, again.text
        reported = agent.post("/v1/usage", json=TURN)
        assert reported.status_code == 201, reported.text
        page.reload()
        after = _agent_usage(page, "support-bot")
        assert int(after["Calls"]) == int(before["Calls"]) + 1 == _calls_per_hour(page)
        assert (after["Input tokens"], after["Output tokens"]) == ("1,200", "350")
        assert "no price for claude-sonnet-4-5" in after["Cost"]

        # A price for the model, set on the page, turns the reported tokens into a cost.
        price = page.get_by_role("form", name="Set a model\u2019s price")
        price.get_by_label("Model").fill("claude-sonnet-4-5")
        price.get_by_label("Input, $ per 1M tokens").fill("3")
        price.get_by_label("Output, $ per 1M tokens").fill("15")
        price.get_by_role("button", name="Save price").click()
        expect(page.get_by_role("row", name=re.compile(r"^claude-sonnet-4-5 3 15 "))).to_be_visible()
        expect(page.get_by_role("region", name="Per agent").get_by_role("table")).not_to_contain_text("no price")
        cost = _agent_usage(page, "support-bot")["Cost"]
        assert cost in ("$0.0088", "$0.0089"), cost  # 1,200 tokens at $3/M and 350 at $15/M: $0.00885
        _shoot(page, "admin-usage")

    if SCREENSHOTS:
        shutil.copyfile(DOCS / "admin-dashboard.png", DOCS / "admin.png")
    assert problems == []
