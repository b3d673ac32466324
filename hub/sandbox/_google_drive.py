"""Drive v3, emulated: a small tree of folders, a Google Doc, a Sheet, Slides, text and binary files, with
files.list (Drive's query language, paging, ordering), files.get (partial responses, `alt=media` downloads
with Range), files.export, files.create (metadata and multipart uploads at `/upload/drive/v3/files`),
files.update (rename, trash, move with addParents/removeParents; one parent per file, as Drive enforces),
and permissions.create. Answers and errors take Drive's shapes, including its partial-response rules.
"""

import base64
import email.parser
import email.policy
import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import cache
from typing import Any

import orjson
from googleapiclient import discovery_cache
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox._common import json_response
from hub.sandbox._google_api import GoogleError, authorize, bool_param, int_param, select_fields
from hub.sandbox._google_drive_query import parse_query

__all__ = ["DriveApi", "DriveItem"]

FOLDER = "application/vnd.google-apps.folder"
DOC = "application/vnd.google-apps.document"
SHEET = "application/vnd.google-apps.spreadsheet"
SLIDES = "application/vnd.google-apps.presentation"
FORM = "application/vnd.google-apps.form"
ROOT_ID = "0AGxSandboxRootFolderUk9PVA"
_OWNER_PERMISSION_ID = "04417213542946218935"
_EXPORTS: dict[str, dict[str, Callable[[str], str]]] = {
    DOC: {
        "text/markdown": lambda md: md,
        "text/plain": lambda md: re.sub(r"^#+ |\*\*|^- ", "", md, flags=re.M),
        "text/html": lambda md: (
            "<html><body>" + "".join(f"<p>{line}</p>" for line in md.splitlines()) + "</body></html>"
        ),
    },
    SHEET: {"text/csv": lambda csv: csv, "text/tab-separated-values": lambda csv: csv.replace(",", "\t")},
    SLIDES: {"text/plain": lambda text: text},
}
_LINKS = {
    DOC: "https://docs.google.com/document/d/{}/edit?usp=drivesdk",
    SHEET: "https://docs.google.com/spreadsheets/d/{}/edit?usp=drivesdk",
    SLIDES: "https://docs.google.com/presentation/d/{}/edit?usp=drivesdk",
    FORM: "https://docs.google.com/forms/d/{}/edit?usp=drivesdk",
    FOLDER: "https://drive.google.com/drive/folders/{}",
}
_ORDER_KEYS = {"folder", "name", "name_natural", "modifiedTime", "createdTime", "starred"}
_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@cache
def _schema_fields(name: str) -> frozenset[str]:
    """Field names of a Drive v3 schema, from the discovery document the SDK ships (for `fields=` checks)."""
    document = orjson.loads(discovery_cache.get_static_doc("drive", "v3") or b"{}")
    return frozenset(document["schemas"][name]["properties"])


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _new_id() -> str:
    return "1" + secrets.token_urlsafe(24).replace("-", "x")[:32]


