"""Each grant constraint both allows and refuses, over REST and over MCP, and a refused call never reaches the
provider: allow-lists on arguments, lists filtered to the allow-list, max_results clamps, max_amount and
currency, allowed_properties, redact and rate, against one hub with the Slack, Google, HubSpot and Stripe
sandboxes as real processes on loopback, on SQLite and PostgreSQL.

One hub per database serves the whole module: every test makes its own agent, so grants and rate windows
never meet. Arguments, expected requests and results name sandbox ids as `$ada`, `$cus_ada`, … (`World.ids`,
looked up once through an agent whose grants have no constraints) and `$email` for a fresh address."""

import asyncio
import fnmatch
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import pytest

from connectors import TOOLS
from scopes.flow import MASK
from tests.harness import Hub, Sandbox, inside_one_minute_window, mcp_session, postgres_database, run_hub, run_sandbox

VIAS = ["rest", "mcp"]
# provider → (the connection's name, the hub scopes it is connected for)
CONNECTIONS = {
    "slack": ("chat", "messaging.chat.read,messaging.chat.send"),
    "google_drive": ("drive", "storage.files.read,storage.files.write"),
    "gmail": ("mail", "messaging.email.read,messaging.email.send"),
    "hubspot": ("crm", "crm.contacts.read,crm.contacts.write,crm.deals.read,crm.deals.write"),
    "stripe": (
        "pay",
        "payments.customers.read,payments.charges.read,payments.refunds.write,"
        "payments.invoices.read,payments.invoices.write",
    ),
}
SANDBOX_OF = {"slack": "slack", "google_drive": "google", "gmail": "google", "hubspot": "hubspot", "stripe": "stripe"}


# --- calling the hub: REST and MCP give the same Answer ------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A call's outcome: HTTP status (an MCP error's problem status), and the body or problem JSON."""

    status: int
    body: dict[str, Any]
    retry_after: str | None = None

    @property
    def type(self) -> str | None:
        return self.body.get("type") if self.status >= 400 else None

    @property
    def result(self) -> Any:
        assert self.status == 200, self.body
        return self.body["result"]


def _rest(hub: Hub, key: str, tool: str, arguments: dict[str, Any]) -> Answer:
    with hub.agent(key) as agent:
        answer = agent.post(f"/v1/tools/{tool}/call", json={"arguments": arguments})
    return Answer(answer.status_code, answer.json(), answer.headers.get("retry-after"))


async def _mcp_call(hub: Hub, key: str, tool: str, arguments: dict[str, Any]) -> Answer:
    async with mcp_session(hub, key) as session:
        called = await session.call_tool(tool, arguments)
    (content,) = called.content
    assert isinstance(content, types.TextContent)
    body: dict[str, Any] = json.loads(content.text)
    if called.is_error:
        return Answer(body["status"], body)
    assert called.structured_content == body
    return Answer(200, body)


def _mcp(hub: Hub, key: str, tool: str, arguments: dict[str, Any]) -> Answer:
    return asyncio.run(_mcp_call(hub, key, tool, arguments))


