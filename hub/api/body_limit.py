"""The one limit on request bodies, for every route (MCP and the admin forms too), enforced as the bytes
arrive: before authentication, parsing or buffering, so no client can make the hub hold more than it."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.problems import problem_response
from hub.errors import PayloadTooLarge

__all__ = ["BodyLimit"]


class BodyLimit:
    """Pure ASGI middleware: a declared Content-Length over `limit` is answered 413 without reading a byte;
    a body that grows past it while streaming raises PayloadTooLarge to whatever is reading it."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    def _refusal(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body exceeds {self.limit} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                refused = self._refusal()
                # The body stays unread, so the connection cannot carry another request.
                answer = problem_response(refused.status, refused.problem(), {"Connection": "close"})
                await answer(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise self._refusal()
            return message

        await self.app(scope, limited, send)
