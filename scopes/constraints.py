"""A grant's constraints: the declarative JSON an admin attaches to a grant, parsed strictly.

    {
      "channels": ["C0123"],                       resource allow-lists (see ALLOW_LISTS)
      "folders": ["1AbC…"], "recipients_domain": ["example.com", "*.example.org"],
      "pipelines": ["default"], "object_ids": ["51"], "customers": ["cus_…"],
      "max_results": 50,                           clamp the tool's page-size argument
      "max_amount": 5000, "currency": "usd",       refuse larger amounts / other currencies
      "allowed_properties": ["firstname", "jobtitle"],   CRM writes may set only these
      "redact": ["pii.email", "phone", "contacts[].company"],   mask labels or fields in results
      "approval": "amount > 2000",                 or "always": a human must approve (scopes.condition)
      "rate": {"per_minute": 10, "per_day": 500}   calls through this grant
    }

`parse_constraints` refuses unknown keys by name (with the closest known key), so an admin learns of a typo
when granting, not when an agent slips through. Every key is optional; `{}` constrains nothing.

Units. `max_amount` is in the unit of the tool's amount argument: Stripe's smallest currency unit (cents,
5000 = 50.00 usd), HubSpot's deal amount in whole currency units; a tool declares which (`amount_unit`).
An approval condition compares the same numbers. Amount and currency limits apply to tools that change
something (not to reads), and a call whose amount or currency cannot be determined is refused.

Allow-lists. A value is inside an allow-list when it is listed, or when the hub has established that it lies
inside a listed one (a Drive file inside an allowed folder: `CallFacts.ancestors`). `recipients_domain`
compares the domain of an email address, case-insensitively; `*.example.com` allows subdomains (not the
apex). Several grants used by one call must all allow it (their lists intersect).
"""

import difflib
from collections.abc import Collection, Mapping
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from scopes.condition import Condition, ConditionError, parse_condition
from scopes.labels import LABELS, is_known_label
from scopes.paths import PathError, parse_path

__all__ = [
    "ALLOW_LISTS",
    "Constraints",
    "ConstraintsError",
    "Rate",
    "allow_list_admits",
    "parse_constraints",
]

ALLOW_LISTS: Final = MappingProxyType(
    {
        "folders": "Storage folder ids; the files and folders inside them are allowed too",
        "channels": "Chat channel ids",
        "recipients_domain": "Email recipient domains; '*.example.com' allows its subdomains",
        "pipelines": "CRM pipeline ids",
        "object_ids": "CRM record ids (contacts, companies, deals)",
        "customers": "Payment customer ids",
    }
)

_MAX_ENTRIES = 1000


def _condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    try:
        return parse_condition(value)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None


ApprovalCondition = Annotated[
    Condition,
    BeforeValidator(_condition),
    PlainSerializer(lambda c: c.source, return_type=str),
]
Entry = Annotated[str, Field(min_length=1, max_length=200)]
AllowList = Annotated[tuple[Entry, ...], Field(min_length=1, max_length=_MAX_ENTRIES)]


