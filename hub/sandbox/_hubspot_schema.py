"""What HubSpot's CRM objects look like (properties, defaults, enumerations) and the demo seed rows."""

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["SCHEMAS", "SEED", "Schema"]


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

    @property
    def readonly(self) -> frozenset[str]:
        return frozenset({"hs_object_id", "createdate", self.modified})


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
            "pipeline": _names("default"),
            "dealstage": _names(
                "appointmentscheduled qualifiedtobuy presentationscheduled decisionmakerboughtin "
                "contractsent closedwon closedlost"
            ),
        },
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
        },
        {
            "dealname": "Compiler Works - enterprise pilot",
            "amount": "45000",
            "pipeline": "default",
            "dealstage": "presentationscheduled",
            "closedate": "2025-03-31T00:00:00.000Z",
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
