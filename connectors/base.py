"""The shape of a connector: a typed manifest (provider facts as data) and typed tool functions.

A tool is one async function. Its first parameter receives the ready provider client from the hub; every
other parameter is an argument the agent supplies, typed with `Annotated[..., Field(description=...)]`.
`@tool` turns the signature into a pydantic model (the JSON Schema agents see), the docstring into the
description, and refuses at import time anything that would be wrong at run time.

Policy metadata (all optional; `scopes.tool_policy` says what each means and what the defaults infer) is
stored on `Tool.policy` for `scopes.decide` and result shaping:

    @tool(
        scopes=["messaging.chat.read"], labels=["untrusted.content"],
        resources={"channel": "channels"},            # argument path → allow-list
        result_resources={"channels[].id": "channels"},  # result path → allow-list, for filtering lists
        resolved_resources=["recipients_domain"],      # allow-lists only the provider can tell (hub resolves)
        facts=reply_recipients,                        # async (client, arguments, FactsNeeded) → CallFacts
        sink=True, risk="high",                       # sends data out / moves money or exposes data
        amount="items[].unit_amount*quantity", currency="currency", amount_unit="minor",
        limit="page_size",                            # the page-size argument max_results clamps
        properties=["email", "firstname"],            # arguments that set CRM properties
        label_fields={"pii.email": ["contacts[].email"]},  # where each label's data sits in the result
    )

Every path is checked here against the signature or the output model: a resources key naming no parameter,
a result path through a field that is not a list, an amount that is not a number, an unknown allow-list or
data label — each fails the import with the tool's name.

`facts` is not policy but how to look up what policy needs and only the provider knows: the folders a Drive
file lies in, a reply's recipients, a charge's customer and refundable amount. It is stored on `Tool.facts`
and run by `Tool.resolve_facts` with what `scopes.facts_needed` asks for. A tool with `resolved_resources`,
or with an argument under an allow-list whose entries hold others (`folders`), fails the import without one.
"""

import inspect
import re
import types
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType, ModuleType
from typing import Annotated, Any, Literal, Protocol, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

from scopes import ALLOW_LISTS, CallFacts, FactsNeeded, ToolPolicy, is_known_label, is_known_scope, tool_policy
from scopes.paths import Path, PathError, parse_path

__all__ = [
    "ApiKeyMode",
    "ClientFactory",
    "Connector",
    "FactsResolver",
    "Manifest",
    "ProviderClient",
    "Tool",
    "ToolDefinitionError",
    "collect_tools",
    "tool",
]

_TOOL_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_LABEL = re.compile(r"^[a-z]+(\.[a-z_]+)*$")
# Argument names the hub adds to every tool's schema itself (`connection` picks the connected account).
_RESERVED_PARAMS = frozenset({"connection"})
# Allow-lists whose entries hold others (a folder holds files and folders): an argument value may lie inside a
# listed entry without being listed, and only the provider can tell, so such a tool needs a facts resolver.
_NESTED_ALLOW_LISTS = frozenset({"folders"})

ToolFunc = Callable[..., Awaitable[BaseModel]]
F = TypeVar("F", bound=ToolFunc)


class ToolDefinitionError(TypeError):
    """A tool is declared wrongly; raised when its module is imported."""


class ProviderClient(Protocol):
    """A provider SDK client the hub builds once per connection and token, and reuses."""

    def close(self) -> None: ...


class ClientFactory(Protocol):
    def __call__(self, *, access_token: str, api_base: str, timeout: float) -> ProviderClient: ...


