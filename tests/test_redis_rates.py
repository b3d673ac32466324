"""Rate counters in Redis (`SWITCHBOARD_REDIS_URL`, hub.rates.RedisRates), against the machine's real Redis:
counts are distinct however many calls race, expire with their window, are shared by the replicas of one hub
and by no other hub, and a Redis that cannot be reached fails rate-limited calls fast with a 503 (audited),
while calls without a rate limit go on."""

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from hub.db import Database
from hub.errors import ServiceUnavailable
from hub.models import RateCount
from hub.rates import RedisRates
from scopes import RateLimit, RateUsage
from tests.harness import REDIS_URL, Hub, Sandbox, free_port, inside_one_minute_window, postgres_database, run_hub
from tests.security.leaks import no_secret_anywhere

SEARCH = "/v1/tools/hubspot_contacts_search/call"
READ = RateLimit("crm", "crm.contacts.read", 100, 1000)
DEALS = RateLimit("crm", "crm.deals.read", None, 50)
RACING = 500


@pytest.fixture
def store() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # the machine's Redis must run: .ci/run starts it
    yield client
    client.close()


def _keys(store: redis.Redis, prefix: str) -> dict[str, int]:
    """Every counter under `prefix`, by key, with its time to live in seconds."""
    return {key.decode(): int(store.ttl(key)) for key in store.scan_iter(match=f"{prefix}:*")}


def _count_all(
    rates: RedisRates, asks: list[tuple[int, tuple[RateLimit, ...]]]
) -> list[dict[tuple[str, str], RateUsage]]:
    async def go() -> list[dict[tuple[str, str], RateUsage]]:
        rates.start()
        try:
            return await asyncio.gather(*(rates.count(agent, limits) for agent, limits in asks))
        finally:
            await rates.stop()

    return asyncio.run(go())


def test_racing_calls_get_distinct_counts_whose_keys_expire_with_their_window(store: redis.Redis) -> None:
    rates = RedisRates(REDIS_URL, secrets.token_bytes(32))
    inside_one_minute_window(5)
    # More calls at once than a connection pool would hold: they share pipelines, not connections.
    counted = _count_all(rates, [(1, (READ,))] * RACING + [(2, (READ, DEALS))] * 10)
    try:
        first, second = counted[:RACING], counted[RACING:]
        minutes, days = sorted(u[READ.key].minute for u in first), sorted(u[READ.key].day for u in first)
        assert minutes == days == list(range(1, RACING + 1))
        for key in (READ.key, DEALS.key):
            assert sorted(u[key].minute for u in second) == list(range(1, 11))
        assert all(0 < u[READ.key].minute_resets_in <= 60 for u in first)
        keys = _keys(store, rates.prefix)
        assert len(keys) == 2 + 4  # agent 1: a minute and a day; agent 2: both, for each of two scopes
        for key, ttl in keys.items():
            period_seconds = 60 if ":m:" in key else 86_400
            assert period_seconds < ttl <= period_seconds + 60, (key, ttl)
    finally:
        store.delete(*_keys(store, rates.prefix))


def test_replicas_of_one_hub_share_counters_and_other_hubs_do_not(store: redis.Redis) -> None:
    secret = secrets.token_bytes(32)
    one, two, other = RedisRates(REDIS_URL, secret), RedisRates(REDIS_URL, secret), RedisRates(REDIS_URL, b"x" * 32)
    inside_one_minute_window(5)
    try:
        assert sorted(u[READ.key].minute for u in _count_all(one, [(1, (READ,))] * 2)) == [1, 2]
        assert [u[READ.key].minute for u in _count_all(two, [(1, (READ,))])] == [3]
        assert [u[READ.key].minute for u in _count_all(other, [(1, (READ,))])] == [1]
        assert one.prefix == two.prefix != other.prefix
    finally:
        for rates in (one, other):
            store.delete(*_keys(store, rates.prefix))


def test_an_unreachable_redis_fails_the_count_fast_with_503() -> None:
    rates = RedisRates(f"redis://127.0.0.1:{free_port()}/0", secrets.token_bytes(32))
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as refused:
        _count_all(rates, [(1, (READ,))])
    assert time.monotonic() - started < 2 and refused.value.status == 503
    assert "127.0.0.1" not in refused.value.problem()["detail"]


# A Redis database of its own for the two replicas, so the test can see every counter they made.
REPLICAS_REDIS_URL = urlsplit(REDIS_URL)._replace(path="/3").geturl()


