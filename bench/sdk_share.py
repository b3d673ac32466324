"""What the provider call alone costs a caller, in this process: the HubSpot SDK as the hub's connector runs
it (API objects built once, the SDK building each request and one aiohttp session sending it, raw JSON) next
to one pooled aiohttp session on its own, both making the benchmarked GET against the same sandbox. The hub
pays the connector's cost on every call and the proxy pays aiohttp's, so their difference is the part of the
hub/proxy CPU ratio that is the SDK, not the hub's own work.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bench.upstream import TOOL, contact_path
from connectors import TOOLS
from connectors.hubspot.client import HubSpotClient

__all__ = ["ClientCost", "client_costs"]

_MAX_CALLS = 2000


@dataclass(frozen=True)
class ClientCost:
    client: str
    concurrency: int
    cpu_ms_per_call: float


async def _cpu_per_call(call: Callable[[], Awaitable[object]], concurrency: int, calls: int) -> float:
    async def worker(calls: int) -> None:
        for _ in range(calls):
            await call()

    each = max(1, calls // concurrency)
    await asyncio.gather(*(worker(max(1, each // 10)) for _ in range(concurrency)))  # warm the pools
    started = time.process_time()
    await asyncio.gather(*(worker(each) for _ in range(concurrency)))
    return (time.process_time() - started) * 1000 / (each * concurrency)


async def _measure(upstream: str, token: str, contact_id: str, levels: list[int], calls: int) -> list[ClientCost]:
    sdk = HubSpotClient(access_token=token, api_base=upstream, timeout=10)
    headers = {"Authorization": f"Bearer {token}"}
    path = contact_path(contact_id)
    tool = TOOLS[TOOL]
    arguments = tool.input_model(contact_id=contact_id)
    costs = []
    try:
        async with aiohttp.ClientSession(upstream, headers=headers) as session:

            async def pooled() -> None:
                async with session.get(path) as response:
                    await response.read()

            async def connector() -> None:
                await tool.invoke(sdk, arguments)

            for concurrency in levels:
                for name, call in (("aiohttp", pooled), ("hubspot SDK", connector)):
                    costs.append(ClientCost(name, concurrency, await _cpu_per_call(call, concurrency, calls)))
    finally:
        await sdk.aclose()
    return costs


def client_costs(upstream: str, token: str, contact_id: str, levels: list[int], calls: int) -> list[ClientCost]:
    """Client CPU per call of each way, at each concurrency, over `calls` calls (at most 2000)."""
    return asyncio.run(_measure(upstream, token, contact_id, levels, min(calls, _MAX_CALLS)))
