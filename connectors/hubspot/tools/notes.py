"""HubSpot notes: text logged on the timeline of a contact, company or deal.

No data label: the tool returns the new note's id, time and the records it is attached to, never the text,
so nothing anyone wrote comes back through it. (A tool that reads notes would return `untrusted.content`:
staff paste customers' emails and call transcripts into notes.)
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from connectors.base import tool
from connectors.errors import ProviderRejected
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.tools._common import ID_PATTERN, association

__all__ = ["Note", "hubspot_notes_create"]

# HubSpot-defined association types from a note (hubspot.crm.association_type.NOTE_TO_*).
_NOTE_TO = {"contact": 202, "company": 190, "deal": 214}
_MAX_BODY = 65_536  # HubSpot's limit for hs_note_body


class Note(BaseModel):
    id: str
    timestamp: str | None = Field(default=None, description="When the note is dated on the timeline.")
    contact_ids: list[str] = Field(default_factory=list)
    company_ids: list[str] = Field(default_factory=list)
    deal_ids: list[str] = Field(default_factory=list)


def _iso(moment: datetime) -> str:
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# A sink: its free text lands on a timeline every CRM user (and every integration reading the CRM) sees,
# so a value the agent read elsewhere is checked before it is pasted there.
@tool(
    scopes=["crm.notes.write"],
    resources={"contact_id": "object_ids", "company_id": "object_ids", "deal_id": "object_ids"},
    sink=True,
    risk="low",
    properties=["body", "timestamp"],
)
async def hubspot_notes_create(
    client: HubSpotClient,
    body: Annotated[
        str,
        Field(
            description="The note's text, as it should read on the record's timeline.",
            min_length=1,
            max_length=_MAX_BODY,
        ),
    ],
    contact_id: Annotated[
        str | None, Field(description="Attach the note to this contact id.", pattern=ID_PATTERN)
    ] = None,
    company_id: Annotated[
        str | None, Field(description="Attach the note to this company id.", pattern=ID_PATTERN)
    ] = None,
    deal_id: Annotated[str | None, Field(description="Attach the note to this deal id.", pattern=ID_PATTERN)] = None,
    timestamp: Annotated[
        datetime | None,
        Field(description="When what the note records happened, ISO 8601 (UTC if no offset); default now."),
    ] = None,
) -> Note:
    """Log a note on a HubSpot contact, company or deal (at least one; several attach the same note to each).

    Use this to record a call summary, a decision or a follow-up on the record's timeline, where staff
    see it. Returns the note's id and the records it is attached to.
    """
    targets = {"contact": contact_id, "company": company_id, "deal": deal_id}
    if not any(targets.values()):
        raise ProviderRejected("a note must be attached to something: give contact_id, company_id or deal_id")
    associations = [association(i, _NOTE_TO[kind]) for kind, i in targets.items() if i]
    properties = {"hs_note_body": body, "hs_timestamp": _iso(timestamp or datetime.now(UTC))}
    created = await client.call(
        client.notes.create,
        simple_public_object_input_for_create={"properties": properties, "associations": associations},
    )
    props = created.get("properties") or {}
    return Note(
        id=str(created["id"]),
        timestamp=props.get("hs_timestamp") or properties["hs_timestamp"],
        contact_ids=[contact_id] if contact_id else [],
        company_ids=[company_id] if company_id else [],
        deal_ids=[deal_id] if deal_id else [],
    )
