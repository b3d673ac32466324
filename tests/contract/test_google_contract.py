"""The Google Drive and Gmail connectors against Google's published API descriptions (the discovery documents
shipped with google-api-python-client, as Swagger 2.0), served by prism.

prism checks each request against the spec and answers 422 with the violations when it does not conform
(the connector maps 422 to ProviderRejected); only request violations count, since prism also flags its own
generated examples. What prism cannot cover, and where it is covered instead:
- media uploads (`/upload/drive/v3/files`, gdrive_files_upload): not served by prism. The upload's metadata
  is checked here as files.create's JSON body; the multipart request itself against the sandbox
  (tests/connectors/test_gdrive_tools.py).
- error answers: Google's specs declare only 200, so `Prefer: code=…` cannot produce Google's errors; the
  mapping is checked on Google-shaped bodies (tests/connectors/test_gdrive_errors.py) and end to end against
  the sandbox.
- prism's canned answers do not steer the tools down every branch (a canned file's mimeType is "string"),
  so the export and ranged download requests of gdrive_files_read are also sent directly.
Erratum: Gmail documents `raw` as base64url, but the conversion typed it `format: byte` (standard base64
alphabet). The connector sends base64url as Gmail documents; on the way to prism the alphabet is swapped
(`-_` to `+/`), after checking that what the connector sent is base64url of a parseable message.
"""

import base64
import email
import email.policy
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from googleapiclient import discovery_cache
from googleapiclient.http import MediaInMemoryUpload

from connectors import CONNECTORS
from connectors.errors import ProviderRejected
from connectors.gmail.client import GmailClient
from connectors.google_common import GoogleClient
from connectors.google_drive.client import DriveClient
from hub.sandbox._google_api import METHOD_SCOPES
from tests.contract.prism import ROOT, serve_prism

