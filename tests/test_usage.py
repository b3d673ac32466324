"""Usage and cost: token reports from runtimes (`POST /v1/usage`), the price table (admin API and page), cost
per agent, and the Usage page's charts and tables, which follow the calls agents make. The bucketing SQL is
checked on both databases against records stamped either side of hour and day boundaries."""

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hub.admin.charts import Column, bar_chart, nice_ceiling, sparkline
from hub.db import Database, migrate
from hub.models import Agent, Approval, AuditRecord, ModelPrice, UsageReport
from hub.usage import PERIODS, CallStats, load_usage
from tests.admin.page import csrf_of, htmx, signed_in
from tests.harness import Hub

SEARCH = "/v1/tools/hubspot_contacts_search/call"
TURN = {"model": "claude-sonnet-4-5", "input_tokens": 2_000_000, "output_tokens": 100_000}


def _agent_cost(page: str, agent: str) -> str:
    row = page.split(f'aria-label="Chart only {agent}"')[1].split("</tr>")[0]
    cost = re.search(r'<td class="num cost">(.*?)</td>', row, re.S)
    assert cost, row
    return cost.group(1)


def test_usage_reports_are_strictly_validated_and_stored_for_the_calling_agent(hub: Hub) -> None:
    key = hub.create_agent("writer")
    assert httpx.post(f"{hub.url}/v1/usage", json=TURN).status_code == 401
    assert httpx.post(f"{hub.url}/v1/usage", json=TURN, headers={"Authorization": "Bearer sbk_nope"}).status_code == 401
    with hub.agent(key) as agent:
        for bad in (
            {"model": "m", "input_tokens": 1},  # a field missing
            {**TURN, "input_tokens": -1},
            {**TURN, "input_tokens": "12"},  # strict: no strings for numbers
            {**TURN, "output_tokens": 1.5},
            {**TURN, "output_tokens": True},
            {**TURN, "cost": 3},  # no unknown fields
            {**TURN, "model": "has spaces"},
            {**TURN, "model": ""},
            [TURN],
        ):
            refused = agent.post("/v1/usage", json=bad)
            assert refused.status_code == 422, bad
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "invalid_arguments"
        not_json = agent.post("/v1/usage", content=b"{oops", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422 and not_json.json()["type"] == "invalid_arguments"

        stored = agent.post("/v1/usage", json=TURN)
        assert stored.status_code == 201, stored.text
        assert stored.json()["agent"] == "writer" and isinstance(stored.json()["id"], int)
        again = agent.post("/v1/usage", json={**TURN, "model": "models/gemini-2.0-flash"}).json()
        assert again["id"] > stored.json()["id"]
    with hub.admin() as admin:
        (cost,) = admin.get("/admin/api/usage", params={"period": "day"}).json()["costs"]
    assert cost == {
        "agent": "writer",
        "input_tokens": 4_000_000,
        "output_tokens": 200_000,
        "cost_usd": 0,
        "unpriced_models": ["claude-sonnet-4-5", "models/gemini-2.0-flash"],
    }


def test_prices_are_edited_by_api_and_page_and_cost_follows(hub: Hub) -> None:
    with hub.agent(hub.create_agent("writer")) as agent:
        assert agent.post("/v1/usage", json=TURN).status_code == 201
    with hub.admin() as admin:
        assert admin.get("/admin/api/prices").json() == []
        price = {"input_per_mtok": 3, "output_per_mtok": 15.0}
        created = admin.put("/admin/api/prices/claude-sonnet-4-5", json=price)
        assert created.status_code == 201 and created.json()["output_per_mtok"] == 15.0
        assert admin.put("/admin/api/prices/claude-sonnet-4-5", json=price).status_code == 200
        assert admin.get("/admin/api/prices/claude-sonnet-4-5").json()["input_per_mtok"] == 3.0
        for bad in ({"input_per_mtok": -1, "output_per_mtok": 1}, {**price, "currency": "EUR"}, {"input_per_mtok": 1}):
            assert admin.put("/admin/api/prices/claude-sonnet-4-5", json=bad).status_code == 422, bad
        assert admin.put("/admin/api/prices/bad model", json=price).status_code == 422
        # 2M input at $3 and 0.1M output at $15 per million: $7.50.
        (cost,) = admin.get("/admin/api/usage").json()["costs"]
        assert cost["cost_usd"] == 7.5 and cost["unpriced_models"] == []
        assert admin.put("/admin/api/prices/vendor/other-model", json=price).status_code == 201  # a / in a name
        assert admin.delete("/admin/api/prices/vendor/other-model").status_code == 204
        assert admin.get("/admin/api/prices/vendor/other-model").status_code == 404
        assert admin.delete("/admin/api/prices/claude-sonnet-4-5").status_code == 204
    assert httpx.put(f"{hub.url}/admin/api/prices/x", json=price).status_code == 401

    with signed_in(hub) as browser:
        csrf = csrf_of(browser)
        page = browser.get("/admin/usage").text
        assert _agent_cost(page, "writer").startswith("$0.00") and "no price for <code>claude-sonnet-4-5</code>" in page
        assert "Costs are incomplete" in page and "price_model=claude-sonnet-4-5" in page
        prefilled = browser.get("/admin/usage", params={"price_model": "claude-sonnet-4-5"}).text
        assert 'value="claude-sonnet-4-5" placeholder="claude-sonnet-4-5"' in prefilled

        form = {"model": "claude-sonnet-4-5", "input_per_mtok": "3", "output_per_mtok": "$15", "period": "day"}
        assert browser.post("/admin/usage/prices", data=form).status_code == 403  # no CSRF token
        saved = browser.post("/admin/usage/prices", data={**form, "csrf_token": csrf})
        assert saved.status_code == 303
        assert saved.headers["location"] == "/admin/usage?period=day&done=price-saved#prices"
        after = browser.get(saved.headers["location"]).text
        assert "Price saved" in after and _agent_cost(after, "writer") == "$7.50"
        assert "Costs are incomplete" not in after

        wrong = browser.post("/admin/usage/prices", data={**form, "output_per_mtok": "lots"}, headers=htmx(csrf))
        assert wrong.status_code == 422 and 'id="price-form-error"' in wrong.text and 'value="lots"' in wrong.text
        assert wrong.text.lstrip().startswith('<div id="usage-results">')

        removed = browser.post("/admin/usage/prices/claude-sonnet-4-5/delete", headers=htmx(csrf))
        assert removed.status_code == 200 and "Price removed" in removed.text
        assert _agent_cost(removed.text, "writer").startswith("$0.00")
        gone = browser.post("/admin/usage/prices/claude-sonnet-4-5/delete", headers=htmx(csrf))
        assert gone.status_code == 404 and 'id="prices-error"' in gone.text


def test_the_usage_charts_and_tables_follow_the_calls(hub: Hub) -> None:
    with signed_in(hub) as browser:
        empty = browser.get("/admin/usage")
        assert empty.status_code == 200 and "No tool calls yet" in empty.text and "No prices yet" in empty.text
        assert 'href="/admin/usage" aria-current="page"' in empty.text

        hub.connect("hubspot", "crm", "crm.contacts.read")
        key, stranger = hub.create_agent("bot"), hub.create_agent("stranger")
        hub.grant("bot", "crm", "crm.contacts.read")
        with hub.agent(key) as bot, hub.agent(stranger) as other:
            for query in ("ada", "grace", "alan"):
                assert bot.post(SEARCH, json={"arguments": {"query": query}}).status_code == 200
            assert other.post(SEARCH, json={"arguments": {"query": "ada"}}).status_code == 403

        page = browser.get("/admin/usage").text
        totals = page.split('class="totals"')[1].split("</dl>")[0]
        assert "<dt>Calls</dt><dd>4</dd>" in totals and "<dt>Denied</dt><dd>1</dd>" in totals
        chart = page.split('aria-labelledby="calls-chart-title calls-chart-desc"')[1].split("</svg>")[0]
        assert chart.count('class="seg seg-ok"') == 1 and chart.count('class="seg seg-deny"') == 1
        assert "4 calls (3 succeeded, 1 denied)" in chart  # the bar's tooltip
        table = page.split('id="calls-table-caption"')[1].split("</table>")[0]
        assert table.count("<tr>") == 1 + 24 and '<td class="num">4</td><td class="num">3</td>' in table
        agents = page.split('id="usage-agents-h"')[1].split("</table>")[0]
        assert re.search(r"Chart only bot.*?<td class=\"num\">3</td>", agents, re.S)
        assert re.search(r"Chart only stranger.*?<td class=\"num\">1</td>\s*<td class=\"num\">1</td>", agents, re.S)
        assert 'class="spark"' in agents and "hubspot_contacts_search" in page.split('id="usage-tools-h"')[1]
        assert " ms</td>" in agents  # bot's median and average latency

        # By day, for one agent, through htmx: just the results, the bot's three calls in today's bar.
        daily = browser.get("/admin/usage", params={"period": "day", "agent": "bot"}, headers=htmx(csrf_of(browser)))
        assert daily.text.lstrip().startswith('<div id="usage-results">') and "<html" not in daily.text
        assert "<dt>Calls</dt><dd>3</dd>" in daily.text and "the last 14 days" in daily.text
        assert daily.text.split('id="calls-table-caption"')[1].split("</table>")[0].count("<tr>") == 1 + 14
        none = browser.get("/admin/usage", params={"agent": "stranger", "tool": "hubspot_contacts_get"}).text
        assert "No calls by stranger of hubspot_contacts_get" in none

    with hub.admin() as admin:
        listed = admin.get("/admin/api/usage", params={"period": "hour"}).json()
    assert listed["agents"]["bot"]["calls"] == 3 and listed["agents"]["stranger"]["denials"] == 1
    assert sum(b["calls"] for b in listed["buckets"]) == 4 and len(listed["buckets"]) == 24


def _record(
    seq: int,
    ts: datetime,
    *,
    decision: str = "allow",
    latency: float = 7.0,
    tool: str = "t",
    call_id: str | None = None,
    problem: str | None = None,
) -> AuditRecord:
    return AuditRecord(
        seq=seq,
        call_id=call_id or str(uuid.uuid4()),
        ts=ts,
        agent_name="a",
        tool=tool,
        connection="c",
        decision=decision,
        status={"allow": 200, "pending": 202}.get(decision, 403),
        problem=problem if decision != "deny" else "scope_denied",
        latency_ms=latency,
        args_digest="0" * 64,
        prev_hash="0" * 64,
        hash="0" * 64,
    )


def test_calls_fall_into_whole_utc_hours_and_days_on_both_databases(database_url: str) -> None:
    migrate(database_url)
    db = Database(database_url)
    try:
        with db.session() as session:
            session.add_all(
                [
                    _record(1, datetime(2026, 11, 26, 11, 59, 59, 999_000, tzinfo=UTC)),
                    _record(2, datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC), decision="deny"),
                    _record(3, datetime(2026, 11, 26, 12, 29, 59, 600_000, tzinfo=UTC), latency=300),
                    _record(4, datetime(2026, 11, 25, 12, 59, 59, tzinfo=UTC)),  # before the 24 hours
                    _record(5, datetime(2026, 11, 25, 13, 0, 0, tzinfo=UTC), tool="u"),  # the first hour shown
                ]
            )
            agent = Agent(name="a")
            session.add(agent)
            session.flush()
            session.add(ModelPrice(model="m", input_per_mtok=1.0, output_per_mtok=2.0))
            session.add(UsageReport(agent_id=agent.id, model="m", input_tokens=10**6, output_tokens=10**6))
        now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
        with db.session() as session:
            hourly = load_usage(session, period=PERIODS["hour"], now=now)
            daily = load_usage(session, period=PERIODS["day"], now=now)
    finally:
        db.dispose()
    calls = {start.isoformat(): b.calls for start, b in hourly.buckets if b.calls}
    assert calls == {"2026-11-25T13:00:00+00:00": 1, "2026-11-26T11:00:00+00:00": 1, "2026-11-26T12:00:00+00:00": 2}
    assert hourly.starts[-1] == datetime(2026, 11, 26, 12, tzinfo=UTC) and hourly.series[-1].denials == 1
    assert set(hourly.tools) == {"t", "u"} and hourly.tools["t"].calls == 3
    assert {s.isoformat(): b.calls for s, b in daily.buckets if b.calls} == {
        "2026-11-25T00:00:00+00:00": 2,
        "2026-11-26T00:00:00+00:00": 3,
    }
    assert daily.total.timed == 4 and daily.total.avg_ms == pytest.approx((7 + 300 + 7 + 7) / 4)
    (cost,) = daily.costs
    assert cost.cost == pytest.approx(3.0) and cost.unpriced == ()


