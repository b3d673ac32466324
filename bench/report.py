"""The printed result: the machine, one table of mode x concurrency, and the hub's ratios to each baseline."""

import os
import platform
from collections.abc import Sequence

from bench.runner import Measurement

__all__ = ["machine", "ratios", "table"]

_COLUMNS = (
    ("mode", "<6"),
    ("conc", ">4"),
    ("calls", ">6"),
    ("errors", ">6"),
    ("p50 ms", ">7"),
    ("p99 ms", ">7"),
    ("calls/s", ">8"),
    ("hop CPU ms/call", ">15"),
    ("db CPU ms/call", ">14"),
    ("upstream CPU ms/call", ">20"),
    ("client CPU ms/call", ">18"),
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(database: str) -> str:
    cores = os.cpu_count() or 0
    load = os.getloadavg()[0]
    return (
        f"machine: nproc={cores}, {_cpu_model()}, Python {platform.python_version()}, hub database {database}\n"
        f"note: every process (load generator, hub or proxy, sandbox upstream) shares these {cores} cores;\n"
        f"      load average {load:.1f} at start (above ~0.5, other work shares them too and numbers will vary)"
    )


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(measurements: Sequence[Measurement]) -> str:
    header = "  ".join(f"{name:{align}}" for name, align in _COLUMNS)
    lines = [header, "-" * len(header)]
    for m in measurements:
        cells = (
            m.mode,
            m.concurrency,
            m.ok,
            sum(m.errors.values()),
            _cell(m.p50_ms),
            _cell(m.p99_ms),
            f"{m.calls_per_second:.0f}",
            _cell(m.cpu_ms_per_call("hop")),
            _cell(m.cpu_ms_per_call("database")),
            _cell(m.cpu_ms_per_call("upstream")),
            _cell(m.client_cpu_ms_per_call),
        )
        lines.append("  ".join(f"{cell:{align}}" for cell, (_, align) in zip(cells, _COLUMNS, strict=True)))
        if m.issued < m.requested:
            lines.append(f"    ^ stopped at the time limit after {m.issued} of {m.requested} calls")
    lines.append(
        "hop = the hub or proxy process; db = the hub's PostgreSQL backends (SQLite runs inside the hub, in hop);\n"
        "upstream = the sandbox. A server idle between calls spends more CPU per call "
        "waking up,\nso the slower a mode, the more upstream CPU it shows: that part is pacing, not work."
    )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def _latency_and_throughput(hub: Measurement, base: Measurement) -> str:
    return (
        f"p50 {_ratio(hub.p50_ms, base.p50_ms)}  p99 {_ratio(hub.p99_ms, base.p99_ms)}"
        f"  throughput {_ratio(hub.calls_per_second, base.calls_per_second)}"
    )


def ratios(measurements: Sequence[Measurement]) -> str:
    """Hub over each baseline, per concurrency: >1x is slower or costlier, except throughput (<1x is fewer)."""
    by_key = {(m.mode, m.concurrency): m for m in measurements}
    lines = []
    for concurrency in sorted({m.concurrency for m in measurements}):
        hub, direct, proxy = (by_key.get((mode, concurrency)) for mode in ("hub", "direct", "proxy"))
        if hub is None:
            continue
        # Exclude nothing: with PostgreSQL, the backends serving the hub are part of what the hub costs.
        hub_side = "hub + its PostgreSQL backends" if "database" in hub.cpu_seconds else "hub"
        lines.append(f"ratios at c={concurrency} (measured in this run)")
        if direct is not None:
            cpu = _ratio(hub.server_cpu_ms_per_call, direct.server_cpu_ms_per_call)
            lines.append(
                f"  hub/direct  {_latency_and_throughput(hub, direct)}"
                f"  server CPU {cpu} ({hub_side} + upstream vs upstream alone)"
            )
        if proxy is not None:
            cpu = _ratio(hub.cpu_ms_per_call("hop", "database"), proxy.cpu_ms_per_call("hop"))
            lines.append(f"  hub/proxy   {_latency_and_throughput(hub, proxy)}  hop CPU {cpu} ({hub_side} vs proxy)")
    return "\n".join(lines)
