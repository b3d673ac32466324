"""The examples, run as a user would, against a real hub and HubSpot sandbox on SQLite and PostgreSQL:

- examples/anthropic_agent.py with the real Anthropic SDK pointed (`ANTHROPIC_BASE_URL`) at a stand-in for the
  Messages API on loopback, which asks for tools and then answers from the tool results it was sent;
- examples/claude-code.md: every MCP configuration in it, connected with the official MCP client exactly as
  written (url and headers from the JSON), and its Python snippet run as it stands.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from connectors import TOOLS
from tests.harness import ROOT, Hub

EXAMPLES = ROOT / "examples"
MODEL = "claude-stand-in-1"
API_KEY = "sk-ant-test-" + "x" * 20
NEW_CONTACT = {"email": "grace@example.org", "firstname": "Grace", "lastname": "Hopper"}


# --- A stand-in for the Messages API ---------------------------------------------------------------------


@dataclass
class StandIn:
    """Answers POST /v1/messages like the Messages API: first two tool_use blocks, then, once it has their
    tool_result blocks, an end_turn text built from what they said. Records every request."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def reply(self, body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]
        blocks = [] if isinstance(last["content"], str) else last["content"]
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if not results:
            content: list[dict[str, Any]] = [
                {"type": "text", "text": "I'll look Ada up and add Grace."},
                {"type": "tool_use", "id": "toolu_01", "name": "hubspot_contacts_search", "input": {"query": "ada"}},
                {"type": "tool_use", "id": "toolu_02", "name": "hubspot_contacts_create", "input": NEW_CONTACT},
            ]
            stop = "tool_use"
        else:
            by_id = {r["tool_use_id"]: r for r in results}
            found = json.loads(_text(by_id["toolu_01"]["content"])[0])
            email = found["contacts"][0]["email"]
            waiting = "awaits approval" if by_id["toolu_02"].get("is_error") else "was created"
            content = [{"type": "text", "text": f"Ada's email is {email}. The contact for Grace {waiting}."}]
            stop = "end_turn"
        return {
            "id": f"msg_{len(self.requests):02d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 20},
        }


def _text(content: str | list[dict[str, Any]]) -> list[str]:
    return [content] if isinstance(content, str) else [b["text"] for b in content if b.get("type") == "text"]