def test_a_held_call_counts_once_as_pending_then_as_its_run_or_a_denial(database_url: str) -> None:
    now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    records: list[AuditRecord] = [_record(1, now, decision="allow"), _record(2, now, decision="deny")]
    held: list[Approval] = []

    def hold(status: str, *, run: str | None = None, ran: bool = False, problem: str | None = None) -> None:
        """A held call whose approval is in `status`; `ran`: its run has its own record, `problem` its outcome."""
        call_id = str(uuid.uuid4())
        records.append(_record(len(records) + 1, now - timedelta(minutes=5), decision="pending", call_id=call_id))
        if ran:
            assert run is not None
            records.append(_record(len(records) + 1, now, call_id=run, problem=problem))
        expires = now + timedelta(minutes=-1 if status == "overdue" else 10)
        held.append(
            Approval(
                call_id=call_id,
                agent_id=1,
                agent_name="a",
                tool="t",
                connection="c",
                arguments_enc="",
                args_hash="0" * 64,
                reason="high risk",
                status="pending" if status == "overdue" else status,
                created_at=now - timedelta(minutes=5),
                expires_at=expires,
                run_call_id=run,
            )
        )

    hold("done", run=str(uuid.uuid4()), ran=True)  # approved, ran, succeeded
    hold("failed", run=str(uuid.uuid4()), ran=True, problem="upstream_error")  # ran and failed
    hold("denied")  # refused by a human
    hold("expired")  # nobody answered in time
    hold("overdue")  # the same, before the sweep marks it expired
    hold("pending")  # still waiting
    hold("running", run=str(uuid.uuid4()))  # approved and running, its record not written yet
    hold("failed", run=str(uuid.uuid4()))  # failed before it ran (its agent disabled meanwhile)
    migrate(database_url)
    db = Database(database_url)
    try:
        with db.session() as session:
            session.add_all([*records, *held])
        with db.session() as session:
            usage = load_usage(session, period=PERIODS["hour"], now=now)
    finally:
        db.dispose()
    total = usage.total
    assert (total.calls, total.denials, total.errors, total.pending) == (10, 5, 1, 2)
    assert total.succeeded == 2 and total.timed == 3  # the direct call and the two runs reached the provider


def test_the_median_is_read_from_latency_bins() -> None:
    assert CallStats().p50_ms is None and CallStats().avg_ms is None
    stats = CallStats(calls=4, latency_total=4 * 7.0)
    stats.histogram = [0, 0, 0, 4, *([4] * 11)]  # all four calls between 5 and 10 ms
    assert stats.p50_ms == pytest.approx(7.5) and stats.avg_ms == 7.0
    slow = CallStats(calls=1, latency_total=60_000.0, histogram=[0] * 14 + [1])
    assert slow.p50_ms == 30_000  # beyond the last bound: "over 30 s" is all that is known


def test_charts_scale_to_a_round_maximum_and_keep_small_values_visible() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 11, 240, 251)] == [1, 1, 5, 10, 20, 250, 500]
    chart = bar_chart([Column([("ok", 3), ("deny", 0.01)], "x", "00:00"), Column([], "y")], width=200, height=100)
    first, second = chart.bars
    assert [s.kind for s in first.segments] == ["ok", "deny"] and first.segments[1].height == 1.0
    assert second.segments == () and chart.grid[-1][1] == "5" and not chart.empty
    assert sparkline([0, 0]).empty and len(sparkline([1, 2, 0]).bars) == 3
