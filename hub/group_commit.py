"""Group commit: many callers' small writes in one database transaction (or one round trip).

Callers queue an item and await its result. One task takes whatever has queued while the previous batch
was being written and hands it, whole, to `write`: a blocking function runs on the group commit's own thread
(always the same one, so it can keep a connection: `hub.db.WriterConnection`), a coroutine function on the
event loop. Under load many calls share one transaction (and one disk flush), and each caller still waits
for its own write to commit. Used by the audit log and by the rate-limit counters (in the database, or in
Redis: one round trip per batch, on one connection however many calls wait).
"""

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar, cast

from hub.db import database_unavailable, is_unavailable
from hub.errors import SwitchboardError

__all__ = ["BatchWriter", "GroupCommit"]

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")
# Commits a batch, returning one result per item in order: blocking (run on the group commit's thread) or a
# coroutine.
BatchWriter = Callable[[list[Item]], Sequence[Result]] | Callable[[list[Item]], Awaitable[Sequence[Result]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: BatchWriter[Item, Result],
        *,
        name: str,
        max_batch: int = 512,
    ) -> None:
        """`write` commits a batch in one transaction and returns one result per item, in order."""
        self._write: Callable[[list[Item]], Awaitable[Sequence[Result]]]
        # Batches are written one at a time, so one thread serves. Its own, not anyio's shared pool: a hand-off
        # to it costs less than anyio's (no cancel scope, no limiter), and it is there for the next batch.
        self._thread: ThreadPoolExecutor | None = None
        if inspect.iscoroutinefunction(write):
            self._write = write
        else:
            blocking = cast(Callable[[list[Item]], Sequence[Result]], write)
            self._write = lambda items: asyncio.get_running_loop().run_in_executor(self._thread, blocking, items)
        self._name = name
        self._max_batch = max_batch
        # None, queued by stop(), ends the task once everything queued before it is written.
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._writing = False

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch being written: a write made now would wait for no one's."""
        return self._queue.empty() and not self._writing

    async def submit(self, item: Item) -> Result:
        """Queue `item` and wait until its batch has committed. If the batch failed: DatabaseUnavailable when
        the database could not be reached, otherwise the error `write` raised."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    def start(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Write everything queued so far, then stop."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while not self._queue.empty() and len(batch) < self._max_batch:
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._writing = True
            try:
                await self._commit(batch)
            finally:
                self._writing = False

    async def _commit(self, batch: list[tuple[Item, "asyncio.Future[Result]"]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if is_unavailable(exc):
                exc = database_unavailable(exc)  # an outage: hub.db reports it once, not per batch
            elif not isinstance(exc, SwitchboardError):
                log.error("%s: a batch of %d failed: %s", self._name, len(batch), type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
