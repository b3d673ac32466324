"""The security suite's shared stack: one hub per database with the HubSpot and Slack sandboxes, HubSpot behind
a relay that keeps every byte the hub sent it, so a test can read the request lines and headers a provider
really received; and the helpers the attacks share (MCP calls, the audit, every secret the run made)."""

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hub.admin_auth import create_login_link
from hub.db import Database
from tests.admin.page import csrf_of
from tests.harness import Hub, Sandbox, mcp_session, run_hub, run_sandbox

__all__ = ["CONNECTIONS", "MCP_HEADERS", "Relay", "Stack", "audited", "mcp_calls", "mcp_tools", "security_stack"]

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
# Every connection the stack makes, with the hub scopes it was authorised for.
CONNECTIONS = {
    "crm": ("hubspot", "crm.contacts.read,crm.contacts.write,crm.owners.read"),
    "crm-b": ("hubspot", "crm.contacts.read,crm.contacts.write"),
    "chat": ("slack", "messaging.chat.read,messaging.chat.send"),
}


_REQUEST_LINE = re.compile(rb"(GET|POST|PATCH|PUT|DELETE) (\S+) HTTP/1\.1\r\n")


class Relay:
    """A TCP relay on loopback in front of `upstream`: forwards both ways and keeps what clients sent."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._lock = threading.Lock()
        self._sent = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def sent(self) -> bytes:
        with self._lock:
            return bytes(self._sent)

    def request_lines(self) -> list[str]:
        """`METHOD target` of every request, as sent on the wire (still percent-encoded)."""
        # Searched for, not split on line ends: on a kept-alive connection a request line follows the previous
        # request's body directly, with no line end between them.
        return [f"{found[1].decode()} {found[2].decode('latin-1')}" for found in _REQUEST_LINE.finditer(self.sent())]

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(self._upstream) as upstream:
            back = threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True)
            back.start()
            self._pump(client, upstream, True)
            back.join()

    def _pump(self, source: socket.socket, target: socket.socket, keep: bool) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                if keep:
                    with self._lock:
                        self._sent += chunk
                target.sendall(chunk)
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)


@dataclass
class Stack:
    hub: Hub
    hubspot: Sandbox
    slack: Sandbox
    relay: Relay
    database: str
    db: Database
    # Secrets made outside the hub's own helpers (API keys, sessions, extra agent keys): none may leak.
    secrets: set[str] = field(default_factory=set)

    def login_link(self) -> str:
        """A one-time sign-in link, as `switchboard admin link` makes it, without starting the CLI."""
        token = self.db.run_sync(lambda s: create_login_link(s, ttl=300))
        self.secrets.add(token)
        return f"{self.hub.url}/admin/login?token={token}"

    def sign_in(self, browser: httpx.Client) -> str:
        """Sign `browser` in; returns its session's CSRF token."""
        assert browser.get(self.login_link()).status_code == 303
        self.secrets.add(browser.cookies["sb_admin"])
        return csrf_of(browser)


@contextmanager
def security_stack(tmp: Path, database: str, database_url: str) -> Iterator[Stack]:
    with run_sandbox("hubspot", tmp) as hubspot, run_sandbox("slack", tmp) as slack:
        relay = Relay(hubspot.url)
        relayed = Sandbox(relay.url, hubspot.client_id, hubspot.client_secret, hubspot.process)
        try:
            # The access log is on so that URLs (sign-in links, OAuth callbacks) reach the log the scan reads.
            with run_hub(
                tmp,
                database_url,
                providers={"hubspot": relayed, "slack": slack},
                extra_env={"SWITCHBOARD_ACCESS_LOG": "true"},
            ) as hub:
                for name, (provider, scopes) in CONNECTIONS.items():
                    assert hub.connect(provider, name, scopes).status_code == 303
                db = Database(database_url)
                try:
                    yield Stack(hub, relayed, slack, relay, database, db)
                finally:
                    db.dispose()
        finally:
            relay.close()


def audited(hub: Hub, *, agent: str, tool: str, problem: str) -> int:
    """How many audit records show `agent` calling `tool` refused with `problem`."""
    with hub.admin() as admin:
        found = admin.get("/admin/api/audit", params={"agent": agent, "tool": tool, "problem": problem, "limit": 1000})
    assert found.status_code == 200, found.text
    return len(found.json())


async def mcp_calls(hub: Hub, key: str, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each call's answer in one MCP session: the problem (with `is_error`) or the result body."""
    answers = []
    async with mcp_session(hub, key) as session:
        for tool, arguments in calls:
            called = await session.call_tool(tool, arguments)
            text = called.content[0].text  # type: ignore[union-attr]
            answers.append({**json.loads(text), "is_error": bool(called.is_error)})
    return answers


async def mcp_tools(hub: Hub, key: str) -> list[dict[str, Any]]:
    """`tools/list` over MCP, in the shape `GET /v1/tools?format=mcp` lists them."""
    async with mcp_session(hub, key) as session:
        result = await session.list_tools()
    return [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in result.tools]
