"""Google Drive's OAuth and API facts (the OAuth client is shared with Gmail: settings group `google`).

Scopes: reading needs `drive.readonly` (every file the user can see). Writing needs `drive`, not the
narrower `drive.file`: `drive.file` reaches only files this app created or the user opened with it through
Google's Picker, and a self-hosted hub has no Picker, so uploading into the user's own folders, moving
their files and sharing them would all fail. `drive` covers reading too, so a connection with both hub
scopes asks for `drive` alone (`exclusive_scopes`, weakest first).
"""

from connectors.google_common import google_manifest

__all__ = ["DRIVE", "DRIVE_READONLY", "MANIFEST"]

DRIVE_READONLY = "https://www.googleapis.com/auth/drive.readonly"
DRIVE = "https://www.googleapis.com/auth/drive"

MANIFEST = google_manifest(
    name="google_drive",
    display_name="Google Drive",
    scope_map={
        "storage.files.read": (DRIVE_READONLY,),
        "storage.files.write": (DRIVE,),
    },
    exclusive_scopes=(DRIVE_READONLY, DRIVE),
)