class Watch:
    """The requests a sandbox receives from now on (its control endpoints left out)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        stats = sandbox.stats()
        self._counted, self._logged = stats["api_requests"], len(stats["requests"])

    def requests(self) -> list[tuple[str, str]]:
        stats = self.sandbox.stats()
        new = [(m, p) for m, p in stats["requests"][self._logged :] if not p.startswith("/_control/")]
        assert stats["api_requests"] - self._counted == len(new), new  # nothing but API requests
        return new


@dataclass
class World:
    hub: Hub
    sandboxes: dict[str, Sandbox]
    ids: dict[str, str] = field(default_factory=dict)
    probe: str = ""  # an agent granted every scope without constraints

    def agent(self, tool: str, constraints: dict[str, Any]) -> str:
        """A new agent granted every scope `tool` needs, each with `constraints`."""
        name = f"bot-{uuid.uuid4().hex[:10]}"
        key = self.hub.create_agent(name)
        spec = TOOLS[tool]
        for scope in spec.scopes:
            self.hub.grant(name, CONNECTIONS[spec.provider][0], scope, self.fill(constraints))
        return key

    def call(self, via: str, key: str, tool: str, arguments: dict[str, Any]) -> Answer:
        return (_rest if via == "rest" else _mcp)(self.hub, key, tool, self.fill(arguments))

    def watch(self, tool: str) -> Watch:
        return Watch(self.sandboxes[SANDBOX_OF[TOOLS[tool].provider]])

    def fill(self, value: Any) -> Any:
        """`value` with `$name` strings (or `$name` parts of paths) replaced by the sandbox ids."""
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.fill(v) for v in value)
        if isinstance(value, str) and "$" in value:
            if value == "$email":
                return f"agent.{uuid.uuid4().hex[:10]}@example.com"
            return re.sub(r"\$(\w+)", lambda m: self.ids[m[1]], value)
        return value


def _matches(actual: Any, expected: Any) -> bool:
    """`expected` is part of `actual`: its keys match, each of its list items matches some item of the list."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _matches(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(_matches(a, e) for a in actual) for e in expected)
    return bool(actual == expected)


def _ok(world: World, tool: str, **arguments: Any) -> Any:
    return world.call("rest", world.probe, tool, arguments).result


def _discover(world: World) -> None:
    contacts = _ok(world, "hubspot_contacts_search", limit=100)["contacts"]
    world.ids |= {c["firstname"].lower(): c["id"] for c in contacts if c["firstname"] in ("Ada", "Grace", "Alan")}
    for name, email in (("ada", "ada@analytical-engines.example.com"), ("grace", "grace@navy.example.com")):
        (customer,) = _ok(world, "stripe_customers_search", query=f"email:'{email}'")["customers"]
        world.ids[f"cus_{name}"] = customer["id"]
    charges = _ok(world, "stripe_charges_list", customer=world.ids["cus_ada"], limit=100)["charges"]
    world.ids["ch_ada"] = next(c["id"] for c in charges if c["status"] == "succeeded")
    root = _ok(world, "gdrive_files_list", folder_id="root")["files"]
    world.ids["projects"] = next(f["id"] for f in root if f["name"] == "Projects")
    # An invoice with two lines, for redaction inside nested lists.
    lines = [{"description": "Consulting, March", "unit_amount": 15000}, {"description": "Travel", "unit_amount": 2300}]
    _ok(world, "stripe_invoices_create", customer=world.ids["cus_grace"], items=lines)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"rules-{request.param}")
    with pytest.MonkeyPatch.context() as env:
        # As conftest's autouse fixture does per test: a developer's shell settings must not reach the hub.
        for name in [n for n in os.environ if n.startswith("SWITCHBOARD_") and n != "SWITCHBOARD_TEST_PG"]:
            env.delenv(name)
        database = postgres_database() if request.param == "postgresql" else nullcontext(f"sqlite:///{tmp}/hub.db")
        with (
            database as database_url,
            run_sandbox("slack", tmp) as slack,
            run_sandbox("google_drive", tmp) as google,
            run_sandbox("hubspot", tmp) as hubspot,
            run_sandbox("stripe", tmp) as stripe,
        ):
            sandboxes = {"slack": slack, "google": google, "hubspot": hubspot, "stripe": stripe}
            providers = {provider: sandboxes[SANDBOX_OF[provider]] for provider in CONNECTIONS}
            with run_hub(tmp, database_url, providers=providers) as hub:
                world = World(hub, sandboxes)
                world.probe = hub.create_agent("probe")
                for provider, (connection, scopes) in CONNECTIONS.items():
                    assert hub.connect(provider, connection, scopes).status_code == 303
                    for scope in scopes.split(","):
                        hub.grant("probe", connection, scope)
                _discover(world)
                yield world


# --- argument rules: one call allowed, others refused before the provider ------------------------------------


@dataclass(frozen=True)
class Rule:
    constraints: dict[str, Any]
    tool: str
    refused: tuple[tuple[dict[str, Any], tuple[str, ...]], ...]  # arguments, and what the detail names
    allowed: dict[str, Any] | None = None
    requests: tuple[tuple[str, str], ...] = ()  # what the provider receives for the allowed call (paths: fnmatch)
    result: dict[str, Any] = field(default_factory=dict)  # part of the allowed call's result
    # Reads the hub may make at the provider to decide (a folder's parents, a charge's currency), even for a
    # call it then refuses: never the call itself.
    lookups: tuple[tuple[str, str], ...] = ()
    bug: str | None = None  # the hub does not do this yet: xfail(strict=True)

    @property
    def id(self) -> str:
        return f"{'+'.join(self.constraints)}-{self.tool}"


def refuse(arguments: dict[str, Any], *named: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    return arguments, named


PROJECTS = "$projects"
_MAIL = {"subject": "Minutes", "body": "Attached."}
_SEATS = {"description": "Seats", "unit_amount": 2500}
_CHARGE = ("GET", "/v1/charges/$ch_ada")  # the refunded charge's customer, amount and currency
RULES = [
    Rule(
        constraints={"channels": ["C0GENERAL1"]},
        tool="slack_messages_post",
        allowed={"channel": "C0GENERAL1", "text": "Stand-up notes are in the doc."},
        requests=(("POST", "/api/chat.postMessage"),),
        result={"channel": "C0GENERAL1", "text": "Stand-up notes are in the doc."},
        # The app is a member of #random: only the grant stands in the way.
        refused=(refuse({"channel": "C0RANDOM01", "text": "hello"}, "channels", "C0RANDOM01"),),
    ),
    Rule(
        constraints={"recipients_domain": ["example.com"]},
        tool="gmail_messages_send",
        allowed={"to": ["grace@example.com", "alan@EXAMPLE.com"], **_MAIL},
        requests=(("POST", "/gmail/v1/users/me/messages/send"),),
        result={"labels": ["SENT"]},
        refused=(
            refuse({"to": ["eve@example.org"], **_MAIL}, "recipients_domain", "eve@example.org"),
            refuse({"to": ["grace@example.com", "eve@example.org"], **_MAIL}, "recipients_domain", "eve@example.org"),
            refuse({"to": ["grace@example.com"], "bcc": ["eve@example.org"], **_MAIL}, "recipients_domain", "'bcc'"),
            refuse({"to": ["ada@mail.example.com"], **_MAIL}, "recipients_domain"),  # no '*.': no subdomains
        ),
    ),
    Rule(
        constraints={"object_ids": ["$ada"]},
        tool="hubspot_contacts_get",
        allowed={"contact_id": "$ada"},
        requests=(("GET", "/crm/v3/objects/contacts/$ada"),),
        result={"id": "$ada", "firstname": "Ada", "lastname": "Lovelace"},
        refused=(refuse({"contact_id": "$grace"}, "object_ids", "'$grace'"),),
    ),
    Rule(
        constraints={"pipelines": ["default"]},
        tool="hubspot_deals_create",
        allowed={"dealname": "Pilot", "dealstage": "appointmentscheduled", "pipeline": "default", "amount": 900},
        requests=(("POST", "/crm/v3/objects/deals"),),
        result={"dealname": "Pilot", "pipeline": "default", "dealstage": "appointmentscheduled", "amount": 900},
        refused=(
            refuse({"dealname": "Renewal", "dealstage": "1203582", "pipeline": "1203581"}, "pipelines", "'1203581'"),
        ),
    ),
    Rule(
        constraints={"customers": ["$cus_ada"]},
        tool="stripe_customers_get",
        allowed={"customer_id": "$cus_ada"},
        requests=(("GET", "/v1/customers/$cus_ada"),),
        result={"id": "$cus_ada", "name": "Ada Lovelace"},
        refused=(refuse({"customer_id": "$cus_grace"}, "customers", "'$cus_grace'"),),
    ),
    Rule(
        constraints={"folders": [PROJECTS]},
        tool="gdrive_files_list",
        allowed={"folder_id": PROJECTS},
        requests=(("GET", "/drive/v3/files"),),
        result={"files": [{"name": "Launch plan", "parents": [PROJECTS]}, {"name": "Archive", "is_folder": True}]},
        refused=(refuse({"folder_id": "root"}, "folders", "'root'"),),
        lookups=(("GET", "/drive/v3/files/*"),),  # is My Drive inside an allowed folder? (no)
    ),
    Rule(
        constraints={"folders": [PROJECTS]},
        tool="gdrive_folders_create",
        allowed={"name": "Agent output", "parent_id": PROJECTS},
        requests=(("POST", "/drive/v3/files"),),
        result={"name": "Agent output", "is_folder": True, "parents": [PROJECTS]},
        refused=(refuse({"name": "Agent output"}, "folders", "'root'"),),  # parent_id defaults to My Drive
        lookups=(("GET", "/drive/v3/files/*"),),
    ),
    Rule(
        constraints={"max_amount": 1000},
        tool="stripe_refunds_create",
        allowed={"charge": "$ch_ada", "amount": 700},
        requests=(("POST", "/v1/refunds"),),
        result={"amount": 700, "currency": "usd", "charge": "$ch_ada", "status": "succeeded"},
        refused=(refuse({"charge": "$ch_ada", "amount": 1001}, "max_amount", "1001"),),
    ),
    Rule(
        constraints={"max_amount": 1000, "currency": "usd"},
        tool="stripe_refunds_create",
        allowed={"charge": "$ch_ada", "amount": 700},
        requests=(_CHARGE, ("POST", "/v1/refunds")),
        result={"amount": 700, "currency": "usd", "charge": "$ch_ada", "status": "succeeded"},
        refused=(
            refuse({"charge": "$ch_ada", "amount": 1001}, "max_amount", "1001"),
            refuse({"charge": "$ch_ada"}, "max_amount", "exceeds"),  # a full refund: all that is left of 4900
        ),
        lookups=(_CHARGE,),
    ),
    # The refund names no currency: the hub learns the charge's from Stripe.
    Rule(
        constraints={"currency": "eur"},
        tool="stripe_refunds_create",
        refused=(refuse({"charge": "$ch_ada", "amount": 700}, "currency", "'usd'"),),
        lookups=(_CHARGE,),
    ),
    Rule(
        constraints={"max_amount": 50000, "currency": ["usd"]},
        tool="stripe_invoices_create",
        allowed={"customer": "$cus_ada", "currency": "usd", "items": [{**_SEATS, "quantity": 4}]},
        requests=(("POST", "/v1/invoices"), ("POST", "/v1/invoiceitems"), ("GET", "/v1/invoices/in_*")),
        result={"status": "draft", "total": 10000, "currency": "usd", "customer": "$cus_ada"},
        refused=(
            refuse({"customer": "$cus_ada", "currency": "eur", "items": [_SEATS]}, "currency", "'eur'"),
            refuse(
                {"customer": "$cus_ada", "currency": "usd", "items": [{**_SEATS, "quantity": 21}]},
                "max_amount",
                "52500",
            ),
        ),
    ),
    Rule(
        constraints={"allowed_properties": ["jobtitle", "lifecyclestage"]},
        tool="hubspot_contacts_update",
        allowed={"contact_id": "$alan", "jobtitle": "Codebreaker"},
        requests=(("PATCH", "/crm/v3/objects/contacts/$alan"),),
        result={"id": "$alan", "jobtitle": "Codebreaker"},
        refused=(
            refuse({"contact_id": "$alan", "phone": "+1 555 0199"}, "allowed_properties", "'phone'"),
            refuse(
                {"contact_id": "$alan", "jobtitle": "Spy", "email": "alan@example.org"}, "allowed_properties", "'email'"
            ),
        ),
    ),
    Rule(
        constraints={"allowed_properties": ["email", "firstname"]},
        tool="hubspot_contacts_create",
        allowed={"email": "$email", "firstname": "Mary"},
        requests=(("POST", "/crm/v3/objects/contacts"),),
        result={"firstname": "Mary"},
        refused=(
            refuse({"email": "$email", "firstname": "Mary", "company": "Acme"}, "allowed_properties", "'company'"),
        ),
    ),
]


def _same_requests(got: list[tuple[str, str]], expected: tuple[tuple[str, str], ...]) -> bool:
    return len(got) == len(expected) and all(
        m == em and fnmatch.fnmatchcase(p, ep) for (m, p), (em, ep) in zip(got, expected, strict=True)
    )


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(rule, id=rule.id, marks=[pytest.mark.xfail(strict=True, reason=rule.bug)] if rule.bug else [])
        for rule in RULES
    ],
)
def test_a_constraint_allows_one_call_and_refuses_others_before_the_provider(
    world: World, rule: Rule, via: str
) -> None:
    key = world.agent(rule.tool, rule.constraints)
    lookups = world.fill(rule.lookups)
    for arguments, named in rule.refused:
        watch = world.watch(rule.tool)
        refused = world.call(via, key, rule.tool, arguments)
        assert (refused.status, refused.type) == (403, "constraint_violated"), refused.body
        for name in world.fill(named):
            assert name in refused.body["detail"], (name, refused.body["detail"])
        # At most the hub's look-ups: the provider never gets the call itself.
        got = watch.requests()
        assert all(any(_same_requests([r], (lookup,)) for lookup in lookups) for r in got), got

    if rule.allowed is None:
        return
    watch = world.watch(rule.tool)
    allowed = world.call(via, key, rule.tool, rule.allowed)
    assert allowed.status == 200, allowed.body
    got = watch.requests()
    assert _same_requests(got, world.fill(rule.requests)), got
    assert _matches(allowed.result, world.fill(rule.result)), allowed.result


# --- lists filtered to the allow-list ----------------------------------------------------------------------


FILTERS = [
    # constraints, tool, arguments, the result path the allow-list filters
    ({"channels": ["C0GENERAL1", "C0ENGINE01"]}, "slack_channels_list", {}, "channels[].id"),
    ({"folders": [PROJECTS]}, "gdrive_files_search", {"query": "name contains 'e'"}, "files[].parents"),
    ({"object_ids": ["$ada", "$grace"]}, "hubspot_contacts_search", {"limit": 100}, "contacts[].id"),
    ({"customers": ["$cus_ada"]}, "stripe_charges_list", {"limit": 100}, "charges[].customer"),
]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(("constraints", "tool", "arguments", "path"), FILTERS, ids=[f[1] for f in FILTERS])
def test_a_list_shows_only_what_the_allow_list_allows(
    world: World, constraints: dict[str, Any], tool: str, arguments: dict[str, Any], path: str, via: str
) -> None:
    ((name, allowed),) = world.fill(constraints).items()
    items, item_field = path.split("[].")

    def inside(item: dict[str, Any]) -> bool:
        value = item.get(item_field)
        return any(v in allowed for v in (value if isinstance(value, list) else [value]))

    key = world.agent(tool, constraints)
    watch = world.watch(tool)
    everything = world.call("rest", world.probe, tool, arguments).result[items]
    unfiltered = watch.requests()
    watch = world.watch(tool)
    answer = world.call(via, key, tool, arguments)
    assert watch.requests() == unfiltered  # the same request: the hub filters the answer
    shown = answer.result[items]
    assert shown == [item for item in everything if inside(item)]
    assert shown and len(shown) < len(everything)  # something to keep, something to drop
    assert any(name in note for note in answer.body.get("notes", [])), answer.body.get("notes")


