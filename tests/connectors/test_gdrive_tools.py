"""Each Google Drive tool against the Google sandbox on loopback, through the real SDK client: shaped output,
paging, content export and download caps, uploads (the multipart upload path prism cannot serve), and every
provider failure mapped to its typed connector error."""

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from connectors import CONNECTORS
from connectors.errors import (
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from connectors.google_drive.client import DriveClient
from connectors.google_drive.tools import (
    DOWNLOAD_CAP,
    FOLDER,
    FileContent,
    FileDetails,
    FilePage,
    SharedWith,
)
from tests.connectors.google_sandbox import DRIVE, DRIVE_READONLY, access_token, google_sandbox, throttle
from tests.harness import Sandbox, free_port

TOOLS = {t.name: t for t in CONNECTORS["google_drive"].tools}
PROJECTS = "1PrjXq0sandboxFolderProjects0001"
ARCHIVE = "1ArcXq0sandboxFolderArchive00002"
DOC = "1DocXq0sandboxLaunchPlanDocument3"
SHEET = "1ShtXq0sandboxBudgetSheet0000004"
SLIDES = "1SldXq0sandboxPitchDeckSlides005"
FORM = "1FrmXq0sandboxFeedbackForm000010"
NOTES = "1TxtXq0sandboxNotesTextFile00006"
LOGO = "1PngXq0sandboxLogoImageFile00007"
LOG = "1LogXq0sandboxServerLogOctet0008"
FIRMWARE = "1BinXq0sandboxFirmwareBlob000012"
BIG = "1BigXq0sandboxLargeTextFile00009"
TRASHED = "1TrsXq0sandboxOldDraftTrashed011"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with google_sandbox(tmp_path_factory.mktemp("google")) as running:
        yield running


def _client(sandbox: Sandbox, scopes: str = DRIVE, *, timeout: float = 10) -> DriveClient:
    return DriveClient(access_token=access_token(sandbox, scopes), api_base=sandbox.url, timeout=timeout)


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[DriveClient]:
    built = _client(sandbox)
    yield built
    built.close()


async def _run(client: DriveClient, name: str, /, **arguments: Any) -> BaseModel:
    tool = TOOLS[name]
    result = await tool.invoke(client, tool.input_model.model_validate(arguments))
    assert isinstance(result, tool.output_model)
    return result


async def _page(client: DriveClient, name: str, **arguments: Any) -> FilePage:
    page = await _run(client, name, **arguments)
    assert isinstance(page, FilePage)
    return page


async def _read(client: DriveClient, file_id: str, **arguments: Any) -> FileContent:
    content = await _run(client, "gdrive_files_read", file_id=file_id, **arguments)
    assert isinstance(content, FileContent)
    return content


def test_every_drive_tool_is_exercised_here() -> None:
    exercised = {
        "gdrive_files_list",
        "gdrive_files_search",
        "gdrive_files_get",
        "gdrive_files_read",
        "gdrive_files_upload",
        "gdrive_folders_create",
        "gdrive_files_move",
        "gdrive_files_share",
    }
    assert set(TOOLS) == exercised, f"add a sandbox test for {sorted(set(TOOLS) - exercised)} to this module"


def test_share_is_marked_high_risk_and_writes_need_the_write_scope() -> None:
    assert TOOLS["gdrive_files_share"].description.startswith("HIGH RISK")
    for name, tool in TOOLS.items():
        assert tool.is_read == (
            name in {"gdrive_files_list", "gdrive_files_search", "gdrive_files_get", "gdrive_files_read"}
        ), name
    assert TOOLS["gdrive_files_read"].labels == ("untrusted.content",)
    assert TOOLS["gdrive_files_get"].labels == ("pii.email",)


async def test_list_shows_a_folder_folders_first_and_pages_through_it_once(client: DriveClient) -> None:
    page = await _page(client, "gdrive_files_list")
    names = [f.name for f in page.files]
    assert names[0] == "Projects" and page.files[0].is_folder
    assert names[1:] == sorted(names[1:], key=str.lower)
    assert "old draft.txt" not in names  # trashed
    assert {"notes.txt", "logo.png", "access.log"} <= set(names)
    notes = next(f for f in page.files if f.name == "notes.txt")
    assert (notes.size, notes.mime_type, notes.is_folder) == (71, "text/plain", False)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        paged = await _page(client, "gdrive_files_list", page_size=2, page_token=cursor)
        assert len(paged.files) <= 2
        seen += [f.id for f in paged.files]
        if paged.next_cursor is None:
            break
        cursor = paged.next_cursor
    assert seen == [f.id for f in page.files]

    inside = await _page(client, "gdrive_files_list", folder_id=PROJECTS)
    assert [f.name for f in inside.files][:1] == ["Archive"]
    assert {DOC, SHEET, SLIDES, FORM} <= {f.id for f in inside.files}
    assert all(f.parents == [PROJECTS] for f in inside.files)


async def test_search_takes_drive_query_language(client: DriveClient) -> None:
    by_name = await _page(client, "gdrive_files_search", query="name contains 'budget'")
    assert [f.id for f in by_name.files] == [SHEET]
    sheets = await _page(client, "gdrive_files_search", query="mimeType = 'application/vnd.google-apps.spreadsheet'")
    assert [f.id for f in sheets.files] == [SHEET]
    text = await _page(client, "gdrive_files_search", query="fullText contains 'quarterly review'")
    assert [f.id for f in text.files] == [NOTES]
    mixed = await _page(
        client, "gdrive_files_search", query=f"'{PROJECTS}' in parents and not mimeType = '{FOLDER}'", page_size=50
    )
    assert {f.id for f in mixed.files} == {DOC, SHEET, SLIDES, FORM}
    trashed = await _page(client, "gdrive_files_search", query="name = 'old draft.txt'")
    assert trashed.files == []  # the tool adds `trashed = false`
    with pytest.raises(ProviderRejected, match="Invalid Value"):
        await _run(client, "gdrive_files_search", query="name contains")


async def test_get_returns_metadata_with_owner_emails(client: DriveClient) -> None:
    details = await _run(client, "gdrive_files_get", file_id=DOC)
    assert isinstance(details, FileDetails)
    assert (details.name, details.parents, details.owners) == ("Launch plan", [PROJECTS], ["ada.lovelace@example.com"])
    assert details.web_view_link == f"https://docs.google.com/document/d/{DOC}/edit?usp=drivesdk"
    assert details.size is None and details.modified_time and details.created_time
    assert set(details.model_dump()) == set(FileDetails.model_fields)


async def test_read_exports_google_formats_and_downloads_text(client: DriveClient) -> None:
    doc = await _read(client, DOC)
    assert (doc.format, doc.truncated) == ("markdown", False)
    assert doc.content is not None and doc.content.startswith("# Launch plan\n") and "- Ship **v1**" in doc.content
    sheet = await _read(client, SHEET)
    assert sheet.format == "csv" and sheet.content is not None
    assert sheet.content.splitlines()[:2] == ["Item,Q1,Q2,Q3,Q4", "Servers,1200,1300,1300,1500"]
    slides = await _read(client, SLIDES)
    assert slides.format == "text" and slides.content is not None and "Least-privilege" in slides.content
    notes = await _read(client, NOTES)
    assert (notes.format, notes.size, notes.truncated) == ("text", 71, False)
    assert notes.content == "Remember: the quarterly review is on Friday.\nBring the budget numbers.\n"
    short = await _read(client, NOTES, max_chars=8)
    assert (short.content, short.truncated) == ("Remember", True)
    # application/octet-stream says nothing: the bytes decide.
    log = await _read(client, LOG)
    assert log.format == "text" and log.content is not None and "disk 91% full" in log.content


async def test_read_describes_binary_and_unsupported_files_without_content(client: DriveClient) -> None:
    logo = await _read(client, LOGO)
    assert (logo.format, logo.content, logo.size) == ("binary", None, 70)
    assert logo.note is not None and "image/png" in logo.note
    firmware = await _read(client, FIRMWARE)
    assert (firmware.format, firmware.content) == ("binary", None)
    form = await _read(client, FORM)
    assert (form.format, form.content) == ("unsupported", None)
    with pytest.raises(ProviderRejected, match="folder"):
        await _read(client, PROJECTS)


async def test_read_fetches_at_most_the_cap_of_a_large_file(sandbox: Sandbox, client: DriveClient) -> None:
    big = await _read(client, BIG, max_chars=DOWNLOAD_CAP)
    assert big.size is not None and big.size > DOWNLOAD_CAP
    assert big.truncated and big.content is not None
    assert len(big.content.encode()) == DOWNLOAD_CAP
    assert big.content.startswith("000000 GET /api/v1/items 200 12ms\n")


async def test_upload_creates_a_text_file_that_listings_and_reads_show(client: DriveClient) -> None:
    folder = await _run(client, "gdrive_folders_create", name=f"Reports {uuid.uuid4().hex[:6]}", parent_id=PROJECTS)
    assert isinstance(folder, FileDetails) and folder.is_folder and folder.parents == [PROJECTS]
    text = "# Summary\n\nÜnïcode survives — ✓\n"
    uploaded = await _run(
        client, "gdrive_files_upload", name="summary.md", content=text, folder_id=folder.id, mime_type="text/markdown"
    )
    assert isinstance(uploaded, FileDetails)
    assert (uploaded.name, uploaded.mime_type, uploaded.parents) == ("summary.md", "text/markdown", [folder.id])
    assert uploaded.size == len(text.encode()) and uploaded.owners == ["ada.lovelace@example.com"]
    listed = await _page(client, "gdrive_files_list", folder_id=folder.id)
    assert [f.id for f in listed.files] == [uploaded.id]
    found = await _page(client, "gdrive_files_search", query="name = 'summary.md'")
    assert uploaded.id in {f.id for f in found.files}
    assert (await _read(client, uploaded.id)).content == text

    with pytest.raises(ProviderRejected, match="not a folder"):
        await _run(client, "gdrive_files_upload", name="x.txt", content="x", folder_id=NOTES)
    with pytest.raises(ProviderNotFound):
        await _run(client, "gdrive_files_upload", name="x.txt", content="x", folder_id="1NoSuchFolderAnywhere000000")


async def test_move_leaves_the_old_folder_and_refuses_cycles(client: DriveClient) -> None:
    folder = await _run(client, "gdrive_folders_create", name="Moves")
    assert isinstance(folder, FileDetails)
    note = await _run(client, "gdrive_files_upload", name="moving.txt", content="here", folder_id=PROJECTS)
    assert isinstance(note, FileDetails)
    moved = await _run(client, "gdrive_files_move", file_id=note.id, to_folder_id=folder.id)
    assert isinstance(moved, FileDetails) and moved.parents == [folder.id]
    assert note.id not in {f.id for f in (await _page(client, "gdrive_files_list", folder_id=PROJECTS)).files}
    home = await _run(client, "gdrive_files_move", file_id=note.id, to_folder_id="root")
    assert isinstance(home, FileDetails) and home.parents == ["0AGxSandboxRootFolderUk9PVA"]
    again = await _run(client, "gdrive_files_move", file_id=note.id, to_folder_id="root")
    assert isinstance(again, FileDetails) and again.parents == home.parents
    with pytest.raises(ProviderRejected, match="itself or its descendants"):
        await _run(client, "gdrive_files_move", file_id=PROJECTS, to_folder_id=ARCHIVE)


async def test_share_adds_a_permission_and_notifies(sandbox: Sandbox, client: DriveClient) -> None:
    shared = await _run(
        client, "gdrive_files_share", file_id=DOC, email="Grace@Navy.example.com", role="commenter", message="FYI"
    )
    assert isinstance(shared, SharedWith)
    assert (shared.file_id, shared.role, shared.email) == (DOC, "commenter", "grace@navy.example.com")
    assert shared.permission_id.isdigit()
    quiet = await _run(
        client,
        "gdrive_files_share",
        file_id=SHEET,
        email="charles@engines.example.com",
        role="reader",
        notify=False,
        message="ignored without a notification",
    )
    assert isinstance(quiet, SharedWith) and quiet.role == "reader"
    sent = httpx.get(f"{sandbox.url}/_control/drive-notifications").json()["notifications"]
    assert {"to": "Grace@Navy.example.com", "file_id": DOC, "role": "commenter", "message": "FYI"} in sent
    assert all(n["file_id"] != SHEET for n in sent)
    with pytest.raises(ProviderNotFound):
        await _run(client, "gdrive_files_share", file_id="1NoSuchFileAnywhere0000000000", email="a@b.co", role="reader")


async def test_concurrent_calls_use_one_http_per_worker_thread(client: DriveClient) -> None:
    pages = await asyncio.gather(*(_page(client, "gdrive_files_list", page_size=3) for _ in range(24)))
    assert all([f.id for f in p.files] == [f.id for f in pages[0].files] for p in pages)
    https = list(client._https)
    assert len(https) > 1 and len({id(h) for h in https}) == len(https)


def test_clients_share_one_built_service_and_never_send_without_their_own_http(sandbox: Sandbox) -> None:
    first = DriveClient(access_token="one", api_base=sandbox.url, timeout=1)
    second = DriveClient(access_token="two", api_base=sandbox.url + "/", timeout=1)
    try:
        assert first.service is second.service and first.files is second.files  # built once, no token inside
        with pytest.raises(RuntimeError, match=r"GoogleClient\.execute"):
            first.files.list().execute()
    finally:
        first.close()
        second.close()


# -- errors ------------------------------------------------------------------------------------------------


async def test_unknown_file_is_provider_not_found(client: DriveClient) -> None:
    with pytest.raises(ProviderNotFound, match="File not found"):
        await _run(client, "gdrive_files_get", file_id="1NoSuchFileAnywhere0000000000")


async def test_expired_token_is_provider_auth_expired(sandbox: Sandbox) -> None:
    expired = _client(sandbox)
    try:
        sandbox.control("expire-tokens")
        with pytest.raises(ProviderAuthExpired):
            await _run(expired, "gdrive_files_list")
    finally:
        expired.close()


async def test_read_only_token_is_forbidden_to_write_naming_the_scope(sandbox: Sandbox) -> None:
    reader = _client(sandbox, DRIVE_READONLY)
    try:
        assert (await _page(reader, "gdrive_files_list")).files
        with pytest.raises(ProviderForbidden, match=r"auth/drive$") as caught:
            await _run(reader, "gdrive_folders_create", name="Nope")
        assert caught.value.missing_scopes == (DRIVE,)
        with pytest.raises(ProviderForbidden):
            await _run(reader, "gdrive_files_upload", name="x.txt", content="x")
    finally:
        reader.close()


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
async def test_throttled_call_is_provider_rate_limited(sandbox: Sandbox, client: DriveClient, reason: str) -> None:
    throttle(sandbox, 1, 7, reason)  # 429, or Drive's 403 for a per-user limit
    with pytest.raises(ProviderRateLimited) as caught:
        await _run(client, "gdrive_files_list")
    assert caught.value.retry_after == 7.0
    assert (await _page(client, "gdrive_files_list")).files  # one call only


async def test_silent_server_is_provider_timeout_and_closed_port_unavailable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        silent = DriveClient(access_token="t", api_base=f"http://127.0.0.1:{server.getsockname()[1]}", timeout=0.5)
        try:
            with pytest.raises(ProviderTimeout):
                await _run(silent, "gdrive_files_get", file_id=DOC)
        finally:
            silent.close()
            stop.set()
            thread.join()
            for conn in accepted:
                conn.close()
    closed = DriveClient(access_token="t", api_base=f"http://127.0.0.1:{free_port()}", timeout=2)
    try:
        with pytest.raises(ProviderUnavailable):
            await _run(closed, "gdrive_files_get", file_id=DOC)
    finally:
        closed.close()
