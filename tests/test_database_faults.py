"""PostgreSQL stopped and started again under load, against a real `switchboard serve` on a private cluster
(tests/postgres_cluster.py: the shared server other tests use is never touched).

While the database is down every call answers at once with 503 `service_unavailable` (problem+json, with
Retry-After and a detail that says nothing about the database's address), on REST and MCP, for agents whose
calls need the database before the provider (a rate-limited grant) and after it (the audit record), and the
admin API answers 503 too. When it is back, calls succeed again by themselves, without restarting the hub.
Nothing is lost: every call that was answered 200 has its audit record and the chain verifies; a token the
provider expired during the outage is not refreshed then (the provider rotates refresh tokens, so a refresh
whose result could not be stored would lose the grant), and is refreshed with the stored refresh token after.
"""

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from hub.db import Database
from hub.errors import DatabaseUnavailable
from tests.harness import Hub, Sandbox, mcp_session, run_hub, run_sandbox
from tests.postgres_cluster import PostgresCluster, private_postgres

CALL = "/v1/tools/hubspot_contacts_search/call"
# Well under the pipeline's deadline (provider_timeout * 2 + 5 s): a database outage must never look like a
# slow provider, nor hold a caller until its own time-out.
FAST = 3.0
OUTAGE = 3.0
RECOVERY = 5.0
THREADS_PER_AGENT = 2


@dataclass(frozen=True, slots=True)
class Answer:
    agent: str
    started: float  # time.monotonic()
    took: float
    status: int  # 0: no HTTP answer at all
    body: dict[str, Any]
    content_type: str
    retry_after: str | None

    @property
    def ended(self) -> float:
        return self.started + self.took


@pytest.fixture
def postgres() -> Iterator[PostgresCluster]:
    with private_postgres() as cluster:
        yield cluster


@pytest.fixture
def rotating_hubspot(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox whose every refresh issues a new refresh token and kills the old one."""
    with run_sandbox("hubspot", tmp_path, "--rotate-refresh-tokens") as sandbox:
        yield sandbox


def _call(client: httpx.Client, agent: str) -> Answer:
    started = time.monotonic()
    try:
        response = client.post(CALL, json={"arguments": {"limit": 2}}, timeout=30)
    except httpx.HTTPError as exc:
        return Answer(agent, started, time.monotonic() - started, 0, {"error": repr(exc)}, "", None)
    took = time.monotonic() - started
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:500]}
    return Answer(
        agent,
        started,
        took,
        response.status_code,
        body,
        response.headers.get("content-type", ""),
        response.headers.get("retry-after"),
    )


class Load:
    """Threads calling the hub back to back, each answer kept, until stopped."""

    def __init__(self, hub: Hub, keys: dict[str, str]) -> None:
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(hub, agent, key), daemon=True)
            for agent, key in keys.items()
            for _ in range(THREADS_PER_AGENT)
        ]

    def _run(self, hub: Hub, agent: str, key: str) -> None:
        with hub.agent(key) as client:
            while not self._stop.is_set():
                answer = _call(client, agent)
                with self._lock:
                    self.answers.append(answer)

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def wait_for_ok(self, after: float, timeout: float) -> Answer | None:
        """The first 200 to a call started after `after` (monotonic), waiting up to `timeout` seconds."""
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            ok = [a for a in self.snapshot() if a.status == 200 and a.started >= after]
            if ok:
                return min(ok, key=lambda a: a.ended)
            time.sleep(0.02)
        return None


def _assert_unavailable(answer: Answer, postgres: PostgresCluster) -> None:
    """A 503 the caller can act on: problem+json, Retry-After, and no word of the database's whereabouts."""
    assert answer.status == 503, answer
    assert answer.content_type.startswith("application/problem+json"), answer
    assert answer.body["type"] == "service_unavailable", answer
    assert answer.retry_after is not None and int(answer.retry_after) >= 1, answer
    detail = str(answer.body["detail"]).lower()
    assert str(postgres.port) not in detail and "psycopg" not in detail and "sqlalchemy" not in detail, answer
    assert answer.took < FAST, answer


async def _mcp_call(hub: Hub, key: str) -> tuple[bool, dict[str, Any]]:
    async with mcp_session(hub, key) as session:
        result = await session.call_tool("hubspot_contacts_search", {"limit": 2})
    text = result.content[0].text if result.content and result.content[0].type == "text" else "{}"
    return bool(result.is_error), json.loads(text)


def _api_requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["api_requests"])


def _refreshes(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["token_requests"].get("refresh_token", 0))


def _connection_status(hub: Hub) -> str:
    with hub.admin() as admin:
        (connection,) = admin.get("/admin/api/connections").json()
    status: str = connection["status"]
    return status