# --- max_results -------------------------------------------------------------------------------------------


LIMITS = [
    # tool, its page-size argument, the list it pages, other arguments
    ("hubspot_contacts_search", "limit", "contacts", {}),
    ("slack_channels_list", "limit", "channels", {}),
    ("gdrive_files_list", "page_size", "files", {"folder_id": "root"}),
    ("gmail_messages_search", "max_results", "messages", {}),
]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(("tool", "limit", "items", "arguments"), LIMITS, ids=[row[0] for row in LIMITS])
def test_max_results_clamps_a_larger_page_and_says_so(
    world: World, tool: str, limit: str, items: str, arguments: dict[str, Any], via: str
) -> None:
    key = world.agent(tool, {"max_results": 3})
    clamped = world.call(via, key, tool, {**arguments, limit: 20})
    assert len(clamped.result[items]) == 3
    (note,) = clamped.body["notes"]
    assert f"{limit} was lowered to 3" in note
    within = world.call(via, key, tool, {**arguments, limit: 2})
    assert len(within.result[items]) == 2 and "notes" not in within.body


# --- redact ------------------------------------------------------------------------------------------------


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path without list indices, value) of every leaf, in order."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _leaves(value, f"{path}.{name}" if path else name)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value, f"{path}[]")
    else:
        yield path, node


