"""The shape of a connector: a typed manifest (provider facts as data) and typed tool functions.

A tool is one async function. Its first parameter receives the ready provider client from the hub; every
other parameter is an argument the agent supplies, typed with `Annotated[..., Field(description=...)]`.
`@tool` turns the signature into a pydantic model (the JSON Schema agents see), the docstring into the
description, and refuses at import time anything that would be wrong at run time.
"""

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType, ModuleType
from typing import Any, Protocol, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo

from scopes import is_known_scope

__all__ = [
    "ApiKeyMode",
    "ClientFactory",
    "Connector",
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

ToolFunc = Callable[..., Awaitable[BaseModel]]
F = TypeVar("F", bound=ToolFunc)


class ToolDefinitionError(TypeError):
    """A tool is declared wrongly; raised when its module is imported."""


class ProviderClient(Protocol):
    """A provider SDK client the hub builds once per connection and token, and reuses."""

    def close(self) -> None: ...


class ClientFactory(Protocol):
    def __call__(self, *, access_token: str, api_base: str, timeout: float) -> ProviderClient: ...


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

    @property
    def is_read(self) -> bool:
        """Reads change nothing at the provider, so retrying one (e.g. after a 429) is always safe."""
        return all(scope.endswith(".read") for scope in self.scopes)

    async def invoke(self, client: ProviderClient, arguments: BaseModel) -> BaseModel:
        return await self.func(client, **dict(arguments))


def tool(*, scopes: Sequence[str], labels: Sequence[str] = ()) -> Callable[[F], F]:
    """Declare an async function as a tool needing `scopes` and returning data labelled `labels`."""

    def register(func: F) -> F:
        func.__switchboard_tool__ = _build_tool(func, tuple(scopes), tuple(labels))  # type: ignore[attr-defined]
        return func

    return register


def _build_tool(func: ToolFunc, scopes: tuple[str, ...], labels: tuple[str, ...]) -> Tool:
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
    input_model = create_model(
        f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
    )
    schema = input_model.model_json_schema()
    schema.pop("title", None)
    return Tool(
        name=name,
        description=description,
        scopes=scopes,
        labels=labels,
        func=func,
        input_model=input_model,
        output_model=output_model,
        input_schema=MappingProxyType(schema),
    )


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
                    raise ToolDefinitionError(
                        f"tool {t.name!r}: scope {scope!r} is not served by {self.manifest.name}"
                    )
            stamped.append(replace(t, provider=self.manifest.name))
        object.__setattr__(self, "tools", tuple(stamped))