class ConstraintsError(ValueError):
    """The constraints JSON is not valid; `problems` lists each problem, naming the key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Rate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] | None = None
    per_day: Annotated[int, Field(strict=True, ge=1, le=100_000_000)] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> "Rate":
        if self.per_minute is None and self.per_day is None:
            raise ValueError("give per_minute, per_day or both")
        return self


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    folders: AllowList | None = None
    channels: AllowList | None = None
    recipients_domain: AllowList | None = None
    pipelines: AllowList | None = None
    object_ids: AllowList | None = None
    customers: AllowList | None = None
    max_results: Annotated[int, Field(strict=True, ge=1, le=10_000)] | None = None
    max_amount: Annotated[int, Field(strict=True, ge=0)] | Annotated[float, Field(strict=True, ge=0)] | None = None
    currency: tuple[str, ...] | None = None
    allowed_properties: Annotated[tuple[Entry, ...], Field(max_length=_MAX_ENTRIES)] | None = None
    redact: Annotated[tuple[Entry, ...], Field(max_length=100)] = ()
    approval: ApprovalCondition | None = None
    rate: Rate | None = None

    @field_validator("recipients_domain")
    @classmethod
    def _domains(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        domains = []
        for entry in value:
            domain = entry.strip().lower().rstrip(".")
            bare = domain.removeprefix("*.")
            if "@" in domain or "." not in bare or not all(part for part in bare.split(".")) or " " in domain:
                raise ValueError(f"{entry!r} is not a domain like 'example.com' or '*.example.com'")
            domains.append(domain)
        return tuple(domains)

    @field_validator("currency", mode="before")
    @classmethod
    def _currencies(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not items:
            raise ValueError("a three-letter currency code like 'usd', or a list of them")
        codes = []
        for item in items:
            if not (isinstance(item, str) and len(item) == 3 and item.isascii() and item.isalpha()):
                raise ValueError(f"{item!r} is not a three-letter currency code like 'usd'")
            codes.append(item.lower())
        return tuple(codes)

    @field_validator("redact")
    @classmethod
    def _redactions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        namespaces = {label.split(".")[0] for label in LABELS}
        for entry in value:
            if is_known_label(entry):
                continue
            if entry.split(".")[0] in namespaces:
                close = difflib.get_close_matches(entry, list(LABELS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(LABELS)})"
                raise ValueError(f"unknown data label {entry!r}{hint}")
            try:
                parse_path(entry)
            except PathError:
                raise ValueError(
                    f"{entry!r} is neither a data label (like 'pii.email') nor a field name or path "
                    "(like 'phone' or 'contacts[].phone')"
                ) from None
        return value

    # Both are read by every call through the grant; a grant's constraints never change once parsed.
    @cached_property
    def allow_lists(self) -> Mapping[str, frozenset[str]]:
        """The allow-lists this grant sets, by name."""
        lists = {}
        for name in ALLOW_LISTS:
            entries = getattr(self, name)
            if entries is not None:
                lists[name] = frozenset(entries)
        return MappingProxyType(lists)

    @cached_property
    def empty(self) -> bool:
        return self == _EMPTY

    def to_json(self) -> dict[str, Any]:
        """The constraints as JSON again (what an admin wrote, normalised)."""
        return self.model_dump(mode="json", exclude_defaults=True)


_EMPTY: Final = Constraints()


def parse_constraints(raw: Mapping[str, Any] | None) -> Constraints:
    """Parse a grant's constraints JSON; raises ConstraintsError naming each wrong or unknown key."""
    if raw is None or (isinstance(raw, Mapping) and not raw):
        return _EMPTY
    if isinstance(raw, Constraints):
        return raw
    if not isinstance(raw, Mapping):
        raise ConstraintsError(['constraints must be a JSON object, like {"max_results": 50}'])
    try:
        return Constraints.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConstraintsError(_problems(exc)) from None


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    known = list(Constraints.model_fields)
    for error in exc.errors(include_url=False, include_input=False):
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden":
            key = loc[-1]
            if len(loc) == 1:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
                problems.append(f"unknown constraint {key!r}{hint}")
            else:
                inside = ".".join(loc[:-1])
                problems.append(f"unknown key {key!r} in {inside!r}")
            continue
        where = ".".join(part for part in loc if not part.startswith(("function-", "constrained-")))
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{where or 'constraints'}: {message}")
    return problems


def allow_list_admits(
    name: str, allowed: Collection[str], value: Any, ancestors: Mapping[str, Collection[str]] | None = None
) -> bool:
    """Whether `value` lies inside the allow-list `name` whose entries are `allowed`.

    Ids match exactly, or through `ancestors` (value → the ids of every container it lies inside, as the hub
    resolved them); `recipients_domain` takes the domain of an email address (or a bare domain)."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    if name == "recipients_domain":
        domain = text.rsplit("@", 1)[-1].strip().lower().rstrip(".").rstrip(">")
        if not domain or "@" in domain:
            return False
        for entry in allowed:
            if entry.startswith("*."):
                if domain.endswith(entry[1:]):
                    return True
            elif domain == entry:
                return True
        return False
    if text in allowed:
        return True
    return bool(ancestors) and any(a in allowed for a in (ancestors or {}).get(text, ()))
