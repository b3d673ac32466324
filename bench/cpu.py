"""CPU time of processes, read from /proc, so a server's cost per call can be measured from outside it."""

import os
from pathlib import Path

__all__ = ["cpu_seconds", "postgres_backends", "total_cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` so far (the kernel sums threads into the leader's line)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        raw = stat.read()
    # comm (field 2) may contain spaces and parentheses: split after its closing one.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS


def total_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds per pid, leaving out any that have exited (a pooled connection closed meanwhile)."""
    totals = {}
    for pid in pids:
        try:
            totals[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return totals


def postgres_backends(database: str) -> list[int]:
    """The server processes serving connections to `database`: PostgreSQL titles each backend
    `postgres: <cluster>: <user> <database> <client> <state>`. Shared processes (WAL writer, checkpointer)
    serve every database and are left out."""
    marker = f" {database} ".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"postgres:") and marker in title.replace(b"\0", b" "):
            pids.append(int(entry.name))
    return pids
