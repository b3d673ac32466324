"""A small client for Switchboard's agent API, for agent runtimes: httpx and the standard library only.

It imports nothing else from the hub, so a runtime can install (or copy) this one module.

    from hub.client import Switchboard

    with Switchboard("https://hub.example.com", "sbk_…") as sb:
        tools = sb.anthropic_tools()                    # ready for client.messages.create(tools=…)
        outcome = sb.call("hubspot_contacts_search", {"query": "ada"})
        # ToolResult(call_id, result, notes) or Pending(call_id, detail, outcome_url);
        # a refusal or failure raises SwitchboardProblem(type, status, detail, retry_after, …)

        # In an Anthropic tool-use loop: the tool_result blocks for the next user turn, one per tool_use
        # block, with refusals and pending approvals as `is_error` results the model can read.
        messages.append({"role": "user", "content": sb.run_tool_uses(response)})

`AsyncSwitchboard` has the same methods, as coroutines. Pass `session=` to group the calls of one
conversation (the `X-Switchboard-Session` header): the untrusted-input rule then holds per conversation.
Transport failures (the hub unreachable) raise httpx's errors: they are the runtime's to handle, not the
model's.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import httpx

__all__ = [
    "AsyncSwitchboard",
    "Outcome",
    "Pending",
    "Switchboard",
    "SwitchboardProblem",
    "ToolFormat",
    "ToolResult",
    "explain",
    "tool_result_block",
]

ToolFormat = Literal["switchboard", "anthropic", "openai", "mcp"]
DEFAULT_TIMEOUT = 60.0
_SESSION_HEADER = "X-Switchboard-Session"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A call that ran: its result as JSON data, and notes on what the hub changed (a lowered page size)."""

    call_id: str
    result: Any
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pending:
    """A call held for a human's approval; `outcome(call_id)` returns its result once decided."""

    call_id: str
    detail: str = ""
    outcome_url: str = ""


Outcome = ToolResult | Pending


