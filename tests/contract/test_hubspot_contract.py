"""The HubSpot connector against HubSpot's published CRM v3 spec, served by prism.

prism checks each request against the spec and answers 422 with an `sl-violations` header when it does not
conform (the connector maps 422 to ProviderRejected); otherwise it answers with the spec's examples.
`Prefer: code=NNN` makes it answer with that status instead, which proves the error mapping.
"""

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm import contacts

from connectors import CONNECTORS
from connectors.errors import (
    ConnectorError,
    ProviderAuthExpired,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from connectors.hubspot.client import HubSpotClient
from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT.parent / "shared/specs/hubspot-crm-v3.json"
PRISM = ROOT / ".tools/node/node_modules/.bin/prism"
TOOLS = {t.name: t for t in CONNECTORS["hubspot"].tools}

# Realistic arguments for every tool; a new tool fails `test_tool_request_conforms` until it has a case here.
CASES: dict[str, list[dict[str, Any]]] = {
    "hubspot_contacts_search": [
        {},
        {"query": "ada@analytical-engines.example.com", "limit": 5},
        {"query": "Lovelace", "limit": 100, "after": "20"},
    ],
    "hubspot_contacts_get": [{"contact_id": "51"}],
    "hubspot_contacts_create": [
        {"email": "grace@navy.example.com"},
        {
            "email": "ada@analytical-engines.example.com",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "phone": "+44 20 7946 0958",
            "company": "Analytical Engines Ltd",
            "jobtitle": "Founder",
        },
    ],
    "hubspot_contacts_update": [
        {"contact_id": "51", "jobtitle": "Countess"},
        {"contact_id": "51", "email": "ada@lovelace.example.com", "lifecyclestage": "customer", "phone": "+1 555 0110"},
    ],
}
ERRORS: dict[int, type[ConnectorError]] = {
    401: ProviderAuthExpired,
    403: ProviderForbidden,
    404: ProviderNotFound,
    429: ProviderRateLimited,
    500: ProviderUnavailable,
}


@pytest.fixture(scope="module")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PRISM.exists():
        pytest.skip(f"prism is not installed at {PRISM} (`.ci/run` installs @stoplight/prism-cli@5 there)")
    port = free_port()
    log_path = tmp_path_factory.mktemp("prism") / "prism.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            _wait_for_port(proc, port, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prism exited early:\n{log_path.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"prism did not listen on {port}:\n{log_path.read_text()[-3000:]}")


def _client(base: str) -> tuple[HubSpotClient, list[str]]:
    """The connector's real client, plus the `sl-violations` prism reported for any of its requests."""
    client = HubSpotClient(access_token="test-token", api_base=base, timeout=10)
    violations: list[str] = []
    rest = client._api_client.rest_client
    send: Callable[..., Any] = rest.request

    def note(args: tuple[Any, ...], headers: Any) -> None:
        if found := (headers or {}).get("sl-violations"):
            violations.append(f"{args[0]} {str(args[1]).removeprefix(base)}: {found}")

    def request(*args: Any, **kwargs: Any) -> Any:
        try:
            response = send(*args, **kwargs)
        except contacts.ApiException as exc:
            note(args, exc.headers)
            raise
        note(args, response.headers)
        return response

    rest.request = request
    return client, violations


@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_tool_request_conforms(prism: str, name: str) -> None:
    tool = TOOLS[name]
    assert CASES.get(name), f"add realistic arguments for {name} to CASES"
    for arguments in CASES[name]:
        client, violations = _client(prism)
        try:
            result = await tool.invoke(client, tool.input_model.model_validate(arguments))
        except ProviderRejected:
            pytest.fail(f"{name}({arguments}) does not conform to HubSpot's spec:\n" + "\n".join(violations))
        finally:
            client.close()
        assert isinstance(result, tool.output_model)
        assert not violations, "\n".join(violations)


@pytest.mark.parametrize("status", sorted(ERRORS))
@pytest.mark.parametrize("name", sorted(TOOLS))
async def test_provider_error_maps_to_connector_error(prism: str, name: str, status: int) -> None:
    tool = TOOLS[name]
    client, violations = _client(prism)
    client._api_client.set_default_header("Prefer", f"code={status}")
    try:
        with pytest.raises(ERRORS[status]) as caught:
            await tool.invoke(client, tool.input_model.model_validate(CASES[name][-1]))
    finally:
        client.close()
    assert not violations, "\n".join(violations)
    assert "test-token" not in caught.value.message
    if status == 429:
        assert isinstance(caught.value, ProviderRateLimited)
        assert caught.value.retry_after is None  # HubSpot, like prism, sends no Retry-After


async def test_prism_refuses_a_request_that_breaks_the_spec(prism: str) -> None:
    # The check above is only as good as prism's refusal: a property value must be a string.
    client, violations = _client(prism)
    try:
        with pytest.raises(ProviderRejected):
            await client.call(
                client.contacts.update, contact_id="51", simple_public_object_input={"properties": {"email": 5}}
            )
    finally:
        client.close()
    assert violations and "properties.email" in violations[0]