# Looks up, with the tool's client and validated arguments, what policy needs and only the provider knows.
FactsResolver = Callable[[ProviderClient, BaseModel, FactsNeeded], Awaitable[CallFacts]]
C = TypeVar("C", bound=ProviderClient)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    scopes: tuple[str, ...]
    labels: tuple[str, ...]
    func: ToolFunc
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    input_schema: Mapping[str, Any]
    provider: str = ""
    # What policy needs to know (allow-lists, sink, amounts, label fields…); see scopes.tool_policy.
    policy: ToolPolicy = field(default_factory=ToolPolicy)
    # How to look up the facts policy needs that the arguments do not carry (`tool(facts=...)`).
    facts: FactsResolver | None = None

    @property
    def is_read(self) -> bool:
        """Reads change nothing at the provider, so retrying one (e.g. after a 429) is always safe."""
        return all(scope.endswith(".read") for scope in self.scopes)

    async def invoke(self, client: ProviderClient, arguments: BaseModel) -> BaseModel:
        # dict(iter(...)), not dict(model): dict() first asks a model for `keys`, which pydantic answers by
        # raising AttributeError, on every call.
        return await self.func(client, **dict(iter(arguments)))

    async def resolve_facts(self, client: ProviderClient, arguments: BaseModel, needed: FactsNeeded) -> CallFacts:
        """What the provider says about this call for what `needed` asks (`scopes.facts_needed`); nothing is
        fetched when nothing is needed or the tool has no resolver."""
        if self.facts is None or not needed:
            return CallFacts()
        return await self.facts(client, arguments, needed)


@dataclass(frozen=True, slots=True)
class _PolicySpec:
    """The policy keywords of `tool()`, as given; checked and turned into a ToolPolicy by `_build_tool`."""

    sink: bool | None = None
    risk: Literal["low", "high"] | None = None
    resources: Mapping[str, str] | None = None
    result_resources: Mapping[str, str] | None = None
    resolved_resources: Sequence[str] = ()
    amount: str | None = None
    currency: str | None = None
    amount_unit: Literal["minor", "major"] = "minor"
    limit: str | None = None
    properties: Sequence[str] | None = None
    label_fields: Mapping[str, Sequence[str]] | None = None


def tool(
    *,
    scopes: Sequence[str],
    labels: Sequence[str] = (),
    sink: bool | None = None,
    risk: Literal["low", "high"] | None = None,
    resources: Mapping[str, str] | None = None,
    result_resources: Mapping[str, str] | None = None,
    resolved_resources: Sequence[str] = (),
    amount: str | None = None,
    currency: str | None = None,
    amount_unit: Literal["minor", "major"] = "minor",
    limit: str | None = None,
    properties: Sequence[str] | None = None,
    label_fields: Mapping[str, Sequence[str]] | None = None,
    facts: Callable[[C, BaseModel, FactsNeeded], Awaitable[CallFacts]] | None = None,
) -> Callable[[F], F]:
    """Declare an async function as a tool needing `scopes` and returning data labelled `labels`; `facts`
    looks up what its policy needs from the provider, and the other keywords are its policy metadata (see
    the module docstring and scopes.tool_policy)."""
    spec = _PolicySpec(
        sink,
        risk,
        resources,
        result_resources,
        tuple(resolved_resources),
        amount,
        currency,
        amount_unit,
        limit,
        None if properties is None else tuple(properties),
        label_fields,
    )

    # The resolver takes the tool's own client type, as the tool does; the hub passes it the connector's client.
    resolver = cast(FactsResolver | None, facts)

    def register(func: F) -> F:
        func.__switchboard_tool__ = _build_tool(func, tuple(scopes), tuple(labels), spec, resolver)  # type: ignore[attr-defined]
        return func

    return register


