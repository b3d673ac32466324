"""Google Drive's OAuth and API facts (the OAuth client is shared with Gmail: settings group `google`).

Scopes: reading needs `drive.readonly` (every file the user can see). Writing needs `drive`, not the
narrower `drive.file`: `drive.file` reaches only files this app created or the user opened with it through
Google's Picker, and a self-hosted hub has no Picker, so uploading into the user's own folders, moving
their files and sharing them would all fail. `drive` covers reading too, so a connection with both hub
scopes asks for `drive` alone (`exclusive_scopes`, weakest first).
"""

from connectors.base import Manifest
from connectors.google_common import (
    API_BASE,
    AUTHORIZE_PARAMS,
    AUTHORIZE_URL,
    REVOKE_URL,
    SETTINGS_KEY,
    TOKEN_URL,
)

__all__ = ["DRIVE", "DRIVE_READONLY", "MANIFEST"]

DRIVE_READONLY = "https://www.googleapis.com/auth/drive.readonly"
DRIVE = "https://www.googleapis.com/auth/drive"

MANIFEST = Manifest(
    name="google_drive",
    display_name="Google Drive",
    settings_key=SETTINGS_KEY,
    authorize_url=AUTHORIZE_URL,
    token_url=TOKEN_URL,
    api_base=API_BASE,
    scope_map={
        "storage.files.read": (DRIVE_READONLY,),
        "storage.files.write": (DRIVE,),
    },
    scope_separator=" ",
    token_endpoint_auth_method="client_secret_post",
    pkce=True,
    authorize_params=AUTHORIZE_PARAMS,
    revoke_url=REVOKE_URL,
    exclusive_scopes=(DRIVE_READONLY, DRIVE),
)
