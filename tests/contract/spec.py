"""A published OpenAPI document as JSON Schema (draft 4): where a body breaks any schema in it."""

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

__all__ = ["SpecSchemas"]


class SpecSchemas:
    """One spec, registered once, so every check resolves its `$ref`s without reloading the document."""

    def __init__(self, document: Mapping[str, Any], uri: str, format_checker: FormatChecker | None = None) -> None:
        self._uri, self._format_checker = uri, format_checker
        self._registry: Registry[Any] = Registry().with_resource(uri, Resource.from_contents(document, DRAFT4))

    def problems(self, instance: Any, *where: str) -> list[str]:
        """Each way `instance` breaks the schema at `where` (JSON pointer parts), as `path: message`."""
        pointer = "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in where)
        validator = Draft4Validator(
            {"$ref": f"{self._uri}#{pointer}"}, registry=self._registry, format_checker=self._format_checker
        )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in validator.iter_errors(instance)
        ]
