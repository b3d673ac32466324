"""Revoking a connection forgets its tokens here and, where the provider offers an endpoint, revokes the
grant there too (RFC 7009)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import Hub, Sandbox, run_hub, run_sandbox


@pytest.fixture
def google(tmp_path: Path) -> Iterator[Sandbox]:
    with run_sandbox("google_drive", tmp_path, "--access-token-ttl", "3599") as sandbox:
        yield sandbox


def test_revoke_reaches_the_provider_and_refuses_the_next_call(
    tmp_path: Path, database_url: str, google: Sandbox
) -> None:
    with run_hub(tmp_path, database_url, providers={"google_drive": google}) as hub:
        assert hub.connect("google_drive", "drive", "storage.files.read").status_code == 303
        key = hub.create_agent("bot")
        hub.grant("bot", "drive", "storage.files.read")
        with hub.agent(key) as agent:
            assert agent.post("/v1/tools/gdrive_files_list/call", json={"arguments": {}}).status_code == 200
            with hub.admin() as admin:
                assert admin.delete("/admin/api/connections/drive").status_code == 204
                (connection,) = admin.get("/admin/api/connections").json()
            assert connection["status"] == "revoked"
            assert ["POST", "/revoke"] in [list(r) for r in google.stats()["requests"]]
            assert agent.get("/v1/tools").json()["tools"] == []
            denied = agent.post("/v1/tools/gdrive_files_list/call", json={"arguments": {}})
            assert denied.status_code == 403
        # Every token the provider issued for the grant is dead there too.
        for token in google.issued_tokens():
            answer = httpx.get(f"{google.url}/drive/v3/files", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401


def test_revoke_without_a_provider_endpoint_is_local(hub: Hub, hubspot: Sandbox) -> None:
    hub.connect("hubspot", "crm", "crm.contacts.read")
    with hub.admin() as admin:
        assert admin.delete("/admin/api/connections/crm").status_code == 204
        assert admin.delete("/admin/api/connections/nope").status_code == 404
    assert all(path != "/revoke" for _, path in hubspot.stats()["requests"])