@dataclass
class DriveItem:
    id: str
    name: str
    mime_type: str
    parents: list[str]
    created: datetime
    modified: datetime
    content: bytes | None = None  # the bytes of a stored file
    text: str | None = None  # what a Google Doc (Markdown), Sheet (CSV) or Slides holds
    trashed: bool = False
    starred: bool = False
    description: str | None = None
    permissions: list[dict[str, Any]] = field(default_factory=list)

    def query_value(self, name: str) -> Any:
        if name == "fullText":
            body = self.text or (self.content or b"")[:65536].decode("utf-8", "ignore")
            return f"{self.name}\n{self.description or ''}\n{body}"
        if name == "owners":
            return [p["emailAddress"] for p in self.permissions if p["role"] == "owner"]
        if name == "writers":
            return [p.get("emailAddress") for p in self.permissions if p["role"] in ("owner", "writer")]
        if name == "readers":
            return [p.get("emailAddress") for p in self.permissions]
        return {
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": [*self.parents, "root"] if ROOT_ID in self.parents else self.parents,
            "modifiedTime": self.modified,
            "createdTime": self.created,
            "viewedByMeTime": self.modified,
            "trashed": self.trashed,
            "starred": self.starred,
        }[name]

    def resource(self, owner: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "starred": self.starred,
            "trashed": self.trashed,
            "explicitlyTrashed": self.trashed,
            "parents": list(self.parents),
            "version": str(int(self.modified.timestamp())),
            "webViewLink": _LINKS.get(self.mime_type, "https://drive.google.com/file/d/{}/view?usp=drivesdk").format(
                self.id
            ),
            "iconLink": f"https://drive-thirdparty.googleusercontent.com/16/type/{self.mime_type}",
            "createdTime": _stamp(self.created),
            "modifiedTime": _stamp(self.modified),
            "owners": [owner],
            "ownedByMe": True,
            "shared": len(self.permissions) > 1,
            "permissions": self.permissions,
            "quotaBytesUsed": str(len(self.content or b"")),
        }
        if self.description is not None:
            body["description"] = self.description
        if self.content is not None:
            body |= {
                "size": str(len(self.content)),
                "md5Checksum": hashlib.md5(self.content, usedforsecurity=False).hexdigest(),
                "originalFilename": self.name,
                "webContentLink": f"https://drive.google.com/uc?id={self.id}&export=download",
            }
            if "." in self.name:
                body["fileExtension"] = body["fullFileExtension"] = self.name.rsplit(".", 1)[1]
        if self.mime_type in _EXPORTS:
            body["exportLinks"] = {
                mime: f"https://docs.google.com/feeds/download/export?id={self.id}&exportFormat={mime}"
                for mime in _EXPORTS[self.mime_type]
            }
        return body


def _permission_id(address: str) -> str:
    return str(int.from_bytes(hashlib.sha256(address.lower().encode()).digest()[:8], "big")).zfill(20)


