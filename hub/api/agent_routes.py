"""The agent API: list the tools this agent may call, call one, and fetch the outcome of a held call."""

import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from connectors import TOOLS
from hub.api.deps import AgentDep, HubDep, agent_from_authorization
from hub.api.problems import problem_response, problem_responses
from hub.calls import CallResult
from hub.catalog import agent_tools, render
from hub.errors import ApprovalDenied, BadRequest, InvalidArguments
from hub.runtime import Hub

__all__ = ["MAX_BODY", "router"]

router = APIRouter(prefix="/v1", tags=["agents"], responses=problem_responses(401))
MAX_BODY = 1 << 20
MAX_WAIT = 60
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_TOOL_DESCRIPTION = "A tool's name, as GET /v1/tools lists it; one this agent is not granted is refused."
_SESSION_DESCRIPTION = "Groups calls into a session for the untrusted-input rule (1-128 URL-safe characters)."

# The call route is the hot path: it takes the bare Request and reads the tool, the agent key and the session
# header itself (FastAPI's dependency resolution would cost it more than the whole policy decision), so its
# parameters and security are documented here. schemathesis checks the route against this document.
_CALL_PARAMETERS = [
    {
        "name": "tool",
        "in": "path",
        "required": True,
        "description": _TOOL_DESCRIPTION,
        "schema": {"type": "string", "enum": sorted(TOOLS), "description": _TOOL_DESCRIPTION},
    },
    {
        "name": "X-Switchboard-Session",
        "in": "header",
        "required": False,
        "description": _SESSION_DESCRIPTION,
        # Documented, and checked by the route: a malformed header is a 400 problem, as the agent API has it.
        "schema": {"type": "string", "pattern": _SESSION_ID.pattern, "description": _SESSION_DESCRIPTION},
    },
]

# The call route reads its body itself (one parse, no pydantic model on the hot path); this is what it accepts.
# No body at all is a call without arguments.
_CALL_BODY = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "arguments": {
                        "type": "object",
                        "description": "The tool's arguments, per its input_schema.",
                    },
                    "connection": {
                        "type": ["string", "null"],
                        "description": "Which connection, when several are granted.",
                    },
                },
                "additionalProperties": False,
            }
        }
    },
}


class ToolList(BaseModel):
    tools: list[dict[str, Any]] = Field(description="Each tool in the format asked for.")


class CallAnswer(BaseModel):
    call_id: str
    result: Any = Field(description="The tool's result, per its output schema.")
    notes: list[str] | None = Field(default=None, description="What the hub changed or noticed, e.g. a redaction.")


class CallHeld(BaseModel):
    call_id: str
    status: Literal["pending_approval"]
    detail: str
    outcome_url: str = Field(description="Where the outcome will be: GET it, with ?wait= to wait for it.")


class CallDone(CallAnswer):
    status: Literal["done"]


class CallWaiting(BaseModel):
    call_id: str
    status: Literal["pending_approval", "approved", "running"]


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.get(
    "/tools",
    summary="The tools this agent's grants allow",
    responses={200: {"model": ToolList}, **problem_responses(422)},
)
async def list_tools(
    agent: AgentDep, format: Literal["switchboard", "anthropic", "openai", "mcp"] = "switchboard"
) -> Response:
    return _json({"tools": render(agent_tools(agent), format)})


@router.post(
    "/tools/{tool}/call",
    summary="Call a tool",
    openapi_extra={"requestBody": _CALL_BODY, "parameters": _CALL_PARAMETERS, "security": [{"agentKey": []}]},
    responses={
        200: {"model": CallAnswer},
        202: {"model": CallHeld, "description": "Held for a human's approval"},
        **problem_responses(400, 403, 404, 409, 413, 422, 429, 502, 503, 504),
    },
)
async def call_tool(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    agent = agent_from_authorization(hub, request.headers.get("authorization"))
    tool: str = request.path_params["tool"]
    session = request.headers.get("x-switchboard-session")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest(f"the request body exceeds {MAX_BODY} bytes")
    try:
        payload = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest('the request body must be a JSON object: {"arguments": {...}}')
    unexpected = set(payload) - {"arguments", "connection"}
    if unexpected:
        raise InvalidArguments(
            f"unexpected field(s) {', '.join(sorted(unexpected))}: put tool arguments in 'arguments'"
        )
    connection = payload.get("connection")  # its type is checked by the pipeline, as for MCP
    if session is not None and not _SESSION_ID.match(session):
        raise BadRequest("X-Switchboard-Session must be 1-128 characters of letters, digits and ._:@/+=-")
    outcome = await hub.calls.run(agent, tool, payload.get("arguments", {}), connection, session)
    if outcome.pending is not None:
        return _json(pending_body(outcome), status=202)
    answer: dict[str, Any] = {"call_id": outcome.call_id, "result": outcome.result}
    if outcome.notes:
        answer["notes"] = list(outcome.notes)
    return _json(answer)


def pending_body(outcome: CallResult) -> dict[str, Any]:
    """What an agent learns of a held call: why, and where its outcome will be."""
    return {
        "call_id": outcome.call_id,
        "status": "pending_approval",
        "detail": f"{outcome.pending}. The call waits for a human on the Switchboard admin page; "
        f"GET /v1/calls/{outcome.call_id}?wait=30 returns its outcome when decided.",
        "outcome_url": f"/v1/calls/{outcome.call_id}",
    }


@router.get(
    "/calls/{call_id}",
    summary="The outcome of a call that waited for approval",
    responses={
        200: {"model": CallDone},
        202: {"model": CallWaiting, "description": "Still waiting for a human, or running"},
        # A call that failed answers with its own problem, whatever it was.
        **problem_responses(403, 404, 409, 422, 429, 502, 503, 504),
    },
)
async def call_outcome(
    call_id: str, agent: AgentDep, hub: HubDep, wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0
) -> Response:
    """200 with the result once the approved call ran; 202 while it waits or runs; the call's problem when it
    was denied (`approval_denied`), expired or failed."""
    found = await hub.calls.outcome(agent, call_id[:64], wait)
    if found.status == "done":
        answer: dict[str, Any] = {"call_id": found.call_id, "status": "done", "result": found.result}
        if found.notes:
            answer["notes"] = list(found.notes)
        return _json(answer)
    if found.status in ("denied", "expired"):
        raise ApprovalDenied(f"call {found.call_id} was {found.status}: it did not run")
    if found.status == "failed":
        problem = dict(found.problem or {})
        return problem_response(int(problem.get("status", 502)), {**problem, "call_id": found.call_id})
    return _json(
        {"call_id": found.call_id, "status": "pending_approval" if found.status == "pending" else found.status}, 202
    )
