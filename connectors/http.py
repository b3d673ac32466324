"""One pooled keep-alive aiohttp session per provider client, opened lazily in the loop that uses it.

aiohttp binds a session to the running event loop, so it cannot be built in a client's `__init__` (clients are
built wherever a token is installed, sometimes outside any loop); and a client replaced after a token refresh
is closed from wherever the hub happens to be, so closing must work from inside or outside that loop.
"""

import asyncio
from collections.abc import Sequence

import aiohttp

__all__ = ["LazySession"]

_KEEPALIVE = 15.0
_CLOSING: set["asyncio.Task[None]"] = set()


class LazySession:
    def __init__(self, *, timeout: float, pool_size: int, trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self._timeout = timeout
        self._pool_size = pool_size
        self._trace_configs = list(trace_configs)  # aiohttp request tracing, e.g. for tests or metrics
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> aiohttp.ClientSession:
        """The session, opened on first use inside the running loop."""
        if self._session is None:
            self._loop = asyncio.get_running_loop()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=_KEEPALIVE),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trace_configs=self._trace_configs or None,
            )
        return self._session

    @property
    def opened(self) -> bool:
        return self._session is not None

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def close(self) -> None:
        """Close the pool; callable from inside or outside the loop that opened it."""
        session, loop = self._session, self._loop
        self._session = None
        if session is None or loop is None or session.closed or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(session.close())
            _CLOSING.add(task)  # keep a reference until it is done
            task.add_done_callback(_CLOSING.discard)
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(session.close(), loop)
        else:
            loop.run_until_complete(session.close())
