"""The folders a Drive file or folder lies in, up to the root: what a `folders` allow-list needs to admit
what is inside an allowed folder (`scopes.CallFacts.ancestors`).

Drive says only an item's direct `parents`, so the walk asks `files.get(fields="id,parents")` once per item,
nearest first, each id at most once per lookup (a file and the folder it moves to share their ancestry),
and stops after `MAX_DEPTH` levels. An item Drive does not show (deleted, or not visible to the user) has no
ancestors: a value nobody can place is outside every allow-list. An alias such as 'root' counts the folder
it names among its ancestors, so 'root' is allowed where the root folder's id is.
"""

from collections.abc import Iterable

from connectors.errors import ProviderNotFound
from connectors.google_drive.client import DriveClient
from connectors.google_drive.manifest import DRIVE_READONLY

__all__ = ["MAX_DEPTH", "folders_above"]

MAX_DEPTH = 32  # Drive nests far less deep in practice; a cycle or a runaway tree stops here


async def folders_above(client: DriveClient, ids: Iterable[str]) -> dict[str, list[str]]:
    """Each of `ids` → the ids of every folder it lies inside, nearest first, up to the root."""
    known: dict[str, tuple[str, list[str]] | None] = {}  # id → (its own id, its parents); None: not found

    async def look_up(file_id: str) -> tuple[str, list[str]] | None:
        if file_id not in known:
            try:
                body = await client.execute(
                    lambda: client.files.get(fileId=file_id, fields="id,parents", supportsAllDrives=True),
                    needs=DRIVE_READONLY,
                )
            except ProviderNotFound:
                known[file_id] = None
            else:
                known[file_id] = (str(body.get("id") or file_id), [str(p) for p in body.get("parents") or []])
        return known[file_id]

    found: dict[str, list[str]] = {}
    for value in dict.fromkeys(ids):
        item = await look_up(value)
        if item is None:
            found[value] = []
            continue
        own_id, level = item
        above = [own_id] if own_id != value else []
        seen = {value, own_id}
        for _ in range(MAX_DEPTH):
            level = [p for p in dict.fromkeys(level) if p not in seen]
            if not level:
                break
            above += level
            seen.update(level)
            upper: list[str] = []
            for parent in level:
                holder = await look_up(parent)
                upper += holder[1] if holder is not None else []  # a parent hidden from the user ends its branch
            level = upper
        found[value] = above
    return found
