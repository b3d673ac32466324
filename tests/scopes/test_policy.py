from scopes import GrantView, decide, tools_allowed

CATALOG = [
    ("hubspot_contacts_search", "hubspot", ("crm.contacts.read",)),
    ("hubspot_contacts_create", "hubspot", ("crm.contacts.write",)),
    ("slack_messages_post", "slack", ("messaging.chat.send",)),
]


def _grant(connection: str, scope: str, provider: str = "hubspot") -> GrantView:
    return GrantView(connection=connection, provider=provider, scope=scope)


def test_no_grants_allow_nothing() -> None:
    assert tools_allowed(CATALOG, []) == {}
    decision = decide(tool="t", provider="hubspot", needed=["crm.contacts.read"], grants=[], connection=None)
    assert not decision.allowed and decision.reason == "scope_denied"


def test_a_scope_allows_only_its_tools_on_its_connections() -> None:
    grants = [_grant("crm", "crm.contacts.read")]
    assert tools_allowed(CATALOG, grants) == {"hubspot_contacts_search": ["crm"]}


def test_a_grant_on_another_provider_does_not_count() -> None:
    grants = [GrantView("chat", "slack", "crm.contacts.read")]
    assert tools_allowed(CATALOG, grants) == {}


def test_the_single_usable_connection_is_implied() -> None:
    decision = decide(
        tool="t",
        provider="hubspot",
        needed=["crm.contacts.read"],
        grants=[_grant("crm", "crm.contacts.read")],
        connection=None,
    )
    assert decision.allowed and decision.connection == "crm"


def test_several_connections_require_a_choice_and_refuse_a_foreign_one() -> None:
    grants = [_grant("a", "crm.contacts.read"), _grant("b", "crm.contacts.read")]
    ambiguous = decide(tool="t", provider="hubspot", needed=["crm.contacts.read"], grants=grants, connection=None)
    assert not ambiguous.allowed and ambiguous.reason == "invalid_arguments" and "a, b" in ambiguous.detail
    chosen = decide(tool="t", provider="hubspot", needed=["crm.contacts.read"], grants=grants, connection="b")
    assert chosen.allowed and chosen.connection == "b"
    foreign = decide(tool="t", provider="hubspot", needed=["crm.contacts.read"], grants=grants, connection="c")
    assert not foreign.allowed and foreign.reason == "scope_denied"


def test_every_needed_scope_must_be_held_on_the_same_connection() -> None:
    grants = [_grant("a", "crm.contacts.read"), _grant("b", "crm.notes.write")]
    decision = decide(
        tool="t", provider="hubspot", needed=["crm.contacts.read", "crm.notes.write"], grants=grants, connection=None
    )
    assert not decision.allowed
