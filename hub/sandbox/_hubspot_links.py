"""Associations between HubSpot CRM records, kept in memory: made on create, listed on read.

HubSpot records an association in both directions at once (a note→deal link is also a deal→note link), and
a primary association together with its unlabelled twin, so `associations` answers list a deal's primary
company twice: as "deal_to_company" and "deal_to_company_unlabeled". Pure data; the caller holds the lock.
"""

from collections.abc import Callable, Sequence
from typing import Any

from hub.sandbox._hubspot_schema import ASSOCIATION_TYPES

__all__ = ["LinkError", "Links"]

Key = tuple[str, str]  # (object type, id)


class LinkError(ValueError):
    """An association in a create request that HubSpot would refuse (a 400 VALIDATION_ERROR)."""


class Links:
    def __init__(self) -> None:
        self._edges: dict[Key, dict[Key, set[int]]] = {}

    def parse(self, object_type: str, raw: Any, exists: Callable[[str, str], bool]) -> list[tuple[str, int]]:
        """The (target id, association type id) pairs of a create request's `associations`, all valid."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise LinkError("Invalid input JSON: `associations` must be a list")
        out = []
        for item in raw:
            to = item.get("to") if isinstance(item, dict) else None
            target = to.get("id") if isinstance(to, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            bad_target = isinstance(target, bool) or not isinstance(target, str | int)
            if bad_target or not isinstance(types, list) or not types:
                raise LinkError("Invalid input JSON: each association needs `to.id` and a non-empty `types` list")
            for spec in types:
                type_id = _type_id(spec, object_type)
                to_type = ASSOCIATION_TYPES[type_id].to_type
                if not exists(to_type, str(target)):
                    raise LinkError(f"One or more associations are invalid: no {to_type} record with id {target}")
                out.append((str(target), type_id))
        return out

    def add(self, object_type: str, object_id: str, target: str, type_id: int) -> None:
        kind = ASSOCIATION_TYPES[type_id]
        self._edges.setdefault((object_type, object_id), {}).setdefault((kind.to_type, target), set()).add(type_id)
        back = self._edges.setdefault((kind.to_type, target), {}).setdefault((object_type, object_id), set())
        back.add(kind.inverse)
        if kind.also is not None:
            self.add(object_type, object_id, target, kind.also)

    def render(
        self, object_type: str, object_id: str, to_types: Sequence[str], live: Callable[[str, str], bool]
    ) -> dict[str, Any]:
        """The `associations` block of a read answer: only types asked for that have a live link."""
        out: dict[str, Any] = {}
        edges = self._edges.get((object_type, object_id), {})
        for to_type in dict.fromkeys(to_types):
            results = []
            for (kind_of, target), type_ids in edges.items():
                if kind_of != to_type or not live(kind_of, target):
                    continue
                results += [{"id": target, "type": ASSOCIATION_TYPES[t].name} for t in sorted(type_ids)]
            if results:
                out[to_type] = {"results": results}
        return out


def _type_id(spec: Any, object_type: str) -> int:
    """A HubSpot-defined association type id that links from `object_type`, or LinkError."""
    type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
    category = spec.get("associationCategory") if isinstance(spec, dict) else None
    if isinstance(type_id, bool) or not isinstance(type_id, int) or category != "HUBSPOT_DEFINED":
        raise LinkError(f"association type {category} {type_id!r} is not a HubSpot-defined association type")
    kind = ASSOCIATION_TYPES.get(type_id)
    if kind is None or kind.from_type != object_type:
        raise LinkError(f"association type {category} {type_id} cannot link from {object_type}")
    return type_id
