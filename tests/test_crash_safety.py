"""Crash safety, on SQLite and PostgreSQL: a replica killed with SIGKILL under load, then restarted, leaves an audit
record for every result an agent received (records are durable before the answer), runs no approved call twice
(not the one it died in, not the ones it had finished), and leaves an audit chain that still verifies.

SIGKILL, not SIGTERM: the process gets no shutdown hook, so nothing held only in memory (a queued audit batch, a
call between its claim and its outcome) is finished on the way out — what the OOM killer or `docker kill` does."""

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.approvals import TERMINAL
from hub.db import Database
from hub.models import Approval
from tests.harness import Hub, Sandbox, run_hub

T = TypeVar("T")
SEARCH = "/v1/tools/hubspot_contacts_search/call"
UPDATE = "/v1/tools/hubspot_contacts_update/call"
# Callers per replica: enough that audit batches are being committed at any moment the kill lands.
KILLED_CALLERS, SURVIVING_CALLERS = 8, 4
# Answers the replica to be killed gives before the kill.
KILL_AFTER = 150


def _kill(hub: Hub) -> None:
    """SIGKILL the hub's process and reap it; the harness's own stop then has nothing left to do."""
    proc = hub.process.proc
    assert proc is not None and proc.poll() is None
    proc.kill()
    assert proc.wait(timeout=10) == -9


def _shared_env(hub: Hub) -> dict[str, str]:
    """What another replica (or this one restarted) needs to open the same hub's secrets: its master keys."""
    keys = (hub.data_dir / "master.key").read_text().strip().replace("\n", ",")
    return {"SWITCHBOARD_MASTER_KEYS": keys}


def _wait(check: Callable[[], bool], timeout: float) -> bool:
    """Poll `check` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    assert _wait(check, timeout), f"timed out waiting for {what}"


def _audit(hub: Hub) -> list[dict[str, Any]]:
    """Every audit record, in chain order, as the (restarted) hub's admin API exports them."""
    with hub.admin() as admin:
        exported = admin.get("/admin/api/audit", params={"format": "json"})
    assert exported.status_code == 200, exported.text
    return [json.loads(line) for line in exported.text.splitlines() if line]


def _assert_chain_intact(hub: Hub) -> int:
    """The chain verifies through the admin API and through the CLI; returns how many records it holds."""
    with hub.admin() as admin:
        verified = admin.get("/admin/api/audit/verify").json()
    assert verified["intact"] is True, verified
    cli = hub.cli("audit", "verify")
    assert cli.returncode == 0 and f"intact: {verified['records']} records" in cli.stdout, cli.stdout + cli.stderr
    records: int = verified["records"]
    return records


