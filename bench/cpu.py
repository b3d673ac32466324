"""CPU time of a process, read from /proc, so a server's cost per call can be measured from outside it."""

import os

__all__ = ["cpu_seconds"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of `pid` so far (the kernel sums threads into the leader's line)."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        raw = stat.read()
    # comm (field 2) may contain spaces and parentheses: split after its closing one.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS
