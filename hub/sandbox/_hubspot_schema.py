"""What HubSpot's CRM objects look like (properties, defaults, enumerations, association types), the
account's deal pipelines and owners, and the demo seed rows."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ASSOCIATION_TYPES",
    "OWNERS",
    "PIPELINES",
    "SCHEMAS",
    "SEED",
    "SEED_ASSOCIATIONS",
    "AssociationType",
    "Schema",
]


def _names(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _ordered(words: str) -> tuple[str, ...]:
    return tuple(words.split())


@dataclass(frozen=True, slots=True)
class Schema:
    defaults: tuple[str, ...]  # returned when the caller names no properties, as HubSpot does
    searchable: tuple[str, ...]  # what a free-text search `query` looks at
    writable: frozenset[str]
    modified: str  # contacts say `lastmodifieddate`, the other objects `hs_lastmodifieddate`
    options: Mapping[str, frozenset[str]] = field(default_factory=dict)  # enumeration properties
    created: str = "createdate"  # notes (activities) say `hs_createdate`
    required: frozenset[str] = frozenset()  # a create without these is a validation error
    dates: frozenset[str] = frozenset()  # ISO 8601 or epoch milliseconds, nothing else

    @property
    def readonly(self) -> frozenset[str]:
        return frozenset({"hs_object_id", self.created, self.modified})


@dataclass(frozen=True, slots=True)
class AssociationType:
    """A HubSpot-defined association type (`hubspot.crm.association_type`): from one object type to another."""

    from_type: str
    to_type: str
    name: str  # as HubSpot names it in `associations` answers, e.g. "note_to_deal"
    inverse: int  # the type HubSpot records in the other direction at the same time
    also: int | None = None  # a primary type is recorded together with its unlabelled twin


_SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "notes": "note"}


def _pair(
    a: int, b: int, from_type: str, to_type: str, *, suffix: str = "", also: tuple[int, int] | None = None
) -> dict[int, AssociationType]:
    one, other = _SINGULAR[from_type], _SINGULAR[to_type]
    return {
        a: AssociationType(from_type, to_type, f"{one}_to_{other}{suffix}", b, also[0] if also else None),
        b: AssociationType(to_type, from_type, f"{other}_to_{one}{suffix}", a, also[1] if also else None),
    }


ASSOCIATION_TYPES: dict[int, AssociationType] = {
    **_pair(279, 280, "contacts", "companies", suffix="_unlabeled"),
    **_pair(1, 2, "contacts", "companies", also=(279, 280)),
    **_pair(3, 4, "deals", "contacts"),
    **_pair(341, 342, "deals", "companies", suffix="_unlabeled"),
    **_pair(5, 6, "deals", "companies", also=(341, 342)),
    **_pair(202, 201, "notes", "contacts"),
    **_pair(190, 189, "notes", "companies"),
    **_pair(214, 213, "notes", "deals"),
}

_CREATED = "2024-01-08T09:00:00.000Z"


def _stage(stage_id: str, label: str, order: int, probability: str, closed: bool = False) -> dict[str, Any]:
    return {
        "label": label,
        "displayOrder": order,
        "metadata": {"isClosed": "true" if closed else "false", "probability": probability},
        "id": stage_id,
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


# GET /crm/v3/pipelines/deals: HubSpot's default sales pipeline, plus one an admin added (numeric ids).
PIPELINES: dict[str, list[dict[str, Any]]] = {
    "deals": [
        {
            "label": "Sales Pipeline",
            "displayOrder": 0,
            "id": "default",
            "stages": [
                _stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2"),
                _stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4"),
                _stage("presentationscheduled", "Presentation Scheduled", 2, "0.6"),
                _stage("decisionmakerboughtin", "Decision Maker Bought-In", 3, "0.8"),
                _stage("contractsent", "Contract Sent", 4, "0.9"),
                _stage("closedwon", "Closed Won", 5, "1.0", closed=True),
                _stage("closedlost", "Closed Lost", 6, "0.0", closed=True),
            ],
            "createdAt": _CREATED,
            "updatedAt": _CREATED,
            "archived": False,
        },
        {
            "label": "Renewals",
            "displayOrder": 1,
            "id": "1203581",
            "stages": [
                _stage("1203582", "Renewal due", 0, "0.5"),
                _stage("1203583", "Renewed", 1, "1.0", closed=True),
                _stage("1203584", "Churned", 2, "0.0", closed=True),
            ],
            "createdAt": _CREATED,
            "updatedAt": _CREATED,
            "archived": False,
        },
    ]
}


def _owner(
    owner_id: str, first: str, last: str, user_id: int, *teams: tuple[str, str], archived: bool = False
) -> dict[str, Any]:
    return {
        "id": owner_id,
        "email": f"{first.lower()}.{last.lower()}@switchboard-demo.example.com",
        "type": "PERSON",
        "firstName": first,
        "lastName": last,
        "userId": user_id,
        "userIdIncludingInactive": user_id,
        "createdAt": _CREATED,
        "updatedAt": _CREATED,
        "archived": archived,
        "teams": [{"id": tid, "name": name, "primary": i == 0} for i, (tid, name) in enumerate(teams)],
    }


# GET /crm/v3/owners/: the portal's users that records can be assigned to.
OWNERS: list[dict[str, Any]] = [
    _owner("41629779", "Mary", "Jackson", 9586504, ("5011", "Sales")),
    _owner("41629780", "Dorothy", "Vaughan", 9586505, ("5011", "Sales"), ("5012", "Support")),
    _owner("41629781", "Annie", "Easley", 9586506),
    _owner("41629782", "Melba", "Roy", 9586507, ("5012", "Support"), archived=True),
]


SCHEMAS: dict[str, Schema] = {
    "contacts": Schema(
        defaults=_ordered("createdate email firstname hs_object_id lastmodifieddate lastname"),
        searchable=_ordered("firstname lastname email phone mobilephone company hs_additional_emails"),
        writable=_names(
            "email firstname lastname phone mobilephone company jobtitle website address city state zip "
            "country lifecyclestage hs_lead_status hubspot_owner_id hs_additional_emails industry message "
            "annualrevenue fax"
        ),
        modified="lastmodifieddate",
        options={
            "lifecyclestage": _names(
                "subscriber lead marketingqualifiedlead salesqualifiedlead opportunity customer evangelist other"
            )
        },
    ),
    "companies": Schema(
        defaults=_ordered("createdate domain hs_lastmodifieddate hs_object_id name"),
        searchable=_ordered("name domain website phone"),
        writable=_names(
            "name domain website phone industry address city state zip country numberofemployees "
            "annualrevenue description lifecyclestage type hubspot_owner_id linkedin_company_page"
        ),
        modified="hs_lastmodifieddate",
    ),
    "deals": Schema(
        defaults=_ordered("amount closedate createdate dealname dealstage hs_lastmodifieddate hs_object_id pipeline"),
        searchable=_ordered("dealname pipeline dealstage description dealtype"),
        writable=_names(
            "dealname amount dealstage pipeline closedate dealtype description hubspot_owner_id hs_priority"
        ),
        modified="hs_lastmodifieddate",
        options={
            "pipeline": frozenset(p["id"] for p in PIPELINES["deals"]),
            "dealstage": frozenset(s["id"] for p in PIPELINES["deals"] for s in p["stages"]),
        },
        dates=_names("closedate"),
    ),
    "notes": Schema(
        defaults=_ordered("hs_createdate hs_lastmodifieddate hs_object_id"),
        searchable=_ordered("hs_note_body"),
        writable=_names("hs_note_body hs_timestamp hubspot_owner_id hs_attachment_ids"),
        modified="hs_lastmodifieddate",
        created="hs_createdate",
        required=_names("hs_timestamp"),
        dates=_names("hs_timestamp"),
    ),
}


SEED: dict[str, list[dict[str, str]]] = {
    "companies": [
        {
            "name": "Analytical Engines Ltd",
            "domain": "analytical-engines.example.com",
            "industry": "COMPUTER_HARDWARE",
            "phone": "+1 555 0100",
            "city": "London",
            "country": "United Kingdom",
            "numberofemployees": "42",
        },
        {
            "name": "Compiler Works",
            "domain": "compilerworks.example.com",
            "industry": "COMPUTER_SOFTWARE",
            "phone": "+1 555 0101",
            "city": "Arlington",
            "country": "United States",
            "numberofemployees": "120",
        },
        {
            "name": "Orbital Mechanics Inc",
            "domain": "orbital.example.com",
            "industry": "AVIATION_AEROSPACE",
            "phone": "+1 555 0102",
            "city": "Hampton",
            "country": "United States",
            "numberofemployees": "310",
        },
    ],
    "contacts": [
        {
            "firstname": "Ada",
            "lastname": "Lovelace",
            "email": "ada@analytical-engines.example.com",
            "phone": "+1 555 0110",
            "company": "Analytical Engines Ltd",
            "jobtitle": "Founder",
            "lifecyclestage": "customer",
        },
        {
            "firstname": "Charles",
            "lastname": "Babbage",
            "email": "charles@analytical-engines.example.com",
            "phone": "+1 555 0111",
            "company": "Analytical Engines Ltd",
            "jobtitle": "CTO",
            "lifecyclestage": "customer",
        },
        {
            "firstname": "Grace",
            "lastname": "Hopper",
            "email": "grace@compilerworks.example.com",
            "phone": "+1 555 0112",
            "company": "Compiler Works",
            "jobtitle": "Rear Admiral of Engineering",
            "lifecyclestage": "opportunity",
        },
        {
            "firstname": "Katherine",
            "lastname": "Johnson",
            "email": "katherine@orbital.example.com",
            "phone": "+1 555 0113",
            "company": "Orbital Mechanics Inc",
            "jobtitle": "Lead Mathematician",
            "lifecyclestage": "salesqualifiedlead",
        },
        {
            "firstname": "Alan",
            "lastname": "Turing",
            "email": "alan.turing@example.com",
            "phone": "+1 555 0114",
            "jobtitle": "Researcher",
            "lifecyclestage": "lead",
        },
        {
            "firstname": "Margaret",
            "lastname": "Hamilton",
            "email": "margaret@orbital.example.com",
            "phone": "+1 555 0115",
            "company": "Orbital Mechanics Inc",
            "jobtitle": "Director of Software",
            "lifecyclestage": "marketingqualifiedlead",
        },
    ],
    "deals": [
        {
            "dealname": "Analytical Engines - annual plan",
            "amount": "12000",
            "pipeline": "default",
            "dealstage": "closedwon",
            "closedate": "2024-06-28T00:00:00.000Z",
            "hubspot_owner_id": "41629779",
        },
        {
            "dealname": "Compiler Works - enterprise pilot",
            "amount": "45000",
            "pipeline": "default",
            "dealstage": "presentationscheduled",
            "closedate": "2025-03-31T00:00:00.000Z",
            "hubspot_owner_id": "41629780",
        },
        {
            "dealname": "Orbital Mechanics - trajectory suite",
            "amount": "78500",
            "pipeline": "default",
            "dealstage": "qualifiedtobuy",
            "closedate": "2025-05-15T00:00:00.000Z",
        },
        {
            "dealname": "Turing - consulting",
            "amount": "3200",
            "pipeline": "default",
            "dealstage": "closedlost",
            "closedate": "2024-11-01T00:00:00.000Z",
        },
    ],
}


# (from type, index in SEED, to type, index in SEED, association type id): each deal's company and contact.
SEED_ASSOCIATIONS: list[tuple[str, int, str, int, int]] = [
    ("deals", 0, "companies", 0, 5),
    ("deals", 0, "contacts", 0, 3),
    ("deals", 1, "companies", 1, 5),
    ("deals", 1, "contacts", 2, 3),
    ("deals", 2, "companies", 2, 5),
    ("deals", 2, "contacts", 3, 3),
    ("deals", 3, "contacts", 4, 3),
    ("contacts", 0, "companies", 0, 1),
    ("contacts", 1, "companies", 0, 1),
    ("contacts", 2, "companies", 1, 1),
    ("contacts", 3, "companies", 2, 1),
    ("contacts", 5, "companies", 2, 1),
]