SPECS = ROOT.parent / "shared" / "specs"
TOOLS = {t.name: t for name in ("google_drive", "gmail") for t in CONNECTORS[name].tools}
FILE = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs"
FOLDER = "0B9OQx2sO4nBfVGZ4dE9sRkxZdUE"
# Realistic arguments for every tool; a new tool fails `test_tool_request_conforms` until it has a case here.
CASES: dict[str, list[dict[str, Any]]] = {
    "gdrive_files_list": [{}, {"folder_id": FOLDER, "page_size": 100, "page_token": "~!!~AI9FV7Q"}],
    "gdrive_files_search": [
        {"query": "name contains 'budget'"},
        {"query": "mimeType = 'application/vnd.google-apps.folder' and 'root' in parents", "page_size": 5},
    ],
    "gdrive_files_get": [{"file_id": FILE}],
    "gdrive_files_read": [{"file_id": FILE}, {"file_id": FILE, "max_chars": 100}],
    "gdrive_folders_create": [{"name": "Reports"}, {"name": "Q3 — Ünïcode", "parent_id": FOLDER}],
    "gdrive_files_move": [{"file_id": FILE, "to_folder_id": FOLDER}, {"file_id": FILE, "to_folder_id": "root"}],
    "gdrive_files_share": [
        {"file_id": FILE, "email": "grace@example.com", "role": "reader"},
        {"file_id": FILE, "email": "grace@example.com", "role": "writer", "notify": True, "message": "Have a look"},
        {"file_id": FILE, "email": "grace@example.com", "role": "commenter", "notify": False},
    ],
    "gmail_messages_search": [{}, {"query": "from:grace@example.com is:unread", "max_results": 3, "page_token": "0"}],
    "gmail_messages_get": [{"message_id": "18e0b3c2f1a41f3d"}, {"message_id": "18e0b3c2f1a41f3d", "max_chars": 10}],
    "gmail_messages_send": [
        {"to": ["grace@example.com"], "subject": "Hello", "body": "Hi Grace"},
        {
            "to": ["grace@example.com", "ada@example.com"],
            "cc": ["charles@example.com"],
            "bcc": ["audit@example.com"],
            "subject": "Über die Maschine ✓",
            "body": "Zeile 1\nZeile 2 — ünïcode\n" * 20,
        },
    ],
    "gmail_messages_reply": [{"message_id": "18e0b3c2f1a41f3d", "body": "Thanks!"}],
    "gmail_drafts_create": [{"to": ["grace@example.com"], "subject": "Draft", "body": "To be checked"}],
    "gmail_labels_list": [{}],
}
# prism's canned message has no real headers; a reply needs the original's sender and Message-ID.
STEER: dict[str, dict[str, Any]] = {
    "gmail_messages_reply": {
        "/messages/18e0b3c2f1a41f3d": {
            "id": "18e0b3c2f1a41f3d",
            "threadId": "18e0b3c2f1a41f3d",
            "labelIds": ["INBOX"],
            "payload": {
                "headers": [
                    {"name": "From", "value": "Grace Hopper <grace@example.com>"},
                    {"name": "Subject", "value": "Compiler meeting"},
                    {"name": "Message-ID", "value": "<meeting-1@example.com>"},
                ]
            },
        }
    }
}
# The Drive tool whose request prism cannot serve, and where it is covered.
NOT_SERVED = {"gdrive_files_upload": "tests/connectors/test_gdrive_tools.py (multipart upload to the sandbox)"}


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Both specs served at once (each takes about 6 s to start), once for the module."""
    specs = {"google_drive": "google-drive-v3.swagger.json", "gmail": "google-gmail-v1.swagger.json"}
    with serve_prism({name: SPECS / spec for name, spec in specs.items()}, tmp_path_factory.mktemp("prism")) as urls:
        yield urls


def _standard_alphabet(body: Any) -> Any:
    """Gmail's `raw` as the connector sends it (base64url, checked), in the spec's standard alphabet."""
    if not isinstance(body, str | bytes) or not body:
        return body
    decoded = orjson.loads(body)
    holder = decoded.get("message", decoded) if isinstance(decoded, dict) else None
    if not isinstance(holder, dict) or "raw" not in holder:
        return body
    raw = holder["raw"]
    assert "+" not in raw and "/" not in raw, "Gmail's raw must be base64url"
    message = email.message_from_bytes(base64.urlsafe_b64decode(raw), policy=email.policy.default)
    assert message["To"] and message["Subject"] and message.get_content_type() == "text/plain"
    holder["raw"] = raw.replace("-", "+").replace("_", "/")
    return orjson.dumps(decoded)


def _watch(client: GoogleClient, base: str, steer: dict[str, Any] | None = None) -> list[str]:
    """Record the request violations prism reports for each request `client` sends; `steer` replaces prism's
    canned answer to a GET whose path ends with a key (after prism checked the request)."""
    violations: list[str] = []
    make_http = client._http

    def http() -> Any:
        authorized = make_http()
        if not getattr(authorized, "_watched", False):
            send: Callable[..., Any] = authorized.request

            def request(uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any) -> Any:
                if "/gmail/v1/" in uri and method == "POST":
                    body = _standard_alphabet(body)
                    headers = {**(headers or {}), "content-length": str(len(body))}
                response, content = send(uri, method, body, headers, **kw)
                path = uri.removeprefix(base).split("?")[0]
                for suffix, answer in (steer or {}).items():
                    if method == "GET" and path.endswith(suffix) and response.status == 200:
                        content = orjson.dumps(answer)
                found = orjson.loads(response.get("sl-violations") or "[]")
                if response.status == 422:  # prism's refusal lists the violations in its problem body
                    found += orjson.loads(content).get("validation") or []
                for v in found:
                    if v.get("location", [""])[0] != "response":
                        violations.append(f"{method} {uri.removeprefix(base)}: {v.get('message')}")
                return response, content

            authorized.request = request
            authorized._watched = True
        return authorized

    client._http = http  # type: ignore[method-assign]
    return violations


def _client(
    prism: dict[str, str], provider: str, steer: dict[str, Any] | None = None
) -> tuple[GoogleClient, list[str]]:
    factory = DriveClient if provider == "google_drive" else GmailClient
    client = factory(access_token="test-token", api_base=prism[provider], timeout=10)
    return client, _watch(client, prism[provider], steer)


def test_every_tool_has_a_case_or_says_where_it_is_covered() -> None:
    assert set(TOOLS) == set(CASES) | set(NOT_SERVED)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_tool_request_conforms(prism: dict[str, str], name: str) -> None:
    tool = TOOLS[name]
    for arguments in CASES[name]:
        client, violations = _client(prism, tool.provider, STEER.get(name))
        try:
            result = await tool.invoke(client, tool.input_model.model_validate(arguments))
        except ProviderRejected:
            pytest.fail(f"{name}({arguments}) does not conform to Google's spec:\n" + "\n".join(violations))
        finally:
            client.close()
        assert isinstance(result, tool.output_model)
        assert not violations, "\n".join(violations)


async def test_drive_requests_prism_answers_do_not_reach_conform(prism: dict[str, str]) -> None:
    client, violations = _client(prism, "google_drive")
    assert isinstance(client, DriveClient)
    needs = "https://www.googleapis.com/auth/drive"
    try:
        for export in ("text/markdown", "text/csv", "text/plain"):
            await client.execute(lambda: client.files.export(fileId=FILE, mimeType=export), needs=needs)  # noqa: B023

        def ranged() -> Any:
            request = client.files.get_media(fileId=FILE, supportsAllDrives=True)
            request.headers["range"] = "bytes=0-1048575"
            return request

        await client.execute(ranged, needs=needs)
        # The metadata part of gdrive_files_upload, as files.create's JSON body.
        metadata = {"name": "summary.md", "parents": [FOLDER], "mimeType": "text/markdown"}
        await client.execute(
            lambda: client.files.create(body=metadata, fields="id,name,parents", supportsAllDrives=True), needs=needs
        )
    finally:
        client.close()
    assert not violations, "\n".join(violations)


def test_the_upload_goes_to_the_media_path_of_the_configured_base() -> None:
    # Media uploads take their URL from the discovery document's rootUrl: the client rewrites it.
    client = DriveClient(access_token="t", api_base="http://127.0.0.1:9/sandbox/google_drive", timeout=1)
    try:
        media = MediaInMemoryUpload(b"x", mimetype="text/plain", resumable=False)
        request = client.files.create(body={"name": "x"}, media_body=media)
        assert request.uri.startswith("http://127.0.0.1:9/sandbox/google_drive/upload/drive/v3/files?")
        assert "uploadType=multipart" in request.uri
        assert client.files.list().uri.startswith("http://127.0.0.1:9/sandbox/google_drive/drive/v3/files?")
    finally:
        client.close()


async def test_prism_refuses_a_request_that_breaks_the_spec(prism: dict[str, str]) -> None:
    # The checks above are only as good as prism's refusal: a permission's role must be a string.
    client, violations = _client(prism, "google_drive")
    assert isinstance(client, DriveClient)
    try:
        with pytest.raises(ProviderRejected):
            await client.execute(
                lambda: client.permissions.create(fileId=FILE, body={"type": "user", "role": 5}), needs="drive"
            )
    finally:
        client.close()
    assert violations and "role" in violations[0]


@pytest.mark.parametrize("method", sorted(METHOD_SCOPES))
def test_sandbox_accepts_the_scopes_the_discovery_documents_list(method: str) -> None:
    api, *path = method.split(".")
    document = orjson.loads(discovery_cache.get_static_doc(api, "v1" if api == "gmail" else "v3") or b"{}")
    node: Any = document
    for part in path[:-1]:
        node = node["resources"][part]
    assert METHOD_SCOPES[method] == frozenset(node["methods"][path[-1]]["scopes"])
