"""connectors.base refuses a wrongly declared tool at import time and turns a right one into a strict schema."""

import importlib
import re
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from connectors import CONNECTORS, TOOLS
from connectors.base import Connector, Manifest, Tool, ToolDefinitionError, tool
from scopes import CallFacts, FactsNeeded

Text = Annotated[str, Field(description="Some text.")]


class Out(BaseModel):
    ok: bool


class _Client:
    def close(self) -> None:
        pass


def _make_client(*, access_token: str, api_base: str, timeout: float) -> _Client:
    return _Client()


def _manifest(scope_map: dict[str, tuple[str, ...]]) -> Manifest:
    return Manifest(
        name="demo",
        display_name="Demo",
        settings_key="demo",
        authorize_url="https://demo.example.com/authorize",
        token_url="https://demo.example.com/token",
        api_base="https://api.demo.example.com",
        scope_map=scope_map,
    )


def _tool_of(func: Any) -> Tool:
    built = func.__switchboard_tool__
    assert isinstance(built, Tool)
    return built


def test_refuses_a_name_outside_the_pattern() -> None:
    with pytest.raises(ToolDefinitionError, match="name must match"):

        @tool(scopes=["crm.contacts.read"])
        async def Lookup(client: _Client, text: Text) -> Out:
            """Look something up."""
            return Out(ok=True)


@pytest.mark.parametrize("annotation", [str, Annotated[str, Field(max_length=5)], Annotated[str, "a note"]])
def test_refuses_a_parameter_without_a_description(annotation: Any) -> None:
    with pytest.raises(ToolDefinitionError, match=r"parameter 'text' needs Field\(description=...\)"):

        @tool(scopes=["crm.contacts.read"])
        async def lookup(client: _Client, text: annotation) -> Out:
            """Look something up."""
            return Out(ok=True)


@pytest.mark.parametrize(("scopes", "message"), [(["crm.unicorns.read"], "unknown scope"), ([], "declares no scope")])
def test_refuses_an_unknown_or_missing_scope(scopes: list[str], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):

        @tool(scopes=scopes)
        async def lookup(client: _Client, text: Text) -> Out:
            """Look something up."""
            return Out(ok=True)


def test_refuses_a_sync_function() -> None:
    with pytest.raises(ToolDefinitionError, match="must be an async function"):

        @tool(scopes=["crm.contacts.read"])  # type: ignore[type-var]
        def lookup(client: _Client, text: Text) -> Out:
            """Look something up."""
            return Out(ok=True)


@pytest.mark.parametrize("returns", [dict, list[Out], None])
def test_refuses_a_return_type_that_is_not_a_model(returns: Any) -> None:
    with pytest.raises(ToolDefinitionError, match="must return a pydantic model"):

        @tool(scopes=["crm.contacts.read"])
        async def lookup(client: _Client, text: Text) -> returns:
            """Look something up."""
            return Out(ok=True)


def test_refuses_a_parameter_named_connection() -> None:
    with pytest.raises(ToolDefinitionError, match="parameter 'connection' is reserved"):

        @tool(scopes=["crm.contacts.read"])
        async def lookup(client: _Client, connection: Annotated[str, Field(description="Which account.")]) -> Out:
            """Look something up."""
            return Out(ok=True)


def test_refuses_a_missing_docstring_and_variadic_parameters() -> None:
    with pytest.raises(ToolDefinitionError, match="needs a docstring"):

        @tool(scopes=["crm.contacts.read"])
        async def lookup(client: _Client, text: Text) -> Out:
            return Out(ok=True)

    with pytest.raises(ToolDefinitionError, match="must be a named parameter"):

        @tool(scopes=["crm.contacts.read"])
        async def find(client: _Client, *texts: Text) -> Out:
            """Find things."""
            return Out(ok=True)


def test_schema_has_descriptions_required_fields_and_no_extra_properties() -> None:
    @tool(scopes=["crm.contacts.read"], labels=["pii.email"])
    async def demo_lookup(
        client: _Client,
        email: Annotated[str, Field(description="Whose record.", max_length=254)],
        limit: Annotated[int, Field(description="How many, 1 to 10.", ge=1, le=10)] = 5,
    ) -> Out:
        """Look a person up by email."""
        return Out(ok=True)

    built = _tool_of(demo_lookup)
    schema = dict(built.input_schema)
    assert built.name == "demo_lookup"
    assert built.description == "Look a person up by email."
    assert (built.scopes, built.labels, built.output_model) == (("crm.contacts.read",), ("pii.email",), Out)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["email"]
    assert "title" not in schema
    assert schema["properties"]["email"]["description"] == "Whose record."
    assert schema["properties"]["email"]["maxLength"] == 254
    limit = schema["properties"]["limit"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 10, 5)
    assert built.input_model.model_validate({"email": "ada@example.com"}).model_dump() == {
        "email": "ada@example.com",
        "limit": 5,
    }
    with pytest.raises(ValidationError):
        built.input_model.model_validate({"email": "ada@example.com", "host": "evil.example.com"})
    with pytest.raises(TypeError):
        built.input_schema["required"] = []  # type: ignore[index]


