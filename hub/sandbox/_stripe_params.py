"""Stripe's request parameters: form or query pairs in bracket notation, read the way Stripe reads them.

`line_items[0][price]=price_1&metadata[plan]=pro&expand[]=customer` becomes
`{"line_items": [{"price": "price_1"}], "metadata": {"plan": "pro"}, "expand": ["customer"]}`. Values stay
strings until an endpoint asks for a type; a wrong one is Stripe's 400 with its `code` and `param`.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Params", "StripeApiError", "decode", "missing"]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_INT = re.compile(r"^-?\d{1,15}$")
_DOCS = "https://stripe.com/docs/error-codes/"


class StripeApiError(Exception):
    """A Stripe API error answer: HTTP status and Stripe's `error` object."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code, self.message, self.type, self.code, self.param = status_code, message, type, code, param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            error |= {"code": self.code, "doc_url": _DOCS + self.code}
        if self.param:
            error["param"] = self.param
        return {"error": error}

    @property
    def replayable(self) -> bool:
        """Whether Stripe keeps this answer for the request's idempotency key: only once the request ran,
        not for a malformed one (and never for authentication, permission or rate-limit refusals)."""
        return self.status_code not in (401, 403, 429) and not (self.code or "").startswith("parameter_")


def missing(param: str) -> StripeApiError:
    return StripeApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracket-notation pairs; a dict whose keys are all indexes becomes a list, in index order."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {raw_key}", param=raw_key)
        path = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        node = root
        for depth, part in enumerate(path[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                if child is not None:
                    raise StripeApiError(400, f"Invalid value for {'.'.join(path[: depth + 1])}", param=raw_key)
                child = node[part] = {}
            node = child
        last = path[-1]
        if last == "":  # `expand[]=a&expand[]=b`
            last = str(len(node))
        node[last] = value
    return {k: _listify(v) for k, v in root.items()}


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


class Params:
    """An endpoint's view of its decoded parameters: typed reads that fail as Stripe fails."""

    def __init__(self, values: Mapping[str, Any], allowed: Iterable[str]) -> None:
        self.values = dict(values)
        known = {*allowed, "expand"}
        for name in self.values:
            if name not in known:
                raise StripeApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def string(self, name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise missing(name)
            return None
        if not isinstance(value, str):
            raise StripeApiError(400, f"Invalid string: {name} must be a string", param=name)
        if len(value) > max_length:
            raise StripeApiError(
                400, f"Invalid string: {value[:20]}...; must be at most {max_length} characters", param=name
            )
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.string(name, required=required)
        if value is None:
            return None
        if not _INT.match(value):
            raise StripeApiError(400, f"Invalid integer: {value[:40]}", code="parameter_invalid_integer", param=name)
        number = int(value)
        if minimum is not None and number < minimum:
            raise StripeApiError(
                400,
                f"This value must be greater than or equal to {minimum}.",
                code="parameter_invalid_integer",
                param=name,
            )
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.string(name)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise StripeApiError(400, f"Invalid boolean: {value[:40]}", param=name)
        return value == "true"

    def choice(self, name: str, options: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in options:
            listed = ", ".join(options[:-1]) + f", or {options[-1]}" if len(options) > 1 else options[0]
            raise StripeApiError(400, f"Invalid {name}: must be one of {listed}", param=name)
        return value

    def metadata(self) -> dict[str, str]:
        value = self.values.get("metadata")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise StripeApiError(400, "Invalid metadata: must be a hash of strings", param="metadata")
        if len(value) > 50:
            raise StripeApiError(400, "Metadata can have at most 50 keys.", param="metadata")
        return {k[:40]: v[:500] for k, v in value.items() if v != ""}

    def objects(self, name: str, allowed: Iterable[str], *, required: bool = False) -> list[dict[str, Any]]:
        """A list of hashes, e.g. `line_items`, each holding only `allowed` keys."""
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise missing(name)
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise StripeApiError(400, f"Invalid array: {name} must be a list of hashes", param=name)
        keys = set(allowed)
        for index, item in enumerate(value):
            for key in item:
                if key not in keys:
                    param = f"{name}[{index}][{key}]"
                    raise StripeApiError(
                        400, f"Received unknown parameter: {param}", code="parameter_unknown", param=param
                    )
        return list(value)
