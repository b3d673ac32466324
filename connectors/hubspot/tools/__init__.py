"""HubSpot CRM tools, one module per resource. Each returns only the fields a model needs, ids kept, with a
cursor for more."""

from connectors.base import Tool, collect_tools
from connectors.hubspot.tools import companies, contacts, deals, notes, owners, pipelines
from connectors.hubspot.tools.companies import Company, CompanyPage
from connectors.hubspot.tools.contacts import Contact, ContactPage
from connectors.hubspot.tools.deals import Deal, DealPage
from connectors.hubspot.tools.notes import Note
from connectors.hubspot.tools.owners import Owner, OwnerPage
from connectors.hubspot.tools.pipelines import Pipeline, PipelineList, Stage

__all__ = [
    "TOOLS",
    "Company",
    "CompanyPage",
    "Contact",
    "ContactPage",
    "Deal",
    "DealPage",
    "Note",
    "Owner",
    "OwnerPage",
    "Pipeline",
    "PipelineList",
    "Stage",
]

TOOLS: tuple[Tool, ...] = tuple(
    t for module in (contacts, companies, deals, pipelines, notes, owners) for t in collect_tools(module)
)