@pytest.fixture
def redis_replicas(tmp_path: Path, hubspot: Sandbox) -> Iterator[tuple[Hub, Hub, str]]:
    """Two replicas on one PostgreSQL database with their rate counters in Redis, as docs/deploy.md runs them."""
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        env = {"SWITCHBOARD_REDIS_URL": REPLICAS_REDIS_URL}
        first = stack.enter_context(
            run_hub(tmp_path / "a", database_url, providers={"hubspot": hubspot}, extra_env=env)
        )
        first.connect("hubspot", "crm", "crm.contacts.read")
        env |= {
            "SWITCHBOARD_MASTER_KEYS": (first.data_dir / "master.key").read_text().strip().replace("\n", ","),
            "SWITCHBOARD_ADMIN_TOKEN": first.admin_token,
        }
        second = stack.enter_context(
            run_hub(tmp_path / "b", database_url, providers={"hubspot": hubspot}, extra_env=env)
        )
        yield first, second, database_url


def test_two_replicas_count_against_one_limit_in_redis_not_the_database(
    redis_replicas: tuple[Hub, Hub, str], hubspot: Sandbox
) -> None:
    first, second, database_url = redis_replicas
    store = redis.Redis.from_url(REPLICAS_REDIS_URL)
    store.delete(*store.scan_iter(), "-")
    key = first.create_agent("bot")
    first.grant("bot", "crm", "crm.contacts.read", {"rate": {"per_minute": 3}})
    inside_one_minute_window()
    with first.agent(key) as one, second.agent(key) as other:
        deadline = time.monotonic() + 5
        while (answer := other.post(SEARCH, json={"arguments": {"limit": 5}})).status_code != 200:
            assert time.monotonic() < deadline, answer.text  # the grant reaches the second replica (counts: 1)
            time.sleep(0.02)
        assert [a.post(SEARCH, json={"arguments": {"limit": 5}}).status_code for a in (one, other)] == [200, 200]
        before = hubspot.stats()["api_requests"]
        limited = one.post(SEARCH, json={"arguments": {"limit": 5}})
        assert limited.status_code == 429 and limited.json()["type"] == "rate_limited"
        assert other.post(SEARCH, json={"arguments": {"limit": 5}}).status_code == 429
        assert hubspot.stats()["api_requests"] == before
    db = Database(database_url)
    try:
        assert db.run_sync(lambda s: s.query(RateCount).count()) == 0  # the database counted nothing
    finally:
        db.dispose()
    try:
        counters = {key.decode().split(":", 2)[2]: int(store.get(key) or 0) for key in store.scan_iter()}
    finally:
        store.delete(*store.scan_iter(), "-")
        store.close()
    # The five calls: agent 1's minute and day counters, under the hub's own prefix.
    minute, day = int(time.time() // 60), int(time.time() // 86_400)
    assert counters == {f"1:crm:crm.contacts.read:m:{minute}": 5, f"1:crm:crm.contacts.read:d:{day}": 5}


def test_with_redis_down_rate_limited_calls_answer_503_and_others_run(tmp_path: Path, hubspot: Sandbox) -> None:
    password = secrets.token_urlsafe(16)
    env = {"SWITCHBOARD_REDIS_URL": f"redis://:{password}@127.0.0.1:{free_port()}/0"}
    with run_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}", providers={"hubspot": hubspot}, extra_env=env) as hub:
        hub.secrets.add(password)
        hub.connect("hubspot", "crm", "crm.contacts.read")
        limited_key, free_key = hub.create_agent("limited"), hub.create_agent("free")
        hub.grant("limited", "crm", "crm.contacts.read", {"rate": {"per_minute": 100}})
        hub.grant("free", "crm", "crm.contacts.read")
        with hub.agent(limited_key) as limited, hub.agent(free_key) as free:
            started = time.monotonic()
            refused = limited.post(SEARCH, json={"arguments": {"limit": 5}})
            assert time.monotonic() - started < 3
            assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "service_unavailable" and "Retry-After" in refused.headers
            assert free.post(SEARCH, json={"arguments": {"limit": 5}}).status_code == 200
        with hub.admin() as admin:
            audit = admin.get("/admin/api/audit", params={"agent": "limited", "limit": 5}).json()
        assert [(r["status"], r["problem"]) for r in audit] == [(503, "service_unavailable")]
        assert "Redis is unreachable" in hub.process.log_path.read_text()
        no_secret_anywhere(hub, {password})  # database, logs, exports, metrics, error bodies
