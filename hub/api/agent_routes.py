"""The agent API: list the tools this agent may call, and call one."""

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from hub.api.deps import AgentDep, HubDep
from hub.catalog import agent_tools, render
from hub.errors import BadRequest, InvalidArguments

__all__ = ["MAX_BODY", "router"]

router = APIRouter(prefix="/v1", tags=["agents"])
MAX_BODY = 1 << 20

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
async def call_tool(tool: str, request: Request, agent: AgentDep, hub: HubDep) -> Response:
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
    outcome = await hub.calls.run(agent, tool, payload.get("arguments", {}), connection)
    answer: dict[str, Any] = {"call_id": outcome.call_id, "result": outcome.result}
    if outcome.notes:
        answer["notes"] = list(outcome.notes)
    return _json(answer)