REDACTIONS = [
    # redact, tool, arguments, the leaves masked (every other leaf is unchanged)
    (
        ["pii.email", "contacts[].company"],
        "hubspot_contacts_search",
        {"limit": 5},
        {"contacts[].email", "contacts[].company"},
    ),
    (
        ["financial", "invoices[].lines[].description"],
        "stripe_invoices_list",
        {"customer": "$cus_grace"},
        {
            "invoices[].total",
            "invoices[].amount_due",
            "invoices[].amount_paid",
            "invoices[].amount_remaining",
            "invoices[].lines[].amount",
            "invoices[].lines[].description",
        },
    ),
    (
        ["financial.card"],
        "stripe_charges_list",
        {"customer": "$cus_ada"},
        {"charges[].card.brand", "charges[].card.last4"},
    ),
]


@pytest.mark.parametrize(("redact", "tool", "arguments", "masked"), REDACTIONS, ids=[r[1] for r in REDACTIONS])
def test_redact_masks_labels_and_fields_in_rest_and_mcp_alike(
    world: World, redact: list[str], tool: str, arguments: dict[str, Any], masked: set[str]
) -> None:
    key = world.agent(tool, {"redact": redact})
    plain = world.call("rest", world.probe, tool, arguments).result
    over_rest = world.call("rest", key, tool, arguments).result
    over_mcp = world.call("mcp", key, tool, arguments).result
    assert over_mcp == over_rest  # stable masks: the same on both transports
    seen = set()
    for (path, value), (plain_path, original) in zip(_leaves(over_rest), _leaves(plain), strict=True):
        assert path == plain_path
        if path in masked:
            seen.add(path)
            assert isinstance(value, str) and MASK.fullmatch(value) and value != original, (path, value)
            if "email" in path:
                assert value.split("@")[1] == original.split("@")[1].lower()  # the domain stays
        else:
            assert value == original, path
    assert seen == masked  # every masked leaf was there to mask


# --- rate ------------------------------------------------------------------------------------------------------


RATED = [
    ("hubspot_contacts_get", {"contact_id": "$ada"}),
    ("slack_messages_post", {"channel": "C0ENGINE01", "text": "Build is green."}),
]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(("tool", "arguments"), RATED, ids=[r[0] for r in RATED])
def test_rate_refuses_the_call_over_the_limit_before_the_provider(
    world: World, tool: str, arguments: dict[str, Any], via: str
) -> None:
    key = world.agent(tool, {"rate": {"per_minute": 2}})
    watch = world.watch(tool)
    inside_one_minute_window()
    assert [world.call(via, key, tool, arguments).status for _ in range(2)] == [200, 200]
    assert len(watch.requests()) == 2
    watch = world.watch(tool)
    limited = world.call(via, key, tool, arguments)
    assert (limited.status, limited.type) == (429, "rate_limited"), limited.body
    detail = limited.body["detail"]
    assert "rate" in detail and "2 calls per minute" in detail and "retry after" in detail
    if via == "rest":
        assert limited.retry_after is not None and 1 <= int(limited.retry_after) <= 60
    assert watch.requests() == []