def _build_tool(
    func: ToolFunc,
    scopes: tuple[str, ...],
    labels: tuple[str, ...],
    spec: _PolicySpec | None = None,
    facts: FactsResolver | None = None,
) -> Tool:
    spec = spec or _PolicySpec()
    name = func.__name__
    where = f"tool {name!r}"
    if not _TOOL_NAME.match(name):
        raise ToolDefinitionError(f"{where}: name must match {_TOOL_NAME.pattern}")
    if not inspect.iscoroutinefunction(func):
        raise ToolDefinitionError(f"{where}: must be an async function")
    if not scopes:
        raise ToolDefinitionError(f"{where}: declares no scope")
    for scope in scopes:
        if not is_known_scope(scope):
            raise ToolDefinitionError(f"{where}: unknown scope {scope!r} (see scopes/vocabulary.py)")
    for label in labels:
        if not _LABEL.match(label):
            raise ToolDefinitionError(f"{where}: malformed data label {label!r}")
        if not is_known_label(label):
            raise ToolDefinitionError(f"{where}: unknown data label {label!r} (see scopes/labels.py)")
    description = inspect.getdoc(func)
    if not description:
        raise ToolDefinitionError(f"{where}: needs a docstring; it is the description agents read")

    hints = get_type_hints(func, include_extras=True)
    output_model = hints.get("return")
    if not (inspect.isclass(output_model) and issubclass(output_model, BaseModel)):
        raise ToolDefinitionError(f"{where}: must return a pydantic model")

    params = list(inspect.signature(func).parameters.values())
    if not params:
        raise ToolDefinitionError(f"{where}: first parameter must receive the provider client")
    fields: dict[str, Any] = {}
    for param in params[1:]:
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            raise ToolDefinitionError(f"{where}: parameter {param.name!r} must be a named parameter")
        if param.name in _RESERVED_PARAMS:
            raise ToolDefinitionError(
                f"{where}: parameter {param.name!r} is reserved; the hub adds it to choose the connection"
            )
        annotation = hints.get(param.name)
        info = next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, FieldInfo)), None)
        if info is None or not info.description:
            raise ToolDefinitionError(f"{where}: parameter {param.name!r} needs Field(description=...)")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    input_model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    schema = input_model.model_json_schema()
    schema.pop("title", None)
    policy = _build_policy(where, spec, scopes, labels, input_model, output_model, list(fields))
    _check_facts(where, policy, facts)
    return Tool(
        name=name,
        description=description,
        scopes=scopes,
        labels=labels,
        func=func,
        input_model=input_model,
        output_model=output_model,
        input_schema=MappingProxyType(schema),
        policy=policy,
        facts=facts,
    )


def _check_facts(where: str, policy: ToolPolicy, facts: FactsResolver | None) -> None:
    """A tool whose policy rests on facts only the provider knows must say how to look them up."""
    if facts is not None:
        if not inspect.iscoroutinefunction(facts):
            raise ToolDefinitionError(f"{where}: facts must be an async function (client, arguments, needed)")
        return
    if policy.resolved_resources:
        raise ToolDefinitionError(
            f"{where}: resolved_resources {list(policy.resolved_resources)} need facts=: only the provider knows them"
        )
    for path, name in (policy.resources or {}).items():
        if name in _NESTED_ALLOW_LISTS:
            raise ToolDefinitionError(
                f"{where}: argument {path!r} may lie inside an allowed entry of {name!r}: it needs facts= to look up "
                "what holds it"
            )


def _build_policy(
    where: str,
    spec: _PolicySpec,
    scopes: tuple[str, ...],
    labels: tuple[str, ...],
    input_model: type[BaseModel],
    output_model: type[BaseModel],
    parameters: list[str],
) -> ToolPolicy:
    """Check the policy keywords against the signature and the output model, then build the ToolPolicy."""

    def fail(message: str) -> ToolDefinitionError:
        return ToolDefinitionError(f"{where}: {message}")

    def path_of(keyword: str, text: str) -> Path:
        try:
            return parse_path(text)
        except PathError as exc:
            raise fail(f"{keyword}: {exc}") from None

    def allow_list(keyword: str, name: str) -> None:
        if name not in ALLOW_LISTS:
            raise fail(f"{keyword}: unknown allow-list {name!r} (known: {', '.join(ALLOW_LISTS)})")

    if spec.sink is not None and not isinstance(spec.sink, bool):
        raise fail("sink must be True or False")
    if spec.risk not in (None, "low", "high"):
        raise fail(f"risk must be 'low' or 'high', not {spec.risk!r}")
    if spec.amount_unit not in ("minor", "major"):
        raise fail(f"amount_unit must be 'minor' or 'major', not {spec.amount_unit!r}")
    for text, name in (spec.resources or {}).items():
        allow_list("resources", name)
        _leaf_type(input_model, path_of("resources", text), f"resources: argument path {text!r}", fail)
    for text, name in (spec.result_resources or {}).items():
        allow_list("result_resources", name)
        path = path_of("result_resources", text)
        if not path.has_each:
            raise fail(f"result_resources: {text!r} names no list to filter; mark it with [] (e.g. 'items[].id')")
        _leaf_type(output_model, path, f"result_resources: result path {text!r}", fail)
    for name in spec.resolved_resources:
        allow_list("resolved_resources", name)
    if spec.amount is not None:
        text, _, factor = spec.amount.partition("*")
        path = path_of("amount", text)
        leaf = _leaf_type(input_model, path, f"amount: argument path {text!r}", fail)
        if not _numeric(leaf):
            raise fail(f"amount: {text!r} is not a number")
        if factor:
            parent = (
                _leaf_type(input_model, Path(text, path.segments[:-1]), "amount", fail)
                if len(path.segments) > 1
                else input_model
            )
            if not _numeric(_leaf_type(parent, path_of("amount", factor), f"amount: factor {factor!r}", fail)):
                raise fail(f"amount: factor {factor!r} is not a number")
    if spec.currency is not None:
        leaf = _leaf_type(input_model, path_of("currency", spec.currency), f"currency: {spec.currency!r}", fail)
        if _unwrap(leaf) is not str:
            raise fail(f"currency: argument {spec.currency!r} is not a string")
    if spec.limit is not None and spec.limit not in parameters:
        raise fail(f"limit: {spec.limit!r} is not a parameter")
    for prop in spec.properties or ():
        if prop not in parameters:
            raise fail(f"properties: {prop!r} is not a parameter")
    for label, paths in (spec.label_fields or {}).items():
        if label not in labels:
            raise fail(f"label_fields: {label!r} is not one of the tool's labels {list(labels)}")
        if isinstance(paths, str):
            raise fail(f"label_fields: the paths of {label!r} must be a list, not a string")
        for text in paths:
            path = path_of("label_fields", text)
            if path.bare:
                if path.head not in _field_names(output_model):
                    raise fail(f"label_fields: no field {path.head!r} anywhere in {output_model.__name__}")
            else:
                _leaf_type(output_model, path, f"label_fields: result path {text!r}", fail)
    return tool_policy(
        scopes=scopes,
        labels=labels,
        parameters=parameters,
        sink=spec.sink,
        risk=spec.risk,
        resources=spec.resources,
        result_resources=spec.result_resources,
        resolved_resources=spec.resolved_resources,
        amount=spec.amount,
        currency=spec.currency,
        amount_unit=spec.amount_unit,
        limit=spec.limit,
        properties=spec.properties,
        label_fields=spec.label_fields,
    )


def _unwrap(annotation: Any) -> Any:
    """The type inside Annotated[...] and Optional[...] (a union of several types is returned as is)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            inner = [a for a in get_args(annotation) if a is not type(None)]
            if len(inner) != 1:
                return annotation
            annotation = inner[0]
        else:
            return annotation


def _numeric(annotation: Any) -> bool:
    inner = _unwrap(annotation)
    if get_origin(inner) in (list, tuple):
        inner = _unwrap(get_args(inner)[0])
    return inner in (int, float)


def _model_field(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias, field_name.rstrip("_")):
            return info.annotation
    return None


def _leaf_type(root: Any, path: Path, what: str, fail: Callable[[str], ToolDefinitionError]) -> Any:
    """The type `path` reaches from the model `root`; `fail` when a segment names no field or `[]` no list."""
    current = root
    for name, each in path.segments:
        model = _unwrap(current)
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise fail(f"{what}: {name!r} is not inside an object")
        annotation = _model_field(model, name)
        if annotation is None:
            raise fail(f"{what}: {model.__name__} has no field {name!r}")
        if each:
            inner = _unwrap(annotation)
            if get_origin(inner) not in (list, tuple):
                raise fail(f"{what}: {name!r} is not a list, so it cannot take []")
            annotation = get_args(inner)[0]
        current = annotation
    return current


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name (and alias) in `model` and the models nested in it."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        names.update(n for n in (field_name, info.alias, field_name.rstrip("_")) if n)
        pending = [info.annotation]
        while pending:
            annotation = _unwrap(pending.pop())
            if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
                names |= _field_names(annotation, seen)
            else:
                pending.extend(get_args(annotation))
    return names


def collect_tools(module: ModuleType) -> tuple[Tool, ...]:
    """Every `@tool` function of `module`, in definition order."""
    found = [getattr(obj, "__switchboard_tool__", None) for obj in vars(module).values()]
    return tuple(t for t in found if isinstance(t, Tool))


TokenResponseHook = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class ApiKeyMode:
    """The provider also accepts a pasted API key (stored like a token, never refreshed)."""

    pattern: str  # a regex the key must match, so a mistyped or wrong-kind key is refused at once
    hint: str  # shown on the admin page, e.g. "a restricted key, rk_live_… or rk_test_…"


@dataclass(frozen=True, slots=True)
class Manifest:
    """A provider's OAuth and API facts, as data.

    `settings_key` names the `SWITCHBOARD_<KEY>_*` settings group that can override the URLs and holds
    the client credentials. `scope_map` maps each hub scope the provider serves to the provider scopes it
    needs; a connection asks for the union over its chosen hub scopes and nothing more. Quirks are data:
    `exclusive_scopes` lists provider scopes of which only the strongest present is asked for (Stripe's
    `read_only` < `read_write`); `compliance_hooks` are authlib compliance hooks by name (e.g.
    `access_token_response`, `refresh_token_response`) that normalise a provider's non-standard token
    answers; `account_path` is the dotted path of the account's name in the token response.
    """

    name: str
    display_name: str
    settings_key: str
    authorize_url: str
    token_url: str
    api_base: str
    scope_map: Mapping[str, tuple[str, ...]]
    scope_separator: str = " "
    token_endpoint_auth_method: str = "client_secret_post"
    pkce: bool = True
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    revoke_url: str | None = None
    exclusive_scopes: tuple[str, ...] = ()
    compliance_hooks: Mapping[str, TokenResponseHook] = field(default_factory=dict)
    account_path: str | None = None
    api_key: ApiKeyMode | None = None

    def provider_scopes(self, hub_scopes: Sequence[str]) -> list[str]:
        """The minimal provider scopes for `hub_scopes`, sorted; unknown hub scopes raise KeyError."""
        wanted = {p for s in hub_scopes for p in self.scope_map[s]}
        ranked = [p for p in self.exclusive_scopes if p in wanted]
        return sorted(wanted - set(ranked[:-1]))

    def account_of(self, token: Mapping[str, Any]) -> str | None:
        """The connected account's name or id from a token response, where the provider gives one."""
        value: Any = token
        for part in (self.account_path or "").split("."):
            value = value.get(part) if isinstance(value, Mapping) and part else None
        return str(value)[:200] if value not in (None, "") and self.account_path else None


@dataclass(frozen=True, slots=True)
class Connector:
    manifest: Manifest
    make_client: ClientFactory
    tools: tuple[Tool, ...]

    def __post_init__(self) -> None:
        # Stamp the provider on each tool, and check each tool's scopes are ones this provider serves.
        stamped = []
        for t in self.tools:
            for scope in t.scopes:
                if scope not in self.manifest.scope_map:
                    raise ToolDefinitionError(f"tool {t.name!r}: scope {scope!r} is not served by {self.manifest.name}")
            stamped.append(replace(t, provider=self.manifest.name))
        object.__setattr__(self, "tools", tuple(stamped))