class DriveApi:
    """One account's My Drive; every method runs its store work under the sandbox's lock."""

    def __init__(
        self,
        *,
        lock: threading.Lock,
        authenticate: Callable[[str | None], Any],
        account: str,
        display_name: str,
    ) -> None:
        self._lock = lock
        self._authenticate = authenticate
        self._owner = {
            "kind": "drive#user",
            "displayName": display_name,
            "emailAddress": account,
            "me": True,
            "permissionId": _OWNER_PERMISSION_ID,
        }
        self._owner_permission = {
            "kind": "drive#permission",
            "id": _OWNER_PERMISSION_ID,
            "type": "user",
            "role": "owner",
            "emailAddress": account,
            "displayName": display_name,
        }
        self.items: dict[str, DriveItem] = {}
        self.notifications: list[dict[str, Any]] = []  # share emails Drive would have sent
        self._seed()

    def routes(self) -> list[Route]:
        files = "/drive/v3/files"
        return [
            Route(files, self._list, methods=["GET"]),
            Route(files, self._create, methods=["POST"]),
            Route("/upload/drive/v3/files", self._upload, methods=["POST"]),
            Route(files + "/{file_id}", self._get, methods=["GET"]),
            Route(files + "/{file_id}", self._update, methods=["PATCH"]),
            Route(files + "/{file_id}/export", self._export, methods=["GET"]),
            Route(files + "/{file_id}/permissions", self._share, methods=["POST"]),
        ]

    # -- seed ----------------------------------------------------------------------------------------------

    def _add(self, item_id: str, name: str, mime: str, parent: str | None, day: int, **extra: Any) -> None:
        moment = datetime(2024, 3, day, 9, 30, tzinfo=UTC)
        self.items[item_id] = DriveItem(
            item_id,
            name,
            mime,
            [parent] if parent else [],
            moment,
            moment,
            permissions=[dict(self._owner_permission)],
            **extra,
        )

    def _seed(self) -> None:
        projects, archive = "1PrjXq0sandboxFolderProjects0001", "1ArcXq0sandboxFolderArchive00002"
        self._add(ROOT_ID, "My Drive", FOLDER, None, 1)
        self._add(projects, "Projects", FOLDER, ROOT_ID, 2)
        self._add(archive, "Archive", FOLDER, projects, 2)
        self._add(
            "1DocXq0sandboxLaunchPlanDocument3",
            "Launch plan",
            DOC,
            projects,
            5,
            text="# Launch plan\n\n## Goals\n\n- Ship **v1** by March 31\n- Onboard three pilot customers\n\n"
            "## Owners\n\n- Engineering: Grace\n- Sales: Ada\n",
        )
        self._add(
            "1ShtXq0sandboxBudgetSheet0000004",
            "Budget 2024",
            SHEET,
            projects,
            6,
            text="Item,Q1,Q2,Q3,Q4\nServers,1200,1300,1300,1500\nLicences,400,400,450,450\nTravel,800,200,900,300\n",
        )
        self._add(
            "1SldXq0sandboxPitchDeckSlides005",
            "Pitch deck",
            SLIDES,
            projects,
            7,
            text="Switchboard\n\nLeast-privilege connectors for AI agents\n\nWhy now\n",
        )
        self._add("1FrmXq0sandboxFeedbackForm000010", "Feedback form", FORM, projects, 8)
        self._add(
            "1TxtXq0sandboxNotesTextFile00006",
            "notes.txt",
            "text/plain",
            ROOT_ID,
            10,
            content=b"Remember: the quarterly review is on Friday.\nBring the budget numbers.\n",
        )
        self._add("1PngXq0sandboxLogoImageFile00007", "logo.png", "image/png", ROOT_ID, 11, content=_PNG)
        self._add(
            "1LogXq0sandboxServerLogOctet0008",
            "server.log",
            "application/octet-stream",
            ROOT_ID,
            12,
            content=b"2024-03-12T10:00:00Z INFO started\n2024-03-12T10:00:01Z WARN disk 91% full\n",
        )
        self._add(
            "1BinXq0sandboxFirmwareBlob000012",
            "firmware.bin",
            "application/octet-stream",
            ROOT_ID,
            13,
            content=bytes(range(256)) * 16,
        )
        big = b"".join(b"%06d GET /api/v1/items 200 12ms\n" % i for i in range(45_000))  # about 1.4 MB
        self._add("1BigXq0sandboxLargeTextFile00009", "access.log", "text/plain", ROOT_ID, 14, content=big)
        self._add(
            "1TrsXq0sandboxOldDraftTrashed011", "old draft.txt", "text/plain", ROOT_ID, 4, content=b"x", trashed=True
        )

    # -- helpers -------------------------------------------------------------------------------------------

    def _auth(self, request: Request, method: str) -> None:
        authorize(self._authenticate(request.headers.get("authorization")), method, service="drive")

    def _item(self, file_id: str) -> DriveItem:
        item = self.items.get(ROOT_ID if file_id == "root" else file_id)
        if item is None:
            raise GoogleError(404, f"File not found: {file_id}.", "notFound", location="fileId")
        return item

    def _folder(self, folder_id: str) -> DriveItem:
        folder = self.items.get(ROOT_ID if folder_id == "root" else folder_id)
        if folder is None:
            raise GoogleError(404, f"File not found: {folder_id}.", "notFound", location="fileId")
        if folder.mime_type != FOLDER:
            raise GoogleError(400, "The specified parent is not a folder.", "invalidParent", location="parents")
        return folder

    def _file_body(self, item: DriveItem, request: Request) -> dict[str, Any]:
        known = {
            "": _schema_fields("File"),
            "owners": _schema_fields("User"),
            "permissions": _schema_fields("Permission"),
        }
        return select_fields(
            item.resource(self._owner), request.query_params.get("fields"), default="kind,id,name,mimeType", known=known
        )

    def _ancestors(self, folder_id: str) -> set[str]:
        seen: set[str] = set()
        stack = [folder_id]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack += self.items[current].parents if current in self.items else []
        return seen

    # -- files.list ----------------------------------------------------------------------------------------

    async def _list(self, request: Request) -> Response:
        self._auth(request, "drive.files.list")
        query = request.query_params
        q = query.get("q", "")
        try:
            predicate = parse_query(q) if q.strip() else (lambda item: True)
        except ValueError:
            raise GoogleError(400, "Invalid Value", "invalid", location="q") from None
        page_size = int_param(request, "pageSize", 100, low=1, high=1000)
        for flag in ("supportsAllDrives", "includeItemsFromAllDrives"):
            bool_param(request, flag)
        order = self._order(query.get("orderBy"))
        offset = self._offset(query.get("pageToken"), q)
        with self._lock:
            found = [i for i in self.items.values() if i.id != ROOT_ID and predicate(i)]
            found.sort(key=order)
            if query.get("orderBy") is None:
                found.sort(key=lambda i: i.modified, reverse=True)
            page = found[offset : offset + page_size]
            files = [i.resource(self._owner) for i in page]
        body: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False, "files": files}
        if offset + page_size < len(found):
            body["nextPageToken"] = self._token(offset + page_size, q)
        known = {
            "": frozenset({"kind", "incompleteSearch", "files", "nextPageToken"}),
            "files": _schema_fields("File"),
        }
        default = "kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType)"
        return json_response(select_fields(body, query.get("fields"), default=default, known=known))

    @staticmethod
    def _order(spec: str | None) -> Callable[[DriveItem], Any]:
        keys: list[tuple[str, bool]] = []
        for part in (spec or "").split(","):
            words = part.split()
            if not words:
                continue
            if words[0] not in _ORDER_KEYS or len(words) > 2 or (len(words) == 2 and words[1].lower() != "desc"):
                raise GoogleError(400, "Invalid Value", "invalid", location="orderBy")
            keys.append((words[0], len(words) == 2))

        def key(item: DriveItem) -> tuple[Any, ...]:
            values: list[Any] = []
            for name, desc in keys:
                value: Any = {
                    "folder": item.mime_type != FOLDER,
                    "name": item.name.lower(),
                    "name_natural": item.name.lower(),
                    "modifiedTime": item.modified.timestamp(),
                    "createdTime": item.created.timestamp(),
                    "starred": not item.starred,
                }[name]
                if desc:
                    value = -value if isinstance(value, float) else _Reversed(value)
                values.append(value)
            return tuple(values)

        return key

    @staticmethod
    def _token(offset: int, q: str) -> str:
        raw = orjson.dumps({"o": offset, "q": hashlib.sha256(q.encode()).hexdigest()[:12]})
        return "~!!~" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _offset(token: str | None, q: str) -> int:
        if not token:
            return 0
        try:
            raw = token.removeprefix("~!!~")
            decoded = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if decoded["q"] != hashlib.sha256(q.encode()).hexdigest()[:12]:
                raise ValueError("page token of another query")
            return int(decoded["o"])
        except (ValueError, KeyError, TypeError):
            raise GoogleError(400, "Invalid Value", "invalid", location="pageToken") from None

    # -- files.get, alt=media, export ----------------------------------------------------------------------

    async def _get(self, request: Request) -> Response:
        self._auth(request, "drive.files.get")
        alt = request.query_params.get("alt", "json")
        if alt not in ("json", "media"):
            raise GoogleError(400, f"Invalid value for alt: {alt}", "invalidParameter", location="alt")
        bool_param(request, "supportsAllDrives")
        with self._lock:
            item = self._item(request.path_params["file_id"])
            if alt == "json":
                return json_response(self._file_body(item, request))
            if item.content is None:
                raise GoogleError(
                    403,
                    "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                    "fileNotDownloadable",
                    location="alt",
                )
            content, mime = item.content, item.mime_type
        return _ranged(content, mime, request.headers.get("range"))

    async def _export(self, request: Request) -> Response:
        self._auth(request, "drive.files.export")
        wanted = request.query_params.get("mimeType")
        if not wanted:
            raise GoogleError(400, "Required parameter: mimeType", "required", location="mimeType")
        with self._lock:
            item = self._item(request.path_params["file_id"])
            formats = _EXPORTS.get(item.mime_type)
            if item.mime_type not in _EXPORTS and not item.mime_type.startswith("application/vnd.google-apps."):
                raise GoogleError(403, "Export only supports Docs Editors files.", "fileNotExportable")
            if formats is None or wanted not in formats:
                raise GoogleError(400, "The requested conversion is not supported.", "badRequest", location="convertTo")
            text = formats[wanted](item.text or "")
        return Response(text.encode(), 200, media_type=wanted)

    # -- files.create, uploads, files.update ---------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        self._auth(request, "drive.files.create")
        metadata = await _json_object(request)
        with self._lock:
            item = self._new_item(metadata, content=None)
            return json_response(self._file_body(item, request))

    async def _upload(self, request: Request) -> Response:
        self._auth(request, "drive.files.create")
        upload_type = request.query_params.get("uploadType")
        raw = await request.body()
        if upload_type == "multipart":
            metadata, content, media_type = _multipart(request.headers.get("content-type", ""), raw)
        elif upload_type == "media":
            metadata, content, media_type = {}, raw, request.headers.get("content-type", "")
        else:
            raise GoogleError(
                400, f"Upload type {upload_type!r} is not supported here.", "badRequest", location="uploadType"
            )
        metadata.setdefault("mimeType", media_type.split(";")[0].strip() or "application/octet-stream")
        with self._lock:
            item = self._new_item(metadata, content=content)
            return json_response(self._file_body(item, request))

    def _new_item(self, metadata: dict[str, Any], *, content: bytes | None) -> DriveItem:
        for name in ("size", "owners", "webViewLink", "md5Checksum"):
            if name in metadata:
                raise GoogleError(
                    403,
                    f"The resource body includes fields which are not directly writable: {name}",
                    "fieldNotWritable",
                )
        parents = metadata.get("parents") or [ROOT_ID]
        if not isinstance(parents, list) or len(parents) > 1:
            raise GoogleError(403, "Increasing the number of parents is not allowed.", "cannotAddParent")
        parent = self._folder(str(parents[0]))
        mime = str(metadata.get("mimeType") or "application/octet-stream")
        if mime.startswith("application/vnd.google-apps.") and mime not in (FOLDER, *_EXPORTS):
            raise GoogleError(400, f"Unsupported mimeType {mime}.", "badRequest")
        now = datetime.now(UTC)
        item = DriveItem(
            _new_id(),
            str(metadata.get("name") or "Untitled"),
            mime,
            [parent.id],
            now,
            now,
            content=(content or b"") if mime != FOLDER and mime not in _EXPORTS else None,
            text="" if mime in _EXPORTS else None,
            description=metadata.get("description"),
            starred=bool(metadata.get("starred", False)),
            permissions=[dict(self._owner_permission)],
        )
        self.items[item.id] = item
        return item

    async def _update(self, request: Request) -> Response:
        self._auth(request, "drive.files.update")
        changes = await _json_object(request)
        query = request.query_params
        bool_param(request, "supportsAllDrives")
        if "parents" in changes:
            raise GoogleError(
                403,
                "The parents field is not directly writable in update requests. "
                "Use the addParents and removeParents parameters instead.",
                "fieldNotWritable",
            )
        add = [p for p in (query.get("addParents") or "").split(",") if p]
        remove = [p for p in (query.get("removeParents") or "").split(",") if p]
        with self._lock:
            item = self._item(request.path_params["file_id"])
            if item.id == ROOT_ID:
                raise GoogleError(403, "The root folder cannot be modified.", "cannotModifyRoot")
            targets = [self._folder(p).id for p in add]
            removing = {ROOT_ID if p == "root" else p for p in remove}
            parents = [p for p in item.parents if p not in removing] + [p for p in targets if p not in item.parents]
            if len(parents) > 1:
                raise GoogleError(403, "Increasing the number of parents is not allowed.", "cannotAddParent")
            if item.mime_type == FOLDER and any(item.id in self._ancestors(p) for p in targets):
                raise GoogleError(400, "A folder cannot be moved into itself or its descendants.", "invalidParent")
            for name in ("name", "description", "starred", "trashed"):
                if name in changes:
                    setattr(item, name, changes[name])
            item.parents = parents
            item.modified = datetime.now(UTC)
            return json_response(self._file_body(item, request))

    # -- permissions.create --------------------------------------------------------------------------------

    async def _share(self, request: Request) -> Response:
        self._auth(request, "drive.permissions.create")
        body = await _json_object(request)
        notify = bool_param(request, "sendNotificationEmail", default=True)
        message = request.query_params.get("emailMessage")
        kind, role, address = body.get("type"), body.get("role"), body.get("emailAddress")
        if kind not in ("user", "group", "domain", "anyone"):
            raise GoogleError(400, "Invalid permission type specified", "invalid", location="permission.type")
        if role not in ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"):
            raise GoogleError(400, "Invalid permission role specified", "invalid", location="permission.role")
        if kind in ("user", "group") and not (isinstance(address, str) and "@" in address):
            raise GoogleError(
                400,
                "The permission emailAddress field is required for user and group permissions.",
                "required",
                location="permission.emailAddress",
            )
        if role == "owner" and not bool_param(request, "transferOwnership"):
            raise GoogleError(
                403,
                "The transferOwnership parameter must be enabled when the permission role is 'owner'.",
                "forbidden",
                location="transferOwnership",
            )
        if message and not notify:
            raise GoogleError(
                400, "A message cannot be sent without a notification email.", "badRequest", location="emailMessage"
            )
        with self._lock:
            item = self._item(request.path_params["file_id"])
            permission: dict[str, Any] = {"kind": "drive#permission", "type": kind, "role": role}
            if isinstance(address, str):
                permission |= {"id": _permission_id(address), "emailAddress": address.lower()}
            else:
                permission["id"] = kind
            item.permissions = [p for p in item.permissions if p["id"] != permission["id"]] + [permission]
            if notify and isinstance(address, str):
                self.notifications.append({"to": address, "file_id": item.id, "role": role, "message": message})
        known = {"": _schema_fields("Permission")}
        return json_response(
            select_fields(permission, request.query_params.get("fields"), default="kind,id,type,role", known=known)
        )