@contextmanager
def messages_api() -> Iterator[StandIn]:
    stand_in = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            stand_in.requests.append(body)
            stand_in.headers.append({k.lower(): v for k, v in self.headers.items()})
            if self.path.split("?")[0] != "/v1/messages":
                self.send_error(404)
                return
            answer = json.dumps(stand_in.reply(body)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    return {**clean, **extra}


def test_the_anthropic_agent_example_runs_a_tool_use_loop_end_to_end(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read,crm.contacts.write").status_code == 303
    key = hub.create_agent("support-bot")
    hub.grant("support-bot", "crm", "crm.contacts.read", {"max_results": 3})
    hub.grant("support-bot", "crm", "crm.contacts.write", {"approval": "always"})

    with messages_api() as api:
        env = _env(
            ANTHROPIC_API_KEY=API_KEY,
            ANTHROPIC_MODEL=MODEL,
            ANTHROPIC_BASE_URL=api.url,
            SWITCHBOARD_URL=hub.url,
            SWITCHBOARD_AGENT_KEY=key,
        )
        ran = subprocess.run(
            [sys.executable, str(EXAMPLES / "anthropic_agent.py"), "Find", "Ada", "and", "add", "Grace"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert len(api.requests) == 2
    # The key from the environment reached the API (as x-api-key or a bearer token, by SDK version).
    assert {h.get("x-api-key") or h.get("authorization", "").removeprefix("Bearer ") for h in api.headers} == {API_KEY}
    first, second = api.requests
    assert first["model"] == MODEL and first["messages"] == [{"role": "user", "content": "Find Ada and add Grace"}]

    # The model was given exactly the agent's tools, described with what its grants impose.
    tools = {t["name"]: t for t in first["tools"]}
    assert sorted(tools) == sorted(
        ["hubspot_contacts_create", "hubspot_contacts_get", "hubspot_contacts_search", "hubspot_contacts_update"]
    )
    search = tools["hubspot_contacts_search"]
    assert set(search) == {"name", "description", "input_schema"}
    assert search["input_schema"] == TOOLS["hubspot_contacts_search"].input_schema
    assert search["description"].endswith("Under your grant: at most 3 results per call.")
    assert tools["hubspot_contacts_create"]["description"].endswith(
        "Under your grant: every call needs a human's approval."
    )

    # The second turn carried the whole conversation: the assistant's tool_use blocks and one tool_result each.
    user, assistant, results = second["messages"]
    assert user == first["messages"][0]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use", "tool_use"]
    assert results["role"] == "user"
    found, held = results["content"]
    assert found["tool_use_id"] == "toolu_01" and not found.get("is_error")
    result_text, note = _text(found["content"])
    contacts = json.loads(result_text)["contacts"]
    assert 0 < len(contacts) <= 3 and contacts[0]["email"].startswith("ada")
    assert "lowered to 3" in note
    assert held["tool_use_id"] == "toolu_02" and held["is_error"] is True
    assert "waits for a human's approval" in held["content"]
    with hub.admin() as admin:
        (queued,) = admin.get("/admin/api/approvals").json()
    assert f"call id {queued['call_id']}" in held["content"]

    # The final answer, printed, is built from the sandbox's data that reached the model.
    assert ran.stdout.strip() == f"Ada's email is {contacts[0]['email']}. The contact for Grace awaits approval."


def test_the_anthropic_agent_example_needs_its_settings() -> None:
    ran = subprocess.run(
        [sys.executable, str(EXAMPLES / "anthropic_agent.py"), "hello"],
        env=_env(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert ran.returncode == 2
    assert "ANTHROPIC_API_KEY" in ran.stderr and "SWITCHBOARD_AGENT_KEY" in ran.stderr


# --- examples/claude-code.md -----------------------------------------------------------------------------

_DOC = EXAMPLES / "claude-code.md"
_PLACEHOLDER_URL = "https://hub.example.com"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(_DOC.read_text()) if lang == language]


def _servers() -> list[dict[str, Any]]:
    """Every MCP server configured in the document's JSON blocks (all of which must be valid JSON)."""
    servers = []
    for block in _blocks("json"):
        config = json.loads(block)
        servers += list(config["mcpServers"].values())
    return servers


def _expand(text: str, env: dict[str, str]) -> str:
    """What Claude Code (`${VAR}`) and Cursor (`${env:VAR}`) make of the environment references."""
    return re.sub(r"\$\{(?:env:)?([A-Z_][A-Z0-9_]*)\}", lambda m: env[m.group(1)], text)


async def _list_and_call(url: str, headers: dict[str, str]) -> tuple[list[str], dict[str, Any]]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        called = await session.call_tool("hubspot_contacts_search", {"query": "ada"})
    assert not called.is_error, called
    assert called.structured_content is not None
    return [t.name for t in listed.tools], called.structured_content


def test_the_claude_code_command_and_mcp_json_agree() -> None:
    (command,) = [block for block in _blocks("sh") if block.startswith("claude mcp add")]
    args = shlex.split(command.replace("\\\n", " "))
    assert args[:5] == ["claude", "mcp", "add", "--transport", "http"]
    name, url = args[5], args[6]
    header = args[args.index("--header") + 1]
    (claude_code,) = [s for s in _servers() if s.get("type") == "http"]
    assert claude_code["url"] == url == f"{_PLACEHOLDER_URL}/mcp"
    assert name == "switchboard"
    (header_name, header_value) = header.split(": ", 1)
    assert list(claude_code["headers"]) == [header_name] == ["Authorization"]
    assert header_value.startswith("Bearer sbk_") and claude_code["headers"][header_name].startswith("Bearer ")
    (desktop,) = [s for s in _servers() if "command" in s]
    assert f"{_PLACEHOLDER_URL}/mcp" in desktop["args"] and desktop["env"]["AUTH_HEADER"].startswith("Bearer sbk_")


async def test_every_mcp_configuration_in_the_doc_connects_as_written(hub: Hub) -> None:
    assert hub.connect("hubspot", "crm", "crm.contacts.read").status_code == 303
    key = hub.create_agent("claude-code")
    hub.grant("claude-code", "crm", "crm.contacts.read")
    env = {"SWITCHBOARD_AGENT_KEY": key}

    remote = [s for s in _servers() if "url" in s]
    assert len(remote) == 2 and [s.get("type") for s in remote] == ["http", None]  # Claude Code, Cursor
    with anyio.fail_after(120):
        for server in remote:
            url = server["url"].replace(_PLACEHOLDER_URL, hub.url)
            headers = {name: _expand(value, env) for name, value in server["headers"].items()}
            names, body = await _list_and_call(url, headers)
            assert names == ["hubspot_contacts_get", "hubspot_contacts_search"]
            assert any(c["email"].startswith("ada") for c in body["result"]["contacts"])

    # The Python SDK snippet, as it stands but for the hub's address.
    (snippet,) = _blocks("python")
    ran = subprocess.run(
        [sys.executable, "-c", snippet.replace(_PLACEHOLDER_URL, hub.url)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    listed, called = ran.stdout.splitlines()[:2]
    assert listed == "['hubspot_contacts_get', 'hubspot_contacts_search']"
    assert "ada" in called and "call_id" in called
