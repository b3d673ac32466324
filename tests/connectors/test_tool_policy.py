"""`@tool` policy metadata: safe inferred defaults for today's tools, and import-time refusal of anything
inconsistent with the signature or the output model."""

from dataclasses import replace
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from connectors import TOOLS
from connectors.base import Tool, ToolDefinitionError, tool
from scopes import CallFacts, FactsNeeded, GrantView, ToolPolicy, decide

Text = Annotated[str, Field(description="Some text.")]
Channel = Annotated[str, Field(description="A channel id.")]


class Item(BaseModel):
    unit_amount: int
    quantity: int = 1
    label: str = ""


class Person(BaseModel):
    id: str
    email: str | None = None
    from_: str | None = Field(default=None, alias="from")


class Page(BaseModel):
    people: list[Person]
    channels: list[str] = []
    owner: Person | None = None


class _Client:
    def close(self) -> None:
        pass


async def _no_facts(client: _Client, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
    return CallFacts()


def _built(func: Any) -> Tool:
    built = func.__switchboard_tool__
    assert isinstance(built, Tool)
    return built


def test_todays_tools_load_with_inferred_defaults() -> None:
    post, search, refund = (
        TOOLS["slack_messages_post"],
        TOOLS["hubspot_contacts_search"],
        TOOLS["stripe_refunds_create"],
    )
    assert post.policy.sink and not post.policy.read_only and post.policy.risk == "low"
    assert not search.policy.sink and search.policy.read_only and search.policy.limit == "limit"
    assert TOOLS["gmail_messages_search"].policy.limit == "max_results"
    assert TOOLS["gdrive_files_list"].policy.limit == "page_size"
    assert refund.policy.risk == "high" and refund.policy.sink
    assert TOOLS["gmail_messages_get"].policy.untrusted


def test_an_unannotated_tool_is_refused_by_an_allow_list_but_not_by_the_scope_alone() -> None:
    # A tool that declares no resources could touch anything: an allow-list must fail closed on it.
    post = replace(TOOLS["slack_messages_post"], policy=ToolPolicy())
    assert not post.policy.annotated
    grants = [GrantView("chat", "slack", "messaging.chat.send", {"channels": ["C1"]})]
    common: dict[str, Any] = {"tool": post.name, "provider": post.provider, "needed": post.scopes, "grants": grants}
    assert decide(**common, connection=None).allowed
    checked = decide(**common, connection=None, policy=post.policy, arguments={"channel": "C1", "text": "hi"})
    assert checked.reason == "constraint_violated"


def test_declared_metadata_is_checked_and_stored() -> None:
    @tool(
        scopes=["payments.invoices.write"],
        labels=["pii.email", "financial"],
        resources={"channel": "channels", "items[].label": "object_ids"},
        result_resources={"people[].id": "object_ids", "channels[]": "channels"},
        resolved_resources=["recipients_domain"],
        facts=_no_facts,
        sink=True,
        risk="high",
        amount="items[].unit_amount*quantity",
        currency="currency",
        amount_unit="major",
        limit="size",
        properties=["channel"],
        label_fields={"pii.email": ["people[].email", "from", "owner.email"]},
    )
    async def demo_invoice(
        client: _Client,
        channel: Channel,
        items: Annotated[list[Item], Field(description="Lines.")],
        currency: Annotated[str | None, Field(description="Currency.")] = None,
        size: Annotated[int, Field(description="Page size.")] = 10,
    ) -> Page:
        """Make an invoice."""
        return Page(people=[])

    policy = _built(demo_invoice).policy
    assert policy.resources == {"channel": "channels", "items[].label": "object_ids"}
    assert policy.amount == "items[].unit_amount*quantity" and policy.amount_unit == "major"
    assert policy.label_fields == {"pii.email": ("people[].email", "from", "owner.email")}
    assert policy.touches("recipients_domain") and policy.limit == "size" and policy.properties == ("channel",)


def test_resources_may_be_declared_empty_for_a_tool_touching_none() -> None:
    @tool(scopes=["messaging.chat.read"], resources={})
    async def demo_lookup(client: _Client, text: Text) -> Page:
        """Look up."""
        return Page(people=[])

    assert _built(demo_lookup).policy.annotated


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"resources": {"chanel": "channels"}}, "resources: argument path 'chanel'.*no field 'chanel'"),
        ({"resources": {"channel": "rooms"}}, "unknown allow-list 'rooms'"),
        ({"resources": {"channel.id": "channels"}}, "'id' is not inside an object"),
        ({"resources": {"channel[x]": "channels"}}, "resources: path 'channel\\[x\\]'"),
        ({"result_resources": {"people.id": "object_ids"}}, "'people' is not a list|names no list"),
        ({"result_resources": {"owner.id": "object_ids"}}, "names no list to filter"),
        ({"result_resources": {"people[].name": "object_ids"}}, "Person has no field 'name'"),
        ({"result_resources": {"owner[].id": "object_ids"}}, "'owner' is not a list"),
        ({"resolved_resources": ["rooms"]}, "unknown allow-list 'rooms'"),
        ({"amount": "channel"}, "amount: 'channel' is not a number"),
        ({"amount": "items[].unit_amount*qty"}, "Item has no field 'qty'"),
        ({"amount": "items[].unit_amount*label"}, "factor 'label' is not a number"),
        ({"amount": "total"}, "no field 'total'"),
        ({"currency": "count"}, "currency: argument 'count' is not a string"),
        ({"limit": "size"}, "limit: 'size' is not a parameter"),
        ({"properties": ["email"]}, "properties: 'email' is not a parameter"),
        ({"label_fields": {"pii.phone": ["people[].email"]}}, "'pii.phone' is not one of the tool's labels"),
        ({"label_fields": {"pii.email": ["people[].mail"]}}, "Person has no field 'mail'"),
        ({"label_fields": {"pii.email": ["mail"]}}, "no field 'mail' anywhere in Page"),
        ({"label_fields": {"pii.email": "email"}}, "must be a list"),
        ({"risk": "medium"}, "risk must be 'low' or 'high'"),
        ({"amount_unit": "cents"}, "amount_unit must be"),
    ],
)
def test_inconsistent_metadata_fails_at_import(metadata: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):

        @tool(scopes=["payments.invoices.write"], labels=["pii.email"], **metadata)
        async def demo_bad(
            client: _Client,
            channel: Channel,
            items: Annotated[list[Item], Field(description="Lines.")],
            count: Annotated[int, Field(description="How many.")] = 1,
        ) -> Page:
            """Do it."""
            return Page(people=[])


def test_an_unknown_data_label_fails_at_import() -> None:
    with pytest.raises(ToolDefinitionError, match=r"unknown data label 'pii\.shoe_size'"):

        @tool(scopes=["crm.contacts.read"], labels=["pii.shoe_size"])
        async def demo_shoes(client: _Client, text: Text) -> Page:
            """Shoes."""
            return Page(people=[])