def test_postgres_restart_under_load_fails_fast_and_loses_nothing(
    tmp_path: Path, postgres: PostgresCluster, rotating_hubspot: Sandbox
) -> None:
    hubspot = rotating_hubspot
    with run_hub(tmp_path, postgres.url, providers={"hubspot": hubspot}) as hub:
        assert hub.connect("hubspot", "crm", "crm.contacts.read").status_code == 303
        # `reader` needs the database only for its audit record, after the provider answered; `counted` also
        # before the provider, for its rate counter.
        keys = {"reader": hub.create_agent("reader"), "counted": hub.create_agent("counted")}
        hub.grant("reader", "crm", "crm.contacts.read")
        hub.grant("counted", "crm", "crm.contacts.read", {"rate": {"per_minute": 1_000_000}})

        with Load(hub, keys) as load:
            assert load.wait_for_ok(0, RECOVERY) is not None
            time.sleep(1.0)

            postgres.stop("fast")
            down_from = time.monotonic()
            # The provider expires the access token while the hub cannot store a new one.
            refreshes_before = _refreshes(hubspot)
            hubspot.control("expire-tokens")
            api_before = _api_requests(hubspot)

            with hub.admin() as admin:
                started = time.monotonic()
                listed = admin.get("/admin/api/connections")
                admin_took = time.monotonic() - started
            assert listed.status_code == 503 and admin_took < FAST, listed.text
            assert listed.json()["type"] == "service_unavailable" and listed.headers.get("retry-after")
            assert httpx.get(f"{hub.url}/readyz", timeout=FAST).status_code == 503
            mcp_error, mcp_body = asyncio.run(_mcp_call(hub, keys["reader"]))
            assert mcp_error and mcp_body["type"] == "service_unavailable", mcp_body

            time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_from)))
            down_until = time.monotonic()
            # Calls met the expired token at the provider and needed a refresh, but none was asked for.
            assert _api_requests(hubspot) > api_before
            assert _refreshes(hubspot) == refreshes_before, "refreshed while the new token could not be stored"
            postgres.start()
            up_at = time.monotonic()

            recovered = load.wait_for_ok(up_at, RECOVERY)
            assert recovered is not None, "calls did not recover after the database came back"
            time.sleep(1.0)
        answers = load.snapshot()

        # Never a 500 or a hang: every answer is a success or a quick, well-formed 503.
        assert all(a.status in (200, 503) for a in answers), [a for a in answers if a.status not in (200, 503)]
        for answer in answers:
            if answer.status == 503:
                _assert_unavailable(answer, postgres)
        during = [a for a in answers if a.started >= down_from and a.ended <= down_until]
        assert {a.agent for a in during} == set(keys), "both agents called during the outage"
        assert all(a.status == 503 for a in during), [a for a in during if a.status != 503]
        after = [a for a in answers if a.started >= recovered.ended]
        assert after and all(a.status == 200 for a in after), [a for a in after if a.status != 200][:3]
        assert {a.agent for a in after} == set(keys)

        # The expired token was refreshed once, after the outage, with the refresh token the hub had stored,
        # and the one the provider rotated in was stored too: a second refresh works.
        assert _refreshes(hubspot) == refreshes_before + 1
        assert _connection_status(hub) == "active"
        hubspot.control("expire-tokens")
        with hub.agent(keys["reader"]) as reader:
            again = _call(reader, "reader")
        assert again.status == 200, again
        assert _refreshes(hubspot) == refreshes_before + 2
        assert _connection_status(hub) == "active"

        # No audit record lost: every call answered 200 has its record, and the chain is intact.
        exported = hub.cli("audit", "export")
        assert exported.returncode == 0, exported.stderr
        records = {row["call_id"]: row for row in map(json.loads, exported.stdout.splitlines())}
        ok = [a.body["call_id"] for a in [*answers, again] if a.status == 200]
        missing = [call_id for call_id in ok if call_id not in records]
        assert not missing, f"{len(missing)} of {len(ok)} answered calls have no audit record"
        assert all(records[call_id]["status"] == 200 for call_id in ok)
        verified = hub.cli("audit", "verify")
        assert verified.returncode == 0, verified.stderr
        assert f"intact: {len(records)} records" in verified.stdout

        unavailable = [a.took for a in answers if a.status == 503]
        print(
            f"\n{len(answers)} calls: {len(unavailable)} answered 503 (slowest {max(unavailable):.3f} s);"
            f" admin read {admin_took:.3f} s; calls recovered {recovered.ended - up_at:.2f} s after PostgreSQL was up"
        )


def test_a_database_that_never_answers_is_unavailable_within_seconds() -> None:
    """A server that takes the TCP connection but never answers (hung, or a full accept queue) would hold a
    caller as long as the kernel lets it; the hub gives up after its connect time-out and answers 503."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{silent.getsockname()[1]}/switchboard")
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            db.run_sync(lambda session: session.execute(text("SELECT 1")))
        assert time.monotonic() - started < FAST + 2
        db.dispose()
