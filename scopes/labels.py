"""Data labels: what kind of data a tool returns, the vocabulary tools, redaction and flow rules share.

A tool declares the labels of its output (`@tool(labels=["pii.email"])`); a grant may `redact` labels; a
flow rule names a label (`pii.email → messaging.email.send`); `untrusted.content` marks the session.

How labels map to fields of a result. A tool may declare `label_fields={"pii.email": ["contacts[].email"]}`
(paths, see `scopes.paths`). Otherwise, and always in addition, the field-name conventions below apply: a
key named `email`, `phone`, `firstname`, … at any depth holds that label's data. The conventions are
deliberately narrow (no bare `name`, which is also a file's or a channel's name) so that masking them never
destroys ids the agent needs; a tool whose data hides under other names must declare `label_fields`.

Each label has a *kind* that says how its values are recognised and normalised: `email` values are found in
any text by pattern, `phone` values are digit runs, `text` values are compared word by word.
"""

from functools import lru_cache
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "LABELS",
    "SENSITIVE_LABELS",
    "UNTRUSTED",
    "Kind",
    "conventional_label",
    "conventional_names",
    "covers",
    "is_known_label",
    "kind_of",
]

Kind = Literal["email", "phone", "text"]

UNTRUSTED: Final = "untrusted.content"

LABELS: Final = MappingProxyType(
    {
        "pii.email": "Email addresses",
        "pii.phone": "Phone numbers",
        "pii.name": "People's names",
        "pii.address": "Postal addresses",
        "financial": "Amounts, balances, prices and other commercial figures",
        "financial.card": "Payment card details (brand, last four digits, expiry)",
        UNTRUSTED: "Text written by people outside the organisation (mail, shared files, chat): reading it marks "
        "the agent's session untrusted",
    }
)

# Values under these labels are fingerprinted when a tool returns them, and looked for in a sink's arguments.
# `financial` (amounts) and `untrusted.content` (whole texts) are not values one can meaningfully trace.
SENSITIVE_LABELS: Final = frozenset({"pii.email", "pii.phone", "pii.name", "pii.address", "financial.card"})

_KINDS: Final = MappingProxyType({"pii.email": "email", "pii.phone": "phone"})

# Field names (at any depth) that hold a label's data when the tool declares nothing more precise.
_CONVENTIONS: Final = MappingProxyType(
    {
        "pii.email": frozenset({"email", "emails", "email_address", "emailaddress"}),
        "pii.phone": frozenset({"phone", "phones", "phone_number", "mobilephone", "mobile_phone", "mobile"}),
        "pii.name": frozenset(
            {"firstname", "lastname", "first_name", "last_name", "full_name", "real_name", "display_name"}
        ),
        "pii.address": frozenset({"address", "street", "postal_code", "zip", "zipcode", "address_line1"}),
        "financial": frozenset(
            {"amount", "total", "subtotal", "unit_amount", "balance", "amount_due", "amount_paid", "amount_remaining"}
        ),
        "financial.card": frozenset({"card", "last4", "card_number", "exp_month", "exp_year", "cvc"}),
    }
)
_SUFFIXES: Final = (("_email", "pii.email"), ("_phone", "pii.phone"), ("_amount", "financial"))
_PREFIXES: Final = (("amount_", "financial"),)


def is_known_label(label: str) -> bool:
    return label in LABELS


def kind_of(label: str) -> Kind:
    """How values of `label` are normalised and recognised: `email`, `phone`, or plain `text`."""
    kind = _KINDS.get(label, "text")
    return "email" if kind == "email" else "phone" if kind == "phone" else "text"


def conventional_names(label: str) -> frozenset[str]:
    """Field names that hold `label`'s data by convention (empty for labels without a convention)."""
    return _CONVENTIONS.get(label, frozenset())


@lru_cache(maxsize=4096)
def conventional_label(field: str) -> str | None:
    """The label a field name carries by convention (`owner_email` → `pii.email`), or None."""
    name = field.lower()
    for label, names in _CONVENTIONS.items():
        if name in names:
            return label
    for suffix, label in _SUFFIXES:
        if name.endswith(suffix):
            return label
    for prefix, label in _PREFIXES:
        if name.startswith(prefix):
            return label
    return None


def covers(rule: str, label: str) -> bool:
    """Whether a label named in a rule covers `label`: itself, or a label under it (`financial` covers
    `financial.card`)."""
    return label == rule or label.startswith(rule + ".")
