"""What policy needs to know about one tool, as data: `ToolPolicy`, built by `@tool` from its metadata.

`connectors.base.tool()` takes these as keyword arguments, checks every path against the tool's signature
and output model at import, and stores the result on `Tool.policy`; the hub hands that to `decide()` and the
result-shaping functions. Everything has a default that keeps an unannotated tool valid and safe:

- `sink` — the tool sends data somewhere others can read it (post a message, send mail, upload a file, create a
  note or an invoice): its arguments are checked for fingerprinted values (`scopes.flow`). Default: inferred,
  True for every tool that needs a non-read scope. Declare `sink=False` for writes that carry no free data.
- `risk` — "high" for tools that move money or expose data irreversibly (payments, sharing). In an untrusted
  session, sinks and high-risk tools need approval or are refused. Default: "high" when a `payments.*` scope
  other than a read is needed, else "low".
- `resources` — argument path → allow-list: `{"channel": "channels", "to": "recipients_domain"}`. The argument
  values are checked before the provider is called.
- `result_resources` — result path → allow-list, for filtering lists: `{"channels[].id": "channels"}` keeps the
  channels whose id is allowed; `{"files[].parents": "folders"}` keeps files with an allowed parent. The path
  must contain `[]`: the elements of its last list are what is kept or dropped.
- `resolved_resources` — allow-lists the tool touches through values only the provider knows (a reply goes to
  the original sender): the hub must resolve them into `CallFacts.resources` or the call is refused.
  A tool annotated with none of these three leaves every allow-list *unchecked*, so a grant that sets an
  allow-list refuses it (fail closed); declare `resources={}` for a tool that touches no listed resource.
- `amount`, `currency`, `amount_unit` — the argument path of the call's amount (`amount`, or a sum over lines:
  `items[].unit_amount*quantity` multiplies each line by its sibling `quantity`), of its currency, and whether
  the amount is in the currency's smallest unit (Stripe) or whole units (HubSpot).
- `limit` — the page-size argument `max_results` clamps. Default: inferred from a parameter named `limit`,
  `page_size`, `max_results` or `page_limit`.
- `properties` — the arguments that set record properties, for `allowed_properties`. None (the default)
  means undeclared: a grant with `allowed_properties` then refuses the tool.
- `label_fields` — label → result paths holding that label's data: `{"pii.email": ["contacts[].email"]}`,
  in addition to the field-name conventions of `scopes.labels`, which always apply. Declare them for data
  under unconventional names (a Drive file's `owners`, Gmail's `from`).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from scopes.labels import UNTRUSTED

__all__ = ["LIMIT_NAMES", "Risk", "ToolPolicy", "tool_policy"]

Risk = Literal["low", "high"]
LIMIT_NAMES = ("limit", "page_size", "max_results", "page_limit")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ToolPolicy:
    """A tool's policy metadata. The defaults are the most restrictive reading of a tool nobody annotated."""

    labels: tuple[str, ...] = ()
    read_only: bool = False
    sink: bool = True
    risk: Risk = "high"
    resources: Mapping[str, str] | None = None
    result_resources: Mapping[str, str] | None = None
    resolved_resources: tuple[str, ...] = ()
    amount: str | None = None
    currency: str | None = None
    amount_unit: Literal["minor", "major"] = "minor"
    limit: str | None = None
    properties: tuple[str, ...] | None = None
    label_fields: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def untrusted(self) -> bool:
        """Its output is content written by outsiders: reading it marks the session untrusted."""
        return UNTRUSTED in self.labels

    @property
    def annotated(self) -> bool:
        """It declares which resources it touches (possibly none)."""
        return self.resources is not None or self.result_resources is not None or bool(self.resolved_resources)

    def argument_paths(self, allow_list: str) -> list[str]:
        return [path for path, name in (self.resources or {}).items() if name == allow_list]

    def result_paths(self, allow_list: str) -> list[str]:
        return [path for path, name in (self.result_resources or {}).items() if name == allow_list]

    def touches(self, allow_list: str) -> bool:
        return bool(
            self.argument_paths(allow_list) or self.result_paths(allow_list) or allow_list in self.resolved_resources
        )


def tool_policy(
    *,
    scopes: Sequence[str],
    labels: Sequence[str] = (),
    parameters: Sequence[str] = (),
    sink: bool | None = None,
    risk: Risk | None = None,
    resources: Mapping[str, str] | None = None,
    result_resources: Mapping[str, str] | None = None,
    resolved_resources: Sequence[str] = (),
    amount: str | None = None,
    currency: str | None = None,
    amount_unit: Literal["minor", "major"] = "minor",
    limit: str | None = None,
    properties: Sequence[str] | None = None,
    label_fields: Mapping[str, Sequence[str]] | None = None,
) -> ToolPolicy:
    """Build a tool's policy, filling the inferred defaults (see the module docstring). `parameters` are the
    tool's argument names, used to infer `limit`. Checking paths against the signature is `@tool`'s job."""
    read_only = all(scope.endswith(".read") for scope in scopes)
    if limit is None:
        limit = next((name for name in LIMIT_NAMES if name in parameters), None)
    if risk is None:
        risk = "high" if any(s.startswith("payments.") and not s.endswith(".read") for s in scopes) else "low"
    return ToolPolicy(
        labels=tuple(labels),
        read_only=read_only,
        sink=(not read_only) if sink is None else sink,
        risk=risk,
        resources=None if resources is None else _frozen(resources),
        result_resources=None if result_resources is None else _frozen(result_resources),
        resolved_resources=tuple(resolved_resources),
        amount=amount,
        currency=currency,
        amount_unit=amount_unit,
        limit=limit,
        properties=None if properties is None else tuple(properties),
        label_fields=MappingProxyType({label: tuple(paths) for label, paths in (label_fields or {}).items()}),
    )
