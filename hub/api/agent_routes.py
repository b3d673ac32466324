"""The agent API: list the tools this agent may call, call one, and fetch the outcome of a held call."""

import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response

from hub.api.deps import AgentDep, HubDep
from hub.api.problems import problem_response
from hub.calls import CallResult
from hub.catalog import agent_tools, render
from hub.errors import ApprovalDenied, BadRequest, InvalidArguments

__all__ = ["MAX_BODY", "router"]

router = APIRouter(prefix="/v1", tags=["agents"])
MAX_BODY = 1 << 20
MAX_WAIT = 60
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
SessionHeader = Annotated[
    str | None,
    Header(
        alias="X-Switchboard-Session",
        description="Groups calls into a session for the untrusted-input rule (1-128 URL-safe characters).",
    ),
]

_CALL_BODY = {
    "required": True,
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
                        "type": "string",
                        "description": "Which connection, when several are granted.",
                    },
                },
                "additionalProperties": False,
            }
        }
    },
}


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.get("/tools", summary="The tools this agent's grants allow")
async def list_tools(
    agent: AgentDep, format: Literal["switchboard", "anthropic", "openai", "mcp"] = "switchboard"
) -> Response:
    return _json({"tools": render(agent_tools(agent), format)})


@router.post("/tools/{tool}/call", summary="Call a tool", openapi_extra={"requestBody": _CALL_BODY})
async def call_tool(
    tool: str, request: Request, agent: AgentDep, hub: HubDep, session: SessionHeader = None
) -> Response:
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
    connection = payload.get("connection")
    if connection is not None and not isinstance(connection, str):
        raise InvalidArguments("'connection' must be a connection name")
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


@router.get("/calls/{call_id}", summary="The outcome of a call that waited for approval")
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
