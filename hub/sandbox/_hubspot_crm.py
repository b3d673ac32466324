"""HubSpot CRM v3 objects (contacts, companies, deals, notes) kept in memory: validation, associations,
paging and search.

Pure data, no HTTP: the caller holds the sandbox's lock and turns `CrmError` into HubSpot's error body.
"""

import fnmatch
import itertools
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.sandbox._hubspot_links import LinkError, Links
from hub.sandbox._hubspot_schema import OWNERS, PIPELINES, SCHEMAS, SEED, SEED_ASSOCIATIONS

__all__ = ["OBJECT_TYPES", "CrmError", "CrmStore"]


class CrmError(Exception):
    """A HubSpot API error: HTTP status, HubSpot `category`, message and any extra body fields."""

    def __init__(self, status_code: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status_code, self.category, self.message, self.extra = status_code, category, message, extra


OBJECT_TYPES = frozenset(SCHEMAS)
_OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)
_TOKEN_SPLIT = re.compile(r"[\s@,;:/]+")
_OWNER_IDS = frozenset(o["id"] for o in OWNERS if not o["archived"])
_STAGES = {p["id"]: [s["id"] for s in p["stages"]] for p in PIPELINES["deals"]}


@dataclass(slots=True)
class _Record:
    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived_at: str | None = None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _number(value: str) -> float | None:
    """A property value as a number: numbers as such, dates as epoch milliseconds (HubSpot filters both)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000


def _compare(actual: str, expected: str) -> int:
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = actual.lower(), expected.lower()
    return (x > y) - (x < y)


def _has_token(actual: str, pattern: str) -> bool:
    pattern, actual = pattern.lower(), actual.lower()
    return fnmatch.fnmatchcase(actual, pattern) or any(
        fnmatch.fnmatchcase(token, pattern) for token in _TOKEN_SPLIT.split(actual)
    )


def _matches(props: Mapping[str, str], flt: Mapping[str, Any]) -> bool:
    op: str = flt["operator"]
    actual = props.get(flt["propertyName"], "")
    value = "" if flt.get("value") is None else str(flt["value"])
    if op == "HAS_PROPERTY":
        return actual != ""
    if op == "NOT_HAS_PROPERTY":
        return actual == ""
    if op == "NEQ":
        return actual == "" or _compare(actual, value) != 0
    if op in ("IN", "NOT_IN"):
        found = any(actual != "" and _compare(actual, str(v)) == 0 for v in flt.get("values") or ())
        return found == (op == "IN")
    if op == "NOT_CONTAINS_TOKEN":
        return not _has_token(actual, value)
    if actual == "":
        return False
    if op == "CONTAINS_TOKEN":
        return _has_token(actual, value)
    if op == "BETWEEN":
        return _compare(actual, value) >= 0 and _compare(actual, str(flt.get("highValue", ""))) <= 0
    order = _compare(actual, value)
    return {"EQ": order == 0, "LT": order < 0, "LTE": order <= 0, "GT": order > 0, "GTE": order >= 0}[op]


def _sort_key(value: str | None) -> tuple[int, float, str]:
    if not value:
        return (2, 0.0, "")  # unset sorts last
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, value.lower())


def _invalid(name: str, error: str, message: str) -> dict[str, Any]:
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


class CrmStore:
    """All objects of all types; ids come from one sequence, so a contact id is never a valid deal id."""

    def __init__(self, *, seed: bool = True) -> None:
        self._objects: dict[str, dict[str, _Record]] = {t: {} for t in SCHEMAS}
        self._order: dict[str, list[int]] = {t: [] for t in SCHEMAS}  # ids ascending, for `after` paging
        self._emails: dict[str, str] = {}  # live contact email (lowercased) -> id; HubSpot keeps it unique
        self._links = Links()
        self._ids = itertools.count(1001)
        if seed:
            _seed(self)

    # -- reads ---------------------------------------------------------------------------------------------

    def get(
        self,
        object_type: str,
        object_id: str,
        *,
        properties: list[str],
        archived: bool = False,
        id_property: str | None = None,
        associations: Sequence[str] = (),
    ) -> dict[str, Any]:
        record = self._find(object_type, object_id, archived, id_property)
        return self._render(object_type, record, properties, associations)

    def page(
        self,
        object_type: str,
        *,
        limit: int,
        after: str | None,
        properties: list[str],
        archived: bool = False,
        associations: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A page in id order; `after` is the id to resume from, as in HubSpot's list endpoints."""
        order, objects = self._order[object_type], self._objects[object_type]
        results: list[dict[str, Any]] = []
        for index in range(bisect_left(order, _cursor(after)) if after else 0, len(order)):
            object_id = order[index]
            record = objects[str(object_id)]
            if (record.archived_at is not None) != archived:
                continue
            if len(results) == limit:
                return {"results": results, "paging": {"next": {"after": str(object_id)}}}
            results.append(self._render(object_type, record, properties, associations))
        return {"results": results}

    def search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        schema = SCHEMAS[object_type]
        limit, offset = _search_limit(body.get("limit")), _cursor(body.get("after"))
        groups = _filter_groups(body.get("filterGroups"))
        query = str(body.get("query") or "").strip().lower()
        hits = [
            r
            for r in self._objects[object_type].values()
            if r.archived_at is None
            and (not groups or any(all(_matches(r.properties, f) for f in g) for g in groups))
            and (not query or any(query in r.properties.get(p, "").lower() for p in schema.searchable))
        ]
        for prop, descending in reversed(_sorts(body.get("sorts"))):
            hits.sort(key=lambda r: _sort_key(r.properties.get(prop)), reverse=descending)
        names = body.get("properties") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CrmError(400, "VALIDATION_ERROR", "properties must be a list of property names")
        page = [self._render(object_type, r, names) for r in hits[offset : offset + limit]]
        result: dict[str, Any] = {"total": len(hits), "results": page}
        if offset + limit < len(hits):
            result["paging"] = {"next": {"after": str(offset + limit)}}
        return result

    # -- writes --------------------------------------------------------------------------------------------

    def create(self, object_type: str, body: Any) -> dict[str, Any]:
        props = self._validated(object_type, body, record_id=None)
        try:
            links = self._links.parse(object_type, body.get("associations"), self._live)
        except LinkError as exc:
            raise CrmError(400, "VALIDATION_ERROR", str(exc)) from None
        now = _iso(datetime.now(UTC))
        record = self._insert(object_type, props, now)
        for target, type_id in links:
            self._links.add(object_type, record.id, target, type_id)
        return self._render(object_type, record, [*props, *sorted(SCHEMAS[object_type].readonly)])

    def update(self, object_type: str, object_id: str, body: Any, *, id_property: str | None = None) -> dict[str, Any]:
        record = self._find(object_type, object_id, False, id_property)
        props = self._validated(object_type, body, record_id=record.id)
        now = _iso(datetime.now(UTC))
        if object_type == "contacts" and "email" in props:
            self._emails.pop(record.properties.get("email", "").lower(), None)
            if props["email"]:
                self._emails[props["email"].lower()] = record.id
        for name, value in props.items():
            if value:
                record.properties[name] = value
            else:
                record.properties.pop(name, None)  # HubSpot clears a property set to ""
        record.properties[SCHEMAS[object_type].modified] = record.updated_at = now
        return self._render(object_type, record, [*props, *sorted(SCHEMAS[object_type].readonly)])

    def archive(self, object_type: str, object_id: str) -> None:
        record = self._objects[object_type].get(object_id)
        if record is None:
            raise _not_found(object_id)
        if record.archived_at is None:  # archiving twice is a no-op, as in HubSpot
            record.archived_at = record.updated_at = _iso(datetime.now(UTC))
            if object_type == "contacts":
                self._emails.pop(record.properties.get("email", "").lower(), None)

    # -- helpers -------------------------------------------------------------------------------------------

    def _insert(self, object_type: str, props: dict[str, str], now: str) -> _Record:
        object_id = next(self._ids)
        record = _Record(str(object_id), {k: v for k, v in props.items() if v}, now, now)
        schema = SCHEMAS[object_type]
        record.properties.update({"hs_object_id": record.id, schema.created: now, schema.modified: now})
        self._objects[object_type][record.id] = record
        self._order[object_type].append(object_id)
        if object_type == "contacts" and props.get("email"):
            self._emails[props["email"].lower()] = record.id
        return record

    def _find(self, object_type: str, object_id: str, archived: bool, id_property: str | None) -> _Record:
        objects = self._objects[object_type]
        if id_property and id_property != "hs_object_id":
            if object_type == "contacts" and id_property == "email":
                object_id = self._emails.get(object_id.lower(), "")
            else:
                object_id = next((r.id for r in objects.values() if r.properties.get(id_property) == object_id), "")
        record = objects.get(object_id)
        if record is None or (record.archived_at is not None) != archived:
            raise _not_found(object_id)
        return record

    def _validated(self, object_type: str, body: Any, *, record_id: str | None) -> dict[str, str]:
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            raise CrmError(400, "VALIDATION_ERROR", "Invalid input JSON: `properties` must be an object")
        schema, out, problems = SCHEMAS[object_type], {}, []
        for name, raw in props.items():
            if isinstance(raw, dict | list):
                problems.append(_invalid(name, "INVALID_PROPERTY_VALUE", f"{name} must be a string"))
                continue
            value = "" if raw is None else "true" if raw is True else "false" if raw is False else str(raw)
            if name in schema.readonly:
                problems.append(
                    _invalid(name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
                )
            elif name not in schema.writable:
                problems.append(_invalid(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif value and name in schema.options and value not in schema.options[name]:
                allowed = ", ".join(sorted(schema.options[name]))
                problems.append(
                    _invalid(name, "INVALID_OPTION", f"{value} was not one of the allowed options: [{allowed}]")
                )
            elif name == "email" and value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
                problems.append(_invalid(name, "INVALID_EMAIL", f"Email address {value} is invalid"))
            elif name in schema.dates and value and _number(value) is None:
                message = f"{value} is not a valid date or epoch millisecond value"
                problems.append(_invalid(name, "INVALID_DATE", message))
            elif name == "hubspot_owner_id" and value and value not in _OWNER_IDS:
                problems.append(_invalid(name, "INVALID_OWNER_ID", f"{value} is not a valid owner id"))
            else:
                out[name] = value
        if record_id is None:
            problems += [
                _invalid(n, "REQUIRED_FIELD", f"{n} is required") for n in sorted(schema.required) if not out.get(n)
            ]
        if object_type == "deals" and not problems:
            problems += self._stage_problems(out, record_id)
            if record_id is None and out.get("dealstage") and not out.get("pipeline"):
                out["pipeline"] = "default"  # HubSpot puts a deal created without one in the default pipeline
        if problems:
            message = "Property values were not valid: " + orjson.dumps(problems).decode()
            raise CrmError(400, "VALIDATION_ERROR", message)
        existing = self._emails.get(out.get("email", "").lower()) if object_type == "contacts" else None
        if existing is not None and existing != record_id:
            raise CrmError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
        return out

    def _stage_problems(self, props: Mapping[str, str], record_id: str | None) -> list[dict[str, Any]]:
        """A deal's stage must belong to its pipeline (HubSpot's default pipeline when none is set)."""
        current = self._objects["deals"][record_id].properties if record_id else {}
        pipeline = props.get("pipeline") or current.get("pipeline") or "default"
        stage = props.get("dealstage") or current.get("dealstage")
        if not stage or stage in _STAGES[pipeline]:
            return []
        allowed = ", ".join(_STAGES[pipeline])
        message = f"{stage} was not one of the allowed options for pipeline {pipeline}: [{allowed}]"
        return [_invalid("dealstage", "INVALID_OPTION", message)]

    def _live(self, object_type: str, object_id: str) -> bool:
        record = self._objects[object_type].get(object_id)
        return record is not None and record.archived_at is None

    def _render(
        self, object_type: str, record: _Record, names: Sequence[str], associations: Sequence[str] = ()
    ) -> dict[str, Any]:
        schema, props = SCHEMAS[object_type], record.properties
        wanted = names or schema.defaults
        # Known-but-unset properties come back as null; names HubSpot does not know are left out.
        known = schema.writable | schema.readonly
        out: dict[str, Any] = {
            "id": record.id,
            "properties": {n: props.get(n) for n in wanted if n in known or n in props},
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "archived": record.archived_at is not None,
        }
        if record.archived_at is not None:
            out["archivedAt"] = record.archived_at
        wanted_links = [t for t in associations if t in SCHEMAS]  # HubSpot ignores types it does not know
        if wanted_links and (links := self._links.render(object_type, record.id, wanted_links, self._live)):
            out["associations"] = links
        return out


def _not_found(object_id: str) -> CrmError:
    return CrmError(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        context={"id": [object_id]},
    )


def _cursor(after: Any) -> int:
    if after in (None, ""):
        return 0
    try:
        value = int(str(after))
    except ValueError:
        value = -1
    if value < 0:
        raise CrmError(400, "VALIDATION_ERROR", f"Invalid paging cursor: after={after!r}")
    return value


def _search_limit(raw: Any) -> int:
    if raw is None:
        return 10
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 < raw <= 200:
        raise CrmError(400, "VALIDATION_ERROR", "limit must be an integer between 1 and 200")
    return raw


def _filter_groups(raw: Any) -> list[list[dict[str, Any]]]:
    if not raw:
        return []
    if not isinstance(raw, list) or len(raw) > 5:
        raise CrmError(400, "VALIDATION_ERROR", "filterGroups must be a list of at most 5 groups")
    groups = []
    for group in raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > 6:
            raise CrmError(400, "VALIDATION_ERROR", "each filter group needs `filters`, at most 6")
        for flt in filters:
            if (
                not isinstance(flt, dict)
                or not isinstance(flt.get("propertyName"), str)
                or flt.get("operator") not in _OPERATORS
            ):
                raise CrmError(400, "VALIDATION_ERROR", f"Invalid filter: {flt!r}")
        groups.append(filters)
    return groups


def _sorts(raw: Any) -> list[tuple[str, bool]]:
    """HubSpot takes sorts as strings ("createdate", "-createdate") or {propertyName, direction}."""
    out = []
    for item in raw or ():
        if isinstance(item, str) and item.strip("-"):
            out.append((item.lstrip("-"), item.startswith("-")))
        elif isinstance(item, dict) and isinstance(item.get("propertyName"), str):
            out.append((item["propertyName"], item.get("direction") == "DESCENDING"))
        else:
            raise CrmError(400, "VALIDATION_ERROR", f"Invalid sort: {item!r}")
    return out


def _seed(store: CrmStore) -> None:
    moment = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)  # fixed, so demo output is reproducible
    ids: dict[str, list[str]] = {}
    for object_type, rows in SEED.items():
        for row in rows:
            moment += timedelta(hours=7, minutes=13)
            ids.setdefault(object_type, []).append(store._insert(object_type, dict(row), _iso(moment)).id)
    for from_type, one, to_type, other, type_id in SEED_ASSOCIATIONS:
        store._links.add(from_type, ids[from_type][one], ids[to_type][other], type_id)