async def _recipients(client: _Client, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    return CallFacts(resources={"recipients_domain": [f"{arguments.model_dump()['text']}@example.com"]})


def test_refuses_resolved_resources_without_a_facts_resolver() -> None:
    with pytest.raises(ToolDefinitionError, match=r"tool 'demo_reply': resolved_resources \['recipients_domain'\]"):

        @tool(scopes=["messaging.email.send"], resolved_resources=["recipients_domain"])
        async def demo_reply(client: _Client, text: Text) -> Out:
            """Reply to a message."""
            return Out(ok=True)


def test_refuses_a_folder_argument_without_a_facts_resolver() -> None:
    # A file inside an allowed folder is allowed, and only the provider knows which folders hold it.
    with pytest.raises(ToolDefinitionError, match="argument 'file_id' may lie inside an allowed entry of 'folders'"):

        @tool(scopes=["storage.files.read"], resources={"file_id": "folders"})
        async def demo_read(client: _Client, file_id: Text) -> Out:
            """Read a file."""
            return Out(ok=True)


def test_refuses_a_facts_resolver_that_is_not_async() -> None:
    def blocking(client: _Client, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
        return CallFacts()

    with pytest.raises(ToolDefinitionError, match="facts must be an async function"):

        @tool(scopes=["messaging.email.send"], resolved_resources=["recipients_domain"], facts=blocking)  # type: ignore[arg-type]
        async def demo_reply(client: _Client, text: Text) -> Out:
            """Reply to a message."""
            return Out(ok=True)


async def test_resolve_facts_runs_the_resolver_only_when_something_is_needed() -> None:
    @tool(scopes=["messaging.email.send"], resolved_resources=["recipients_domain"], facts=_recipients)
    async def demo_reply(client: _Client, text: Text) -> Out:
        """Reply to a message."""
        return Out(ok=True)

    @tool(scopes=["messaging.email.send"], resources={"text": "recipients_domain"})
    async def demo_send(client: _Client, text: Text) -> Out:
        """Send a message."""
        return Out(ok=True)

    reply, send = _tool_of(demo_reply), _tool_of(demo_send)
    arguments = reply.input_model.model_validate({"text": "grace"})
    needed = FactsNeeded(resources=("recipients_domain",))
    assert reply.facts is _recipients and send.facts is None
    assert await reply.resolve_facts(_Client(), arguments, needed) == CallFacts(
        resources={"recipients_domain": ["grace@example.com"]}
    )
    assert await reply.resolve_facts(_Client(), arguments, FactsNeeded()) == CallFacts()
    assert await send.resolve_facts(_Client(), arguments, needed) == CallFacts()


def test_connector_refuses_a_tool_whose_scope_its_manifest_does_not_serve() -> None:
    @tool(scopes=["crm.deals.read"])
    async def demo_deals(client: _Client, text: Text) -> Out:
        """List deals."""
        return Out(ok=True)

    manifest = _manifest({"crm.contacts.read": ("contacts.read",)})
    with pytest.raises(ToolDefinitionError, match=r"scope 'crm\.deals\.read' is not served by demo"):
        Connector(manifest=manifest, make_client=_make_client, tools=(_tool_of(demo_deals),))


def test_connector_stamps_its_provider_on_each_tool() -> None:
    @tool(scopes=["crm.contacts.read"])
    async def demo_contacts(client: _Client, text: Text) -> Out:
        """List contacts."""
        return Out(ok=True)

    connector = Connector(
        manifest=_manifest({"crm.contacts.read": ("contacts.read",)}),
        make_client=_make_client,
        tools=(_tool_of(demo_contacts),),
    )
    assert [t.provider for t in connector.tools] == ["demo"]


def test_provider_scopes_are_the_minimal_union_sorted() -> None:
    manifest = _manifest(
        {
            "crm.contacts.read": ("contacts.read", "account.read"),
            "crm.contacts.write": ("contacts.write", "contacts.read"),
            "crm.deals.read": ("deals.read",),
        }
    )
    assert manifest.provider_scopes(["crm.contacts.read"]) == ["account.read", "contacts.read"]
    assert manifest.provider_scopes(["crm.contacts.write", "crm.contacts.read"]) == [
        "account.read",
        "contacts.read",
        "contacts.write",
    ]
    assert manifest.provider_scopes([]) == []
    with pytest.raises(KeyError):
        manifest.provider_scopes(["crm.notes.write"])
    hubspot = CONNECTORS["hubspot"].manifest
    assert hubspot.provider_scopes(["crm.contacts.read"]) == ["crm.objects.contacts.read"]


def test_every_registered_connector_loads_with_well_formed_tools() -> None:
    assert CONNECTORS, "no connector is registered"
    names = [t.name for c in CONNECTORS.values() for t in c.tools]
    assert len(names) == len(set(names)) == len(TOOLS), "tool names must be unique across connectors"
    for name, connector in CONNECTORS.items():
        module = importlib.import_module(f"connectors.{name}")
        assert module.CONNECTOR is connector
        assert connector.manifest.name == name
        assert connector.tools, f"{name} has no tools"
        for t in connector.tools:
            assert re.fullmatch(r"[a-z0-9_]{1,64}", t.name), t.name
            assert t.provider == name
            assert set(t.scopes) <= set(connector.manifest.scope_map), t.name
            assert t.input_schema["additionalProperties"] is False, t.name
            for prop, spec in t.input_schema.get("properties", {}).items():
                assert spec.get("description"), f"{t.name}.{prop} has no description"
