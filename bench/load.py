"""The load generator, run as its own process so its CPU never lands on a server's account.

`python -m bench.load` reads one JSON run spec on stdin (the request, with its secret header, stays out of
argv) and writes one JSON result on stdout. N workers share one pooled aiohttp session and issue the same
request until `calls` are done or `max_seconds` pass, after a warm-up at the same concurrency. The servers'
CPU (utime + stime from /proc) is read just before and after the measured phase, so set-up and warm-up
never count.
"""

import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.cpu import postgres_backends, total_cpu_seconds

__all__ = ["RunSpec", "main"]

_MAX_SAMPLES = 5


@dataclass(frozen=True)
class RunSpec:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    calls: int
    concurrency: int
    warmup: int
    max_seconds: float
    pids: dict[str, int]  # role ("hop", "upstream") -> pid whose CPU this run is charged
    postgres_database: str | None = None  # charge its backends too, as role "database"
    database_pids: list[int] = field(default_factory=list)  # other database servers (Redis), role "database"
    # Replicas of the same server: worker i sends to ([url] + more_urls)[i % n], so clients spread round-robin,
    # and each role's further pids (the other replicas) are charged with it.
    more_urls: list[str] = field(default_factory=list)
    more_pids: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < _MAX_SAMPLES:
            self.samples.append(f"{kind}: {detail[:300]}")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile; exact for the small counts the smoke test uses."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


async def _phase(
    session: aiohttp.ClientSession, spec: RunSpec, calls: int, deadline: float, tally: _Tally | None
) -> int:
    """Issue `calls` requests over `spec.concurrency` workers; returns how many were issued."""
    data = spec.body.encode() if spec.body is not None else None
    issued = 0

    async def worker(url: str) -> None:
        nonlocal issued
        while issued < calls and time.monotonic() < deadline:
            issued += 1
            started = time.perf_counter()
            try:
                async with session.request(spec.method, url, data=data) as response:
                    body = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                if tally is not None:
                    tally.error(type(exc).__name__, str(exc))
                continue
            if tally is None:
                continue
            if status == 200:
                tally.latencies.append(time.perf_counter() - started)
            else:
                tally.error(f"HTTP {status}", body.decode(errors="replace"))

    urls = [spec.url, *spec.more_urls]
    await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(spec.concurrency)))
    return issued


def _charged(spec: RunSpec) -> dict[str, list[int]]:
    """Role -> pids. Looked up after the warm-up, so the pool's database connections are open by then."""
    roles = {role: [pid, *spec.more_pids.get(role, [])] for role, pid in spec.pids.items()}
    database = postgres_backends(spec.postgres_database) if spec.postgres_database is not None else []
    if database or spec.database_pids:
        roles["database"] = [*database, *spec.database_pids]
    return roles


def _cpu_delta(before: dict[str, dict[int, float]], roles: dict[str, list[int]]) -> dict[str, float]:
    after = {role: total_cpu_seconds(pids) for role, pids in roles.items()}
    return {
        role: sum(now - before[role][pid] for pid, now in after[role].items() if pid in before[role]) for role in roles
    }


async def run(spec: RunSpec) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=spec.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    headers = {**spec.headers, **({"Content-Type": "application/json"} if spec.body is not None else {})}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        deadline = time.monotonic() + spec.max_seconds
        warm = _Tally()
        await _phase(session, spec, spec.warmup, deadline, warm)
        tally = _Tally(errors=Counter({f"warm-up {k}": v for k, v in warm.errors.items()}), samples=warm.samples)
        roles = _charged(spec)
        cpu_before = {role: total_cpu_seconds(pids) for role, pids in roles.items()}
        client_before, wall_before = time.process_time(), time.perf_counter()
        issued = await _phase(session, spec, spec.calls, deadline, tally)
        seconds = time.perf_counter() - wall_before
        client_cpu = time.process_time() - client_before
        cpu = _cpu_delta(cpu_before, roles)
    latencies = sorted(tally.latencies)
    return {
        "issued": issued,
        "ok": len(latencies),
        "errors": dict(tally.errors),
        "error_samples": tally.samples,
        "seconds": seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_seconds": cpu,
        "client_cpu_seconds": client_cpu,
    }


def main() -> None:
    spec = RunSpec(**json.load(sys.stdin))
    runner = asyncio.run
    try:
        import uvloop  # a cheaper client leaves more of the shared cores to the servers under test

        runner = uvloop.run
    except ImportError:
        pass
    json.dump(runner(run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