class _Reversed:
    """Sorts a value in descending order inside an otherwise ascending key tuple."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: "_Reversed") -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GoogleError(400, "Invalid JSON payload received.", "parseError") from None
    if not isinstance(body, dict):
        raise GoogleError(400, "Invalid JSON payload received. Expected an object.", "parseError")
    return body


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, Any], bytes, str]:
    """Drive's multipart upload: a `multipart/related` body of JSON metadata, then the media."""
    if not content_type.lower().startswith("multipart/related"):
        raise GoogleError(400, "Multipart upload requires a multipart/related body.", "badContent")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    parts = [p for p in message.iter_parts() if isinstance(p, EmailMessage)] if message.is_multipart() else []
    if len(parts) != 2:
        raise GoogleError(400, "Multipart upload must have exactly two parts: metadata and media.", "badContent")
    meta_bytes, media = (part.get_payload(decode=True) for part in parts)
    if not isinstance(meta_bytes, bytes) or not isinstance(media, bytes):
        raise GoogleError(400, "Multipart upload parts could not be read.", "badContent")
    try:
        metadata = orjson.loads(meta_bytes)
    except orjson.JSONDecodeError:
        raise GoogleError(400, "Invalid JSON payload received in the metadata part.", "parseError") from None
    if not isinstance(metadata, dict):
        raise GoogleError(400, "The metadata part must be a JSON object.", "parseError")
    return metadata, media, parts[1].get_content_type()


def _ranged(content: bytes, mime: str, header: str | None) -> Response:
    if not header:
        return Response(content, 200, media_type=mime)
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or match.groups() == ("", ""):
        return Response(content, 200, media_type=mime)  # a Range Google cannot parse is ignored
    first, last = match.groups()
    total = len(content)
    start = int(first) if first else max(0, total - int(last))
    end = min(int(last), total - 1) if first and last else total - 1
    if start >= total or start > end:
        raise GoogleError(416, "Request range not satisfiable", "requestedRangeNotSatisfiable")
    headers = {"Content-Range": f"bytes {start}-{end}/{total}"}
    return Response(content[start : end + 1], 206, headers, media_type=mime)