@dataclass
class _Caller:
    """What one agent thread saw: each call whose 200 answer arrived whole (and when), and how its calls ended."""

    received: list[tuple[float, str]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    # When and how its last call ended without an answer: ConnectError if it was sent after the kill, another
    # transport error if the kill caught it in flight.
    cut_off: tuple[float, str] | None = None


def _answered(callers: list[_Caller], since: float = 0.0) -> int:
    """How many calls these callers received the answer of, after `since` (time.monotonic)."""
    return sum(1 for caller in callers for at, _ in list(caller.received) if at > since)


def _call_until(url: str, key: str, stop: threading.Event, seen: _Caller) -> None:
    """Call the search tool back to back until `stop`, or until the replica stops answering."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as agent:
        while not stop.is_set():
            try:
                answer = agent.post(SEARCH, json={"arguments": {"limit": 5}})
                # httpx has read the whole body: the agent now holds the result.
                body = answer.json() if answer.status_code == 200 else None
            except httpx.TransportError as exc:
                seen.cut_off = (time.monotonic(), type(exc).__name__)
                return
            if body is None:
                seen.refused.append((answer.status_code, answer.text[:300]))
                continue
            assert body["result"]["contacts"], body
            seen.received.append((time.monotonic(), body["call_id"]))


def test_a_replica_killed_under_load_loses_no_audit_record_of_an_answered_call(
    tmp_path: Path, database_url: str, hubspot: Sandbox
) -> None:
    with run_hub(tmp_path / "a", database_url, providers={"hubspot": hubspot}) as doomed:
        doomed.connect("hubspot", "crm", "crm.contacts.read")
        key = doomed.create_agent("bot")
        doomed.grant("bot", "crm", "crm.contacts.read")
        shared = _shared_env(doomed)
        with run_hub(tmp_path / "b", database_url, providers={"hubspot": hubspot}, extra_env=shared) as survivor:
            with survivor.agent(key) as agent:
                # The new agent's key and grant reach the second replica through the database.
                _until(lambda: agent.post(SEARCH, json={"arguments": {}}).status_code == 200, 30, "the grant")
            stop_doomed, stop_survivor = threading.Event(), threading.Event()
            doomed_seen = [_Caller() for _ in range(KILLED_CALLERS)]
            survivor_seen = [_Caller() for _ in range(SURVIVING_CALLERS)]
            with ThreadPoolExecutor(KILLED_CALLERS + SURVIVING_CALLERS) as pool:
                doomed_runs = [pool.submit(_call_until, doomed.url, key, stop_doomed, seen) for seen in doomed_seen]
                serving = [pool.submit(_call_until, survivor.url, key, stop_survivor, seen) for seen in survivor_seen]
                runs = doomed_runs + serving
                try:
                    # Kill once the replica is well under load (counted, not timed: the machine may be busy).
                    _wait(lambda: _answered(doomed_seen) >= KILL_AFTER or any(r.done() for r in runs), 30)
                    killed_at = time.monotonic()
                    _kill(doomed)
                    # The survivor keeps answering: the dead replica held no lock (the chain head's row lock,
                    # SQLite's write lock) that outlives it.
                    _wait(lambda: _answered(survivor_seen, killed_at) >= 30 or any(r.done() for r in serving), 30)
                finally:
                    stop_doomed.set()
                    stop_survivor.set()
            for run in runs:
                run.result()  # re-raises a failed assertion of a caller thread
            after_kill = _answered(survivor_seen, killed_at)

            with run_hub(tmp_path / "a", database_url, providers={"hubspot": hubspot}, extra_env=shared) as restarted:
                with restarted.agent(key) as agent:
                    again = agent.post(SEARCH, json={"arguments": {}})
                assert again.status_code == 200, again.text  # it serves, and its records chain after the crash
                records = {r["call_id"]: r for r in _audit(restarted)}
                total = _assert_chain_intact(restarted)

    received = [c for seen in doomed_seen + survivor_seen for _, c in seen.received]
    from_doomed = sum(len(seen.received) for seen in doomed_seen)
    cut_off = Counter(seen.cut_off[1] if seen.cut_off else None for seen in doomed_seen)
    in_flight = sum(n for kind, n in cut_off.items() if kind not in (None, "ConnectError"))
    print(
        f"\n{database_url.split(':')[0]}: {from_doomed} answers from the killed replica, "
        f"{len(received) - from_doomed} from the survivor ({after_kill} after the kill), "
        f"{in_flight} calls in flight at the kill ({dict(cut_off)}), {total} audit records "
        f"({total - len(received)} of calls whose answer was not received: set-up, cut off, after the restart)"
    )
    # The kill landed under load, with calls in flight, and every caller of the dead replica saw it (none before).
    assert from_doomed >= KILL_AFTER and in_flight >= 1 and None not in cut_off, cut_off
    assert all(seen.cut_off and seen.cut_off[0] > killed_at for seen in doomed_seen)
    assert all(seen.cut_off is None for seen in survivor_seen), [seen.cut_off for seen in survivor_seen]
    assert after_kill >= 30, "the surviving replica stopped answering when the other one died"
    assert not [r for seen in doomed_seen + survivor_seen for r in seen.refused]
    missing = [c for c in received if c not in records]
    assert not missing, f"{len(missing)} of {len(received)} answered calls have no audit record: {missing[:5]}"
    assert len(set(received)) == len(received)
    assert all(records[c]["status"] == 200 and records[c]["decision"] == "allow" for c in received)
    assert len(records) == total  # one record per call id: none written twice


def _in_database(database_url: str, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction on the hub's database, from outside any hub."""
    db = Database(database_url)
    try:
        return db.run_sync(work)
    finally:
        db.dispose()


def _approval_states(database_url: str) -> Counter[str]:
    return _in_database(database_url, lambda s: Counter(s.scalars(select(Approval.status))))


def _backdate_claims(database_url: str, by: timedelta) -> list[str]:
    """Move the claim time of every running approved call `by` into the past: the stale window (the provider
    deadline plus a minute) has then passed, without the test waiting it out. Returns their call ids."""

    def backdate(session: Session) -> list[str]:
        running = list(session.scalars(select(Approval).where(Approval.status == "running")))
        for approval in running:
            assert approval.claimed_at is not None
            approval.claimed_at -= by
        return [a.call_id for a in running]

    return _in_database(database_url, backdate)


def _updates(hubspot: Sandbox) -> Counter[str]:
    """PATCH requests HubSpot received, by contact path: each held call here updates its own contact."""
    return Counter(path for method, path in hubspot.stats()["requests"] if method == "PATCH")


def test_approved_calls_run_at_most_once_when_the_replica_dies_mid_run(
    tmp_path: Path, database_url: str, hubspot: Sandbox
) -> None:
    with run_hub(tmp_path, database_url, providers={"hubspot": hubspot}) as doomed:
        doomed.connect("hubspot", "crm", "crm.contacts.read,crm.contacts.write")
        key = doomed.create_agent("bot")
        doomed.grant("bot", "crm", "crm.contacts.read")
        doomed.grant("bot", "crm", "crm.contacts.write", {"approval": "always"})
        with doomed.agent(key) as agent:
            contacts = agent.post(SEARCH, json={"arguments": {"limit": 5}}).json()["result"]["contacts"]
            held: dict[str, str] = {}  # call id → the contact it updates
            for n, contact in enumerate(contacts):
                answer = agent.post(UPDATE, json={"arguments": {"contact_id": contact["id"], "jobtitle": f"crash {n}"}})
                assert answer.status_code == 202, answer.text
                held[answer.json()["call_id"]] = contact["id"]
        assert len(held) == 5 and not _updates(hubspot)
        # Each approved update is held two seconds at HubSpot: the kill lands while one of them runs.
        httpx.post(f"{hubspot.url}/_control/fault", json={"kind": "slow", "count": 5, "delay": 2.0}).raise_for_status()
        with doomed.admin() as admin:
            for call_id in held:
                decided = admin.post(f"/admin/api/approvals/{call_id}", json={"approve": True})
                assert decided.status_code == 200, decided.text
        # The first update has run; the second has reached HubSpot and waits there for its answer.
        _until(lambda: sum(_updates(hubspot).values()) == 2, 30, "two approved calls to reach HubSpot")
        _kill(doomed)
        shared = _shared_env(doomed)
    # The fault cleared (the update held at HubSpot still completes there): the restarted hub runs at full speed.
    httpx.post(f"{hubspot.url}/_control/fault", json={"count": 0}).raise_for_status()
    at_kill = _updates(hubspot)
    # What the dead hub left: one call finished, one claimed and cut off mid-run, three approved and unclaimed.
    assert _approval_states(database_url) == {"done": 1, "running": 1, "approved": 3}

    with run_hub(tmp_path, database_url, providers={"hubspot": hubspot}, extra_env=shared) as restarted:
        with restarted.admin() as admin:

            def statuses() -> dict[str, str]:
                listed = admin.get("/admin/api/approvals", params={"status": "all"}).json()
                return {a["call_id"]: a["status"] for a in listed}

            # The restarted hub runs what was approved and not yet claimed; the call the dead hub was running
            # stays `running` through several of its polls (approval_poll is 1 s): never started again.
            _until(lambda: Counter(statuses().values()) == {"done": 4, "running": 1}, 30, "the approved calls")
            time.sleep(2.5)
            assert Counter(statuses().values()) == {"done": 4, "running": 1}
            assert sum(_updates(hubspot).values()) == 5
            [interrupted] = _backdate_claims(database_url, timedelta(hours=1))
            # Past the stale window it fails, with an outcome that says the provider may have acted.
            _until(lambda: statuses()[interrupted] in TERMINAL, 10, "the interrupted call to end")
            views = {call_id: admin.get(f"/admin/api/approvals/{call_id}").json() for call_id in held}
        time.sleep(1.5)  # more polls: nothing runs again
        updates = _updates(hubspot)
        with restarted.agent(key) as agent:
            outcomes = {call_id: agent.get(f"/v1/calls/{call_id}") for call_id in held}
        records = {r["call_id"]: r for r in _audit(restarted)}
        _assert_chain_intact(restarted)

    paths = {call_id: next(p for p in updates if p.endswith(f"/{contact}")) for call_id, contact in held.items()}
    print(
        f"\n{database_url.split(':')[0]}: at the kill {sum(at_kill.values())} approved updates had reached HubSpot "
        f"(1 finished, 1 cut off mid-run, 3 approved and unclaimed); after the restart {sum(updates.values())} "
        f"updates of {len(updates)} contacts"
    )
    # At most once, each: the dead hub's two (one finished, one cut off) are not repeated, the other three run once.
    assert set(updates.values()) == {1} and len(updates) == 5, updates
    assert at_kill[paths[interrupted]] == 1  # the dead hub's call had reached HubSpot: it may have acted
    for call_id, outcome in outcomes.items():
        assert records[call_id]["status"] == 202 and records[call_id]["decision"] == "pending"
        if call_id == interrupted:
            assert outcome.status_code == 502, outcome.text
            assert outcome.json()["type"] == "upstream_error" and "not retried" in outcome.json()["detail"]
            # The dead hub wrote no record of this run; the sweep that failed it did: it may have acted.
            ran = records[views[call_id]["run_call_id"]]
            assert (ran["status"], ran["problem"], ran["decision"]) == (502, "upstream_error", "allow"), ran
        else:
            assert outcome.status_code == 200 and outcome.json()["status"] == "done", outcome.text
            assert outcome.json()["result"]["jobtitle"].startswith("crash ")
            ran = records[views[call_id]["run_call_id"]]  # the run's own record, written before its outcome
            assert ran["status"] == 200 and ran["decision"] == "allow" and ran["tool"] == "hubspot_contacts_update"