class SwitchboardProblem(Exception):
    """The hub refused or failed a request: an RFC 9457 problem with a stable `type` slug
    (scope_denied, constraint_violated, flow_blocked, approval_denied, unknown_tool, invalid_arguments,
    rate_limited, connection_needs_reauth, upstream_error, upstream_timeout, unauthenticated, …)."""

    def __init__(
        self,
        type: str,
        status: int,
        detail: str,
        *,
        title: str = "",
        retry_after: float | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{type} ({status}): {detail}")
        self.type = type
        self.status = status
        self.detail = detail
        self.title = title
        self.retry_after = retry_after
        self.body: Mapping[str, Any] = dict(body or {})

    @property
    def call_id(self) -> str | None:
        value = self.body.get("call_id")
        return value if isinstance(value, str) else None


# --- Requests and answers, shared by the sync and async clients ------------------------------------------


def _headers(key: str, session: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, application/problem+json"}
    if session is not None:
        headers[_SESSION_HEADER] = session
    return headers


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _problem(response: httpx.Response) -> SwitchboardProblem:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        # Not the hub's answer (a proxy's error page, say): keep what can be said about it.
        text = " ".join(response.text.split())[:200]
        return SwitchboardProblem("http_error", response.status_code, text or response.reason_phrase)
    return SwitchboardProblem(
        body["type"],
        int(body.get("status", response.status_code)),
        str(body.get("detail", "")),
        title=str(body.get("title", "")),
        retry_after=_retry_after(response),
        body=body,
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise _problem(response)
    body = response.json()
    if not isinstance(body, dict):
        raise SwitchboardProblem("http_error", response.status_code, "the hub's answer is not a JSON object")
    return body


def _outcome(response: httpx.Response) -> Outcome:
    body = _json(response)
    if response.status_code == 202:
        return Pending(
            str(body["call_id"]),
            str(body.get("detail", "")),
            str(body.get("outcome_url", f"/v1/calls/{body['call_id']}")),
        )
    return ToolResult(str(body["call_id"]), body.get("result"), tuple(body.get("notes") or ()))


def _tools(response: httpx.Response) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = _json(response)["tools"]
    return tools


def _call_body(arguments: Mapping[str, Any] | None, connection: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"arguments": dict(arguments or {})}
    if connection is not None:
        body["connection"] = connection
    return body


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _tool_uses(message: Any) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(tool_use id, tool name, arguments, connection) of each tool_use block of an Anthropic `Message`,
    its dict form, or a list of content blocks. `connection` is the hub's argument, not the tool's."""
    content = message if isinstance(message, Sequence) and not isinstance(message, str) else _field(message, "content")
    uses = []
    for block in content or ():
        if _field(block, "type") != "tool_use":
            continue
        arguments = dict(_field(block, "input") or {})
        connection = arguments.pop("connection", None)
        uses.append((str(_field(block, "id")), str(_field(block, "name")), arguments, connection))
    return uses


# --- What a model reads --------------------------------------------------------------------------------

_ADVICE = {
    "scope_denied": "This agent has no grant that allows it. An admin can grant the scope on the Switchboard "
    "admin page; until then do not call this tool again: tell the user what is missing.",
    "constraint_violated": "A constraint of this agent's grant refused it (the rule is named above). Stay within "
    "the grant's limits (the tool's description lists them), or ask the user to have an admin widen the grant "
    "on the Switchboard admin page.",
    "flow_blocked": "Data this agent received from one tool may not be passed to this one. An admin can allow "
    "this data flow (a flow rule) on the Switchboard admin page; do not retry it with the same data.",
    "approval_denied": "A human refused this call, or it expired before anyone decided: it did not run. "
    "Do not retry it; tell the user.",
    "unknown_tool": "There is no such tool for this agent; use only the tools you were given.",
    "invalid_arguments": "Fix the arguments to match the tool's input schema and call it again.",
    "rate_limited": "The grant's or the provider's rate limit was reached.",
    "connection_needs_reauth": "The connected account must be reconnected by an admin on the Switchboard "
    "admin page; retrying will not help until then.",
    "upstream_error": "The provider failed; retrying later may work.",
    "upstream_timeout": "The provider did not answer in time; retrying later may work.",
    "unauthenticated": "The agent's Switchboard key was refused; the operator must fix the key.",
}


def explain(problem: SwitchboardProblem, tool: str) -> str:
    """A problem as a model should read it: what refused the call (scope or rule), and what can be done."""
    what = "refused the call to" if problem.status < 500 else "could not complete the call to"
    text = f"Switchboard {what} {tool} ({problem.type}, HTTP {problem.status}): {problem.detail}"
    text = text.rstrip(". ") + "."
    errors = problem.body.get("errors")
    if isinstance(errors, list) and errors:
        text += " Errors: " + "; ".join(
            f"{e.get('field', '?')}: {e.get('message', '')}" if isinstance(e, Mapping) else str(e) for e in errors
        )
        text += "."
    advice = _ADVICE.get(problem.type)
    if problem.type == "scope_denied" and "missing_provider_scopes" in problem.body:
        advice = (
            "The connected account lacks that permission at the provider: an admin must reconnect it with the "
            "scope on the Switchboard admin page. Do not retry until then."
        )
    elif problem.type == "scope_denied" and "admin" in problem.detail:
        advice = "Until an admin grants it, do not call this tool again: tell the user what is missing."
    if advice:
        text += f" {advice}"
    if problem.retry_after is not None:
        text += f" Retry after {problem.retry_after:g} seconds at the earliest."
    return text


def _pending_text(pending: Pending, tool: str) -> str:
    said = f" Switchboard says: {pending.detail.strip()}" if pending.detail.strip() else ""
    return (
        f"The call to {tool} has not run yet: it waits for a human's approval on the Switchboard admin page "
        f"(call id {pending.call_id}).{said} Tell the user it awaits approval; do not call it again, or it "
        "would be queued twice."
    )


def tool_result_block(tool_use_id: str, tool: str, outcome: Outcome | SwitchboardProblem) -> dict[str, Any]:
    """The Anthropic `tool_result` content block for one call's outcome."""
    if isinstance(outcome, SwitchboardProblem):
        return {"type": "tool_result", "tool_use_id": tool_use_id, "content": explain(outcome, tool), "is_error": True}
    if isinstance(outcome, Pending):
        text = _pending_text(outcome, tool)
        return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text, "is_error": True}
    text = json.dumps(outcome.result, ensure_ascii=False)
    content: str | list[dict[str, str]] = text
    if outcome.notes:
        note = "Switchboard: " + "; ".join(outcome.notes) + "."
        content = [{"type": "text", "text": text}, {"type": "text", "text": note}]
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content}


# --- The clients ---------------------------------------------------------------------------------------


@dataclass
class _Config:
    url: str
    key: str = field(repr=False)
    session: str | None = None


class Switchboard:
    """The agent API over a blocking httpx client. `http` lets a caller bring its own client (a transport
    for tests, proxies); it is then the caller's to close."""

    def __init__(
        self,
        url: str,
        key: str,
        session: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        self._config = _Config(url.rstrip("/"), key, session)
        self._owned = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._timeout = timeout

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = _headers(self._config.key, self._config.session)
        return self._http.request(method, f"{self._config.url}{path}", headers=headers, **kwargs)

    def tools(self, format: ToolFormat = "switchboard") -> list[dict[str, Any]]:
        """The tools this agent's grants allow, in the hub's format or Anthropic's, OpenAI's or MCP's."""
        return _tools(self._request("GET", "/v1/tools", params={"format": format}))

    def anthropic_tools(self) -> list[dict[str, Any]]:
        """The tools as the Messages API takes them: `client.messages.create(tools=sb.anthropic_tools())`."""
        return self.tools("anthropic")

    def call(self, tool: str, arguments: Mapping[str, Any] | None = None, connection: str | None = None) -> Outcome:
        """Call a tool: its result, or Pending when a human must approve; raises SwitchboardProblem."""
        return _outcome(self._request("POST", f"/v1/tools/{tool}/call", json=_call_body(arguments, connection)))

    def outcome(self, call_id: str, wait: float = 30) -> Outcome:
        """A held call's outcome, waiting up to `wait` seconds: its result once approved and run, Pending
        while undecided; raises SwitchboardProblem (`approval_denied`, or the call's failure)."""
        response = self._request(
            "GET", f"/v1/calls/{call_id}", params={"wait": wait}, timeout=max(self._timeout, wait + 30)
        )
        return _outcome(response)

    def run_tool_uses(self, message: Any) -> list[dict[str, Any]]:
        """Run every tool_use block of an Anthropic `Message` (or its dict form, or its content list), in
        order; returns the `tool_result` blocks for the next user turn, refusals included as `is_error`."""
        blocks = []
        for use_id, name, arguments, connection in _tool_uses(message):
            outcome: Outcome | SwitchboardProblem
            try:
                outcome = self.call(name, arguments, connection)
            except SwitchboardProblem as problem:
                outcome = problem
            blocks.append(tool_result_block(use_id, name, outcome))
        return blocks

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncSwitchboard:
    """The agent API over an async httpx client; the same methods as `Switchboard`, as coroutines."""

    def __init__(
        self,
        url: str,
        key: str,
        session: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = _Config(url.rstrip("/"), key, session)
        self._owned = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = _headers(self._config.key, self._config.session)
        return await self._http.request(method, f"{self._config.url}{path}", headers=headers, **kwargs)

    async def tools(self, format: ToolFormat = "switchboard") -> list[dict[str, Any]]:
        return _tools(await self._request("GET", "/v1/tools", params={"format": format}))

    async def anthropic_tools(self) -> list[dict[str, Any]]:
        return await self.tools("anthropic")

    async def call(
        self, tool: str, arguments: Mapping[str, Any] | None = None, connection: str | None = None
    ) -> Outcome:
        return _outcome(await self._request("POST", f"/v1/tools/{tool}/call", json=_call_body(arguments, connection)))

    async def outcome(self, call_id: str, wait: float = 30) -> Outcome:
        response = await self._request(
            "GET", f"/v1/calls/{call_id}", params={"wait": wait}, timeout=max(self._timeout, wait + 30)
        )
        return _outcome(response)

    async def run_tool_uses(self, message: Any) -> list[dict[str, Any]]:
        """Run the tool_use blocks one after another (a later call may depend on the session an earlier one
        marked), returning the `tool_result` blocks for the next user turn."""
        blocks = []
        for use_id, name, arguments, connection in _tool_uses(message):
            outcome: Outcome | SwitchboardProblem
            try:
                outcome = await self.call(name, arguments, connection)
            except SwitchboardProblem as problem:
                outcome = problem
            blocks.append(tool_result_block(use_id, name, outcome))
        return blocks

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
