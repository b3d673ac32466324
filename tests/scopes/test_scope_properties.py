"""Property: no combination of grants, constraints, arguments or approvals allows a tool whose scope is not
granted on the connection the call uses."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from scopes import (
    SCOPES,
    CallFacts,
    FlowContext,
    GrantView,
    SessionState,
    ToolPolicy,
    decide,
    tool_policy,
    tools_allowed,
)

_SOME_SCOPES = sorted(SCOPES)[:8]
_providers = st.sampled_from(["hubspot", "slack"])
_connections = st.sampled_from(["a", "b", "c"])
_constraints = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "channels": st.lists(st.sampled_from(["C1", "C2"]), min_size=1, max_size=2),
            "max_results": st.integers(1, 50),
            "max_amount": st.integers(0, 10_000),
            "approval": st.sampled_from(["always", "amount > 10", "reason == 'x' or amount < 5"]),
            "redact": st.lists(st.sampled_from(["pii.email", "phone"]), max_size=2),
            "rate": st.just({"per_minute": 5}),
        },
    ),
    st.just({"unknown_key": 1}),  # invalid stored constraints
)
_grants = st.lists(
    st.builds(GrantView, _connections, _providers, st.sampled_from(_SOME_SCOPES), _constraints), max_size=8
)
_policies = st.one_of(
    st.just(ToolPolicy()),
    st.builds(
        lambda scopes, sink: tool_policy(
            scopes=scopes, parameters=["limit"], resources={"channel": "channels"}, sink=sink
        ),
        st.lists(st.sampled_from(_SOME_SCOPES), min_size=1, max_size=2),
        st.booleans(),
    ),
)
_arguments = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={"channel": st.sampled_from(["C1", "C3"]), "amount": st.integers(0, 20), "limit": st.integers(1, 99)},
    ),
)


def _holds(grants: list[GrantView], provider: str, connection: str, needed: list[str]) -> bool:
    held = {g.scope for g in grants if g.provider == provider and g.connection == connection}
    return set(needed) <= held


@given(
    grants=_grants,
    provider=_providers,
    needed=st.lists(st.sampled_from(_SOME_SCOPES), min_size=1, max_size=3, unique=True),
    connection=st.none() | _connections,
    policy=_policies,
    arguments=_arguments,
    approved=st.booleans(),
    untrusted=st.booleans(),
)
def test_no_grants_ever_allow_a_tool_whose_scope_is_not_granted(
    grants: list[GrantView],
    provider: str,
    needed: list[str],
    connection: str | None,
    policy: ToolPolicy,
    arguments: dict[str, Any] | None,
    approved: bool,
    untrusted: bool,
) -> None:
    decision = decide(
        tool="t",
        provider=provider,
        needed=needed,
        grants=grants,
        connection=connection,
        policy=policy,
        arguments=arguments,
        facts=CallFacts(amount=3),
        flow=FlowContext({}, b"k"),
        session=SessionState(untrusted=untrusted),
        approved=approved,
    )
    if decision.outcome != "deny":
        assert decision.connection is not None
        assert _holds(grants, provider, decision.connection, needed)
        assert connection in (None, decision.connection)
    if not any(_holds(grants, provider, c, needed) for c in ("a", "b", "c")):
        assert decision.outcome == "deny" and decision.reason == "scope_denied"
        assert [r.rule for r in decision.rules] == ["scope"]


@given(
    grants=_grants,
    tools=st.lists(st.tuples(_providers, st.lists(st.sampled_from(_SOME_SCOPES), min_size=1, max_size=2)), max_size=4),
)
def test_tools_allowed_lists_exactly_the_connections_holding_every_scope(
    grants: list[GrantView], tools: list[tuple[str, list[str]]]
) -> None:
    catalog = [(f"tool{i}", provider, needed) for i, (provider, needed) in enumerate(tools)]
    allowed = tools_allowed(catalog, grants)
    for name, provider, needed in catalog:
        holding = [c for c in ("a", "b", "c") if _holds(grants, provider, c, needed)]
        assert allowed.get(name, []) == holding
