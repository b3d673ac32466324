"""Gmail's OAuth and API facts (the OAuth client is shared with Google Drive: settings group `google`).

Scopes: reading needs `gmail.readonly`. Sending and drafting share one hub scope, so it maps to
`gmail.compose` ("manage drafts and send emails"), which covers both `messages.send` and `drafts.create`;
`gmail.send` alone cannot create drafts, and asking for both would add nothing. Neither write scope can
read mail, so replying (which reads the original's Message-ID and thread) needs the read scope too.
"""

from connectors.google_common import google_manifest

__all__ = ["GMAIL_COMPOSE", "GMAIL_READONLY", "MANIFEST"]

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_COMPOSE = "https://www.googleapis.com/auth/gmail.compose"

MANIFEST = google_manifest(
    name="gmail",
    display_name="Gmail",
    scope_map={
        "messaging.email.read": (GMAIL_READONLY,),
        "messaging.email.send": (GMAIL_COMPOSE,),
    },
)
