"""The policy snapshot holds exactly the live policy, and sharing identical grants between agents changes
nothing an agent sees."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from connectors import TOOLS
from hub.agents import bump_revision
from hub.db import Database, migrate
from hub.models import Agent, AgentKey, Connection, FlowRule, Grant, utcnow
from hub.policy_cache import ConnectionInfo, Snapshot, _load
from scopes import GrantView, tools_allowed

LIMITED = {"max_results": 50, "redact": ["pii.email"]}
TIGHTER = {"max_results": 10}
INVALID = {"bogus": 1}
LATER = utcnow().replace(microsecond=0) + timedelta(days=30)


def _policy(session: Session) -> None:
    crm_a, crm_b = Connection(name="crm-a", provider="hubspot"), Connection(name="crm-b", provider="hubspot")
    old = Connection(name="crm-old", provider="hubspot", status="revoked", token_version=3)
    alpha, beta, gamma = Agent(name="alpha"), Agent(name="beta"), Agent(name="gamma", untrusted_policy="refuse")
    idle, off = Agent(name="idle"), Agent(name="off", disabled_at=utcnow())
    session.add_all([crm_a, crm_b, old, alpha, beta, gamma, idle, off])
    session.flush()

    def grant(agent: Agent, connection: Connection, scope: str, constraints: dict[str, Any]) -> Grant:
        return Grant(agent_id=agent.id, connection_id=connection.id, scope=scope, constraints=constraints)

    # alpha and beta hold the same grants (in the same order, not sorted); gamma's contacts.read on crm-a is
    # tighter, its crm-old grant is on a revoked connection.
    for agent in (alpha, beta):
        session.add_all(
            [
                grant(agent, crm_b, "crm.contacts.read", {}),
                grant(agent, crm_a, "crm.contacts.read", LIMITED),
                grant(agent, crm_a, "crm.contacts.write", INVALID),
            ]
        )
        session.flush()
    session.add_all(
        [
            grant(gamma, crm_a, "crm.contacts.read", TIGHTER),
            grant(gamma, old, "crm.deals.read", {}),
            grant(off, crm_a, "crm.contacts.read", {}),
        ]
    )
    session.add_all(
        [
            AgentKey(agent_id=alpha.id, key_hash="a" * 64, hint="a"),
            AgentKey(agent_id=alpha.id, key_hash="r" * 64, hint="r", revoked_at=utcnow()),
            AgentKey(agent_id=beta.id, key_hash="b" * 64, hint="b", expires_at=LATER),
            AgentKey(agent_id=gamma.id, key_hash="g" * 64, hint="g"),
            AgentKey(agent_id=off.id, key_hash="o" * 64, hint="o"),
        ]
    )
    session.flush()
    session.add_all(
        [
            FlowRule(agent_id=alpha.id, label="pii", target="crm.contacts.write"),
            FlowRule(agent_id=gamma.id, label="internal", target="hubspot_notes_create"),
            FlowRule(agent_id=alpha.id, label="internal", target="hubspot_notes_create"),
        ]
    )
    bump_revision(session)


@pytest.fixture
def snapshot(database_url: str) -> Snapshot:
    migrate(database_url)
    db = Database(database_url)
    try:
        db.run_sync(_policy)
        return db.run_sync(_load)
    finally:
        db.dispose()


def _ids(snapshot: Snapshot) -> dict[str, int]:
    return {a.name: a.id for a in snapshot.agents.values()}


def test_the_snapshot_holds_live_agents_keys_connections_and_flow_rules(snapshot: Snapshot) -> None:
    ids = _ids(snapshot)
    assert snapshot.revision == 1
    assert set(ids) == {"alpha", "beta", "gamma", "idle"}  # "off" is disabled
    assert snapshot.keys == {
        "a" * 64: (ids["alpha"], None),
        "b" * 64: (ids["beta"], LATER),
        "g" * 64: (ids["gamma"], None),
    }
    assert {name: (c.provider, c.status, c.token_version) for name, c in snapshot.connections.items()} == {
        "crm-a": ("hubspot", "active", 0),
        "crm-b": ("hubspot", "active", 0),
        "crm-old": ("hubspot", "revoked", 3),
    }
    assert all(isinstance(c, ConnectionInfo) and c.name == name for name, c in snapshot.connections.items())
    alpha, gamma = snapshot.agents[ids["alpha"]], snapshot.agents[ids["gamma"]]
    assert alpha.flow_rules == (("pii", "crm.contacts.write"), ("internal", "hubspot_notes_create"))
    assert gamma.flow_rules == (("internal", "hubspot_notes_create"),)
    assert (alpha.untrusted_policy, gamma.untrusted_policy) == ("approve", "refuse")


def test_agents_with_identical_grants_see_the_same_grants_and_tools(snapshot: Snapshot) -> None:
    ids = _ids(snapshot)
    alpha, beta = snapshot.agents[ids["alpha"]], snapshot.agents[ids["beta"]]
    assert alpha.grants == (
        GrantView("crm-b", "hubspot", "crm.contacts.read", {}),
        GrantView("crm-a", "hubspot", "crm.contacts.read", LIMITED),
        GrantView("crm-a", "hubspot", "crm.contacts.write", INVALID),
    )
    assert beta.grants == alpha.grants
    assert alpha.grants[1].parsed is not None and alpha.grants[1].parsed.max_results == 50
    assert alpha.grants[2].parsed is None and "bogus" in (alpha.grants[2].invalid or "")
    catalog = [(t.name, t.provider, t.scopes) for t in TOOLS.values()]
    for agent in (alpha, beta):
        assert agent.tools == tools_allowed(catalog, agent.grants)
        assert agent.tools["hubspot_contacts_get"] == ["crm-a", "crm-b"]
        assert agent.tools["hubspot_contacts_create"] == ["crm-a"]
        assert "hubspot_deals_get" not in agent.tools


def test_a_different_constraint_or_a_revoked_connection_is_not_shared(snapshot: Snapshot) -> None:
    ids = _ids(snapshot)
    alpha, gamma, idle = (snapshot.agents[ids[name]] for name in ("alpha", "gamma", "idle"))
    # gamma's crm-old grant is gone (revoked connection); its contacts.read keeps its own constraints.
    assert gamma.grants == (GrantView("crm-a", "hubspot", "crm.contacts.read", TIGHTER),)
    assert gamma.grants[0] is not alpha.grants[1]
    assert gamma.grants[0].parsed is not None and gamma.grants[0].parsed.max_results == 10
    assert alpha.grants[1].constraints == LIMITED
    assert gamma.tools == {"hubspot_contacts_search": ["crm-a"], "hubspot_contacts_get": ["crm-a"]}
    assert idle.grants == () and idle.tools == {}


def test_constraints_and_tools_are_read_only(snapshot: Snapshot) -> None:
    alpha = snapshot.agents[_ids(snapshot)["alpha"]]
    with pytest.raises(TypeError):
        alpha.grants[1].constraints["max_results"] = 1000  # type: ignore[index]
    with pytest.raises(TypeError):
        alpha.tools["hubspot_deals_get"] = ["crm-a"]  # type: ignore[index]
